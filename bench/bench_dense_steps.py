"""Where the time of ``curve``'s dense out-of-core path goes, step by step (issue 20).

    python bench/bench_dense_steps.py --images 8 --folder SCRATCH [--threads 1]

Makes a dense file (bench_cityscapes's generator; float32 by default) and runs
:func:`lsfix.evaluation.bounded.evaluate_bounded` (``-s msp``) in this process with timers wrapped
around each step (wall seconds summed over calls; the msp pieces run in worker threads, so
their sum is CPU time spread over the threads):

* ``read``: ``ArrayRows.read_image_into`` (HDF5 ``read_direct`` of one image);
* ``msp pieces``: ``msp_columns`` over every 4,096-pixel piece (worker threads);
* ``labels``: the labels of an image read from disk (``DeferredLabels.image``);
* ``spill: sort runs``: ``tie_blocks`` of each run of 2^21 pairs (main thread);
* ``spill: write runs``: the run files;
* ``merge + block file``: merging the runs into the block file;
* ``metrics``: every metric from the block file.

The rest of the wall time (``other``) is the main thread's correctness and selection of the
evaluated pixels, copies into the runs, and waiting. One read of the logits (``read_direct``
image by image, in a fresh pass) is timed first, for the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cityscapes import make  # noqa: E402

T: dict[str, float] = defaultdict(float)


def wrap(owner: object, name: str, label: str) -> None:
    fn = getattr(owner, name)

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            T[label] += time.perf_counter() - t0

    setattr(owner, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--folder", type=Path, required=True)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    if args.threads:
        os.environ["LSFIX_THREADS"] = str(args.threads)
    import lsfix.core.spill as spill
    import lsfix.evaluation.bounded as ooc
    from lsfix.core.source import ArrayRows
    from lsfix.readers.entry import read as load
    from lsfix.readers.logitsfile import DeferredLabels

    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / f"steps-{args.images}-{args.dtype}.h5"
    make(path, args.images, 19, 1024, 2048, args.dtype)
    try:
        with h5py.File(path, "r") as f:
            ds = f["logits"]
            buf = np.empty(ds.shape[1:], ds.dtype)
            t0 = time.perf_counter()
            for i in range(ds.shape[0]):
                ds.read_direct(buf, np.s_[i], np.s_[...])
            read_once = time.perf_counter() - t0
        wrap(ArrayRows, "read_image_into", "read")
        wrap(ooc, "msp_columns", "msp pieces (threads, summed)")
        wrap(DeferredLabels, "image", "labels")
        wrap(spill, "tie_blocks", "spill: sort runs")
        wrap(spill._Run, "_write", "spill: write runs")
        wrap(spill.SpilledBlocks, "block_file", "merge + block file")
        real_mfb = __import__("lsfix.core.metrics", fromlist=["x"]).metrics_from_blocks
        import lsfix.core.metrics as cm

        def mfb(*a, **k):
            t = time.perf_counter()
            try:
                return real_mfb(*a, **k)
            finally:
                T["metrics"] += time.perf_counter() - t

        cm.metrics_from_blocks = mfb
        pred = load(str(path), defer_dense_labels=True)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        ooc.evaluate_bounded(pred, ["msp"], convention="lsfix", coverages=(), risks=(),
                             folder=str(args.folder))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        cm.metrics_from_blocks = real_mfb
        main_steps = sum(v for k, v in T.items() if "threads" not in k)
        print(f"{args.images} x 19 x 1024 x 2048 {args.dtype}, threads "
              f"{os.environ.get('LSFIX_THREADS', 'default')}, load {os.getloadavg()[0]:.1f}")
        print(f"one read {read_once:.3f} s; evaluate_bounded wall {wall:.3f} s "
              f"({wall / read_once:.1f}x the read), CPU {cpu:.3f} s")
        for k, v in sorted(T.items(), key=lambda kv: -kv[1]):
            print(f"  {k:32s} {v:8.3f} s  {v / read_once:6.1f}x read")
        print(f"  {'other (main thread)':32s} {wall - main_steps:8.3f} s")
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

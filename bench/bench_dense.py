"""Dense (N, K, H, W) logits: ``lsfix curve`` against one read of the logits, its peak RSS,
at several scales, and the extrapolation to Cityscapes val.

    python bench/bench_dense.py --scale 16 --scale 4 --scale 1 --repeats 3 --check
    python bench/bench_dense.py --scale 1 --images 32 --repeats 1   # RAM flat in N

``--scale S`` is 1/S of 8 x 19 x 1024 x 2048 (8 Cityscapes-size images). The file has
``lsfix extract``'s dense layout (``extract.writer.item_chunks``: an image in slabs of about
1 MiB holding every class of their pixels; float32 logits, uint8 labels with ``ignore_index``
255 on a tenth of the pixels). Per scale, interleaved in one process: one
read of the whole ``/logits`` image by image (``read_direct`` into one buffer; the file is in
the page cache) and ``lsfix curve FILE -s msp -f json`` as a subprocess (its peak RSS from GNU
``time``); best and median of ``--repeats``, after one warm-up of each. ``--check`` also
evaluates the smallest scale in process with the in-memory path and requires every metric to
be identical. The load average is printed with each scale (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from lsfix.extract.writer import item_chunks
from lsfix.readers.logitsfile import set_root_attrs

LSFIX = Path(sys.executable).parent / "lsfix"
GNU_TIME = "/usr/bin/time"
#: Cityscapes val: 500 images of 1024 x 2048 pixels.
CITYSCAPES_VAL_IMAGES = 500


def make(path: Path, n: int, k: int, h: int, w: int) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        z = f.create_dataset("logits", shape=(n, k, h, w), dtype=np.float32,
                             chunks=item_chunks((k, h, w), 4, 1))
        y = f.create_dataset("labels", shape=(n, h, w), dtype=np.uint8, chunks=(1, h, w))
        y.attrs["ignore_index"] = np.int64(255)
        for i in range(n):
            z[i] = (rng.normal(size=(k, h, w)) * 3).astype(np.float32)
            lab = rng.integers(0, k, (h, w)).astype(np.uint8)
            lab[: h // 10] = 255
            y[i] = lab


def read(path: Path) -> None:
    with h5py.File(path, "r") as f:
        ds = f["logits"]
        buf = np.empty(ds.shape[1:], np.float32)
        for i in range(ds.shape[0]):
            ds.read_direct(buf, np.s_[i], np.s_[...])


def _run_curve(path: Path) -> tuple[dict, float, float]:
    """``(first result, seconds, peak RSS in GB)`` of one ``lsfix curve -s msp -f json`` run.

    The peak RSS comes from GNU time (``/usr/bin/time -f %M``), which forks ``lsfix`` from its
    own small process: Linux counts the RSS a process had before ``exec`` in its
    ``ru_maxrss``, so a child forked straight from this (large) benchmark process would report
    the benchmark's own memory (measured: 0.60 GB instead of 0.34 GB at full scale). Without
    GNU time, the largest ``ru_maxrss`` of the children is used (an upper bound)."""
    cmd = [str(LSFIX), "curve", str(path), "-s", "msp", "-f", "json"]
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        if Path(GNU_TIME).exists():
            cmd = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"lsfix curve failed: {proc.stderr}")
        if rss_file.exists():
            rss = int(rss_file.read_text().split()[-1]) / 1e6  # kB -> GB
        else:
            rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    return json.loads(proc.stdout)["results"][0], wall, rss


def check_in_memory(path: Path, got: dict) -> bool:
    """The in-memory path's metrics of the same file equal the curve output's."""
    from lsfix.cli.common import load
    from lsfix.evaluation.inmemory import evaluate_file
    from lsfix.output.report import metrics_dict

    want = metrics_dict(evaluate_file(load(str(path)), ["msp"])[0].metrics, percent=False)
    return all(repr(got[k]) == repr(v) for k, v in want.items() if k in got)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, action="append",
                    help="1/scale of 8 x 19 x 1024 x 2048 (repeatable; default 16)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--images", type=int, default=8,
                    help="images in the file (8 = the issue's shape; more shows RAM flat in N)")
    ap.add_argument("--check", action="store_true",
                    help="compare the smallest scale with the in-memory path")
    args = ap.parse_args()
    scales = sorted(set(args.scale or [16]), reverse=True)
    starts = []
    for _ in range(3):  # the fixed cost of any lsfix command: interpreter and imports
        t0 = time.perf_counter()
        subprocess.run([str(LSFIX), "--version"], check=True, capture_output=True)
        starts.append(time.perf_counter() - t0)
    print(f"lsfix --version (start-up): best {min(starts):.3f} s")
    rows = []
    for scale in scales:
        side = int(round(scale ** 0.5))
        n, k, h, w = args.images, 19, 1024 // side, 2048 // side
        folder = Path(tempfile.mkdtemp(prefix="lsfix-dense-"))
        path = folder / "dense.h5"
        make(path, n, k, h, w)
        read(path)
        res, _, _ = _run_curve(path)  # warm-up
        load = os.getloadavg()
        t_read, t_curve, rss = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            read(path)
            t_read.append(time.perf_counter() - t0)
            res, wall, peak = _run_curve(path)
            t_curve.append(wall)
            rss.append(peak)
        if args.check and scale == scales[0]:
            same = check_in_memory(path, res)
            print(f"  scale 1/{scale}: every metric equals the in-memory path: {same}")
            if not same:
                raise SystemExit(1)
        print(f"1/{scale}: {n} x {k} x {h} x {w} float32 ({path.stat().st_size / 1e9:.2f} GB), "
              f"{n * h * w:,} pixels, n evaluated {res['n']:,}; load average "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"  read   best {min(t_read):7.3f} s  median {statistics.median(t_read):7.3f} s")
        print(f"  curve  best {min(t_curve):7.3f} s  median {statistics.median(t_curve):7.3f} s"
              f"  ratio {min(t_curve) / min(t_read):6.1f}x  peak RSS {max(rss):.3f} GB "
              f"(runs: {', '.join(f'{r:.3f}' for r in rss)}); without start-up "
              f"{(min(t_curve) - min(starts)) / min(t_read):6.1f}x")
        rows.append((scale, n * h * w, min(t_curve), statistics.median(t_curve), max(rss)))
        path.unlink()
        folder.rmdir()
    if len(rows) > 1:
        pix = np.array([r[1] for r in rows], dtype=float)
        best = np.array([r[2] for r in rows])
        slope, icpt = np.polyfit(pix, best, 1)
        target = CITYSCAPES_VAL_IMAGES * 1024 * 2048
        print(f"linear fit of best curve time: {icpt:.2f} s + {slope * 1e9:.1f} ns/pixel; "
              f"Cityscapes val ({CITYSCAPES_VAL_IMAGES} images, {target:.3g} pixels): "
              f"{(icpt + slope * target) / 60:.1f} min; peak RSS at the measured scales "
              f"{', '.join(f'{r[4]:.3f}' for r in rows)} GB")


if __name__ == "__main__":
    main()

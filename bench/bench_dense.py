"""Dense (N, K, H, W) logits: ``lsfix curve`` against one read of the logits, and its peak RSS.

    python bench/bench_dense.py --scale 16     # 8 x 19 x 256 x 512 (1/16 of Cityscapes-size)
    python bench/bench_dense.py --scale 4      # 8 x 19 x 512 x 1024

The file mimics ``lsfix extract``'s dense layout (one image per HDF5 chunk, float32 logits,
uint8 labels with ``ignore_index`` 255 on a tenth of the pixels). Times: one read of the whole
``/logits`` image by image (``read_direct`` into one buffer), and ``lsfix curve FILE -s msp -f
json`` as a subprocess (best and median of ``--repeats``); peak RSS of the curve process from
``getrusage(RUSAGE_CHILDREN)``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from lsfix.schema import set_root_attrs

LSFIX = Path(sys.executable).parent / "lsfix"


def make(path: Path, n: int, k: int, h: int, w: int) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        z = f.create_dataset("logits", shape=(n, k, h, w), dtype=np.float32,
                             chunks=(1, k, h, w))
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


def curve(path: Path) -> dict:
    out = subprocess.run([str(LSFIX), "curve", str(path), "-s", "msp", "-f", "json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["results"][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=16, help="1/scale of 8 x 19 x 1024 x 2048")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    side = int(round(args.scale ** 0.5))
    n, k, h, w = 8, 19, 1024 // side, 2048 // side
    folder = Path(tempfile.mkdtemp(prefix="lsfix-dense-"))
    path = folder / "dense.h5"
    make(path, n, k, h, w)
    read(path)
    res = curve(path)  # warm-up
    t_read, t_curve = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        read(path)
        t_read.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = curve(path)
        t_curve.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB -> GB
    print(f"{n} x {k} x {h} x {w} float32 ({path.stat().st_size / 1e9:.2f} GB), "
          f"{n * h * w:,} pixels, n evaluated {res['n']:,}")
    print(f"  read   best {min(t_read):6.2f} s  median {statistics.median(t_read):6.2f} s")
    print(f"  curve  best {min(t_curve):6.2f} s  median {statistics.median(t_curve):6.2f} s  "
          f"ratio {min(t_curve) / min(t_read):5.2f}x  peak RSS {rss:.2f} GB")
    path.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()

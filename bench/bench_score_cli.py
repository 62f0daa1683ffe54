"""``lsfix score big.h5 -m msp -o s.h5`` against a chunked read of ``/logits`` (issue 11).

Workloads, interleaved ``--repeats`` times after one warm-up (the file stays in the page cache,
so both are measured warm), best and median reported:

* **read**: ``h5py`` ``Dataset.read_direct`` of the whole ``/logits`` into one reused float32
  buffer, in blocks of the storage chunk rows (what any reader must do at least);
* **score (cli)**: the command as a user runs it, a subprocess (Python start-up and imports
  included), writing a scores file;
* **msp kernel (in process)**: ``lsfix.compute_scores(pred.logits, [msp], labels=...)``;
* **float32 prototype (info)**: the same pass with a float32 ``exp`` and float32 sums (not
  lsfix's path: ~1e-6 relative error; printed to show what it would buy).

The file has ``lsfix extract``'s layout (1 MiB chunks, uncompressed, float32) and is written
to a temporary folder (or ``--path``) and removed afterwards unless ``--keep``.

    python bench/bench_score_cli.py --n 250000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from lsfix.readers.logitsfile import set_root_attrs

LSFIX = Path(sys.executable).parent / "lsfix"


def make_file(path: Path, n: int, k: int) -> None:
    rows = min(n, max(1, (1 << 20) // (4 * k)))  # 1 MiB chunks, as extract writes
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        ds = f.create_dataset("logits", shape=(n, k), dtype=np.float32, chunks=(rows, k))
        step = max(rows, (16 << 20) // (4 * k) // rows * rows)
        for s in range(0, n, step):
            e = min(n, s + step)
            ds[s:e] = (rng.normal(size=(e - s, k)) * 4).astype(np.float32)
        f.create_dataset("labels", data=rng.integers(0, k, n))


def read_all(path: Path) -> float:
    with h5py.File(path, "r") as f:
        ds = f["logits"]
        rows = ds.chunks[0]
        step = max(rows, ((1 << 18) // ds.shape[1]) // rows * rows)
        buf = np.empty((step, ds.shape[1]), np.float32)
        total = 0.0
        for s in range(0, ds.shape[0], step):
            e = min(ds.shape[0], s + step)
            ds.read_direct(buf, np.s_[s:e], np.s_[0 : e - s])
            total += float(buf[0, 0])
    return total


def score_cli(path: Path, out: Path) -> None:
    subprocess.run([str(LSFIX), "score", str(path), "-m", "msp", "-o", str(out), "-q"],
                   check=True, env={**os.environ})


def score_in_process(path: Path) -> None:
    from lsfix.core import ScoreSpec, compute_scores
    from lsfix.readers.entry import read as read_predictions

    with read_predictions(str(path)) as pred:
        compute_scores(pred.logits, [ScoreSpec("msp")], labels=pred.labels)


def float32_prototype(path: Path) -> None:
    with h5py.File(path, "r") as f:
        ds = f["logits"]
        n, k = ds.shape
        rows = ds.chunks[0]
        step = max(rows, ((1 << 18) // k) // rows * rows)
        buf = np.empty((step, k), np.float32)
        a = np.empty(step, np.intp)
        s32 = np.empty(step, np.float32)
        ix = np.arange(step)
        out = np.empty(n)
        for s in range(0, n, step):
            e = min(n, s + step)
            r = e - s
            z = buf[:r]
            ds.read_direct(buf, np.s_[s:e], np.s_[0:r])
            np.argmax(z, axis=1, out=a[:r])
            m = z[ix[:r], a[:r]]
            np.subtract(z, m[:, None], out=z)
            np.exp(z, out=z)
            z[ix[:r], a[:r]] = 0
            np.add.reduce(z, axis=1, out=s32[:r])
            out[s:e] = -np.log1p(s32[:r].astype(np.float64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--path", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lsfix-bench-"))
    path = args.path or folder / "big.h5"
    made = not path.exists()
    if made:
        make_file(path, args.n, args.k)
    out = folder / "s.h5"
    work = {
        "read (read_direct, chunk-aligned)": lambda: read_all(path),
        "lsfix score -m msp -o s.h5 (cli)": lambda: score_cli(path, out),
        "msp kernel + correct (in process)": lambda: score_in_process(path),
        "float32 prototype (info)": lambda: float32_prototype(path),
    }
    times: dict[str, list[float]] = {k: [] for k in work}
    for fn in work.values():  # warm-up: page cache, imports
        fn()
    for _ in range(args.repeats):
        for name, fn in work.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    base = min(times["read (read_direct, chunk-aligned)"])
    print(f"n={args.n} k={args.k} float32, {path.stat().st_size / 1e9:.2f} GB, "
          f"repeats={args.repeats}, load average {os.getloadavg()[0]:.1f}")
    for name, ts in times.items():
        print(f"  {name:38s} min {min(ts):7.3f} s  median {statistics.median(ts):7.3f} s  "
              f"ratio(min) {min(ts) / base:5.2f}x  ratio(median) "
              f"{statistics.median(ts) / statistics.median(times[next(iter(times))]):5.2f}x")
    with h5py.File(out, "r") as f:
        assert "logits" not in f, "the scores file must not hold the logits"
        print(f"  scores file: {out.stat().st_size / 1e6:.1f} MB, no /logits")
    if made and not args.keep:
        path.unlink()
    out.unlink(missing_ok=True)
    if not args.keep:
        os.rmdir(folder) if not any(folder.iterdir()) else None


if __name__ == "__main__":
    main()

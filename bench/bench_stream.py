"""Benchmark: scoring logits streamed from an HDF5 file vs reading them once.

Run:  python bench/bench_stream.py [--n 1000000] [--k 1000] [--path FILE] [--keep]

Workload (default 10^6 x 1000 float32 logits, ~4 GB on disk):

* **score msp** — ``lsfix.readers.entry.read_predictions(path)`` then
  ``lsfix.compute_scores(pred.logits, [parse_score("msp")], labels=pred.labels)``: one msp pass
  plus correctness (``argmax == label``), streamed in lsfix's own row chunks.
* **score all 7** — the same with every plain score (``lsfix.PLAIN_SCORES``) in one pass
  (informational; no target).
* **read once** (baseline) — a plain chunked ``h5py`` read of the whole ``/logits`` dataset
  into one reusable float32 buffer (``Dataset.read_direct``), with the same rows per chunk as
  lsfix uses (``lsfix.core.source.chunk_rows_for(k)``).

Targets (the issue): score msp <= 2x read once (wall time, measured in this process), and peak
RSS of the scoring <= 1.5 GB. Peak RSS is measured in a fresh subprocess that does nothing but
the scoring (its ``/proc/self/status`` VmHWM), so creating the file does not pollute it; the
floor of that subprocess (python + imports + read_predictions, no scoring) is printed as well.

Page cache: by default the file is read once before anything is timed, so **both the read and
the scoring are measured warm** (the file sits in the page cache; 4 GB fits in this machine's
RAM). ``--cold`` instead evicts the file from the page cache (``posix_fadvise(DONTNEED)``, no
root needed) before every timed run, so both are measured disk-bound.

The file is written in chunks (bounded memory) to a temp dir, or to ``--path``; it is deleted
afterwards unless ``--keep`` (a pre-existing ``--path`` file is reused and never deleted). Its
HDF5 chunking mimics ``lsfix extract`` (1 MiB chunks, uncompressed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

import lsfix
from lsfix.core.source import chunk_rows_for
from lsfix.readers.entry import read as read_predictions
from lsfix.readers.logitsfile import LABELS, LOGITS, set_root_attrs

TARGET_RATIO = 2.0
TARGET_RSS_GB = 1.5
HDF5_CHUNK_BYTES = 1 << 20  # lsfix extract's chunk size


# --------------------------------------------------------------------------------------------
# file creation


def create_file(path: Path, n: int, k: int, seed: int = 0) -> float:
    """Write an lsfix file with (n, k) float32 logits and labels, chunk by chunk."""
    rng = np.random.default_rng(seed)
    hdf_rows = max(1, min(65536, HDF5_CHUNK_BYTES // (4 * k)))
    step = max(hdf_rows, (64 << 20) // (4 * k) // hdf_rows * hdf_rows)  # ~64 MB per write
    t0 = time.perf_counter()
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w", track_order=True) as f:
        set_root_attrs(f, {"bench": "bench_stream.py", "seed": seed}, ["bench_stream create"])
        ds = f.create_dataset(LOGITS, shape=(n, k), dtype=np.float32,
                              chunks=(min(n, hdf_rows), k), track_times=False)
        lab = f.create_dataset(LABELS, shape=(n,), dtype=np.int64, track_times=False)
        for start in range(0, n, step):
            r = min(step, n - start)
            z = rng.standard_normal((r, k), dtype=np.float32)
            z *= 1.5
            y = rng.integers(0, k, r)
            # the true class gets a random boost: roughly 70-80 % top-1 accuracy
            z[np.arange(r), y] += rng.gamma(2.0, 2.5, r).astype(np.float32)
            ds[start : start + r] = z
            lab[start : start + r] = y
            del z
    os.replace(tmp, path)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# the timed operations


def read_once(path: Path) -> float:
    """Plain chunked h5py read of all logits into a reusable buffer; returns a checksum."""
    with h5py.File(path, "r") as f:
        ds = f[LOGITS]
        n, k = ds.shape
        step = chunk_rows_for(k)
        buf = np.empty((min(step, n), k), dtype=ds.dtype)
        acc = 0.0
        for start in range(0, n, step):
            r = min(step, n - start)
            ds.read_direct(buf, source_sel=np.s_[start : start + r], dest_sel=np.s_[0:r])
            acc += float(buf[r - 1, 0])  # touch the data
        return acc


def score(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    pred = read_predictions(str(path))
    try:
        return lsfix.compute_scores(pred.logits, [lsfix.parse_score(s) for s in names],
                                    labels=pred.labels)
    finally:
        pred.close()


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (no root needed: posix_fadvise DONTNEED)."""
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(fn, repeats: int, cold_path: Path | None = None  # type: ignore[no-untyped-def]
          ) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        gc.collect()
        if cold_path is not None:
            evict(cold_path)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


# --------------------------------------------------------------------------------------------
# RSS subprocess


def vm_hwm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(path: Path, what: str) -> None:
    """Run in a fresh process: do one thing, print JSON with wall time and peak RSS."""
    t0 = time.perf_counter()
    if what == "floor":
        pred = read_predictions(str(path))
        pred.close()
    else:
        names = ("msp",) if what == "msp" else tuple(lsfix.PLAIN_SCORES)
        out = score(path, names)
        assert out["_correct"].shape[0] > 0
    wall = time.perf_counter() - t0
    print(json.dumps({"what": what, "wall_s": wall, "vmhwm": vm_hwm_bytes(),
                      "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def run_worker(path: Path, what: str) -> dict:  # type: ignore[type-arg]
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", what, "--path", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"worker {what!r} failed (exit {res.returncode})")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["children_maxrss"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return out


# --------------------------------------------------------------------------------------------


def gb(x: float) -> str:
    return f"{x / 1e9:.3f} GB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="rows (default 1e6)")
    ap.add_argument("--k", type=int, default=1000, help="classes (default 1000)")
    ap.add_argument("--path", type=Path, default=None,
                    help="HDF5 file to use (reused if it exists, else created there)")
    ap.add_argument("--keep", action="store_true", help="keep the created file")
    ap.add_argument("--repeats", type=int, default=2,
                    help="timed repeats of read and msp scoring (all-7 scoring: 1)")
    ap.add_argument("--cold", action="store_true",
                    help="evict the file from the page cache before every timed run")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker:
        worker(args.path, args._worker)
        return 0

    tmpdir = None
    created = False
    if args.path is None:
        tmpdir = tempfile.mkdtemp(prefix="lsfix-bench-")
        path = Path(tmpdir) / "stream.h5"
    else:
        path = args.path
    print(f"bench_stream: n={args.n:,} k={args.k}  numpy {np.__version__}  h5py {h5py.__version__}"
          f"  lsfix {lsfix.__version__}  cpus {os.cpu_count()}")
    try:
        if path.exists():
            with h5py.File(path, "r") as f:
                shape = f[LOGITS].shape
            print(f"reusing {path} (logits {shape})")
        else:
            free = shutil.disk_usage(path.parent).free
            need = args.n * args.k * 4 + args.n * 8
            if free < need * 1.2:
                raise SystemExit(f"not enough disk at {path.parent}: need {gb(need)}, "
                                 f"free {gb(free)}")
            t_create = create_file(path, args.n, args.k)
            created = True
            print(f"created {path}: {gb(path.stat().st_size)} in {t_create:.1f} s "
                  "(not part of any ratio)")

        cold = path if args.cold else None
        if cold is None:  # warm the page cache, then time read and scoring in this process
            t0 = time.perf_counter()
            read_once(path)
            print(f"warm-up read (page cache): {time.perf_counter() - t0:.2f} s")
        t_read, reads = timed(lambda: read_once(path), args.repeats, cold)

        # fresh subprocesses: peak RSS (and a warm-up of the scoring code path)
        floor = run_worker(path, "floor")
        rss_msp = run_worker(path, "msp")
        t_msp, msps = timed(lambda: score(path, ("msp",)), args.repeats, cold)
        rss_all = run_worker(path, "all7")
        t_all, alls = timed(lambda: score(path, tuple(lsfix.PLAIN_SCORES)), 1, cold)

        size = path.stat().st_size
        r_msp = t_msp / t_read
        ok_t = r_msp <= TARGET_RATIO
        ok_m = rss_msp["vmhwm"] <= TARGET_RSS_GB * 1e9
        fmt = lambda ts: ", ".join(f"{t:.2f}" for t in ts)  # noqa: E731
        state = ("COLD (file evicted from the page cache before each run)" if cold
                 else "WARM (file in the page cache)")
        print(f"\nall timings {state}; best of the runs listed")
        print(f"  read once (h5py read_direct, {chunk_rows_for(args.k)} rows/chunk)  "
              f"best {t_read:7.2f} s  [{fmt(reads)}]  ({size / t_read / 1e9:.2f} GB/s)")
        print(f"  score msp + correct                         best {t_msp:7.2f} s  [{fmt(msps)}]"
              f"  (fresh process: {rss_msp['wall_s']:.2f} s)")
        print(f"  score all 7 plain + correct                 best {t_all:7.2f} s  [{fmt(alls)}]"
              f"  (fresh process: {rss_all['wall_s']:.2f} s)")
        print(f"  ratio msp/read   {r_msp:5.2f}x  target <= {TARGET_RATIO}x -> "
              f"{'MET' if ok_t else 'MISSED'}")
        print(f"  ratio all7/read  {t_all / t_read:5.2f}x  (informational)")
        print(f"  peak RSS, msp scoring subprocess (VmHWM)    {gb(rss_msp['vmhwm'])}  "
              f"target <= {TARGET_RSS_GB} GB -> {'MET' if ok_m else 'MISSED'}")
        print(f"  peak RSS, all-7 scoring subprocess (VmHWM)  {gb(rss_all['vmhwm'])}  "
              f"(informational)")
        print(f"  peak RSS floor (python+imports+read_predictions, no scoring) "
              f"{gb(floor['vmhwm'])}")
        print(f"\noverall: {'MET' if (ok_t and ok_m) else 'MISSED'}")
    finally:
        if created and not args.keep:
            path.unlink(missing_ok=True)
        elif created:
            print(f"kept {path}")
        if not path.exists():
            Path(str(path) + ".part").unlink(missing_ok=True)
        if tmpdir is not None and not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

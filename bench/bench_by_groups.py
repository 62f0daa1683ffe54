"""``curve --by`` with many groups: wall time, peak memory (max RSS) and stderr lines.

One group per row is the worst case (issue 19: 40,000 groups wrote 120,001 warning lines and
reached 1.7 GB, a boolean mask per group). Each run is ``lsfix curve FILE --by site -f tsv``
as a user runs it (a subprocess: start-up and imports included); ``--repeats`` runs after one
warm-up, best and median wall time, the largest max RSS (``os.wait4``) and the stderr line
count reported. The target it checks: max RSS under ``--max-rss-mb`` (default 512) and at most
``--max-lines`` (default 8) stderr lines; exit 1 when either is missed.

    python bench/bench_by_groups.py --groups 40000 --repeats 3
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

LSFIX = Path(sys.executable).parent / "lsfix"


def make_file(path: Path, groups: int, k: int = 4, seed: int = 0) -> None:
    from lsfix.readers.logitsfile import new_file

    rng = np.random.default_rng(seed)
    new_file(str(path), rng.normal(size=(groups, k)).astype(np.float32),
             labels=rng.integers(0, k, groups))
    with h5py.File(path, "a") as f:
        f.create_dataset("groups/site", data=np.arange(groups))


def run_once(path: Path, out: Path) -> tuple[float, int, int]:
    """(wall seconds, max RSS in bytes, stderr lines) of one run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(LSFIX), "curve", str(path), "--by", "site", "-f", "tsv", "-o",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"lsfix failed ({proc.returncode}): {err[-500:]!r}")
    return wall, usage.ru_maxrss * 1024, err.count(b"\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=40_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-rss-mb", type=float, default=512)
    ap.add_argument("--max-lines", type=int, default=8)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "groups.h5"
        make_file(path, a.groups)
        run_once(path, Path(tmp) / "o.tsv")  # warm-up
        runs = [run_once(path, Path(tmp) / "o.tsv") for _ in range(a.repeats)]
    walls = [w for w, _, _ in runs]
    rss = max(r for _, r, _ in runs)
    lines = max(n for _, _, n in runs)
    print(f"curve --by site, {a.groups} groups of one row, {a.repeats} runs: wall min "
          f"{min(walls):.2f} s, median {statistics.median(walls):.2f} s; max RSS "
          f"{rss / 2**20:.0f} MiB; stderr {lines} line(s)")
    ok = rss <= a.max_rss_mb * 2**20 and lines <= a.max_lines
    print("target met" if ok else f"target missed (max RSS <= {a.max_rss_mb} MiB, "
                                  f"<= {a.max_lines} lines)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""``lsfix score --scheduler`` (Dask) against the local path: same numbers, and the speed-up.

    python bench/bench_dask.py --n 200000 --repeats 2

Times ``lsfix score FILE -m msp -m energy -o OUT`` in-process for ``sync``, ``threads``,
``processes`` and a 2-worker ``LocalCluster`` (separate processes), checks that every output
equals the ``sync`` one bit for bit, and prints best and median times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_score_cli import make_file  # noqa: E402

from lsfix.cli.app import app  # noqa: E402


def run(path: Path, out: Path, scheduler: str) -> dict[str, np.ndarray]:
    import typer.testing

    res = typer.testing.CliRunner().invoke(
        app, ["score", str(path), "-m", "msp", "-m", "energy", "-o", str(out), "-q",
              "--scheduler", scheduler], prog_name="lsfix")
    assert res.exit_code == 0, res.stderr
    with h5py.File(out, "r") as f:
        return {k: f["scores"][k][()] for k in f["scores"]} | {"correct": f["correct"][()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import distributed

    folder = Path(tempfile.mkdtemp(prefix="lsfix-dask-"))
    path = folder / "big.h5"
    make_file(path, args.n, args.k)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        kinds = {"sync": "sync", "threads": "threads", "processes": "processes",
                 "LocalCluster(2 workers)": cluster.scheduler_address}
        want = run(path, folder / "sync.h5", "sync")
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.repeats):
            for name, sched in kinds.items():
                t0 = time.perf_counter()
                got = run(path, folder / "o.h5", sched)
                times[name].append(time.perf_counter() - t0)
                for key in want:
                    assert np.array_equal(got[key], want[key]), (name, key)
    base = min(times["sync"])
    print(f"n={args.n} k={args.k} float32 ({path.stat().st_size / 1e9:.2f} GB), "
          f"repeats={args.repeats}; every output equals sync bit for bit")
    for name, ts in times.items():
        print(f"  {name:26s} best {min(ts):6.2f} s  median {statistics.median(ts):6.2f} s  "
              f"speed-up {base / min(ts):4.2f}x")
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()

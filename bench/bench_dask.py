"""``--scheduler``: speed-up of Dask (``processes``, a 2-worker ``LocalCluster``) over ``sync``.

Commands, each run as a user runs it (a subprocess: Python start-up, imports and, for Dask,
the scheduler's start-up or connection included), interleaved ``--repeats`` times after one
warm-up (the file stays in the page cache), best and median wall time reported:

* ``lsfix score big.h5 -m msp -m neg_entropy -m pnorm:2 -o s.h5``
* ``lsfix curve big.h5 -s msp -s pnorm:2 -s gini``

under ``--scheduler sync``, ``threads``, ``processes`` and the address of a
``distributed.LocalCluster`` of 2 worker processes with 1 thread each, started once by this
script (its start-up is not timed: it stands for an existing cluster). Every run's stdout (curve)
or scores (score) is checked identical to sync's before a time counts.

The file has ``lsfix extract``'s layout (1 MiB chunks, float32) and is written to a temporary
folder (or ``--path``) and removed afterwards unless ``--keep``.

    python bench/bench_dask.py --n 100000 --k 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_score_cli import make_file  # noqa: E402  (one maker of the benchmark file)

LSFIX = Path(sys.executable).parent / "lsfix"


def run(args: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    res = subprocess.run([str(LSFIX), *args], check=True, capture_output=True, text=True,
                         env={**os.environ})
    return time.perf_counter() - t, res.stdout


def scores_of(path: Path) -> dict[str, bytes]:
    with h5py.File(path, "r") as f:
        return {k: f["scores"][k][()].tobytes() for k in f["scores"]} | {
            "correct": f["correct"][()].tobytes()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--path", type=Path)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    import distributed

    folder = Path(tempfile.mkdtemp(prefix="lsfix-dask-"))
    path = a.path or folder / "big.h5"
    if not path.exists():
        make_file(path, a.n, a.k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
    schedulers = ["sync", "threads", "processes", cluster.scheduler_address]
    label = {cluster.scheduler_address: "LocalCluster(2 workers)"}
    cmds = {
        "score": ["score", str(path), "-m", "msp", "-m", "neg_entropy", "-m", "pnorm:2", "-q"],
        "curve": ["curve", str(path), "-s", "msp", "-s", "pnorm:2", "-s", "gini", "-f", "tsv"],
    }
    times: dict[tuple[str, str], list[float]] = {}
    ref: dict[str, object] = {}
    try:
        for rep in range(a.repeats + 1):  # repeat 0 = warm-up, not counted
            for name, cmd in cmds.items():
                for sch in schedulers:
                    out = folder / f"s-{len(label.get(sch, sch))}.h5"
                    args = [*cmd, "--scheduler", sch] + (["-o", str(out)] if name == "score"
                                                         else [])
                    dt, stdout = run(args)
                    got = scores_of(out) if name == "score" else stdout
                    if sch == "sync":
                        ref[name] = got
                    elif got != ref[name]:
                        raise SystemExit(f"{name} --scheduler {sch}: output differs from sync")
                    if rep:
                        times.setdefault((name, sch), []).append(dt)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cluster.close()
        if not a.keep:
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
    print(f"# n={a.n} k={a.k} float32, {a.repeats} repeats after a warm-up, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end")
    print("command\tscheduler\tmin_s\tmedian_s\tspeed-up (median, vs sync)\tidentical")
    for name in cmds:
        base = statistics.median(times[(name, "sync")])
        for sch in schedulers:
            t = times[(name, sch)]
            med = statistics.median(t)
            print(f"{name}\t{label.get(sch, sch)}\t{min(t):.2f}\t{med:.2f}\t{base / med:.2f}x"
                  "\tyes")


if __name__ == "__main__":
    main()

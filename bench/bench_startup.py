"""Start-up cost of the ``lsfix`` command line (issue 17, item 6): whole-process wall times.

Each command is run as a fresh process ``--repeats`` times (after one warm-up run of each, so
the page cache holds the modules), interleaved with a bare ``python -c pass`` so that machine
load hits both alike; the minimum and the median are reported, and the ``--version`` target
(at most bare Python + 0.1 s, on the medians) is checked.

The ``lsfix`` of a checkout is run as the console script runs it (``from lsfix._entry import
main; main()``) with that checkout first on ``PYTHONPATH``, so two checkouts can be compared
with one interpreter::

    python bench/bench_startup.py                      # this checkout
    python bench/bench_startup.py --repo /path/to/old --repo .   # two checkouts, interleaved
    python bench/bench_startup.py --importtime curve --help   # python -X importtime, top 25

``small.npz`` (1,000 × 10 float32 logits and their labels, seed 0) is written to a temporary
folder; the plot goes there too.
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

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "import sys; from lsfix._entry import main; sys.argv[0] = 'lsfix'; main()"
#: label -> lsfix arguments ({d} is the temporary folder)
COMMANDS = {
    "lsfix --version": ["--version"],
    "lsfix --help": ["--help"],
    "lsfix curve --help": ["curve", "--help"],
    "lsfix curve small.npz": ["curve", "{d}/small.npz", "-f", "tsv"],
    "lsfix curve small.npz --plot x.png": ["curve", "{d}/small.npz", "-f", "tsv",
                                           "--plot", "{d}/x.png"],
}
TARGET_VERSION = 0.1  # s over bare Python (medians)


def make_small(folder: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(1000, 10)) * 3).astype(np.float32)
    labels = rng.integers(0, 10, 1000)
    np.savez(folder / "small.npz", logits=logits, labels=labels)


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")])
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    return env


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=300, check=False)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_startup: {' '.join(argv[-4:])} exited {proc.returncode}: "
                         f"{proc.stderr.decode(errors='replace')[-400:]}")
    return dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", type=Path, action="append",
                    help="checkout whose lsfix is run (repeat to compare checkouts, "
                         "interleaved in one run; default: this one)")
    ap.add_argument("--repeats", "-n", type=int, default=15)
    ap.add_argument("--importtime", nargs=argparse.REMAINDER,
                    help="print python -X importtime of 'lsfix ARGS...' (top 25) and exit")
    args = ap.parse_args(argv)
    repos = [r.resolve() for r in (args.repo or [ROOT])]
    if args.importtime is not None:
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", ENTRY,
                               *args.importtime], env=_env(repos[0]), capture_output=True,
                              text=True, check=False, cwd=tempfile.gettempdir())
        rows = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
        rows = [r for r in rows if r.split("|")[1].strip().isdigit()]
        rows.sort(key=lambda r: int(r.split("|")[1]), reverse=True)
        print("\n".join(rows[:25]))
        return 0
    with tempfile.TemporaryDirectory(prefix="lsfix-startup-") as tmp:
        make_small(Path(tmp))
        # (repo, label) -> argv; cwd is the temporary folder (python -c puts the cwd first on
        # sys.path: a checkout's own folder would shadow --repo)
        runs: dict[tuple[int, str], tuple[list[str], dict[str, str]]] = {}
        for i, repo in enumerate(repos):
            env = _env(repo)
            runs[(i, "python -c pass (bare)")] = ([sys.executable, "-c", "pass"], env)
            for label, cmd in COMMANDS.items():
                runs[(i, label)] = ([sys.executable, "-c", ENTRY,
                                     *(a.format(d=tmp) for a in cmd)], env)
        times: dict[tuple[int, str], list[float]] = {k: [] for k in runs}
        for argv_, env in runs.values():  # warm-up: page cache, .pyc files
            run_once(argv_, env, tmp)
        for _ in range(args.repeats):
            for key, (argv_, env) in runs.items():
                times[key].append(run_once(argv_, env, tmp))
    print(f"python {sys.version.split()[0]}, {args.repeats} runs of each, all interleaved")
    for i, repo in enumerate(repos):
        where = subprocess.run([sys.executable, "-c", "import lsfix; print(lsfix.__file__)"],
                               env=_env(repo), cwd=tempfile.gettempdir(), capture_output=True,
                               text=True, check=True).stdout.strip()
        print(f"\nlsfix of {where}")
        print(f"{'command':<40} {'min s':>8} {'median s':>9}")
        for (j, label), ts in times.items():
            if j == i:
                print(f"{label:<40} {min(ts):8.3f} {statistics.median(ts):9.3f}")
        bare = statistics.median(times[(i, "python -c pass (bare)")])
        version = statistics.median(times[(i, "lsfix --version")])
        ok = version <= bare + TARGET_VERSION
        print(f"target: lsfix --version <= bare python + {TARGET_VERSION} s (medians): "
              f"{version:.3f} vs {bare + TARGET_VERSION:.3f}: {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: MaxLogit-pNorm tuning over p in {0..9} vs one msp pass.

Run:  python bench/bench_tune.py [--n 50000] [--k 1000] [--repeats 5] [--threads 1,0]
                                 [--h5-n 1000000 [--path F.h5] [--keep]] [--steps] [--profile]

Target (the issue): ``lsfix.tune_pnorm(logits, labels)`` (the default grid 0..9, objective =
AURC, MSP fallback) on 50,000 x 1000 float32 logits costs at most 3x one msp pass
(``lsfix.compute_scores(logits, [msp])``, which is ``lsfix.msp``) on the same logits, with the
same number of worker threads, measured in this process: warm-up once, then msp and tune run
interleaved ``--repeats`` times; best and median reported, the ratio from the bests. Wall and
CPU seconds (``time.process_time``, all threads) are both printed, with the load average.

``--threads 1,0``: thread counts to measure (0 = lsfix's default, ``LSFIX_THREADS`` or the
CPUs, at most 8). ``--h5-n N``: also measure both from an HDF5 file of N x K float32 logits
(created chunk by chunk with lsfix extract's 1 MiB chunks, in a temp dir unless ``--path``;
read warm from the page cache, streamed: tune never loads the logits whole; its traced peak
allocation is printed). ``--steps``: ns per logit of each numpy step of the pass on one
cache-sized piece. ``--profile``: a cProfile of tune_pnorm.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import lsfix
from lsfix.core.scores import ScoreSpec, compute_scores

TARGET = 3.0


def make_logits(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k), dtype=np.float32)
    z *= 1.5
    y = rng.integers(0, k, n)
    z[np.arange(n), y] += rng.gamma(2.0, 2.5, n).astype(np.float32)
    return z, y


def _faults() -> int:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_minflt + r.ru_majflt


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def compare(fns: dict[str, Callable[[], Any]], repeats: int
            ) -> dict[str, tuple[float, float, float, float]]:
    """Warm up once, run interleaved ``repeats`` times; name -> (best wall, median wall,
    best cpu, median cpu) seconds."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {k: (min(wall[k]), statistics.median(wall[k]), min(cpu[k]), statistics.median(cpu[k]))
            for k in fns}


def _fit_key(fit: Any) -> tuple[Any, ...]:
    return (fit.p, fit.fallback_msp, fit.grid, fit.msp_aurc)


def _scores_at(rev: str) -> Any:
    """lsfix/core/scores.py as of git revision ``rev``, imported as a module (it imports the
    rest of lsfix from this tree)."""
    import importlib.util
    import subprocess

    root = Path(__file__).resolve().parents[1]
    text = subprocess.run(["git", "show", f"{rev}:lsfix/core/scores.py"], cwd=root,
                          capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="bench_tune_rev_")) / "scores_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("scores_before", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["scores_before"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def per_call(fn: Callable[[], Any], reps: int) -> float:
    """Best of 3 timings of ``reps`` calls of ``fn`` (after one warm-up call), per call."""
    fn()
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def report(title: str, fns: dict[str, Callable[[], Any]], repeats: int) -> float:
    print(f"{title}   [{load()}]")
    res = compare(fns, repeats)
    (mb, mm, mc, mcm), (tb, tm, tc, tcm) = res["msp"], res["tune"]
    print(f"    msp   wall best {mb:7.3f} s  median {mm:7.3f} s   cpu best {mc:7.3f} s"
          f"  median {mcm:7.3f} s")
    print(f"    tune  wall best {tb:7.3f} s  median {tm:7.3f} s   cpu best {tc:7.3f} s"
          f"  median {tcm:7.3f} s")
    if "before" in res:
        ob, om, oc, ocm = res["before"]
        print(f"    before wall best {ob:6.3f} s  median {om:7.3f} s   cpu best {oc:7.3f} s"
              f"  median {ocm:7.3f} s   ({ob / mb:.2f}x msp; now {tb / mb:.2f}x)")
    ratio = tb / mb
    print(f"    ratio (wall, bests) {ratio:.2f}x  (medians {tm / mm:.2f}x; cpu {tc / mc:.2f}x)"
          f"  target <= {TARGET}x -> {'MET' if ratio <= TARGET else 'MISSED'}   [{load()}]")
    return ratio


def steps(k: int) -> None:
    """ns per logit of each numpy step of one piece (lsfix.core.tunepass.tune_rows)."""
    from numpy.lib.stride_tricks import as_strided

    from lsfix.core import tunepass
    from lsfix.core.rowblocks import piece_rows_for

    r = piece_rows_for(k, tunepass.SUB_ELEMENTS)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((r, k), dtype=np.float32)
    zf = z.astype(np.float64)
    w = np.empty_like(zf)
    shifted = zf - zf.max(axis=1, keepdims=True)  # <= 0: exp never overflows
    pw = np.abs(rng.standard_normal((5, r, k)))
    mu, t, rinv = zf.mean(axis=1), zf.max(axis=1), 1.0 / np.abs(zf).max(axis=1)
    arg = np.argmax(z, axis=1)
    ix = np.arange(r)
    s_pl, s_row, s_col = pw[:, :r].strides
    v1 = as_strided(pw[0], (4, 2, r, k), (s_pl, 0, s_row, s_col))
    v2 = as_strided(pw[0], (4, 2, r, k), (s_pl, s_pl, s_row, s_col))
    sums = np.empty((4, 2, r))
    ops: dict[str, Callable[[], Any]] = {
        "argmax (float32)": lambda: np.argmax(z, axis=1),
        "argmin (float32)": lambda: np.argmin(z, axis=1),
        "widen float32 -> float64": lambda: np.copyto(w, z),
        "msp: z - max": lambda: np.subtract(zf, t[:, None], out=w),
        "msp: exp (float64)": lambda: np.exp(shifted, out=w),
        "msp: zero the argmax": lambda: w.__setitem__((ix, arg), 0.0),
        "row sum (x3: msp, mean, p=1)": lambda: np.add.reduce(zf, axis=1),
        "x = z - mean": lambda: np.subtract(zf, mu[:, None], out=w),
        "|x|": lambda: np.abs(zf, out=w),
        "x + |x|  (p = 1)": lambda: np.add(zf, pw[0], out=w),
        "a = |x| / max|x|": lambda: np.multiply(pw[0], rinv[:, None], out=w),
        "one power product (x4: a^2..a^5)": lambda: np.multiply(pw[0], pw[1], out=w),
        "8 sums a^p, p=2..9 (one einsum)": lambda: np.einsum("abij,abij->abi", v1, v2,
                                                               out=sums),
    }
    reps = max(3, (1 << 24) // (r * k))
    print(f"steps: one piece of {r} x {k} (ns per logit, best of 3 x {reps} calls)  [{load()}]")
    total = 0.0
    weight = {"row sum (x3: msp, mean, p=1)": 3, "one power product (x4: a^2..a^5)": 4}
    for name, fn in ops.items():
        ns = per_call(fn, reps) * 1e9 / (r * k)
        total += ns * weight.get(name, 1)
        print(f"    {name:36s} {ns:6.3f}")
    print(f"    {'total (weighted by use)':36s} {total:6.3f}")


def h5_case(args: argparse.Namespace, threads: list[int | None]) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_stream import create_file

    from lsfix.readers.entry import read as read_predictions

    tmpdir = None
    if args.path:
        path = Path(args.path)
    else:
        tmpdir = tempfile.mkdtemp(prefix="bench_tune_")
        path = Path(tmpdir) / "big.h5"
    made = False
    try:
        if not path.exists():
            secs = create_file(path, args.h5_n, args.k)
            made = True
            print(f"\ncreated {path} ({args.h5_n} x {args.k} float32, "
                  f"{path.stat().st_size / 1e9:.2f} GB) in {secs:.1f} s")
        pred = read_predictions(str(path))
        try:
            assert pred.logits is not None and pred.labels is not None
            labels = np.asarray(pred.labels)
            print(f"HDF5 {path} logits {pred.logits.shape}: streamed, warm page cache")
            worst = 0.0
            for t in threads:
                worst = max(worst, report(
                    f"  threads={t or 'default'} (10^{np.log10(args.h5_n):.3g} rows, HDF5)", {
                        "msp": lambda t=t: compute_scores(pred.logits, [ScoreSpec("msp")],
                                                          labels=labels, threads=t),
                        "tune": lambda t=t: lsfix.tune_pnorm(pred.logits, labels, threads=t),
                    }, max(1, args.repeats)))
            if args.fraction:
                from lsfix.evaluation.inmemory import _RowSubset, split_fit_rows

                mask = split_fit_rows(labels.shape[0], args.fraction, 0)
                idx = np.flatnonzero(mask)
                print(f"  normalise's fit split: {idx.shape[0]} random rows (fraction "
                      f"{args.fraction:g}), tune_pnorm(rows=mask) vs the row-subset source "
                      f"used before; threads=1")
                res = compare({
                    "rows=": lambda: lsfix.tune_pnorm(pred.logits, labels, rows=mask, threads=1),
                    "subset": lambda: lsfix.tune_pnorm(_RowSubset(pred.logits, idx),
                                                       labels[idx], threads=1),
                }, max(1, args.repeats))
                for name, (b, m, c, cm) in res.items():
                    print(f"    {name:7s} wall best {b:7.3f} s  median {m:7.3f} s   cpu best "
                          f"{c:7.3f} s  median {cm:7.3f} s")
                print(f"    [{load()}]")
            tracemalloc.start()
            fit = lsfix.tune_pnorm(pred.logits, labels)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            logit_bytes = pred.logits.shape[0] * pred.logits.shape[1] * 4
            print(f"    tune traced peak allocation {peak / 1e6:.0f} MB "
                  f"(logits {logit_bytes / 1e9:.1f} GB; {peak / pred.logits.shape[0]:.0f} B "
                  f"per row)  chose p={fit.p} fallback_msp={fit.fallback_msp}")
            return worst
        finally:
            pred.close()
    finally:
        if made and not args.keep:
            path.unlink()
        if tmpdir and not args.keep:
            os.rmdir(tmpdir) if not any(Path(tmpdir).iterdir()) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,0",
                    help="comma-separated thread counts (0 = lsfix's default)")
    ap.add_argument("--h5-n", type=int, default=0, help="also measure from an HDF5 file")
    ap.add_argument("--path", help="HDF5 file to use (created if missing, then kept)")
    ap.add_argument("--fraction", type=float, default=0.0,
                    help="with --h5-n: also time tuning on a random fit split of this fraction")
    ap.add_argument("--keep", action="store_true", help="keep a created HDF5 file")
    ap.add_argument("--steps", action="store_true", help="ns per logit of each step")
    ap.add_argument("--before", metavar="REV",
                    help="also time tune_pnorm of lsfix/core/scores.py at git revision REV "
                         "(e.g. 64ca39c, before the one-pass kernel), interleaved, threads=1")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of tune_pnorm")
    args = ap.parse_args(argv)
    threads: list[int | None] = [int(t) or None for t in args.threads.split(",")]

    from lsfix.core.rowblocks import thread_count

    print(f"bench_tune: grid {lsfix.P_GRID}  numpy {np.__version__}  lsfix {lsfix.__version__}"
          f"  python {sys.version.split()[0]}  default threads {thread_count()}"
          f"  cpus {os.cpu_count()}")
    ok = True
    if args.n:
        z, y = make_logits(args.n, args.k)
        print(f"in memory: logits {z.shape} {z.dtype}")
        fit = lsfix.tune_pnorm(z, y)
        print(f"  fit: p={fit.p} fallback_msp={fit.fallback_msp}")
        if args.before:
            old = _scores_at(args.before)
            same = _fit_key(old.tune_pnorm(z, y)) == _fit_key(lsfix.tune_pnorm(z, y))
            print(f"  scores.py at {args.before}: same fit (p, every AURC, MSP's, fallback) "
                  f"to the last bit: {same}")
            report(f"  before ({args.before}) vs now, threads=1", {
                "msp": lambda: compute_scores(z, [ScoreSpec("msp")], threads=1),
                "tune": lambda: lsfix.tune_pnorm(z, y, threads=1),
                "before": lambda: old.tune_pnorm(z, y),
            }, args.repeats)
        for t in threads:
            ratio = report(f"  threads={t or 'default'}", {
                "msp": lambda t=t: compute_scores(z, [ScoreSpec("msp")], threads=t),
                "tune": lambda t=t: lsfix.tune_pnorm(z, y, threads=t),
            }, args.repeats)
            ok &= ratio <= TARGET
        f0 = _faults()
        lsfix.tune_pnorm(z, y, threads=1)
        print(f"  page faults in one tune_pnorm (threads=1): {_faults() - f0}")
        if args.profile:
            pr = cProfile.Profile()
            pr.enable()
            lsfix.tune_pnorm(z, y, threads=1)
            pr.disable()
            s = io.StringIO()
            pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(15)
            print(s.getvalue())
        del z, y
    if args.steps:
        steps(args.k)
    if args.h5_n:
        ok &= h5_case(args, threads) <= TARGET
    if args.n or args.h5_n:
        print(f"\noverall: {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

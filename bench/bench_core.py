"""Benchmark: every curve metric on 10^7 scores vs one numpy stable argsort.

Run:  python bench/bench_core.py [--n 10000000] [--repeats 3] [--profile]

Target (the issue): the whole metric set — ``lsfix.evaluate_conventions(conf, correct,
coverages=..., risks=...)`` (every metric in every AURC convention) plus ``lsfix.rc_curve`` —
costs at most 1.5x one
``np.argsort(conf, kind="stable")`` of the same float64 scores, measured in this process.

Two data sets, since ties are normal (docs/metrics.md):

* ``no-ties``    uniform random float64 confidences (all distinct in practice);
* ``heavy-ties`` MSP-like values in [0, 1] with ~25 % saturated at exactly 1.0 and the rest
  rounded to 3 decimals (at most 1001 distinct values).

Every timing is warmed up once, then baseline and workload run interleaved ``--repeats`` times
(the machine may be shared); the best (minimum) is reported, the median printed alongside.
A secondary, informational line times the same metric set computed from tie blocks built once
(``tie_blocks`` + ``metrics_from_blocks`` per convention + ``curve_from_blocks``) — the public
API route that avoids re-sorting per call.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import lsfix

TARGET = 1.5
COVERAGES = [0.5, 0.8, 0.9, 0.95, 0.99]
RISKS = [0.01, 0.02, 0.05, 0.1]


def compare(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, float]]:
    """Warm each function up once, then run them interleaved ``repeats`` times (so a change in
    machine load hits baseline and workload alike); return name -> (best, median) seconds."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}


def make_data(kind: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "no-ties":
        conf = rng.random(n)
        correct = rng.random(n) < 0.3 + 0.65 * conf  # informative, ~62 % accuracy
    elif kind == "heavy-ties":
        # MSP-like: mass near 1, float32-style saturation at exactly 1.0 for ~25 %
        raw = 1.0 - rng.beta(0.3, 3.0, n)
        raw[rng.random(n) < 0.25] = 1.0
        conf = np.round(raw, 3)
        correct = rng.random(n) < 0.05 + 0.9 * raw
    else:
        raise ValueError(kind)
    return conf.astype(np.float64), correct


def all_metrics(conf: np.ndarray, correct: np.ndarray) -> None:
    """The measured workload: every metric in every convention (one call that sorts once),
    plus rc_curve()."""
    lsfix.evaluate_conventions(conf, correct, conventions=lsfix.CONVENTIONS,
                               coverages=COVERAGES, risks=RISKS)
    lsfix.rc_curve(conf, correct)


def separate_calls(conf: np.ndarray, correct: np.ndarray) -> None:
    """Info: four independent evaluate() calls (each sorts) plus rc_curve()."""
    for conv in lsfix.CONVENTIONS:
        lsfix.evaluate(conf, correct, convention=conv, coverages=COVERAGES, risks=RISKS)
    lsfix.rc_curve(conf, correct)


def all_metrics_shared_blocks(conf: np.ndarray, correct: np.ndarray) -> None:
    """Same numbers, tie blocks built once (public API: tie_blocks + *_from_blocks)."""
    b = lsfix.tie_blocks(conf, correct)
    for conv in lsfix.CONVENTIONS:
        lsfix.metrics_from_blocks(b, convention=conv, coverages=COVERAGES, risks=RISKS)
    lsfix.curve_from_blocks(b)


def profile(conf: np.ndarray, correct: np.ndarray, top: int = 18) -> str:
    pr = cProfile.Profile()
    pr.enable()
    all_metrics(conf, correct)
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(top)
    return s.getvalue()


def run_kind(kind: str, n: int, repeats: int, do_profile: bool) -> bool:
    """Time one data set; print the lines; return whether the target is met."""
    conf, correct = make_data(kind, n)
    n_distinct = int(np.unique(conf).shape[0])
    n_tied = lsfix.tie_blocks(conf, correct).n_tied
    res = compare({
        "base": lambda: np.argsort(conf, kind="stable"),
        "work": lambda: all_metrics(conf, correct),
        "shared": lambda: all_metrics_shared_blocks(conf, correct),
        "separate": lambda: separate_calls(conf, correct),
    }, repeats)
    (base, base_med), (work, work_med), (shared, _) = res["base"], res["work"], res["shared"]
    separate = res["separate"][0]
    ratio = work / base
    ok = ratio <= TARGET
    print(f"\n[{kind}] distinct values {n_distinct:,}, tied samples {n_tied:,}, "
          f"accuracy {correct.mean():.3f}")
    print(f"  stable argsort (baseline)      best {base:7.3f} s  median {base_med:7.3f} s")
    print(f"  all metrics (evaluate_conventions + rc_curve) best {work:7.3f} s  "
          f"median {work_med:7.3f} s")
    print(f"  ratio {ratio:.2f}x  target <= {TARGET}x  -> {'MET' if ok else 'MISSED'}")
    print(f"  (info) same metrics, blocks built once: best {shared:.3f} s = "
          f"{shared / base:.2f}x argsort")
    print(f"  (info) 4 separate evaluate() calls + rc_curve: best {separate:.3f} s = "
          f"{separate / base:.2f}x argsort")
    if do_profile:
        print(profile(conf, correct))
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="number of scores (default 1e7)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed repeats after one warm-up (interleaved)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the workload")
    args = ap.parse_args(argv)

    print(f"bench_core: n={args.n:,}  numpy {np.__version__}  lsfix {lsfix.__version__}  "
          f"python {sys.version.split()[0]}")
    print(f"workload: evaluate(conv, coverages={COVERAGES}, risks={RISKS}) for "
          f"{len(lsfix.CONVENTIONS)} conventions + rc_curve; baseline: one "
          f"np.argsort(conf, kind='stable') (float64); best of {args.repeats} interleaved runs "
          "after warm-up")
    all_ok = True
    for kind in ("no-ties", "heavy-ties"):
        all_ok &= run_kind(kind, args.n, args.repeats, args.profile)
        gc.collect()
    print(f"\noverall: {'MET' if all_ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: MaxLogit-pNorm tuning over p in {0..9} vs one msp pass.

Run:  python bench/bench_tune.py [--n 50000] [--k 1000] [--repeats 5] [--profile]

Target (the issue): ``lsfix.tune_pnorm(logits, labels)`` (the default grid 0..9, objective =
AURC, MSP fallback) on 50,000 x 1000 float32 logits costs at most 3x one
``lsfix.msp(logits)`` on the same in-memory array, measured in this process (warm-up once, then
both run interleaved ``--repeats`` times; best reported, median printed too).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys

import numpy as np

import lsfix

sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parent))
from bench_core import compare  # noqa: E402  (one timing helper for both benchmarks)

TARGET = 3.0


def make_logits(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k), dtype=np.float32)
    z *= 1.5
    y = rng.integers(0, k, n)
    z[np.arange(n), y] += rng.gamma(2.0, 2.5, n).astype(np.float32)
    return z, y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of tune_pnorm")
    args = ap.parse_args(argv)

    z, y = make_logits(args.n, args.k)
    print(f"bench_tune: logits {z.shape} {z.dtype}  grid {lsfix.P_GRID}  numpy {np.__version__}"
          f"  lsfix {lsfix.__version__}  python {sys.version.split()[0]}")
    res = compare({"msp": lambda: lsfix.msp(z), "tune": lambda: lsfix.tune_pnorm(z, y)},
                  args.repeats)
    (base, base_med), (tune, tune_med) = res["msp"], res["tune"]
    fit = lsfix.tune_pnorm(z, y)
    ratio = tune / base
    ok = ratio <= TARGET
    print(f"  msp(logits)        (baseline)  best {base:7.3f} s  median {base_med:7.3f} s")
    print(f"  tune_pnorm(logits, labels)     best {tune:7.3f} s  median {tune_med:7.3f} s"
          f"  (chose p={fit.p}, fallback_msp={fit.fallback_msp})")
    print(f"  ratio {ratio:.2f}x  target <= {TARGET}x  -> {'MET' if ok else 'MISSED'}")
    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        lsfix.tune_pnorm(z, y)
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(15)
        print(s.getvalue())
    print(f"\noverall: {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

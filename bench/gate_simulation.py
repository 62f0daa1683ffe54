"""The interval gate by simulation: false-fail rate with no true difference, and power.

A population where the truth is known: each sample is right with probability 0.9; two scores
rank the same predictions (``y`` shared, as MSP and a candidate score of one model, or two
models judged on the same correctness): the baseline ``a = μ·y + e_a``, the candidate
``b = (μ − shift)·y + e_b``, with ``e_a, e_b`` standard normal, correlated ``ρ = 0.5``
(shared difficulty). ``shift = 0`` makes the two exchangeable: the true ΔAURC is exactly 0.
A positive ``shift`` plants a worse candidate; its true ΔAURC is measured on 2,000,000
population rows (lsfix ``aurc``, convention ``lsfix``).

Each trial draws ``n`` rows and judges the rule ``aurc>+0`` (fail when the candidate's AURC is
above the baseline's) with lsfix's own gate (:func:`lsfix.evaluation.gate.check_rule` on
:func:`lsfix.core.replicates.metric_replicates`, paired, 1000 replicates, 95 %: exactly what
``compare --fail-if 'aurc>+0'`` does) and with the point gate (``--gate point``). It prints the
fail / inconclusive / pass rates per planted ΔAURC and ``n``. With ``shift = 0`` the interval
gate's fail rate must be at most the stated level (5 %; about 2.5 % is expected, one side of
the 95 % interval); the point gate fails about half the time.

    python bench/gate_simulation.py               # ~15 min on 2 shared cores
    python bench/gate_simulation.py --trials 50   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsfix.core import aurc  # noqa: E402
from lsfix.core.replicates import metric_replicates  # noqa: E402
from lsfix.evaluation.gate import FAIL, INCONCLUSIVE, check_rule, parse_rule  # noqa: E402

MU, RHO, ACC = 1.5, 0.5, 0.9


def draw(rng: np.random.Generator, n: int, shift: float
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = rng.random(n) < ACC
    z = rng.standard_normal(n)
    ea = np.sqrt(RHO) * z + np.sqrt(1 - RHO) * rng.standard_normal(n)
    eb = np.sqrt(RHO) * z + np.sqrt(1 - RHO) * rng.standard_normal(n)
    return MU * y + ea, (MU - shift) * y + eb, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    ap.add_argument("--shifts", type=float, nargs="+",
                    default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4])
    ap.add_argument("--trials", type=int, nargs="+", default=[500, 80],
                    help="trials at shift 0, and at every other shift")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--level", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    null_trials, trials = (args.trials * 2)[:2]
    rule = parse_rule("aurc>+0")
    rng = np.random.default_rng(args.seed)
    print("n\tshift\ttrue ΔAURC\ttrials\tinterval: fail\tinterval: inconclusive\t"
          "interval: pass\tpoint: fail\tseconds")
    for shift in args.shifts:
        a, b, y = draw(np.random.default_rng(12345), 2_000_000, shift)
        true = aurc(b, y) - aurc(a, y)
        for n in args.sizes:
            t0 = time.perf_counter()
            count = {FAIL: 0, INCONCLUSIVE: 0, "pass": 0, "point": 0}
            k = null_trials if shift == 0 else trials
            for t in range(k):
                a, b, y = draw(rng, n, shift)
                va, vb = aurc(a, y), aurc(b, y)
                ra = metric_replicates(a, y, n_boot=args.n_boot, seed=t, metrics=("aurc",))
                rb = metric_replicates(b, y, n_boot=args.n_boot, seed=t, metrics=("aurc",))
                c = check_rule(rule, file="b", score="s", value=vb, baseline=va,
                               mode="interval", n=n, level=args.level, rep=rb["aurc"],
                               base_rep=ra["aurc"], paired=True)
                count[c.verdict] += 1
                p = check_rule(rule, file="b", score="s", value=vb, baseline=va,
                               mode="point", n=n)
                count["point"] += p.verdict == FAIL
            print(f"{n}\t{shift:g}\t{true:+.5f}\t{k}\t{count[FAIL] / k:.3f}\t"
                  f"{count[INCONCLUSIVE] / k:.3f}\t{count['pass'] / k:.3f}\t"
                  f"{count['point'] / k:.3f}\t{time.perf_counter() - t0:.0f}", flush=True)


if __name__ == "__main__":
    main()

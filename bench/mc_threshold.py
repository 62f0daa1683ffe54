"""Monte Carlo check of the threshold guarantee (``lsfix threshold``, lsfix.core.sgr).

Population: confidence ``c ~ U(0, 1)``, ``P(wrong | c) = a (1 − c)²``, so the selective risk
of ``accept c ≥ θ`` is known exactly: ``R(θ) = a (1 − θ)² / 3``. For every setting, draw
``--sets`` fit sets of ``n`` rows, run SGR at ``(r*, δ)`` and count the sets whose chosen
threshold has true risk above ``r*`` (a violation; a reject-everything answer never violates).
The guarantee says the violation rate is at most ``δ``.

Tuned on the same rows (``grid``): each row also carries ``G − 1`` further candidate scores,
independent uniforms that carry no information (true risk ``a / 3`` at every threshold, above
``r*``), as a p grid that mostly overfits would. ``union`` runs :func:`sgr_select` (each
candidate at ``δ / G``); ``naive`` runs SGR at the full ``δ`` on each candidate and keeps the
largest certified coverage, which is what ignoring the tuning would do.

Usage::

    nice -n 10 python bench/mc_threshold.py --sets 1000 > bench/results/mc_threshold.tsv
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from lsfix.core.sgr import sgr, sgr_select


def true_risk(theta: float, a: float) -> float:
    if theta >= 1.0:
        return 0.0
    return a * (1.0 - max(theta, 0.0)) ** 2 / 3.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    settings = [  # (n, a, r*, delta, G)
        (300, 0.6, 0.08, 0.1, 1), (1000, 0.6, 0.05, 0.05, 1), (1000, 0.3, 0.02, 0.1, 1),
        (5000, 0.6, 0.05, 0.05, 1), (2000, 0.9, 0.1, 0.2, 1),
        (500, 0.3, 0.09, 0.1, 10), (2000, 0.3, 0.095, 0.1, 10),
    ]
    print("mode\tn\ta\trisk\tdelta\tG\tsets\tviolations\tviolation_rate\tmean_coverage"
          "\tseconds")
    for n, a, risk, delta, g in settings:
        rng = np.random.default_rng([args.seed, n, int(1000 * a), int(1000 * risk), g])
        modes = ("plain",) if g == 1 else ("union", "naive")
        bad = dict.fromkeys(modes, 0)
        cov = dict.fromkeys(modes, 0.0)
        t0 = time.perf_counter()
        for _ in range(args.sets):
            c = rng.random(n)
            ok = rng.random(n) >= a * (1 - c) ** 2
            if g == 1:
                res = sgr(c, ok, risk=risk, delta=delta)
                bad["plain"] += res.certified and true_risk(res.threshold, a) > risk
                cov["plain"] += res.coverage
                continue
            cands = [("informative", c)] + [(f"noise{j}", rng.random(n)) for j in range(g - 1)]

            def risk_of(name: str, theta: float, a: float = a) -> float:
                return true_risk(theta, a) if name == "informative" else a / 3.0

            sel = sgr_select(cands, ok, risk=risk, delta=delta)
            if sel.chosen is not None:
                bad["union"] += risk_of(sel.chosen, sel.result.threshold) > risk
                cov["union"] += sel.result.coverage
            naive = [(nm, sgr(s, ok, risk=risk, delta=delta)) for nm, s in cands]
            naive = [(nm, r) for nm, r in naive if r.certified]
            if naive:
                nm, r = max(naive, key=lambda t: t[1].n_accepted)
                bad["naive"] += risk_of(nm, r.threshold) > risk
                cov["naive"] += r.coverage
        secs = time.perf_counter() - t0
        for mode in modes:
            print(f"{mode}\t{n}\t{a}\t{risk}\t{delta}\t{g}\t{args.sets}\t{bad[mode]}\t"
                  f"{bad[mode] / args.sets:.4f}\t{cov[mode] / args.sets:.4f}\t{secs:.1f}")
        sys.stdout.flush()
        assert math.isfinite(secs)


if __name__ == "__main__":
    main()

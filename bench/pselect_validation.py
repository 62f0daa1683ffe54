"""Does the chosen p overfit small fit sets? The harmful-switch rate, before and after the test.

For each model of the α sweep shipped in ``sample_data/`` (Fashion-MNIST CNN: CE, LS α = 0.1,
LS α = 0.2; 10,000 validation rows to draw fit sets from, 10,000 test rows to judge on), and
each fit-set size, ``--draws`` fit sets are drawn from the validation rows (without
replacement, seeded). On each, p is chosen by lsfix's own policy (:func:`lsfix.evaluation.fitpolicy.
choose_fit`, grid 0..9, AURC ``lsfix`` convention) twice:

* **before**: ``select="point"``: the lowest fit AURC, MSP when no worse (lsfix 0.1);
* **after**: ``select="test"``: MSP kept unless the gain is significant (simultaneous
  one-sided paired-bootstrap upper bounds over the grid, 1000 replicates, at each of
  ``--levels``: 95 %, the default, and 90 %; docs/metrics.md, "Choosing p").

A choice is **harmful** when it left MSP and its test AURC is higher than MSP's test AURC. The
table gives, per model and size: how often each rule switched away from MSP, how often the
switch was harmful (share of all draws), and the mean test ΔAURC (choice − MSP, relative to
MSP's test AURC; 0 when MSP is kept): the benefit a user gets on average.

    python bench/pselect_validation.py                      # ~10-15 min on 2 shared cores
    python bench/pselect_validation.py --draws 20 --sizes 250 5000   # quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsfix.core import ScoreSpec, aurc, compute_scores  # noqa: E402
from lsfix.evaluation.fitpolicy import choose_fit  # noqa: E402
from lsfix.readers.predictions import predictions_from_arrays  # noqa: E402

MODELS = (("CE", "fmnist_ce"), ("LS 0.1", "fmnist_ls01"), ("LS 0.2", "fmnist_ls02"))
GRID = tuple(float(p) for p in range(10))


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        return f["logits"][()], f["labels"][()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 5000])
    ap.add_argument("--draws", type=int, nargs="+", default=[200, 200, 100, 40],
                    help="draws per size (one value, or one per size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--levels", type=float, nargs="+", default=[0.95, 0.90],
                    help="selection-test levels to compare with the point rule")
    args = ap.parse_args()
    draws = args.draws * len(args.sizes) if len(args.draws) == 1 else args.draws
    if len(draws) != len(args.sizes):
        ap.error("--draws: one value, or one per size")
    rng = np.random.default_rng(args.seed)
    rules = [("before", "point", 0.95)] + [(f"after {lv:.0%}", "test", lv)
                                           for lv in args.levels]
    heads = [f"{what} {k}" for what in ("switch", "harmful", "mean test ΔAURC")
             for k, _, _ in rules]
    print("model\tfit rows\tdraws\t" + "\t".join(heads) + "\tseconds")
    for label, stem in MODELS:
        vz, vy = _read(ROOT / "sample_data" / f"{stem}_val.h5")
        tz, ty = _read(ROOT / "sample_data" / f"{stem}_test.h5")
        specs = [ScoreSpec("pnorm", p) for p in GRID] + [ScoreSpec("msp")]
        got = compute_scores(tz, specs, labels=ty)
        test = {s.param: aurc(got[s.name], got["_correct"]) for s in specs}  # msp: None
        test_pred = predictions_from_arrays("test", tz, labels=ty)
        for size, n_draw in zip(args.sizes, draws, strict=True):
            t0 = time.perf_counter()
            rows: dict[str, list[tuple[bool, bool, float]]] = {k: [] for k, _, _ in rules}
            for d in range(n_draw):
                idx = np.sort(rng.choice(vz.shape[0], size=size, replace=False))
                val = predictions_from_arrays(f"val[{d}]", vz[idx], labels=vy[idx])
                for key, rule, lv in rules:
                    res = choose_fit(test_pred, fit=val, grid=GRID, select=rule, level=lv,
                                     n_boot=args.n_boot, seed=d)
                    p = res.fit.p
                    delta = 0.0 if p is None else (test[p] - test[None]) / test[None]
                    rows[key].append((p is not None, p is not None and delta > 0, delta))
            secs = time.perf_counter() - t0
            arr = {k: np.array(v) for k, v in rows.items()}
            cells = ([f"{arr[k][:, 0].mean():.1%}" for k, _, _ in rules]
                     + [f"{arr[k][:, 1].mean():.1%}" for k, _, _ in rules]
                     + [f"{arr[k][:, 2].mean():+.2%}" for k, _, _ in rules])
            print(f"{label}\t{size}\t{n_draw}\t" + "\t".join(cells) + f"\t{secs:.0f}",
                  flush=True)


if __name__ == "__main__":
    main()

"""Record calibration (torchmetrics, netcal, scikit-learn) and SGR (fd-shifts) reference
vectors with the peers' own code (run once, by hand; not a test).

No peer code is part of lsfix. torchmetrics, netcal and scikit-learn are imported from a
scratch virtual environment; fd-shifts' ``ConfidEvaluator`` (``calculate_bound``,
``get_val_risk_scores``) is imported from ``fd_shifts/analysis/eval_utils.py`` taken unchanged
at the commit written into the output, in a scratch folder ``FDSHIFTS`` (see
``tests/peers/README.md``). Writes ``tests/peers/data/calibration.json`` and
``tests/peers/data/fd-shifts-sgr.json``: inputs, outputs exactly as returned, versions and the
command line.

Usage::

    FDSHIFTS=/work/scratch/decide/fdshifts /work/scratch/decide/peervenv/bin/python \\
        tests/peers/record_calibration_sgr.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
COMMAND = ("FDSHIFTS=/work/scratch/decide/fdshifts /work/scratch/decide/peervenv/bin/python "
           "tests/peers/record_calibration_sgr.py")
FD_COMMIT = "c4467aec134e99691359da209f811d91283fc1e3"


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def calibration_cases() -> list[dict]:
    rng = np.random.default_rng(2026)
    cases = []

    def add(name: str, z: np.ndarray | None, probs: np.ndarray, y: np.ndarray,
            n_bins: int) -> None:
        cases.append({"name": name, "n_bins": n_bins,
                      "logits": None if z is None else z.tolist(),
                      "probs": probs.tolist(), "labels": y.tolist()})

    z = rng.normal(0, 3, (200, 10))
    y = np.where(rng.random(200) < 0.7, z.argmax(1), rng.integers(0, 10, 200))
    add("k10_random", z, softmax(z), y, 15)
    z = rng.normal(0, 2, (200, 2))
    y = rng.integers(0, 2, 200)
    add("k2_random", z, softmax(z), y, 15)
    z = rng.normal(0, 4, (60, 100))
    y = np.where(rng.random(60) < 0.5, z.argmax(1), rng.integers(0, 100, 60))
    add("k100_random", z, softmax(z), y, 15)
    # every max probability exactly on an edge of 5 equal-width bins (0.2, 0.4, 0.6, 0.8), or
    # exactly 1.0: the binning convention decides the result
    p = np.array([[0.4, 0.3, 0.3], [0.6, 0.2, 0.2], [0.6, 0.3, 0.1], [0.8, 0.1, 0.1],
                  [0.4, 0.35, 0.25], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.2, 0.2, 0.6],
                  [0.8, 0.2, 0.0], [0.5, 0.25, 0.25]])
    y = np.array([0, 1, 0, 0, 1, 0, 2, 2, 0, 1])
    add("edge_ties_5bins", None, p, y, 5)
    z = np.round(rng.normal(0, 1.5, (120, 4)), 1)  # coarse logits: many tied confidences
    y = rng.integers(0, 4, 120)
    add("k4_coarse_ties", z, softmax(z), y, 10)
    return cases


def record_calibration() -> dict:
    import netcal
    import sklearn
    import torch
    import torchmetrics
    from netcal.metrics import ECE, MCE
    from sklearn.metrics import brier_score_loss, log_loss
    from torchmetrics.classification import MulticlassCalibrationError

    out = []
    for case in calibration_cases():
        p = np.array(case["probs"], dtype=np.float64)
        y = np.array(case["labels"])
        k, nb = p.shape[1], case["n_bins"]
        pt, yt = torch.tensor(p, dtype=torch.float64), torch.tensor(y)
        tm = {}
        for norm in ("l1", "max"):
            m = MulticlassCalibrationError(num_classes=k, n_bins=nb, norm=norm)
            tm[norm] = float(m(pt, yt))
        res = {
            "torchmetrics.MulticlassCalibrationError(norm='l1')": tm["l1"],
            "torchmetrics.MulticlassCalibrationError(norm='max')": tm["max"],
            "netcal.ECE(bins, equal_intervals=True)": float(ECE(bins=nb).measure(p, y)),
            "netcal.ECE(bins, equal_intervals=False)":
                float(ECE(bins=nb, equal_intervals=False).measure(p, y)),
            "netcal.MCE(bins, equal_intervals=True)": float(MCE(bins=nb).measure(p, y)),
            "sklearn.log_loss": float(log_loss(y, p, labels=list(range(k)))),
            "sklearn.brier_score_loss(scale_by_half=False)":
                float(brier_score_loss(y, p, labels=list(range(k)), scale_by_half=False)),
        }
        out.append({**case, "outputs": res})
    env = {"python": platform.python_version(), "numpy": np.__version__,
           "torch": torch.__version__, "torchmetrics": torchmetrics.__version__,
           "netcal": netcal.__version__, "scikit-learn": sklearn.__version__}
    return {
        "peer": "torchmetrics, netcal, scikit-learn",
        "repository": "https://pypi.org/project/torchmetrics/ https://pypi.org/project/netcal/ "
                      "https://pypi.org/project/scikit-learn/",
        "commit": f"PyPI releases: torchmetrics {torchmetrics.__version__}, netcal "
                  f"{netcal.__version__}, scikit-learn {sklearn.__version__}",
        "files": ["torchmetrics/functional/classification/calibration_error.py",
                  "netcal/metrics/confidence/ECE.py", "netcal/metrics/confidence/MCE.py",
                  "netcal/metrics/Miscalibration.py", "sklearn/metrics/_classification.py"],
        "called": "see peers.*.called",
        "environment": env,
        "peers": {
            "torchmetrics": {"version": torchmetrics.__version__, "torch": torch.__version__,
                             "called": "MulticlassCalibrationError(num_classes=K, n_bins=B, "
                                       "norm=...)(float64 probs tensor, labels)"},
            "netcal": {"version": netcal.__version__,
                       "called": "ECE(bins=B[, equal_intervals=False]).measure(probs, labels), "
                                 "MCE(bins=B).measure(probs, labels)"},
            "scikit-learn": {"version": sklearn.__version__,
                             "called": "log_loss(labels, probs, labels=range(K)), "
                                       "brier_score_loss(labels, probs, labels=range(K), "
                                       "scale_by_half=False)"},
        },
        "command": COMMAND,
        "cases": out,
    }


def sgr_cases() -> list[dict]:
    rng = np.random.default_rng(17)
    cases = []
    for name, n, a, rstar, delta in (("n500_a0.6", 500, 0.6, 0.08, 0.05),
                                     ("n2000_a0.3", 2000, 0.3, 0.02, 0.1),
                                     ("n257_a0.9", 257, 0.9, 0.15, 0.01)):
        c = rng.random(n)  # continuous: no ties
        correct = rng.random(n) >= a * (1 - c) ** 2
        cases.append({"name": name, "rstar": rstar, "delta": delta,
                      "confids": c.tolist(), "correct": correct.astype(int).tolist()})
    return cases


def record_sgr() -> dict:
    sys.path.insert(0, os.environ["FDSHIFTS"])
    from fd_shifts.analysis.eval_utils import ConfidEvaluator

    runs = []
    for case in sgr_cases():
        c = np.array(case["confids"])
        y = np.array(case["correct"])
        ev = ConfidEvaluator(confids=c, correct=y, labels=None, query_metrics=[],
                             query_plots=[], bins=20)
        got = ev.get_val_risk_scores(case["rstar"], case["delta"])
        runs.append({**case, "outputs": {k: float(v) for k, v in got.items()}})
    bounds = []
    ev = ConfidEvaluator(confids=np.array([0.5, 0.6]), correct=np.array([1, 0]), labels=None,
                         query_metrics=[], query_plots=[], bins=20)
    for delta, m, errors in ((0.05, 100, 0), (0.05, 100, 5), (0.01, 1000, 37), (0.1, 20, 19),
                             (0.005, 5000, 400), (0.2, 7, 3)):
        erm = errors / m
        bounds.append({"delta": delta, "m": m, "erm": erm, "errors_used": int(m * erm),
                       "bound": float(ev.calculate_bound(delta, m, erm))})
    import scipy
    return {
        "peer": "fd-shifts", "repository": "https://github.com/IML-DKFZ/fd-shifts",
        "commit": FD_COMMIT, "files": ["fd_shifts/analysis/eval_utils.py"],
        "called": "ConfidEvaluator(confids, correct, labels=None, query_metrics=[], "
                  "query_plots=[], bins=20).get_val_risk_scores(rstar, delta) and "
                  ".calculate_bound(delta, m, erm)",
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "scipy": scipy.__version__},
        "command": COMMAND,
        "cases": runs, "bounds": bounds,
    }


def main() -> None:
    data = HERE / "data"
    for name, doc in (("calibration.json", record_calibration()),
                      ("fd-shifts-sgr.json", record_sgr())):
        (data / name).write_text(json.dumps(doc, indent=1) + "\n")
        print("wrote", data / name)


if __name__ == "__main__":
    main()

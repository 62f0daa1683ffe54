"""lsfix's calibration metrics and SGR bound against outputs recorded with the peers' own code
(tests/peers/record_calibration_sgr.py; versions and command inside the data files)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lsfix.core.calibration import calibration_metrics, calibration_rows, ece, ece_equal_mass, mce
from lsfix.core.sgr import binomial_upper_bound, sgr

DATA = Path(__file__).resolve().parent / "data"
CAL = json.loads((DATA / "calibration.json").read_text())
SGR = json.loads((DATA / "fd-shifts-sgr.json").read_text())
CASES = {c["name"]: c for c in CAL["cases"]}

TM_L1 = "torchmetrics.MulticlassCalibrationError(norm='l1')"
TM_MAX = "torchmetrics.MulticlassCalibrationError(norm='max')"
NC_ECE = "netcal.ECE(bins, equal_intervals=True)"
NC_MASS = "netcal.ECE(bins, equal_intervals=False)"
NC_MCE = "netcal.MCE(bins, equal_intervals=True)"


def top_label(case: dict) -> tuple[np.ndarray, np.ndarray, int]:
    p = np.array(case["probs"])
    y = np.array(case["labels"])
    return p.max(axis=1), p.argmax(axis=1) == y, case["n_bins"]


def test_recorded_versions_are_named() -> None:
    peers = CAL["peers"]
    assert peers["torchmetrics"]["version"] == "1.9.0"
    assert peers["netcal"]["version"] == "1.4.0"
    assert peers["scikit-learn"]["version"] == "1.9.1"
    assert SGR["commit"] == "c4467aec134e99691359da209f811d91283fc1e3"
    assert set(CASES) == {"k10_random", "k2_random", "k100_random", "edge_ties_5bins",
                          "k4_coarse_ties"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ece_and_mce_match_torchmetrics(name: str) -> None:
    """torchmetrics works in float32 (it casts the confidences): agreement to 1e-6."""
    c, ok, nb = top_label(CASES[name])
    out = CASES[name]["outputs"]
    assert ece(c, ok, nb) == pytest.approx(out[TM_L1], abs=1e-6)
    assert mce(c, ok, nb) == pytest.approx(out[TM_MAX], abs=1e-6)


@pytest.mark.parametrize("name", ["k10_random", "k100_random", "k4_coarse_ties"])
def test_ece_mce_and_equal_mass_ece_match_netcal(name: str) -> None:
    """netcal works in float64: agreement to 1e-12 where no confidence sits on an edge."""
    c, ok, nb = top_label(CASES[name])
    out = CASES[name]["outputs"]
    assert ece(c, ok, nb) == pytest.approx(out[NC_ECE], abs=1e-12)
    assert mce(c, ok, nb) == pytest.approx(out[NC_MCE], abs=1e-12)
    assert ece_equal_mass(c, ok, nb) == pytest.approx(out[NC_MASS], abs=1e-12)


def test_netcal_on_two_classes_measures_class_one_not_the_top_label() -> None:
    """With K = 2, netcal takes the second column as the confidence of 'class 1' (binary
    calibration); lsfix's top-label metrics equal netcal's when given exactly that."""
    case = CASES["k2_random"]
    p = np.array(case["probs"])
    y = np.array(case["labels"])
    out = case["outputs"]
    c, ok, nb = top_label(case)
    assert ece(c, ok, nb) != pytest.approx(out[NC_ECE], abs=1e-3)
    assert ece(p[:, 1], y == 1, nb) == pytest.approx(out[NC_ECE], abs=1e-12)
    assert mce(p[:, 1], y == 1, nb) == pytest.approx(out[NC_MCE], abs=1e-12)
    assert ece_equal_mass(p[:, 1], y == 1, nb) == pytest.approx(out[NC_MASS], abs=1e-12)


def netcal_equal_width(c: np.ndarray, ok: np.ndarray, nb: int) -> float:
    """netcal's equal-width binning written out: confidences clipped to [eps, 1 - eps] and
    binned with numpy.histogram's numpy.linspace edges (3/5 -> 0.6000000000000001)."""
    eps = np.finfo(np.float64).eps
    c = np.clip(c, eps, 1 - eps)
    edges = np.linspace(0, 1, nb + 1)
    idx = np.minimum(np.searchsorted(edges, c, side="right") - 1, nb - 1)
    total = 0.0
    for j in set(idx.tolist()):
        sel = idx == j
        total += sel.sum() * abs(ok[sel].mean() - c[sel].mean())
    return total / len(c)


def test_edge_ties_follow_torchmetrics_and_netcal_differs_by_its_edges() -> None:
    """Every confidence on an edge of 5 bins (0.2, 0.4, 0.6, 0.8) or exactly 1.0: lsfix bins
    them as torchmetrics does (0.19); netcal's 0.07 comes from its other edge convention."""
    c, ok, nb = top_label(CASES["edge_ties_5bins"])
    out = CASES["edge_ties_5bins"]["outputs"]
    assert ece(c, ok, nb) == pytest.approx(0.19, abs=1e-15)
    assert out[TM_L1] == pytest.approx(0.19, abs=1e-6)
    assert out[NC_ECE] == pytest.approx(netcal_equal_width(c, ok, nb), abs=1e-12)
    assert abs(out[NC_ECE] - ece(c, ok, nb)) > 0.1
    assert ece_equal_mass(c, ok, nb) == pytest.approx(out[NC_MASS], abs=1e-12)


@pytest.mark.parametrize("name", ["k10_random", "k2_random", "k100_random", "k4_coarse_ties"])
def test_nll_and_brier_match_scikit_learn(name: str) -> None:
    case = CASES[name]
    rows = calibration_rows(np.array(case["logits"]), np.array(case["labels"]))
    m = calibration_metrics(rows, case["n_bins"])
    out = case["outputs"]
    assert m.nll == pytest.approx(out["sklearn.log_loss"], rel=1e-12)
    assert m.brier == pytest.approx(out["sklearn.brier_score_loss(scale_by_half=False)"],
                                    rel=1e-12)


@pytest.mark.parametrize("case", SGR["bounds"], ids=lambda b: f"m{b['m']}_e{b['errors_used']}")
def test_binomial_bound_matches_fd_shifts(case: dict) -> None:
    """fd-shifts bisects until |cdf(b) − δ| ≤ 1e-9; lsfix inverts to float64 resolution."""
    ours = binomial_upper_bound(case["errors_used"], case["m"], case["delta"])
    assert ours == pytest.approx(case["bound"], abs=2e-8)


def fd_shifts_search(c: np.ndarray, correct: np.ndarray, rstar: float, delta: float
                     ) -> dict[str, float]:
    """fd-shifts' get_val_risk_scores search, written out, with lsfix's bound: ceil(log2 m)+1
    tests at δ/ceil(log2 m), mid = ceil((a+b)/2), a=mid when the bound exceeds r*, else b=mid;
    the LAST test is returned (certified or not); accepted = rows from mid on in sort order."""
    fy = 1 - correct
    m = len(fy)
    idx = np.argsort(c)
    a, b = 0, m - 1
    k = math.ceil(math.log2(m))
    risk = cov = theta = math.nan
    for _ in range(k + 1):
        mid = math.ceil((a + b) / 2)
        mi = m - mid
        theta = float(c[idx[mid]])
        risk = float(fy[idx[mid:]].sum()) / mi
        bound = binomial_upper_bound(int(mi * risk), mi, delta / k)
        cov = mi / m
        if bound > rstar:
            a = mid
        else:
            b = mid
    return {"val_risk": risk, "val_cov": cov, "theta": theta}


@pytest.mark.parametrize("run", SGR["cases"], ids=lambda r: r["name"])
def test_fd_shifts_sgr_is_reproduced_and_lsfix_certifies(run: dict) -> None:
    c = np.array(run["confids"])
    y = np.array(run["correct"])
    got = fd_shifts_search(c, y, run["rstar"], run["delta"])
    assert got == pytest.approx(run["outputs"], abs=0, rel=0)
    ours = sgr(c, y.astype(bool), risk=run["rstar"], delta=run["delta"])
    assert ours.certified and ours.bound <= run["rstar"]
    # lsfix keeps every tied row and the best certified test; on these tie-free vectors its
    # certified coverage is within the last step of fd-shifts' search
    assert abs(ours.coverage - run["outputs"]["val_cov"]) <= 2 / len(c) + 0.01

"""lsfix pinned to numbers recorded with each peer's own code (tests/peers/data/*.json).

Each file names the peer's repository, commit, the functions called and the command that made
it (``tests/peers/record_peers.py``). Naming the peer's convention must give the peer's number:

* fd-shifts (``--convention fd-shifts``): AURC, its oracle, E-AURC, AUGRC (fd-shifts prints
  them x1000), FPR@95TPR, AUROC_f — including tied confidences, which fd-shifts handles by
  block, like lsfix.
* torch-uncertainty (``--convention torch-uncertainty``): AURC, AUGRC, RiskAtxCov(0.8),
  CovAtxRisk(0.05).
* Cattelan & Silva (``--convention xia``): AURC, E_AURC, N_AURC, AUROC.
* the paper's official code (``--convention xia``): ``torch.trapz(risk, coverage)``.

torch-uncertainty, Cattelan & Silva and the official code break ties by sort order, so their
files hold distinct confidences only. They compute coverage in float32, hence ``TOL32``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lsfix.core import evaluate, rc_curve

DATA = Path(__file__).resolve().parent / "data"
TOL64 = 1e-12
TOL32 = 1e-6  # the peer's float32 coverage grid


def _load(peer: str) -> list[dict]:
    doc = json.loads((DATA / f"{peer}.json").read_text())
    assert doc["peer"] == peer and len(doc["commit"]) == 40 and doc["command"]
    return doc["cases"]


def _ids(cases):
    return [c["name"] for c in cases]


def _close(actual: float, expected: float | None, tol: float, what: str) -> None:
    if expected is None:
        assert math.isnan(actual), f"{what}: peer gives nothing (NaN), lsfix {actual!r}"
        return
    assert abs(actual - expected) <= tol * max(1.0, abs(expected)), (
        f"{what}: lsfix {actual!r}, peer {expected!r}")


def _inputs(case):
    return (np.asarray(case["confidence"], dtype=np.float64),
            np.asarray(case["correct"], dtype=bool))


FD = _load("fd-shifts")


@pytest.mark.parametrize("case", FD, ids=_ids(FD))
def test_fd_shifts(case):
    c, y = _inputs(case)
    m = evaluate(c, y, convention="fd-shifts")
    out = case["outputs"]
    _close(m.aurc, out["aurc"] / 1000, TOL64, "aurc")
    _close(m.oracle_aurc, out["aurc_optimal"] / 1000, TOL64, "oracle (aurc_optimal)")
    _close(m.eaurc, out["eaurc"] / 1000, TOL64, "e-aurc")
    _close(m.augrc, out["augrc"] / 1000, TOL64, "augrc")
    _close(m.fpr_at_95tpr, out["fpr_at_95tpr"], TOL64, "fpr@95tpr")
    _close(m.auroc, out["failauc"], TOL64, "failauc")


def test_fd_shifts_fpr_differs_from_lsfix_where_thinning_drops_the_point():
    """The recorded case where scikit-learn's thinning moves fd-shifts' FPR@95TPR: lsfix's
    own convention keeps the exact lowest FPR with TPR >= 0.95."""
    case = next(c for c in FD if c["name"] == "fpr-collinear")
    c, y = _inputs(case)
    fd = evaluate(c, y, convention="fd-shifts").fpr_at_95tpr
    own = evaluate(c, y).fpr_at_95tpr
    assert fd == case["outputs"]["fpr_at_95tpr"]
    assert own < fd


def test_fd_shifts_fpr_threshold_is_0_9495():
    """1899 of 2000 correct samples lie above the first wrong one: TPR 0.9495 passes fd-shifts'
    threshold (FPR 0), not lsfix's 0.95 (FPR 1/10)."""
    case = next(c for c in FD if c["name"] == "fpr-threshold-0.9495")
    c, y = _inputs(case)
    assert case["outputs"]["fpr_at_95tpr"] == 0.0
    assert evaluate(c, y, convention="fd-shifts").fpr_at_95tpr == 0.0
    assert evaluate(c, y).fpr_at_95tpr == 0.1


TU = _load("torch-uncertainty")


@pytest.mark.parametrize("case", TU, ids=_ids(TU))
def test_torch_uncertainty(case):
    c, y = _inputs(case)
    m = evaluate(c, y, convention="torch-uncertainty", coverages=[0.8], risks=[0.05])
    out = case["outputs"]
    _close(m.aurc, out["aurc"], TOL32, "AURC")
    _close(m.augrc, out["augrc"], TOL32, "AUGRC")
    _close(m.risk_at_coverage[0].risk, out["risk_at_80cov"], TOL32, "RiskAtxCov(0.8)")
    # CovAtxRisk: torch-uncertainty reads its "admissible" flag at the index it found in the
    # *flipped* array, from the unflipped one, and answers NaN when that flag is set. lsfix
    # keeps its own definition (the largest k with risk <= 0.05); where torch-uncertainty
    # gives a number, it is lsfix's, and its NaNs are exactly the ones that misreading predicts.
    inadmissible = rc_curve(c, y).risk > 0.05
    misread = bool(inadmissible[int(np.argmin(inadmissible[::-1]))])
    assert (out["cov_at_5risk"] is None) == misread
    if not misread:
        _close(m.coverage_at_risk[0].coverage, out["cov_at_5risk"], TOL32, "CovAtxRisk(0.05)")


CS = _load("cattelan-silva")


@pytest.mark.parametrize("case", CS, ids=_ids(CS))
def test_cattelan_silva(case):
    c, y = _inputs(case)
    m = evaluate(c, y, convention="xia")
    out = case["outputs"]
    _close(m.aurc, out["aurc"], TOL32, "AURC")
    _close(m.eaurc, out["e_aurc"], TOL32, "E_AURC")
    _close(m.auroc, out["auroc"], TOL64, "AUROC")
    if y.any() and not y.all():
        _close(m.naurc, out["n_aurc"], TOL32, "N_AURC")
    elif not y.any():  # every prediction wrong: theirs is 0/(1 - oracle) = 0, lsfix undefined
        assert out["n_aurc"] == 0.0 and math.isnan(m.naurc) and "naurc" in dict(m.undefined)
    else:  # every prediction right: 0/0 in theirs too
        assert out["n_aurc"] is None and math.isnan(m.naurc)


def test_cattelan_silva_issue_example():
    """Issue 12's example: lsfix gave 0.428571 (constant-score denominator); theirs 0.352941."""
    case = next(c for c in CS if c["name"] == "issue-naurc")
    c, y = _inputs(case)
    assert abs(evaluate(c, y, convention="xia").naurc - 6 / 17) <= 1e-15
    assert abs(case["outputs"]["n_aurc"] - 6 / 17) <= 1e-15


PO = _load("paper-official")


@pytest.mark.parametrize("case", PO, ids=_ids(PO))
def test_paper_official(case):
    c, y = _inputs(case)
    _close(evaluate(c, y, convention="xia").aurc, case["outputs"]["aurc"], TOL32, "%AURC/100")


def test_every_peer_file_names_its_source():
    for path in sorted(DATA.glob("*.json")):
        doc = json.loads(path.read_text())
        for key in ("peer", "repository", "commit", "files", "called", "environment", "command"):
            assert doc.get(key), (path.name, key)
        assert doc["cases"], path.name

"""The docs/metrics.md example table, exactly (hand-derived Fractions, 1e-12) and as printed (1e-6).

Hand derivations (sorted by confidence, most confident first; r_k = E_k / k):

A  .9 .8 .8 .7 .6 / 1 1 1 0 0 : E = 0 0 0 1 2, r = 0 0 0 1/4 2/5, q = 2/5, n = 5
   lsfix = (1/4 + 2/5)/5 = 13/100; xia = 13/100 - q/10 = 9/100;
   fd-shifts: blocks end at k = 1, 3, 4, 5 -> points (0,0) (.2,0) (.6,0) (.8,1/4) (1,2/5) -> 9/100;
   torch = (13/100 - (0 + 2/5)/10) / (4/5) = 9/80; oracle = lsfix (already ideal);
   AUGRC = (0+0+0+1+2)/25 - 2/50 = 2/25; AUROC = 1; FPR@95 = 0 (threshold .8).
B  .9 .8 .2 .1 / 1 1 0 0 : r = 0 0 1/3 1/2 -> lsfix 5/24, xia 7/48, fd 7/48, torch 7/36,
   AUGRC (1+2)/16 - 1/16 = 1/8.
C  .5 .5 .5 .2 / 1 0 1 0 : one block of 3 with 1 error: E = 1/3 2/3 1 2, r = 1/3 1/3 1/3 1/2
   lsfix 3/8; xia 3/8 - 1/16 = 5/16; fd: (0,1/3) (3/4,1/3) (1,1/2) -> 1/4 + 5/48 = 17/48;
   torch ((1/3+1/3+1/3+1/2) - (1/3+1/2)/2)/4 / (3/4) = 13/36; oracle (lsfix) r = 0 0 1/3 1/2 ->
   5/24; AUGRC (1/3+2/3+1+2)/16 - 1/16 = 3/16; AUROC (1/2+1+1/2+1)/4 = 3/4;
   FPR@95: only the threshold .5 keeps TPR >= .95 -> FPR 1/2.
   E-AURC = 3/8 - 5/24 = 1/6; NAURC = (1/6)/(1/2 - 5/24) = 4/7.
D  .3 .2 .1 / 0 0 0 : r = 1 1 1 -> lsfix 1, xia 5/6, fd 1, torch 1, oracle 1, AUGRC 2 - ... =
   6/9 - 1/6 = 1/2; AUROC, FPR@95 and NAURC undefined.
"""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest

from lsfix.core import aurc, evaluate, rc_curve

from . import reference as R
from ._compare import assert_value

CASES = {
    "A": ([0.9, 0.8, 0.7, 0.6, 0.8], [1, 1, 0, 0, 1]),
    "B": ([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]),
    "C": ([0.5, 0.5, 0.5, 0.2], [1, 0, 1, 0]),
    "D": ([0.3, 0.2, 0.1], [0, 0, 0]),
}

# exact, derived by hand (see the module docstring); None = undefined
EXACT = {
    "A": {"lsfix": F(13, 100), "xia": F(9, 100), "fd-shifts": F(9, 100),
          "torch-uncertainty": F(9, 80), "oracle": F(13, 100), "augrc": F(2, 25), "auroc": F(1),
          "fpr": F(0), "n_tied": 2, "eaurc": F(0), "naurc": F(0)},
    "B": {"lsfix": F(5, 24), "xia": F(7, 48), "fd-shifts": F(7, 48),
          "torch-uncertainty": F(7, 36), "oracle": F(5, 24), "augrc": F(1, 8), "auroc": F(1),
          "fpr": F(0), "n_tied": 0, "eaurc": F(0), "naurc": F(0)},
    "C": {"lsfix": F(3, 8), "xia": F(5, 16), "fd-shifts": F(17, 48),
          "torch-uncertainty": F(13, 36), "oracle": F(5, 24), "augrc": F(3, 16), "auroc": F(3, 4),
          "fpr": F(1, 2), "n_tied": 3, "eaurc": F(1, 6), "naurc": F(4, 7)},
    "D": {"lsfix": F(1), "xia": F(5, 6), "fd-shifts": F(1), "torch-uncertainty": F(1),
          "oracle": F(1), "augrc": F(1, 2), "auroc": None, "fpr": None, "n_tied": 0,
          "eaurc": F(0), "naurc": None},
}

# the table as printed in docs/metrics.md (6 decimals)
PRINTED = {
    "A": (0.13, 0.09, 0.09, 0.1125, 0.13, 0.08, 1.0),
    "B": (0.208333, 0.145833, 0.145833, 0.194444, 0.208333, 0.125, 1.0),
    "C": (0.375, 0.3125, 0.354167, 0.361111, 0.208333, 0.1875, 0.75),
    "D": (1, 0.833333, 1, 1, 1, 0.5, None),
}
COLUMNS = ("lsfix", "xia", "fd-shifts", "torch-uncertainty")


def _arrays(case):
    c, y = CASES[case]
    return np.asarray(c, dtype=np.float64), np.asarray(y, dtype=bool)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_values_agree_with_reference(case):
    """The hand derivation and the brute-force reference agree (guards both)."""
    c, y = CASES[case]
    for conv in COLUMNS:
        assert R.aurc(c, y, conv) == EXACT[case][conv]
    assert R.oracle_aurc(y, "lsfix") == EXACT[case]["oracle"]
    assert R.augrc(c, y) == EXACT[case]["augrc"]
    assert R.auroc(c, y) == EXACT[case]["auroc"]
    assert R.fpr_at_95tpr(c, y) == EXACT[case]["fpr"]
    assert R.n_tied(c) == EXACT[case]["n_tied"]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("conv", COLUMNS)
def test_aurc_exact(case, conv):
    c, y = _arrays(case)
    expected = EXACT[case][conv]
    assert_value(evaluate(c, y, convention=conv).aurc, expected, f"{case} {conv} evaluate")
    assert_value(aurc(c, y, convention=conv), expected, f"{case} {conv} aurc()")
    assert_value(aurc(c, y, conv), expected, f"{case} {conv} aurc() positional")


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_convention_is_lsfix(case):
    c, y = _arrays(case)
    assert evaluate(c, y).convention == "lsfix"
    assert_value(evaluate(c, y).aurc, EXACT[case]["lsfix"], case)
    assert_value(aurc(c, y), EXACT[case]["lsfix"], case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_other_columns_exact(case):
    c, y = _arrays(case)
    m = evaluate(c, y)
    ex = EXACT[case]
    assert m.n == len(y)
    assert m.n_errors == int((~y).sum())
    assert m.n_tied == ex["n_tied"]
    assert_value(m.oracle_aurc, ex["oracle"], f"{case} oracle")
    assert_value(m.augrc, ex["augrc"], f"{case} augrc")
    assert_value(m.auroc, ex["auroc"], f"{case} auroc")
    assert_value(m.fpr_at_95tpr, ex["fpr"], f"{case} fpr@95tpr")
    assert_value(m.eaurc, ex["eaurc"], f"{case} eaurc")
    assert_value(m.naurc, ex["naurc"], f"{case} naurc")
    undefined = dict(m.undefined)
    for name, key in (("auroc", "auroc"), ("fpr_at_95tpr", "fpr"), ("naurc", "naurc")):
        assert (name in undefined) == (ex[key] is None), (name, m.undefined)


@pytest.mark.parametrize("case", sorted(CASES))
def test_printed_table(case):
    c, y = _arrays(case)
    printed = PRINTED[case]
    for conv, value in zip(COLUMNS, printed[:4], strict=True):
        assert abs(evaluate(c, y, convention=conv).aurc - value) <= 1e-6, (case, conv)
    m = evaluate(c, y)
    assert abs(m.oracle_aurc - printed[4]) <= 1e-6
    assert abs(m.augrc - printed[5]) <= 1e-6
    if printed[6] is None:
        assert math.isnan(m.auroc)
    else:
        assert abs(m.auroc - printed[6]) <= 1e-6


# torch-uncertainty's AUGRC: (AUGRC - E_1/(2n^2)) / (1 - 1/n); E_1 = 0, 0, 1/3, 1
AUGRC_TORCH_UNCERTAINTY = {"A": F(1, 10), "B": F(1, 6), "C": F(17, 72), "D": F(2, 3)}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("conv", COLUMNS)
def test_augrc_and_auroc_per_convention(case, conv):
    """AUROC is one number; AUGRC is torch-uncertainty's own under that convention; these
    cases have no collinear ROC steps, so fd-shifts' FPR@95TPR equals lsfix's."""
    c, y = _arrays(case)
    m = evaluate(c, y, convention=conv)
    tu = conv == "torch-uncertainty"
    expected = AUGRC_TORCH_UNCERTAINTY[case] if tu else EXACT[case]["augrc"]
    assert_value(m.augrc, expected, f"{case} {conv} augrc")
    assert_value(m.auroc, EXACT[case]["auroc"], f"{case} {conv} auroc")
    assert_value(m.fpr_at_95tpr, EXACT[case]["fpr"], f"{case} {conv} fpr")


def test_case_c_rc_curve():
    c, y = _arrays("C")
    curve = rc_curve(c, y)
    np.testing.assert_allclose(curve.coverage, [0.25, 0.5, 0.75, 1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(curve.risk, [1 / 3, 1 / 3, 1 / 3, 0.5], rtol=0, atol=1e-15)


# ---- oracle per convention: the lead's two-block definition ----------------------------------
ORACLE_C = {  # correct = 1 0 1 0 -> ideal confidence 1 1 0 0 (two blocks of two)
    "lsfix": F(5, 24),  # r = 0 0 1/3 1/2
    "xia": F(5, 24) - F(1, 16),  # G - q/(2n)
    # fd-shifts' own analytic oracle (the two-block chord would be q^2/2 = 1/8)
    "fd-shifts": 0.5 + 0.5 * math.log(0.5 + 2.0 ** -52),
    "torch-uncertainty": (F(5, 24) - F(1, 2) / 8) / F(3, 4),  # r_1 = 0
}


@pytest.mark.parametrize("conv", COLUMNS)
def test_case_c_oracle_every_convention(conv):
    c, y = _arrays("C")
    assert R.oracle_aurc(y, conv) == ORACLE_C[conv]
    m = evaluate(c, y, convention=conv)
    assert_value(m.oracle_aurc, ORACLE_C[conv], f"oracle {conv}")
    assert_value(m.eaurc, EXACT["C"][conv] - ORACLE_C[conv], f"eaurc {conv}")
    const = {"lsfix": F(1, 2), "xia": F(1, 2) - F(1, 16), "fd-shifts": F(1, 2),
             "torch-uncertainty": F(1, 2)}[conv]
    assert R.constant_aurc(y, conv) == const
    # NAURC's reference is q in every convention (Cattelan & Silva's N_AURC denominator)
    expected_naurc = (EXACT["C"][conv] - ORACLE_C[conv]) / (F(1, 2) - ORACLE_C[conv])
    assert_value(m.naurc, expected_naurc, f"naurc {conv}")


# ---- n = 1 -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ok", "conv", "expected"),
    [
        (True, "lsfix", F(0)), (True, "xia", F(0)), (True, "fd-shifts", F(0)),
        (False, "lsfix", F(1)), (False, "xia", F(1, 2)), (False, "fd-shifts", F(1)),
    ],
)
def test_single_sample(ok, conv, expected):
    m = evaluate(np.array([0.5]), np.array([ok]), convention=conv)
    assert_value(m.aurc, expected, f"n=1 {conv}")
    assert math.isnan(m.auroc) and "auroc" in dict(m.undefined)
    assert math.isnan(m.naurc) and "naurc" in dict(m.undefined)


@pytest.mark.parametrize("ok", [True, False])
def test_torch_uncertainty_single_sample_is_undefined(ok):
    m = evaluate(np.array([0.5]), np.array([ok]), convention="torch-uncertainty")
    assert math.isnan(m.aurc)
    assert "aurc" in dict(m.undefined)
    assert dict(m.undefined)["aurc"].strip()
    assert math.isnan(aurc(np.array([0.5]), np.array([ok]), "torch-uncertainty"))
    # what is built on it is undefined too
    for name in ("oracle_aurc", "eaurc", "naurc"):
        assert math.isnan(getattr(m, name)), name
        assert name in dict(m.undefined), name


# ---- operating points: exact decimal arithmetic ----------------------------------------------
# n = 10 distinct confidences, errors at ranks 3, 8, 9: E = 0 0 1 1 1 1 1 2 3 3
TEN_CONF = np.arange(10, 0, -1, dtype=np.float64) / 10
TEN_OK = np.array([1, 1, 0, 1, 1, 1, 1, 0, 0, 1], dtype=bool)


def test_ten_case_reference():
    E = R.expected_errors(TEN_CONF, TEN_OK)
    assert E == [0, 0, 0, 1, 1, 1, 1, 1, 2, 3, 3]


@pytest.mark.parametrize(
    ("target", "k", "risk"),
    [
        (0.7, 7, F(1, 7)),
        (0.1, 1, F(0)),
        (0.25, 3, F(1, 3)),  # ceil(2.5) = 3
        (0.3, 3, F(1, 3)),
        (0.8, 8, F(2, 8)),
        (0.81, 9, F(3, 9)),
        (1.0, 10, F(3, 10)),
        (0.01, 1, F(0)),
    ],
)
def test_risk_at_coverage_exact(target, k, risk):
    m = evaluate(TEN_CONF, TEN_OK, coverages=(target,))
    (pt,) = m.risk_at_coverage
    assert pt.target == target
    assert pt.k == k
    assert_value(pt.coverage, F(k, 10), "coverage")
    assert_value(pt.risk, risk, "risk")


def test_risk_at_coverage_ceil_is_exact_decimal():
    """0.28 * 25 is 7.000000000000001 in float; ceil must give 7, the decimal's ceil."""
    assert 0.28 * 25 > 7  # the float trap this test is about
    conf = np.arange(25, 0, -1, dtype=np.float64)
    ok = np.ones(25, dtype=bool)
    ok[7] = False  # the 8th sample is wrong: risk at k=7 is 0, at k=8 is 1/8
    m = evaluate(conf, ok, coverages=(0.28, 0.56))
    assert [p.k for p in m.risk_at_coverage] == [7, 14]
    assert_value(m.risk_at_coverage[0].risk, F(0), "risk@0.28")
    assert_value(m.risk_at_coverage[0].coverage, F(7, 25), "coverage@0.28")
    assert_value(m.risk_at_coverage[1].risk, F(1, 14), "risk@0.56")


@pytest.mark.parametrize(
    ("target", "k"),
    [
        (0.25, 8),  # E_8/8 = 1/4 exactly counts; E_9/9 = 1/3, E_10/10 = 3/10 do not
        (0.2, 7),  # E_7/7 = 1/7; E_8/8 = 1/4 > 1/5
        (0.0, 2),
        (1.0, 10),
        (0.33, 10),  # E_9/9 = 1/3 > 0.33 but E_10/10 = 0.3 <= 0.33: the largest k wins
    ],
)
def test_coverage_at_risk_exact(target, k):
    m = evaluate(TEN_CONF, TEN_OK, risks=(target,))
    (pt,) = m.coverage_at_risk
    E = R.expected_errors(TEN_CONF, TEN_OK)
    assert pt.target == target
    assert pt.k == k
    assert_value(pt.coverage, F(k, 10), "coverage")
    assert_value(pt.risk, E[k] / k, "risk")


def test_coverage_at_risk_decimal_target_exact():
    """rho = 0.3 as written is 3/10; E_10/10 = 3/10 counts (the double 0.3 is below 3/10).

    docs/metrics.md says "E_k/k <= rho", compared exactly with the decimal as written.
    """
    assert F(0.3) < F(3, 10)
    m = evaluate(TEN_CONF, TEN_OK, risks=(0.3,))
    (pt,) = m.coverage_at_risk
    assert pt.k == 10
    assert_value(pt.coverage, F(1), "coverage")
    assert_value(pt.risk, F(3, 10), "risk")


def test_coverage_at_risk_none_reachable():
    conf = np.array([0.9, 0.5, 0.1])
    ok = np.array([False, True, True])
    m = evaluate(conf, ok, risks=(0.2,))
    (pt,) = m.coverage_at_risk
    assert pt.k == 0
    assert pt.coverage == 0.0
    assert math.isnan(pt.risk)


def test_coverage_at_risk_inside_tie_block():
    """The tie-expected curve may be entered mid-block: block of 4 with 1 error, E_k = k/4."""
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.1, 0.1])
    ok = np.array([True, False, True, True, False, False])
    # E = 0 1/4 1/2 3/4 1 2 3 ; r = 1/4 1/4 1/4 1/4 2/5 1/2
    m = evaluate(conf, ok, risks=(0.25, 0.4, 0.1), coverages=(0.5, 1 / 6))
    assert [p.k for p in m.coverage_at_risk] == [4, 5, 0]
    assert [p.k for p in m.risk_at_coverage] == [3, 1]
    assert_value(m.risk_at_coverage[0].risk, F(1, 4), "risk@0.5")
    assert_value(m.risk_at_coverage[1].risk, F(1, 4), "risk@1/6")

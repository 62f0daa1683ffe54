"""Hypothesis properties every metric must have, in every convention.

* permutation invariance (input order never matters; ties are averaged, not broken);
* invariance under strictly increasing transforms of the confidence;
* oracle <= AURC <= 1; E-AURC >= 0; NAURC >= 0 where defined;
* the exact AUGRC / AUROC identity of docs/metrics.md, on tied data;
* all-correct / all-wrong inputs: AURC defined, AUROC and FPR@95TPR NaN with a reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import aurc, evaluate, rc_curve

from . import reference as R
from ._compare import metrics_tuple

CONVENTIONS = R.CONVENTIONS
COVERAGES = (0.1, 0.28, 0.5, 0.7, 1.0)
RISKS = (0.0, 0.1, 0.25, 0.3, 1.0)
SETTINGS = settings(max_examples=120, deadline=None)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def scored(draw, min_n: int = 1, max_n: int = 30):
    """(confidence, correct): confidences drawn from few distinct values, so ties abound."""
    n = draw(st.integers(min_n, max_n))
    n_levels = draw(st.one_of(st.integers(1, 3), st.integers(1, n)))
    levels = draw(st.lists(finite, min_size=n_levels, max_size=n_levels, unique=True))
    idx = draw(st.lists(st.integers(0, n_levels - 1), min_size=n, max_size=n))
    p = draw(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]))
    flips = draw(st.lists(st.floats(0, 1, exclude_max=True), min_size=n, max_size=n))
    conf = np.array([levels[i] for i in idx], dtype=np.float64)
    correct = np.array([f < p for f in flips], dtype=bool)
    if draw(st.booleans()):  # fully free correctness too
        correct = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return conf, correct


def _rank_transform(conf: np.ndarray, new_levels: np.ndarray) -> np.ndarray:
    """Map the i-th smallest distinct confidence to new_levels[i] (strictly increasing)."""
    uniq = np.unique(conf)
    assert new_levels.shape == uniq.shape
    assert np.all(np.diff(new_levels) > 0), "transform must be strictly increasing"
    return new_levels[np.searchsorted(uniq, conf)]


TRANSFORMS = {
    "exp_of_rank": lambda m, data: np.exp(np.arange(m) / max(m, 1) * 5.0),
    "cubic_of_rank": lambda m, data: (lambda x: x**3 + x)(np.arange(m, dtype=np.float64) - m / 2),
    "affine_of_rank": lambda m, data: 1e-3 * np.arange(m) - 7.0,
    "huge_spacing": lambda m, data: np.linspace(-1e300, 1e300, m) if m > 1 else np.zeros(1),
    "tiny_spacing": lambda m, data: 1.0 + np.arange(m) * 2.0**-50,
    "random_increments": lambda m, data: np.cumsum(
        data.draw(st.lists(st.floats(1e-6, 1e6), min_size=m, max_size=m))
    ) - 1e3,
    "float32_levels": lambda m, data: np.arange(m, dtype=np.float32),
}


# --------------------------------------------------------------------------------------------
@SETTINGS
@given(scored(), st.data(), st.sampled_from(CONVENTIONS))
def test_permutation_invariance(case, data, conv):
    conf, correct = case
    perm = np.array(data.draw(st.permutations(range(len(conf)))), dtype=np.intp)
    a = evaluate(conf, correct, convention=conv, coverages=COVERAGES, risks=RISKS)
    b = evaluate(conf[perm], correct[perm], convention=conv, coverages=COVERAGES, risks=RISKS)
    assert metrics_tuple(a) == metrics_tuple(b)
    x, y = aurc(conf, correct, conv), aurc(conf[perm], correct[perm], conv)
    assert (math.isnan(x) and math.isnan(y)) or x == y
    ca, cb = rc_curve(conf, correct), rc_curve(conf[perm], correct[perm])
    np.testing.assert_array_equal(ca.coverage, cb.coverage)
    np.testing.assert_array_equal(ca.risk, cb.risk)


@SETTINGS
@given(scored(), st.data(), st.sampled_from(CONVENTIONS), st.sampled_from(sorted(TRANSFORMS)))
def test_strictly_increasing_transform_invariance(case, data, conv, name):
    conf, correct = case
    m = len(np.unique(conf))
    new = np.asarray(TRANSFORMS[name](m, data))
    conf2 = _rank_transform(conf, new)
    assert len(np.unique(conf2)) == m
    a = evaluate(conf, correct, convention=conv, coverages=COVERAGES, risks=RISKS)
    b = evaluate(conf2, correct, convention=conv, coverages=COVERAGES, risks=RISKS)
    assert metrics_tuple(a) == metrics_tuple(b)


@SETTINGS
@given(scored(), st.sampled_from(CONVENTIONS), st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_affine_transform_invariance(case, conv, slope, offset):
    conf, correct = case
    conf2 = slope * conf + offset
    # only where the float affine map keeps distinct values distinct and in order
    order_kept = np.array_equal(np.argsort(conf, kind="stable"), np.argsort(conf2, kind="stable"))
    if not order_kept or len(np.unique(conf2)) != len(np.unique(conf)):
        return
    a = evaluate(conf, correct, convention=conv)
    b = evaluate(conf2, correct, convention=conv)
    assert metrics_tuple(a) == metrics_tuple(b)


@SETTINGS
@given(scored(), st.sampled_from(CONVENTIONS))
def test_oracle_le_aurc_le_one_and_eaurc_nonnegative(case, conv):
    conf, correct = case
    m = evaluate(conf, correct, convention=conv)
    if conv == "torch-uncertainty" and len(conf) == 1:
        assert math.isnan(m.aurc)
        return
    assert m.aurc <= 1.0 + 1e-12
    assert abs(m.eaurc - (m.aurc - m.oracle_aurc)) <= 1e-12
    if conv == "fd-shifts":  # fd-shifts' analytic oracle: E-AURC may be negative, as there
        q = m.error_rate
        assert m.oracle_aurc == q + (1 - q) * math.log(1 - q + 2.0 ** -52)
        assert m.eaurc == m.aurc - m.oracle_aurc
    else:
        assert 0.0 <= m.oracle_aurc <= m.aurc + 1e-12
        assert m.eaurc >= 0.0  # exactly: tiny negative rounding is clipped
    assert aurc(conf, correct, conv) == m.aurc


@SETTINGS
@given(scored(), st.sampled_from(CONVENTIONS))
def test_naurc_defined_exactly_when_q_strictly_between_0_and_1(case, conv):
    conf, correct = case
    m = evaluate(conf, correct, convention=conv)
    q = 1.0 - correct.mean()
    if 0 < m.n_errors < m.n and not math.isnan(m.aurc):
        assert not math.isnan(m.naurc)
        assert m.naurc >= 0.0 or conv == "fd-shifts"
        assert abs(m.naurc - m.eaurc / (m.error_rate - m.oracle_aurc)) <= 1e-12
        assert "naurc" not in dict(m.undefined)
    else:
        assert math.isnan(m.naurc)
        assert "naurc" in dict(m.undefined)
    assert abs(m.error_rate - q) <= 1e-15
    assert abs(m.accuracy - (1 - q)) <= 1e-15


@SETTINGS
@given(scored(min_n=2))
def test_naurc_zero_for_ideal_ranking_one_for_constant(case):
    _, correct = case
    if correct.all() or not correct.any():
        return
    n = len(correct)
    for conv in CONVENTIONS:
        ideal = evaluate(correct.astype(np.float64), correct, convention=conv)
        if conv != "fd-shifts":  # fd-shifts' analytic oracle is not the two-block AURC
            assert abs(ideal.naurc) <= 1e-12, conv
            assert abs(ideal.eaurc) <= 1e-12, conv
        const = evaluate(np.zeros(n), correct, convention=conv)
        if conv == "xia":  # Cattelan & Silva's N_AURC: reference q, constant AURC q - q/(2n)
            q, o = const.error_rate, const.oracle_aurc
            assert abs(const.naurc - (q - q / (2 * n) - o) / (q - o)) <= 1e-12
        else:
            assert abs(const.naurc - 1.0) <= 1e-12, conv


@SETTINGS
@given(scored())
def test_augrc_auroc_identity(case):
    conf, correct = case
    n = len(conf)
    for conv in CONVENTIONS:
        m = evaluate(conf, correct, convention=conv)
        augrc = m.augrc
        if conv == "torch-uncertainty":  # back to the (0, 0)-trapezoid form
            if n == 1:
                assert math.isnan(augrc) and "augrc" in dict(m.undefined)
                continue
            e1 = rc_curve(conf, correct).errors[0]
            augrc = augrc * (1 - 1 / n) + e1 / (2 * n * n)
        assert 0.0 <= augrc <= 1.0
        if math.isnan(m.auroc):
            assert correct.all() or not correct.any()
            continue
        assert 0.0 <= m.auroc <= 1.0
        acc = m.accuracy
        rhs = (1 - m.auroc) * acc * (1 - acc) + 0.5 * (1 - acc) ** 2
        assert abs(augrc - rhs) <= 1e-12, (conv, augrc, rhs)


@SETTINGS
@given(scored())
def test_rc_curve_shape_and_bounds(case):
    conf, correct = case
    n = len(conf)
    curve = rc_curve(conf, correct)
    np.testing.assert_allclose(curve.coverage, np.arange(1, n + 1) / n, rtol=0, atol=1e-15)
    assert np.all(curve.risk >= 0) and np.all(curve.risk <= 1 + 1e-15)
    assert abs(curve.risk[-1] - (1 - correct.mean())) <= 1e-12
    m = evaluate(conf, correct)
    assert abs(m.aurc - float(np.mean(curve.risk))) <= 1e-12  # lsfix = mean selective risk


@SETTINGS
@given(scored())
def test_operating_points_consistent_with_curve(case):
    conf, correct = case
    n = len(conf)
    curve = rc_curve(conf, correct)
    m = evaluate(conf, correct, coverages=COVERAGES, risks=RISKS)
    for pt in m.risk_at_coverage:
        assert 1 <= pt.k <= n
        assert pt.coverage == pytest.approx(pt.k / n, abs=1e-15)
        assert pt.coverage >= pt.target - 1e-15 or pt.k == n
        assert pt.risk == pytest.approx(curve.risk[pt.k - 1], abs=1e-12)
    for pt in m.coverage_at_risk:
        if pt.k == 0:
            assert pt.coverage == 0.0 and math.isnan(pt.risk)
            continue
        assert pt.coverage == pytest.approx(pt.k / n, abs=1e-15)
        assert pt.risk == pytest.approx(curve.risk[pt.k - 1], abs=1e-12)
        assert pt.risk <= pt.target + 1e-12


# --------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.sampled_from(CONVENTIONS), st.integers(1, 4))
def test_all_correct(n, conv, n_levels):
    conf = np.arange(n, dtype=np.float64) % n_levels
    correct = np.ones(n, dtype=bool)
    m = evaluate(conf, correct, convention=conv)
    if conv == "torch-uncertainty" and n == 1:
        assert math.isnan(m.aurc) and "aurc" in dict(m.undefined)
    else:
        assert m.aurc == pytest.approx(0.0, abs=1e-15)
        assert m.oracle_aurc == pytest.approx(0.0, abs=1e-15)
        assert m.eaurc == pytest.approx(0.0, abs=1e-15)
    if conv == "torch-uncertainty" and n == 1:
        assert math.isnan(m.augrc) and "augrc" in dict(m.undefined)
    else:
        assert m.augrc == pytest.approx(0.0, abs=1e-15)
    reasons = dict(m.undefined)
    for name in ("auroc", "fpr_at_95tpr", "naurc"):
        assert math.isnan(getattr(m, name)), name
        assert reasons.get(name, "").strip(), name


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.sampled_from(CONVENTIONS), st.integers(1, 4))
def test_all_wrong(n, conv, n_levels):
    conf = np.arange(n, dtype=np.float64) % n_levels
    correct = np.zeros(n, dtype=bool)
    m = evaluate(conf, correct, convention=conv)
    expected = {"lsfix": 1.0, "xia": 1.0 - 1.0 / (2 * n), "fd-shifts": 1.0,
                "torch-uncertainty": 1.0}[conv]
    if conv == "torch-uncertainty" and n == 1:
        assert math.isnan(m.aurc) and "aurc" in dict(m.undefined)
    else:
        assert m.aurc == pytest.approx(expected, abs=1e-12)
        assert m.oracle_aurc == pytest.approx(expected, abs=1e-12)
        assert m.eaurc == pytest.approx(0.0, abs=1e-12)
    if conv != "torch-uncertainty":
        assert m.augrc == pytest.approx(0.5, abs=1e-12)
    elif n == 1:
        assert math.isnan(m.augrc) and "augrc" in dict(m.undefined)
    else:  # trapezoid of k/n over k = 1..n, divided by 1 - 1/n
        assert m.augrc == pytest.approx((n + 1) / (2 * n), abs=1e-12)
    reasons = dict(m.undefined)
    for name in ("auroc", "fpr_at_95tpr", "naurc"):
        assert math.isnan(getattr(m, name)), name
        assert reasons.get(name, "").strip(), name


def test_metrics_is_frozen():
    import dataclasses

    m = evaluate(np.array([0.2, 0.1]), np.array([True, False]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.aurc = 0.0  # type: ignore[misc]


def test_unknown_convention_is_refused():
    with pytest.raises(ValueError, match="convention|foo"):
        evaluate(np.array([0.2, 0.1]), np.array([True, False]), convention="foo")
    with pytest.raises(ValueError, match="convention|foo"):
        aurc(np.array([0.2, 0.1]), np.array([True, False]), "foo")


def test_length_mismatch_is_refused():
    with pytest.raises(ValueError):
        evaluate(np.array([0.2, 0.1, 0.3]), np.array([True, False]))

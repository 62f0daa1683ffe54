"""lsfix against the brute-force references on many random small cases, heavy ties included.

First the references are checked against each other and against the closed forms printed in
docs/metrics.md (so a bug would have to be in two independent places at once); then every field of
``evaluate``, ``aurc`` and ``rc_curve`` is held to them to 1e-12 in every convention.
"""

from __future__ import annotations

import itertools
import math
import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import aurc, evaluate, rc_curve

from . import reference as R
from ._compare import assert_curve_match, assert_metrics_match, assert_value

CONVENTIONS = R.CONVENTIONS
COVERAGE_TARGETS = (0.01, 0.1, 0.25, 0.28, 0.3, 0.5, 0.56, 0.7, 0.9, 0.95, 1.0)
RISK_TARGETS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.6, 1.0)


def random_case(rng: np.random.Generator, max_n: int = 40):
    """Confidences drawn from a few distinct values (ties are the normal case)."""
    n = int(rng.integers(1, max_n + 1))
    kind = rng.integers(0, 4)
    if kind == 0:
        n_levels = 1
    elif kind == 1:
        n_levels = int(rng.integers(1, 4))
    elif kind == 2:
        n_levels = int(rng.integers(1, n + 1))
    else:
        n_levels = n  # (almost surely) all distinct
    scale = float(rng.choice([1e-300, 1e-3, 1.0, 1e3, 1e300]))
    levels = rng.normal(size=n_levels) * scale
    conf = rng.choice(levels, size=n)
    p_correct = float(rng.choice([0.0, 0.1, 0.5, 0.8, 1.0]))
    correct = rng.random(n) < p_correct
    return conf.astype(np.float64), correct


def random_targets(rng: np.random.Generator, pool, size=3):
    return tuple(float(x) for x in rng.choice(pool, size=size, replace=True))


# --------------------------------------------------------------------------------------------
# the references agree with each other and with docs/metrics.md's closed forms
# --------------------------------------------------------------------------------------------
small_tied = st.integers(1, 7).flatmap(
    lambda n: st.tuples(
        st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@settings(max_examples=300, deadline=None)
@given(small_tied)
def test_reference_formula_equals_permutation_average(case):
    conf, correct = case
    assert R.expected_errors_by_formula(conf, correct) == R.expected_errors_by_permutation(
        conf, correct
    )


@settings(max_examples=80, deadline=None)
@given(small_tied)
def test_reference_tie_expected_equals_average_over_orderings(case):
    """Averaging the untied metric over every block ordering gives the tie-expected metric."""
    conf, correct = case
    n = len(conf)
    per_block = [
        [ok for c, ok in zip(conf, correct, strict=True) if c == v]
        for v, _, _ in R.blocks(conf, correct)
    ]
    sums = {"lsfix": Fraction(0), "xia": Fraction(0), "torch-uncertainty": Fraction(0),
            "augrc": Fraction(0)}
    count = 0
    for combo in itertools.product(*(itertools.permutations(b) for b in per_block)):
        seq = [ok for block in combo for ok in block]
        distinct = [float(n - i) for i in range(n)]
        for conv in ("lsfix", "xia", "torch-uncertainty"):
            value = R.aurc(distinct, seq, conv)
            if value is not None:
                sums[conv] += value
        sums["augrc"] += R.augrc(distinct, seq)
        count += 1
    for conv in ("lsfix", "xia", "torch-uncertainty"):
        expected = R.aurc(conf, correct, conv)
        if expected is not None:
            assert sums[conv] / count == expected, conv
    assert sums["augrc"] / count == R.augrc(conf, correct)


@settings(max_examples=300, deadline=None)
@given(small_tied)
def test_reference_closed_forms_of_metrics_md(case):
    conf, correct = case
    n = len(conf)
    E = R.expected_errors_by_formula(conf, correct)
    r = R.risks(E)
    q = R.error_rate(correct)
    G = sum(r, Fraction(0)) / n
    assert R.aurc(conf, correct, "lsfix") == G
    assert R.aurc(conf, correct, "xia") == G - q / (2 * n)
    if n >= 2:
        assert R.aurc(conf, correct, "torch-uncertainty") == (G - (r[0] + q) / (2 * n)) / (
            1 - Fraction(1, n)
        )
    if R.n_tied(conf) == 0:
        assert R.aurc(conf, correct, "fd-shifts") == G + (r[0] - q) / (2 * n)
    augrc = R.augrc(conf, correct)
    assert augrc == sum((E[k] / n for k in range(1, n + 1)), Fraction(0)) / n - q / (2 * n)
    auroc = R.auroc(conf, correct)
    if auroc is not None:
        acc = 1 - q
        assert augrc == (1 - auroc) * acc * (1 - acc) + Fraction(1, 2) * (1 - acc) ** 2


@settings(max_examples=300, deadline=None)
@given(small_tied)
def test_reference_oracle_is_a_lower_bound(case):
    """The two-block oracle is <= the AURC of every ranking in every convention, and equals
    the distinct "correct first" ranking except in fd-shifts (where it is lower). (fd-shifts
    itself reports its analytic oracle, which is no lower bound: see test_properties.)"""
    conf, correct = case
    for conv in CONVENTIONS:
        a = R.aurc(conf, correct, conv)
        o = R.oracle_aurc_two_blocks(correct, conv)
        if a is None:
            continue
        assert o <= a
        od = R.oracle_aurc_distinct(correct, conv)
        if conv == "fd-shifts":
            assert o <= od
        else:
            assert o == od


def test_reference_constant_aurc_closed_forms():
    for n in range(1, 9):
        for n_err in range(n + 1):
            correct = [i >= n_err for i in range(n)]
            q = Fraction(n_err, n)
            for conv in ("lsfix", "fd-shifts"):
                assert R.constant_aurc(correct, conv) == q
            assert R.constant_aurc(correct, "xia") == q - q / (2 * n)
            if n >= 2:
                assert R.constant_aurc(correct, "torch-uncertainty") == q


# --------------------------------------------------------------------------------------------
# lsfix against the references
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(120))
def test_evaluate_matches_reference_random(seed):
    rng = np.random.default_rng(seed)
    conf, correct = random_case(rng, max_n=6 if seed % 3 == 0 else 40)
    coverages = random_targets(rng, COVERAGE_TARGETS)
    risk_targets = random_targets(rng, RISK_TARGETS)
    for conv in CONVENTIONS:
        m = evaluate(conf, correct, convention=conv, coverages=coverages, risks=risk_targets)
        assert_metrics_match(m, conf, correct, conv, coverages, risk_targets)
        a = aurc(conf, correct, conv)
        ref = R.aurc_from_curve(R.expected_errors(conf, correct), R.block_ends(conf, correct), conv)
        assert_value(a, ref, f"aurc() {conv}")
    assert_curve_match(rc_curve(conf, correct), conf, correct)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.lists(st.sampled_from([-1.0, 0.0, 0.3, 2.5]), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
        )
    ),
    st.sampled_from(CONVENTIONS),
    st.lists(st.sampled_from(COVERAGE_TARGETS), max_size=3),
    st.lists(st.sampled_from(RISK_TARGETS), max_size=3),
)
def test_evaluate_matches_permutation_reference(case, conv, coverages, risk_targets):
    """n <= 6: against the definition itself (every ordering of every tie block)."""
    conf, correct = (np.asarray(case[0]), np.asarray(case[1], dtype=bool))
    m = evaluate(conf, correct, convention=conv, coverages=tuple(coverages),
                 risks=tuple(risk_targets))
    assert_metrics_match(m, conf, correct, conv, tuple(coverages), tuple(risk_targets),
                         use_permutations=True)
    assert_curve_match(rc_curve(conf, correct), conf, correct)


@pytest.mark.parametrize("conv", CONVENTIONS)
@pytest.mark.parametrize("n_err", [0, 1, 3, 5, 6])
def test_all_tied(conv, n_err):
    """One block: every convention collapses to its constant-score value."""
    correct = np.array([i >= n_err for i in range(6)])
    conf = np.full(6, 0.42)
    m = evaluate(conf, correct, convention=conv)
    assert_metrics_match(m, conf, correct, conv, use_permutations=True)
    assert m.n_tied == 6
    assert_value(m.aurc, R.constant_aurc(correct, conv), "constant")


@pytest.mark.parametrize("conv", CONVENTIONS)
def test_float32_confidence(conv):
    rng = np.random.default_rng(7)
    conf = rng.choice(np.array([0.1, 0.7, 0.9, 1.0], dtype=np.float32), size=30)
    correct = rng.random(30) < 0.7
    m = evaluate(conf, correct, convention=conv, coverages=(0.5,), risks=(0.1,))
    assert_metrics_match(m, conf.astype(np.float64), correct, conv, (0.5,), (0.1,))


def test_saturated_msp_like_data():
    """~half of the samples share confidence 1.0 (float32 MSP saturation)."""
    rng = np.random.default_rng(3)
    n = 300
    conf = np.where(rng.random(n) < 0.5, 1.0, rng.random(n))
    correct = rng.random(n) < np.where(conf == 1.0, 0.95, 0.6)
    for conv in CONVENTIONS:
        m = evaluate(conf, correct, convention=conv, coverages=(0.3, 0.5, 0.9),
                     risks=(0.02, 0.05, 0.1))
        assert_metrics_match(m, conf, correct, conv, (0.3, 0.5, 0.9), (0.02, 0.05, 0.1))
    assert_curve_match(rc_curve(conf, correct), conf, correct)


def test_larger_n_accumulation():
    """n = 1500 with heavy ties: float accumulation still within 1e-12 of the exact value."""
    rng = np.random.default_rng(11)
    n = 1500
    conf = rng.integers(0, 25, size=n).astype(np.float64) / 7
    correct = rng.random(n) < 0.3 + 0.6 * (conf / conf.max())
    t0 = time.perf_counter()
    for conv in CONVENTIONS:
        m = evaluate(conf, correct, convention=conv, coverages=(0.5, 0.9), risks=(0.05, 0.2))
        assert_metrics_match(m, conf, correct, conv, (0.5, 0.9), (0.05, 0.2))
    assert time.perf_counter() - t0 < 30
    assert math.isfinite(aurc(conf, correct))

"""Bootstrap intervals, held loosely: determinism, sanity, and the exact paired null."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lsfix.core import bootstrap_ci, evaluate, paired_bootstrap

from . import reference as R


def _data(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    conf = np.round(rng.random(n), 2)  # ties
    correct = rng.random(n) < 0.3 + 0.6 * conf
    return conf, correct


def test_bootstrap_is_deterministic_given_seed():
    conf, correct = _data(0)
    a = bootstrap_ci(conf, correct, n_boot=200, seed=42)
    b = bootstrap_ci(conf, correct, n_boot=200, seed=42)
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name], b[name]
        for field in ("estimate", "low", "high", "n_boot", "n_valid"):
            u, v = getattr(x, field), getattr(y, field)
            assert u == v or (math.isnan(u) and math.isnan(v)), (name, field)


def test_bootstrap_seed_matters():
    conf, correct = _data(0)
    a = bootstrap_ci(conf, correct, n_boot=200, seed=1)["aurc"]
    b = bootstrap_ci(conf, correct, n_boot=200, seed=2)["aurc"]
    assert (a.low, a.high) != (b.low, b.high)


@pytest.mark.parametrize("conv", R.CONVENTIONS)
def test_bootstrap_interval_contains_estimate(conv):
    conf, correct = _data(1)
    out = bootstrap_ci(conf, correct, n_boot=300, seed=0, convention=conv)
    m = evaluate(conf, correct, convention=conv)
    assert "aurc" in out
    for name, iv in out.items():
        assert iv.n_boot == 300
        assert 0 <= iv.n_valid <= 300
        expected = getattr(m, name)
        assert iv.estimate == pytest.approx(expected, abs=1e-12), name
        if name in ("aurc", "eaurc", "augrc", "auroc", "naurc", "accuracy"):
            assert iv.n_valid == 300, name
            assert iv.low <= iv.estimate <= iv.high, (name, iv)
        if not math.isnan(iv.low):
            assert iv.low <= iv.high, name
    exact = R.aurc(conf.tolist(), correct.tolist(), conv)
    assert out["aurc"].estimate == pytest.approx(float(exact), abs=1e-12)


def test_bootstrap_wider_at_higher_level():
    conf, correct = _data(2)
    lo = bootstrap_ci(conf, correct, n_boot=400, seed=0, level=0.5)["aurc"]
    hi = bootstrap_ci(conf, correct, n_boot=400, seed=0, level=0.99)["aurc"]
    assert hi.low <= lo.low <= lo.high <= hi.high


def test_bootstrap_auroc_undefined_when_all_correct():
    conf = np.linspace(0, 1, 50)
    correct = np.ones(50, dtype=bool)
    out = bootstrap_ci(conf, correct, n_boot=50, seed=0)
    assert out["aurc"].low == 0.0 and out["aurc"].high == 0.0
    if "auroc" in out:
        assert math.isnan(out["auroc"].estimate)
        assert out["auroc"].n_valid == 0


@pytest.mark.parametrize("metric", ["aurc", "augrc", "auroc"])
def test_paired_identical_inputs_is_exactly_zero(metric):
    conf, correct = _data(3)
    d = paired_bootstrap(conf, correct, conf, correct, n_boot=200, seed=0, metric=metric)
    assert d.estimate == 0.0
    assert d.low == 0.0 and d.high == 0.0


def test_paired_estimate_is_b_minus_a_and_deterministic():
    conf, correct = _data(4)
    rng = np.random.default_rng(9)
    conf_b = np.where(correct, conf + 0.3, conf) + rng.normal(scale=0.01, size=conf.shape)
    d1 = paired_bootstrap(conf, correct, conf_b, correct, n_boot=300, seed=5)
    d2 = paired_bootstrap(conf, correct, conf_b, correct, n_boot=300, seed=5)
    assert (d1.estimate, d1.low, d1.high) == (d2.estimate, d2.low, d2.high)
    ok = correct.tolist()
    expected = float(R.aurc(conf_b.tolist(), ok) - R.aurc(conf.tolist(), ok))
    assert d1.estimate == pytest.approx(expected, abs=1e-12)
    assert d1.estimate < 0  # B ranks correct samples higher: lower AURC
    assert d1.low <= d1.estimate <= d1.high
    assert d1.high < 0  # a clear improvement: the interval excludes 0
    if hasattr(d1, "p_value"):
        assert 0.0 <= d1.p_value <= 0.05


def test_paired_swapped_is_negated():
    conf, correct = _data(5)
    conf_b = np.round(conf**2, 3)
    ab = paired_bootstrap(conf, correct, conf_b, correct, n_boot=200, seed=3)
    ba = paired_bootstrap(conf_b, correct, conf, correct, n_boot=200, seed=3)
    assert ab.estimate == pytest.approx(-ba.estimate, abs=1e-15)
    assert ab.low == pytest.approx(-ba.high, abs=1e-12)
    assert ab.high == pytest.approx(-ba.low, abs=1e-12)

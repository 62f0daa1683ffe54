"""Paired **cluster** (image-level) bootstrap: ``paired_bootstrap(..., clusters=)`` against a
slow reference that rebuilds each replicate by concatenating the drawn clusters' rows, and its
properties (one row per cluster is the row bootstrap; the same draw for both scores)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import evaluate, paired_bootstrap
from lsfix.errors import InputError


def _slow_paired(ca: np.ndarray, cb: np.ndarray, y: np.ndarray, g: np.ndarray, n_boot: int,
                 seed: int, level: float) -> tuple[float, float, float]:
    """Reference: each replicate's rows by concatenation (both scores the same rows),
    evaluated from scratch; percentiles and the two-sided p-value of the module docstring."""
    rng = np.random.default_rng(seed)
    n_g = int(g.max()) + 1
    diffs = []
    for _ in range(n_boot):
        drawn = rng.integers(0, n_g, n_g)
        rows = np.concatenate([np.flatnonzero(g == k) for k in drawn])
        if rows.size == 0:
            continue
        diffs.append(evaluate(cb[rows], y[rows]).aurc - evaluate(ca[rows], y[rows]).aurc)
    d = np.array([v for v in diffs if v == v])
    lo, hi = np.percentile(d, [50 * (1 - level), 50 * (1 + level)])
    tail = min(int(np.sum(d <= 0)), int(np.sum(d >= 0)))
    return float(lo), float(hi), min(1.0, 2.0 * (tail + 1) / (d.shape[0] + 1))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), n_g=st.integers(1, 6), data=st.data())
def test_matches_slow_reference(seed: int, n_g: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(n_g, 30))
    g = np.array(data.draw(st.lists(st.integers(0, n_g - 1), min_size=n, max_size=n)))
    vals = st.sampled_from([0.1, 0.2, 0.5, 0.9])
    ca = np.array(data.draw(st.lists(vals, min_size=n, max_size=n)))
    cb = np.array(data.draw(st.lists(vals, min_size=n, max_size=n)))
    y = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    got = paired_bootstrap(ca, y, cb, y, n_boot=20, seed=seed, level=0.9, clusters=g)
    lo, hi, p = _slow_paired(ca, cb, y, g, 20, seed, 0.9)
    assert got.low == pytest.approx(lo, rel=1e-12, abs=1e-15)
    assert got.high == pytest.approx(hi, rel=1e-12, abs=1e-15)
    assert got.p_value == pytest.approx(p, rel=1e-12)
    assert got.estimate == pytest.approx(evaluate(cb, y).aurc - evaluate(ca, y).aurc,
                                         rel=1e-12, abs=1e-15)


def test_one_row_per_cluster_is_the_row_bootstrap() -> None:
    rng = np.random.default_rng(3)
    ca, cb = rng.integers(0, 6, 80) / 6.0, rng.random(80)
    y = rng.random(80) < 0.7
    row = paired_bootstrap(ca, y, cb, y, n_boot=40, seed=5, convention="xia")
    clu = paired_bootstrap(ca, y, cb, y, n_boot=40, seed=5, convention="xia",
                           clusters=np.arange(80))
    assert repr(row) == repr(clu)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 500), data=st.data())
def test_same_draw_for_both_scores(seed: int, data: st.DataObject) -> None:
    """Equal scores differ by exactly 0 in every replicate (the same clusters for both), and
    swapping the two scores negates the interval."""
    n = data.draw(st.integers(4, 25))
    g = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    c = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    c2 = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    y = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    same = paired_bootstrap(c, y, c, y, n_boot=15, seed=seed, clusters=g)
    if same.n_valid >= 2:
        assert (same.low, same.high, same.p_value) == (0.0, 0.0, 1.0)
    ab = paired_bootstrap(c, y, c2, y, n_boot=15, seed=seed, clusters=g)
    ba = paired_bootstrap(c2, y, c, y, n_boot=15, seed=seed, clusters=g)
    if ab.n_valid >= 2:
        assert ba.low == pytest.approx(-ab.high, abs=1e-12)
        assert ba.high == pytest.approx(-ab.low, abs=1e-12)
        assert ba.p_value == ab.p_value
    else:
        assert math.isnan(ab.low) and math.isnan(ba.low)


@pytest.mark.parametrize("bad", [np.array([0, 1, -1, 0]), np.array([0.0, 1.0, 1.0, 0.0]),
                                 np.array([0, 1, 1])])
def test_bad_clusters_refused(bad: np.ndarray) -> None:
    c, y = np.array([0.1, 0.2, 0.3, 0.4]), np.array([True, False, True, True])
    with pytest.raises(InputError, match="clusters must be non-negative integers"):
        paired_bootstrap(c, y, c, y, n_boot=3, clusters=bad)

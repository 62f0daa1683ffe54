"""The label-smoothing detector (lsfix.core.ceiling): formulas, a brute-force reference for the
gaps and the bootstrap, synthetic logits with known answers, properties, golden sample data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lsfix.core.ceiling import (
    MIN_ROWS,
    N_BINS,
    SPREAD_THRESHOLD,
    alpha_from_ceiling,
    ceiling_from_alpha,
    estimate_label_smoothing,
    logit_gaps,
)
from lsfix.errors import InputError, UsageError

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- formulas


def test_ceiling_known_values():
    # log((1 - α + α/K) / (α/K)), written out independently of log1p(K(1-α)/α)
    for a, k in ((0.1, 10), (0.2, 10), (0.05, 10), (0.4, 10), (0.1, 1000), (0.6, 2)):
        want = math.log((1 - a + a / k) / (a / k))
        assert ceiling_from_alpha(a, k) == pytest.approx(want, rel=1e-13)
    assert round(ceiling_from_alpha(0.1, 10), 2) == 4.51
    assert round(ceiling_from_alpha(0.2, 10), 2) == 3.71


def test_binary_bce_form_is_k2():
    # BCE targets y(1-α) + α/2: optimum |z| = log((1 - α/2) / (α/2))
    for a in (0.05, 0.1, 0.4, 0.6, 0.9):
        assert ceiling_from_alpha(a, 2) == pytest.approx(math.log((1 - a / 2) / (a / 2)), rel=1e-13)


def test_ceiling_edges():
    assert ceiling_from_alpha(0.0, 10) == math.inf
    assert ceiling_from_alpha(1.0, 10) == 0.0
    assert alpha_from_ceiling(math.inf, 10) == 0.0
    assert alpha_from_ceiling(0.0, 10) == 1.0
    assert alpha_from_ceiling(-1.0, 10) == 1.0
    assert alpha_from_ceiling(800.0, 10) == 0.0
    assert math.isnan(alpha_from_ceiling(math.nan, 10))


@pytest.mark.parametrize("bad", [(-0.1, 10), (1.05, 10), (0.1, 1), (0.1, 2.5), (0.1, True)])
def test_ceiling_refuses(bad):
    with pytest.raises(UsageError):
        ceiling_from_alpha(*bad)


@given(st.floats(1e-6, 1.0), st.integers(2, 100_000))
def test_alpha_roundtrip(a, k):
    assert alpha_from_ceiling(ceiling_from_alpha(a, k), k) == pytest.approx(a, rel=1e-9, abs=1e-15)


@given(st.floats(0.001, 0.5), st.floats(0.001, 0.5), st.integers(2, 5000))
def test_ceiling_decreasing_in_alpha(a, b, k):
    if a < b:  # non-increasing at any spacing (a and b may be one ulp apart) ...
        assert ceiling_from_alpha(a, k) >= ceiling_from_alpha(b, k)
    if b - a > 1e-9:  # ... and strictly decreasing once the step is above rounding
        assert ceiling_from_alpha(a, k) > ceiling_from_alpha(b, k)


# ---------------------------------------------------------------------------- gaps


def _gaps_brute(z: np.ndarray, to: str) -> list[float]:
    out = []
    for row in z.tolist():
        row = [float(v) for v in row]
        i = max(range(len(row)), key=lambda j: row[j])
        others = [v for j, v in enumerate(row) if j != i]
        out.append(row[i] - (math.fsum(others) / len(others) if to == "mean" else max(others)))
    return out


@pytest.mark.parametrize("to", ["mean", "next"])
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_gaps_match_brute_force(to, chunk):
    rng = np.random.default_rng(3)
    z = np.round(rng.normal(size=(53, 6)) * 3, 1)  # rounding makes ties
    got = logit_gaps(z, to=to, chunk_rows=chunk)
    assert got.dtype == np.float64 and got.shape == (53,)
    np.testing.assert_allclose(got, _gaps_brute(z, to), rtol=0, atol=1e-12)


def test_gaps_single_logit_is_abs():
    z = np.array([-3.0, 0.0, 2.5, -0.25])
    for arr in (z, z[:, None]):
        np.testing.assert_array_equal(logit_gaps(arr), np.abs(z))
        np.testing.assert_array_equal(logit_gaps(arr, to="next"), np.abs(z))


def test_gaps_refuse():
    with pytest.raises(UsageError):
        logit_gaps(np.zeros((3, 4)), to="each")


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(2, 8)),
                  elements=st.floats(-50, 50)),
       st.floats(-100, 100), st.floats(0.01, 100))
def test_gaps_shift_invariant_scale_equivariant(z, shift, scale):
    g = logit_gaps(z)
    assert (g >= 0).all()
    np.testing.assert_allclose(logit_gaps(z + shift), g, atol=1e-9 * (1 + abs(shift)))
    np.testing.assert_allclose(logit_gaps(z * scale), g * scale, rtol=1e-9, atol=1e-9)


def _pct(sorted_vals: list[float], q: float) -> float:
    """Linear-interpolation percentile, by hand (numpy's default method)."""
    pos = q / 100 * (len(sorted_vals) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (pos - lo) * (sorted_vals[hi] - sorted_vals[lo])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_estimates_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    z = np.round(rng.normal(size=(257, 7)) * 2, 2)
    y = np.where(rng.random(257) < 0.8, z.argmax(1), rng.integers(0, 7, 257))
    correct = z.argmax(1) == y
    e = estimate_label_smoothing(z, correct=correct, n_boot=0)
    gaps = sorted(g for g, ok in zip(_gaps_brute(z, "mean"), correct.tolist(), strict=True)
                  if ok)
    import statistics

    med = statistics.median(gaps)
    assert e.n == len(gaps)
    assert e.ceiling == pytest.approx(med, abs=1e-12)
    assert e.spread == pytest.approx((_pct(gaps, 90) - med) / med, rel=1e-12)
    want_alpha = 7 / (math.exp(med) - 1 + 7)
    assert e.alpha == pytest.approx(want_alpha, rel=1e-12)
    assert e.verdict == ("ceiling" if e.spread < SPREAD_THRESHOLD else "no_ceiling")


# ---------------------------------------------------------------------------- synthetic


def _at_ceiling(alpha: float, k: int, n: int, jitter: float, seed: int) -> np.ndarray:
    """Rows whose gap to the mean of the others is c(α, K)·(1 + jitter·N(0,1)); others
    spread a little around their mean (the gap to the mean is set exactly)."""
    rng = np.random.default_rng(seed)
    c = ceiling_from_alpha(alpha, k)
    g = c * (1 + jitter * rng.standard_normal(n))
    z = 0.05 * c * rng.standard_normal((n, k))
    y = rng.integers(0, k, n)
    z[np.arange(n), y] = 0.0
    z[np.arange(n), y] = g + z.sum(1) / (k - 1)
    return z


@pytest.mark.parametrize("alpha,k", [(0.1, 10), (0.2, 10), (0.4, 10), (0.1, 1000), (0.6, 2)])
def test_exact_ceiling_recovers_alpha(alpha, k):
    z = _at_ceiling(alpha, k, 500, 0.0, seed=1)
    e = estimate_label_smoothing(z, n_boot=200)
    assert e.verdict == "ceiling"
    assert e.alpha == pytest.approx(alpha, rel=1e-9)
    assert e.spread == pytest.approx(0.0, abs=1e-9)
    # every replicate's median sits in the bin holding c
    assert e.ceiling_low <= e.ceiling + e.bin_width and e.ceiling_high >= e.ceiling - e.bin_width


@pytest.mark.parametrize("alpha", [0.05, 0.3])
def test_jittered_ceiling_interval_coverage(alpha):
    """Over 30 independent data sets the 95 % interval covers the true α about 95 % of the
    time (binomial: P(fewer than 25 of 30) < 2 % at 95 % coverage)."""
    covered = 0
    for seed in range(30):
        z = _at_ceiling(alpha, 10, 1500, 0.05, seed=1000 + seed)
        e = estimate_label_smoothing(z, n_boot=300, seed=seed)
        assert e.verdict == "ceiling"
        assert e.alpha_low < e.alpha < e.alpha_high
        covered += e.alpha_low <= alpha <= e.alpha_high
    assert covered >= 25


def test_binary_single_logit_ls():
    rng = np.random.default_rng(2)
    c = ceiling_from_alpha(0.6, 2)
    z = np.where(rng.random(3000) < 0.5, -1, 1) * c * (1 + 0.03 * rng.standard_normal(3000))
    e = estimate_label_smoothing(z, n_boot=300)
    assert e.binary and e.k == 2 and e.verdict == "ceiling"
    assert e.alpha == pytest.approx(0.6, abs=0.003)
    assert e.alpha_low < e.alpha < e.alpha_high


def test_cross_entropy_like_has_no_ceiling():
    rng = np.random.default_rng(4)
    n, k = 5000, 10
    g = np.exp(np.log(10) + 0.35 * rng.standard_normal(n))  # log-normal: spread ≈ 0.57
    z = rng.standard_normal((n, k))
    z[:, 0] = g + z[:, 1:].mean(1)
    e = estimate_label_smoothing(z, n_boot=200)
    assert e.verdict == "no_ceiling"
    assert e.spread > SPREAD_THRESHOLD
    assert e.spread_low > SPREAD_THRESHOLD
    assert e.alpha < 1e-3


def test_temperature_moves_ceiling_not_verdict():
    z = _at_ceiling(0.1, 10, 2000, 0.05, seed=9)
    e1 = estimate_label_smoothing(z, n_boot=0)
    e2 = estimate_label_smoothing(z / 2.0, n_boot=0)
    assert e2.ceiling == pytest.approx(e1.ceiling / 2, rel=1e-12)
    assert e2.spread == pytest.approx(e1.spread, rel=1e-9)
    assert e2.verdict == e1.verdict == "ceiling"
    assert e2.alpha > 0.3  # halved gaps read as much stronger smoothing


# ---------------------------------------------------------------------------- bootstrap


def test_bootstrap_matches_row_resampling_reference():
    """The binned multinomial bootstrap against plain row resampling (independent draws, so
    the bounds agree to Monte-Carlo error: a few % of the interval width)."""
    rng = np.random.default_rng(11)
    g = np.exp(1.5 + 0.3 * rng.standard_normal(3000))
    z = np.zeros((3000, 2))
    z[:, 1] = g
    e = estimate_label_smoothing(z, n_boot=2000, seed=1)
    ref_rng = np.random.default_rng(99)
    meds, spreads = [], []
    for _ in range(2000):
        s = g[ref_rng.integers(0, g.size, g.size)]
        q50, q90 = np.percentile(s, [50, 90])
        meds.append(q50)
        spreads.append((q90 - q50) / q50)
    lo, hi = np.percentile(meds, [2.5, 97.5])
    width = hi - lo
    assert abs(e.ceiling_low - lo) < 0.1 * width + e.bin_width
    assert abs(e.ceiling_high - hi) < 0.1 * width + e.bin_width
    slo, shi = np.percentile(spreads, [2.5, 97.5])
    assert abs(e.spread_low - slo) < 0.1 * (shi - slo) + 0.01
    assert abs(e.spread_high - shi) < 0.1 * (shi - slo) + 0.01
    assert e.ceiling == pytest.approx(float(np.median(g)), rel=1e-12)


def test_deterministic_and_seeded():
    z = _at_ceiling(0.1, 10, 1000, 0.1, seed=3)
    a = estimate_label_smoothing(z, n_boot=100, seed=7)
    b = estimate_label_smoothing(z, n_boot=100, seed=7)
    c = estimate_label_smoothing(z, n_boot=100, seed=8)
    assert a == b
    assert (a.ceiling_low, a.ceiling_high) != (c.ceiling_low, c.ceiling_high)


def test_no_boot_gives_nan_bounds():
    e = estimate_label_smoothing(_at_ceiling(0.1, 10, 300, 0.1, seed=3), n_boot=0)
    assert math.isnan(e.alpha_low) and math.isnan(e.ceiling_high) and not math.isnan(e.alpha)
    d = e.to_dict()
    assert d["alpha_low"] is None and d["alpha"] == e.alpha


def test_mode_statistic_finds_the_peak():
    rng = np.random.default_rng(5)
    c = ceiling_from_alpha(0.1, 10)
    # 60 % at the ceiling, 40 % spread below it: the median falls short, the mode does not
    g = np.concatenate([c * (1 + 0.02 * rng.standard_normal(3000)), rng.uniform(0, c, 2000)])
    z = np.zeros((g.size, 2))
    z[:, 1] = g
    mode = estimate_label_smoothing(z, statistic="mode", n_boot=100)
    median = estimate_label_smoothing(z, n_boot=0)
    assert mode.ceiling == pytest.approx(c, rel=0.01)
    assert median.ceiling < 0.99 * c
    assert mode.ceiling_low - mode.bin_width <= mode.ceiling <= mode.ceiling_high + mode.bin_width


# ---------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.05, 20), st.floats(-30, 30))
def test_properties_permutation_shift_scale(seed, scale, shift):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(150, 5)) * rng.uniform(0.5, 4)
    e = estimate_label_smoothing(z, n_boot=0)
    perm = estimate_label_smoothing(z[rng.permutation(150)], n_boot=0)
    assert perm.ceiling == e.ceiling and perm.spread == e.spread
    shifted = estimate_label_smoothing(z + shift, n_boot=0)
    assert shifted.ceiling == pytest.approx(e.ceiling, rel=1e-9, abs=1e-9)
    scaled = estimate_label_smoothing(z * scale, n_boot=0)
    assert scaled.ceiling == pytest.approx(e.ceiling * scale, rel=1e-9)
    assert scaled.spread == pytest.approx(e.spread, rel=1e-7, abs=1e-9)
    assert scaled.verdict == e.verdict or abs(e.spread - SPREAD_THRESHOLD) < 1e-6
    # bigger gaps, weaker smoothing
    if scale > 1:
        assert scaled.alpha <= e.alpha


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 200))
def test_interval_contains_estimate_and_orders(seed, n_boot):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(200, 4)) * 3
    e = estimate_label_smoothing(z, n_boot=n_boot, seed=seed % 1000)
    assert 0 <= e.alpha <= 1
    if n_boot >= 2:
        assert e.ceiling_low <= e.ceiling_high
        assert e.alpha_low <= e.alpha_high
        # replicate medians are medians of resampled gaps: inside the range of the gaps
        g = logit_gaps(z)
        assert g.min() - e.bin_width <= e.ceiling_low
        assert e.ceiling_high <= g.max() + e.bin_width


# ---------------------------------------------------------------------------- edge cases


def test_too_few_rows_and_ties():
    z = _at_ceiling(0.1, 10, MIN_ROWS - 1, 0.1, seed=1)
    e = estimate_label_smoothing(z)
    assert e.verdict == "undetermined" and "rows" in e.reason and math.isnan(e.alpha)
    e = estimate_label_smoothing(np.zeros((300, 3)))
    assert e.verdict == "undetermined" and "tied" in e.reason


def test_correct_mask_selects_rows():
    z = np.concatenate([_at_ceiling(0.1, 10, 400, 0.0, seed=1),
                        _at_ceiling(0.3, 10, 400, 0.0, seed=2)])
    right = np.arange(800) >= 400
    e = estimate_label_smoothing(z, correct=right, n_boot=0)
    assert e.alpha == pytest.approx(0.3) and e.rows_used == "correct" and e.n == 400
    both = estimate_label_smoothing(z, rows=np.arange(800) < 600, correct=right, n_boot=0)
    assert both.n == 200 and both.alpha == pytest.approx(0.3)
    assert estimate_label_smoothing(z, n_boot=0).rows_used == "all"
    with pytest.raises(InputError):
        estimate_label_smoothing(z, correct=right[:5])


def test_rows_mask():
    z = np.concatenate([_at_ceiling(0.1, 10, 400, 0.0, seed=1),
                        _at_ceiling(0.3, 10, 400, 0.0, seed=2)])
    keep = np.arange(800) < 400
    assert estimate_label_smoothing(z, rows=keep, n_boot=0).alpha == pytest.approx(0.1)
    with pytest.raises(InputError):
        estimate_label_smoothing(z, rows=keep[:10])
    with pytest.raises(InputError):
        estimate_label_smoothing(z, rows=keep.astype(int))


@pytest.mark.parametrize("kw", [{"statistic": "mean"}, {"gap": "each"}, {"n_boot": -1},
                                {"n_boot": 1.5}, {"level": 1.0}, {"spread_threshold": 0}])
def test_refuses_bad_options(kw):
    with pytest.raises(UsageError):
        estimate_label_smoothing(np.zeros((200, 3)), **kw)


def test_bin_grid_constant():
    assert N_BINS >= 1024  # resolution: the largest gap / N_BINS


# ---------------------------------------------------------------------------- golden


@pytest.mark.parametrize("tag,rows,verdict,alpha,lo,hi", [
    ("ce", "all", "no_ceiling", 0.0002, 0.0002, 0.0002),
    ("ls01", "all", "ceiling", 0.1125, 0.1104, 0.1142),
    ("ls02", "all", "ceiling", 0.2255, 0.2227, 0.2283),
    ("ce", "correct", "no_ceiling", 0.0001, 0.0001, 0.0002),
    ("ls01", "correct", "ceiling", 0.1028, 0.1010, 0.1046),
    ("ls02", "correct", "ceiling", 0.2123, 0.2103, 0.2148),
])
def test_golden_sample_data(tag, rows, verdict, alpha, lo, hi):
    from lsfix.readers.entry import read as read_predictions

    with read_predictions(str(ROOT / "sample_data" / f"fmnist_{tag}_test.h5")) as pred:
        z = np.asarray(pred.logits)
        y = np.asarray(pred.labels)
    correct = (z.argmax(1) == y) if rows == "correct" else None
    e = estimate_label_smoothing(z, correct=correct)
    assert e.verdict == verdict and e.rows_used == rows
    assert e.n == (10_000 if correct is None else int(correct.sum()))
    assert (round(e.alpha, 4), round(e.alpha_low, 4), round(e.alpha_high, 4)) == (alpha, lo, hi)

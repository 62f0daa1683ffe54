"""Confidence scores against per-row Python references, and their numerics.

The references (``reference.*_row``) use ``math.exp``/``math.log1p``/``math.fsum`` one row at a
time on the float64 value of each logit; lsfix must agree to ~1e-12 whatever the input dtype.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lsfix.core import scores as S

from . import reference as R

RTOL = 1e-12
ATOL = 1e-12

PLAIN = {
    "msp": (S.msp, R.msp_row),
    "max_logit": (S.max_logit, R.max_logit_row),
    "logit_margin": (S.logit_margin, R.logit_margin_row),
    "softmax_margin": (S.softmax_margin, R.softmax_margin_row),
    "neg_entropy": (S.neg_entropy, R.neg_entropy_row),
    "gini": (S.gini, R.gini_row),
    "energy": (S.energy, R.energy_row),
}


def _all_scores():
    """(name, lsfix function of logits, reference function of one row) for every score."""
    out = [(name, f, r) for name, (f, r) in PLAIN.items()]
    for t in (0.5, 2.0):
        out.append((f"energy:T={t}", lambda z, t=t: S.energy(z, temperature=t),
                    lambda row, t=t: R.energy_row(row, t)))
        out.append((f"msp_ts:T={t}", lambda z, t=t: S.msp_ts(z, t),
                    lambda row, t=t: R.msp_ts_row(row, t)))
    for p in range(10):
        out.append((f"pnorm:{p}", lambda z, p=p: S.pnorm(z, p),
                    lambda row, p=p: R.pnorm_row(row, p)))
    return out


ALL = _all_scores()
IDS = [name for name, _, _ in ALL]


def _reference(ref, logits: np.ndarray) -> np.ndarray:
    rows = logits.astype(np.float64)
    if rows.ndim == 1:
        rows = rows[:, None]
    return np.array([ref([float(v) for v in row]) for row in rows], dtype=np.float64)


def _logits(seed: int, n: int, k: int, scale: float, dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * scale
    # constant rows are held by their own tests (test_pnorm_constant_logits_give_zero)
    if n > 1 and k > 2:  # a row whose maximum is tied (not constant)
        top = z[1].max()
        z[1, 0] = top
        z[1, 1] = top
    return z.astype(dtype)


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "f", "ref"), ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(("k", "scale"), [(2, 3.0), (3, 1.0), (10, 5.0), (100, 20.0)])
def test_score_matches_reference(name, f, ref, dtype, k, scale):
    z = _logits(k * 7 + int(scale), 40, k, scale, dtype)
    got = f(z)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float64, got.dtype
    assert got.shape == (40,)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, _reference(ref, z), rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize(("name", "f", "ref"), ALL, ids=IDS)
def test_binary_one_logit_is_zero_and_z(name, f, ref):
    """(N,) and (N, 1) logits are the two logits (0, z)."""
    z = np.array([-30.0, -2.5, -1e-3, 1e-3, 0.7, 4.0, 45.0])  # z = 0: see the next test
    two = np.stack([np.zeros_like(z), z], axis=1)
    expected = f(two)
    np.testing.assert_array_equal(f(z), expected, err_msg=f"{name} (N,)")
    np.testing.assert_array_equal(f(z[:, None]), expected, err_msg=f"{name} (N,1)")
    np.testing.assert_allclose(expected, _reference(ref, two), rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize(("name", "f", "ref"), ALL, ids=IDS)
def test_binary_zero_logit(name, f, ref):
    """z = 0 is the constant row (0, 0): every score is finite and equals the reference."""
    z = np.array([0.0, -0.0, 1.0])
    got = f(z)
    assert np.all(np.isfinite(got)), name
    np.testing.assert_allclose(got, _reference(ref, z), rtol=RTOL, atol=ATOL, err_msg=name)


def test_binary_predictions():
    z = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(S.predictions(z), [0, 0, 1])  # z = 0: tie, first index
    np.testing.assert_array_equal(S.predictions(z[:, None]), [0, 0, 1])


def test_predictions_first_index_on_ties():
    z = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 3.0, 3.0], [0.0, 1.0, 0.5]])
    expected = R.predictions(z.tolist())
    assert expected == [0, 1, 0, 1]
    np.testing.assert_array_equal(S.predictions(z), expected)
    np.testing.assert_array_equal(S.correctness(z, np.array([0, 2, 0, 1])),
                                  [True, False, True, True])


def test_msp_ts_unit_temperature_is_msp():
    z = _logits(5, 30, 7, 4.0, np.float64)
    np.testing.assert_allclose(S.msp_ts(z, 1.0), S.msp(z), rtol=1e-15, atol=1e-15)


def test_msp_is_log_msp():
    z = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    p = np.exp(z[0]) / np.exp(z[0]).sum()
    np.testing.assert_allclose(S.msp(z), [math.log(p.max()), math.log(1 / 3)], rtol=1e-14)


# --------------------------------------------------------------------------------------------
# numerics
# --------------------------------------------------------------------------------------------
def test_msp_ranks_below_double_precision_k2():
    """MSP of [0,-40] and [0,-41] both round to 1.0; log-MSP keeps them apart."""
    z = np.array([[0.0, -40.0], [0.0, -41.0], [0.0, -39.0]])
    assert 1.0 / (1.0 + math.exp(-40.0)) == 1.0  # the trap
    s = S.msp(z)
    assert s[2] < s[0] < s[1] <= 0.0
    np.testing.assert_allclose(s, _reference(R.msp_row, z), rtol=1e-9, atol=0)


def test_msp_ranks_below_double_precision_k1000():
    z = np.full((3, 1000), -45.0)
    z[1] = -46.0
    z[2] = -44.0
    z[:, 17] = 0.0  # the max somewhere in the middle
    assert 999 * math.exp(-45.0) < 1e-16
    s = S.msp(z)
    assert s[2] < s[0] < s[1] <= 0.0
    np.testing.assert_allclose(s, _reference(R.msp_row, z), rtol=1e-9, atol=0)


def test_msp_ranking_survives_in_aurc():
    """The saturated rows must not tie: the wrong one (lower log-MSP) is ranked last."""
    from lsfix.core import evaluate

    z = np.array([[0.0, -41.0], [0.0, -40.0]])
    m = evaluate(S.msp(z), np.array([True, False]))
    assert m.n_tied == 0
    assert m.aurc == pytest.approx(0.25, abs=1e-15)  # r = 0, 1/2


def test_msp_float32_saturation():
    z = np.array([[0.0, -20.0], [0.0, -21.0]], dtype=np.float32)
    assert np.float32(1) / (np.float32(1) + np.exp(np.float32(-20))) == np.float32(1)
    s = S.msp(z)
    assert s.dtype == np.float64 and s[0] < s[1]


@pytest.mark.parametrize("k", [3, 10, 1000])
def test_pnorm_float16_large_logits(k):
    rng = np.random.default_rng(k)
    z = rng.uniform(-60, 60, size=(25, k)).astype(np.float16)
    z[0] = np.float16(60)  # constant row -> 0
    z[1, :] = np.float16(-60)
    z[1, 0] = np.float16(60)  # one-hot extreme
    for p in range(10):
        got = S.pnorm(z, p)
        assert got.dtype == np.float64
        assert np.all(np.isfinite(got)), p
        assert got[0] == 0.0
        np.testing.assert_allclose(got, _reference(lambda r, p=p: R.pnorm_row(r, p), z),
                                   rtol=1e-12, atol=1e-12, err_msg=f"p={p}")


def test_pnorm_huge_float64_logits():
    z = np.array([[1e200, -1e200, 0.0], [3e300, 1e300, -2e300], [1e-300, 0.0, -1e-300]])
    for p in range(10):
        got = S.pnorm(z, p)
        ref = _reference(lambda r, p=p: R.pnorm_row(r, p), z)
        if p == 0:
            np.testing.assert_allclose(got, ref, rtol=1e-12)
            continue
        assert np.all(np.isfinite(got)), p
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0, err_msg=f"p={p}")


@pytest.mark.parametrize("k", [2, 10, 1000])
@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_pnorm_constant_logits_exact_mean(k, dtype):
    """Constant rows whose float mean is exact: 0 for every p, and no 0/0 warning."""
    z = np.array([[3.25] * k, [0.0] * k, [-60.0] * k, [60.0] * k], dtype=dtype)
    for p in range(10):
        np.testing.assert_array_equal(S.pnorm(z, p), np.zeros(len(z)), err_msg=f"p={p}")


@pytest.mark.parametrize("k", [3, 7, 10, 1000])
def test_pnorm_constant_logits_give_zero(k):
    """Constant rows give exactly 0 -- also where the float mean of the row is not exactly the
    constant (0.1 + 0.1 + 0.1 != 0.3), so centring by a rounded mean is not enough: the rounding
    residue then looks like a +-1 pattern and p >= 1 turns it into +-1/K**(1/p)."""
    z = np.array([[0.1] * k, [0.7] * k, [1 / 3] * k, [2.9] * k])
    wrong = {p: S.pnorm(z, p).tolist() for p in range(10)}
    wrong = {p: v for p, v in wrong.items() if any(x != 0.0 for x in v)}
    assert not wrong, f"constant rows, K={k}: nonzero pnorm {wrong}"


def test_pnorm_scale_invariant_for_positive_p():
    z = _logits(9, 20, 6, 2.0, np.float64)
    for p in range(1, 10):
        np.testing.assert_allclose(S.pnorm(8.0 * z, p), S.pnorm(z, p), rtol=1e-13, atol=1e-15)


def test_neg_entropy_with_underflowing_probabilities():
    z = np.array([[0.0, -1000.0, -2000.0], [0.0, -800.0, 5.0], [700.0, -700.0, 0.0],
                  [0.0, 0.0, -1e5]])
    got = S.neg_entropy(z)
    assert np.all(np.isfinite(got))
    assert np.all(got <= 0.0)
    np.testing.assert_allclose(got, _reference(R.neg_entropy_row, z), rtol=1e-12, atol=1e-300)
    assert got[3] == pytest.approx(-math.log(2), rel=1e-14)


@pytest.mark.parametrize(("name", "f", "ref"), ALL, ids=IDS)
def test_every_score_finite_on_extreme_logits(name, f, ref):
    z = np.array([[0.0, -1000.0, -2000.0], [1e4, -1e4, 0.0], [-60.0, 60.0, 60.0]])
    got = f(z)
    assert np.all(np.isfinite(got)), name
    np.testing.assert_allclose(got, _reference(ref, z), rtol=1e-12, atol=1e-12, err_msg=name)


def test_energy_temperature():
    z = np.array([[1.0, 2.0, 3.0], [100.0, -100.0, 0.0]])
    for t in (0.1, 1.0, 3.0):
        np.testing.assert_allclose(S.energy(z, temperature=t),
                                   _reference(lambda r, t=t: R.energy_row(r, t), z), rtol=1e-13)


# --------------------------------------------------------------------------------------------
# temperature scaling
# --------------------------------------------------------------------------------------------
def _synthetic_calibration(seed: int, n: int, k: int, t0: float):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3.0
    logits_t = z / t0
    p = np.exp(logits_t - logits_t.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random((n, 1))
    labels = np.minimum((p.cumsum(axis=1) < u).sum(axis=1), k - 1)
    return z, labels


def test_fit_temperature_recovers_known_temperature():
    z, labels = _synthetic_calibration(0, 20000, 10, 2.0)
    t = S.fit_temperature(z, labels)
    assert isinstance(t, float)
    assert abs(t - 2.0) / 2.0 < 0.05, t


def test_fit_temperature_is_an_nll_minimum():
    z, labels = _synthetic_calibration(1, 3000, 5, 0.7)
    t = S.fit_temperature(z, labels)
    rows = z.tolist()
    at = R.nll(rows, labels.tolist(), t)
    for factor in (0.99, 1.01, 0.9, 1.1):
        assert R.nll(rows, labels.tolist(), t * factor) >= at - 1e-12, factor


def test_fit_temperature_float16_logits():
    z, labels = _synthetic_calibration(2, 4000, 4, 1.5)
    t16 = S.fit_temperature(z.astype(np.float16), labels)
    t64 = S.fit_temperature(z.astype(np.float16).astype(np.float64), labels)
    assert t16 == pytest.approx(t64, rel=1e-9)


def test_fit_temperature_separable_data_returns_the_lower_bound():
    """Every row's label has the largest logit by a margin: the NLL keeps falling as T -> 0,
    so the fit stops at the lower bound T_BOUNDS[0] = 0.01 (exactly), and the reference NLL
    there is below the NLL at T = 1 (issue 19: swapping the branches gave T = 100)."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 500)
    z = rng.normal(0.0, 0.1, (500, 4))
    z[np.arange(500), labels] += 5.0
    t = S.fit_temperature(z, labels)
    assert t == S.T_BOUNDS[0] == 0.01
    rows = z.tolist()
    assert R.nll(rows, labels.tolist(), t) < R.nll(rows, labels.tolist(), 1.0)


def test_fit_temperature_labels_independent_of_logits_return_the_upper_bound():
    """Each logit row appears once with every label (labels carry no information about the
    logits): the NLL falls as T -> infinity (towards the uniform log K), so the fit stops at
    the upper bound T_BOUNDS[1] = 100 (exactly)."""
    rng = np.random.default_rng(4)
    base = rng.normal(0.0, 2.0, (60, 5))
    z = np.repeat(base, 5, axis=0)
    labels = np.tile(np.arange(5), 60)
    t = S.fit_temperature(z, labels)
    assert t == S.T_BOUNDS[1] == 100.0
    rows = z.tolist()
    assert R.nll(rows, labels.tolist(), t) < R.nll(rows, labels.tolist(), 1.0)
    assert R.nll(rows, labels.tolist(), t) == pytest.approx(math.log(5), abs=1e-3)


# --------------------------------------------------------------------------------------------
# MaxLogit-pNorm tuning
# --------------------------------------------------------------------------------------------
def _ref_aurc(scores: np.ndarray, correct: list[bool], convention: str = "lsfix") -> float:
    return float(R.aurc([float(s) for s in scores], correct, convention))


def _check_fit_against_reference(fit, z, labels, grid, convention="lsfix"):
    """The reported grid is the exact AURC of ``pnorm(z, p)``; the choice follows the rule.

    The AURC is taken of lsfix's own scores (held to the per-row reference elsewhere), not of
    the reference scores: some scores have exact mathematical ties (p = 1 is exactly 1/2 for
    every row with a single positive centred logit) that float rounding splits differently
    in two correct implementations, which moves the AURC by far more than 1e-12.
    """
    correct = [p == int(y) for p, y in zip(R.predictions(z.tolist()), labels, strict=True)]
    np.testing.assert_array_equal(S.correctness(z, labels), correct)
    assert [float(p) for p, _ in fit.grid] == [float(p) for p in grid]
    for p, a in fit.grid:
        assert a == pytest.approx(_ref_aurc(S.pnorm(z, p), correct, convention), abs=1e-12), p
    assert fit.msp_aurc == pytest.approx(_ref_aurc(S.msp(z), correct, convention), abs=1e-12)
    # the rule, on the reported grid: lowest AURC, ties -> smallest p; MSP when no worse
    best_a = min(a for _, a in fit.grid)
    best_p = min(p for p, a in fit.grid if a == best_a)
    if fit.msp_aurc <= best_a:
        assert fit.fallback_msp is True and fit.p is None
    else:
        assert fit.fallback_msp is False and fit.p == best_p


def test_tune_pnorm_picks_lowest_aurc():
    rng = np.random.default_rng(4)
    n, k = 400, 8
    z = rng.normal(size=(n, k)) * rng.uniform(0.3, 4.0, size=(n, 1))
    labels = np.where(rng.random(n) < 0.6, z.argmax(axis=1), rng.integers(0, k, n))
    fit = S.tune_pnorm(z, labels)
    _check_fit_against_reference(fit, z, labels, range(10))


def test_tune_pnorm_custom_grid_and_convention():
    rng = np.random.default_rng(5)
    n, k = 200, 5
    z = rng.normal(size=(n, k)) * 2.0
    labels = np.where(rng.random(n) < 0.7, z.argmax(axis=1), rng.integers(0, k, n))
    fit = S.tune_pnorm(z, labels, grid=(0, 2, 5), convention="xia")
    _check_fit_against_reference(fit, z, labels, (0, 2, 5), "xia")


def test_tune_pnorm_prefers_pnorm_when_msp_is_fooled_by_scale():
    """Correct rows: peaked shape, small scale. Wrong rows: flat top, large scale.
    MSP ranks by scale (wrong first); p >= 1 is scale-free and ranks by shape (correct first)."""
    rng = np.random.default_rng(6)
    k = 10
    good = np.zeros((100, k))
    good[:, 0] = 3.0
    good = (good + rng.normal(scale=0.05, size=good.shape)) * 0.5
    bad = np.zeros((100, k))
    bad[:, 0], bad[:, 1] = 1.0, 0.9
    bad = (bad + rng.normal(scale=0.05, size=bad.shape)) * 20.0
    z = np.vstack([good, bad])
    labels = np.concatenate([np.zeros(100, int), np.full(100, 5)])
    fit = S.tune_pnorm(z, labels)
    _check_fit_against_reference(fit, z, labels, range(10))
    assert fit.fallback_msp is False
    assert fit.p is not None and fit.p >= 1


def test_tune_pnorm_falls_back_to_msp_when_msp_ranks_perfectly():
    rng = np.random.default_rng(8)
    k = 6
    good = rng.normal(size=(150, k)) * 6.0  # confident, labelled by their argmax
    bad = rng.normal(size=(150, k)) * 0.2  # near-uniform softmax, labelled wrongly
    good_msp = _reference(R.msp_row, good)
    bad_msp = _reference(R.msp_row, bad)
    keep = good_msp > bad_msp.max()
    good = good[keep]
    z = np.vstack([good, bad])
    labels = np.concatenate([good.argmax(axis=1), (bad.argmax(axis=1) + 1) % k])
    correct = [p == y for p, y in zip(R.predictions(z.tolist()), labels, strict=True)]
    assert R.aurc([float(s) for s in _reference(R.msp_row, z)], correct) == R.oracle_aurc(correct)
    fit = S.tune_pnorm(z, labels)
    _check_fit_against_reference(fit, z, labels, range(10))
    assert fit.fallback_msp is True
    assert fit.p is None


@pytest.mark.parametrize("fallback", [False, True])
def test_pnorm_fit_round_trip(fallback):
    rng = np.random.default_rng(10)
    z = rng.normal(size=(120, 4)) * 2
    labels = rng.integers(0, 4, 120) if not fallback else z.argmax(axis=1)
    fit = S.tune_pnorm(z, labels)
    d = fit.to_dict()
    assert S.PNormFit.from_dict(d) == fit
    assert S.PNormFit.from_dict(json.loads(json.dumps(d))) == fit

"""lsfix.evaluation.fitpolicy: one policy for every way of choosing p (and T)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lsfix.core import PNormFit, fit_temperature, tune_pnorm
from lsfix.errors import UsageError
from lsfix.evaluation.fitpolicy import choose_fit
from lsfix.readers.predictions import predictions_from_arrays


def _ls(seed: int, n: int = 600, k: int = 5, scale: float = 2.5):  # noqa: ANN202
    """Errors with inflated logit norms: pNorm beats MSP (as tests/cli/conftest.ls_logits)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(0, 1, (n, k))
    right = rng.random(n) < 0.8
    pred = np.where(right, y, (y + 1 + rng.integers(0, k - 1, n)) % k)
    z[np.arange(n), pred] += 3.0
    z[~right] *= scale
    return z.astype(np.float32), y


def _pred(name: str, z: np.ndarray, y: np.ndarray):  # noqa: ANN202
    return predictions_from_arrays(name, z, labels=y)


def test_point_rule_is_tune_pnorm() -> None:
    z, y = _ls(0)
    res = choose_fit(_pred("t", *_ls(1)), fit=_pred("v", z, y), select="point")
    want = tune_pnorm(z, y, split={"kind": "file", "file": "v", "n": 600})
    assert res.fit == want and res.kind == "file" and res.selection is None
    assert res.source == "v (600 samples)" and res.point_p == want.p


def test_test_rule_keeps_a_clear_gain_and_reports_stability() -> None:
    z, y = _ls(0, n=3000)
    res = choose_fit(_pred("t", *_ls(1)), fit=_pred("v", z, y), n_boot=200)
    assert res.fit.p == res.point_p is not None and not res.fit.fallback_msp
    sel = res.selection
    assert sel is not None and sel["choice"] == f"pnorm:{res.fit.p:g}"
    assert 0 < sel["stability"] <= 1 and res.fit.split["selection"]["n_boot"] == 200
    assert "significant" in res.describe() and "of replicates" in res.describe()


def test_test_rule_falls_back_on_noise() -> None:
    # a fit set where p only looks better by chance: calibrated logits, few rows
    rng = np.random.default_rng(5)
    n, k = 120, 4
    y = rng.integers(0, k, n)
    z = rng.normal(0, 1, (n, k))
    z[np.arange(n), y] += 1.5
    point = choose_fit(_pred("t", z, y), fit=_pred("v", z, y), select="point")
    tested = choose_fit(_pred("t", z, y), fit=_pred("v", z, y), n_boot=200)
    if point.fit.p is None:
        pytest.skip("the point rule kept MSP here too")
    assert tested.fit.p is None and tested.fit.fallback_msp
    assert tested.point_p == point.fit.p
    assert tested.describe().startswith(f"MSP kept: the best p={point.fit.p:g} has held-out")


def test_fraction_marks_fit_rows_and_fits_t_on_them() -> None:
    z, y = _ls(2)
    pred = _pred("t", z, y)
    res = choose_fit(pred, fit_fraction=0.25, seed=3, temperature=True, n_boot=50)
    assert res.kind == "fraction" and res.fit_mask is not None and res.fit_mask.sum() == 150
    assert res.temperature == fit_temperature(z[res.fit_mask], y[res.fit_mask])
    assert res.fit.split["fraction"] == 0.25 and res.to_dict()["fit_rows"] == 150


def test_fixed_params_and_binary_are_not_tuned() -> None:
    z, y = _ls(3)
    pred = _pred("t", z, y)
    fixed = choose_fit(pred, p=2.0)
    assert fixed.kind == "fixed" and fixed.fit.p == 2.0 and fixed.describe() == "fixed p=2"
    saved = PNormFit(p=3.0, fallback_msp=False, grid=((3.0, 0.1),), msp_aurc=0.2, n_fit=449,
                     split={"kind": "file", "file": "val.h5", "n": 449})
    reused = choose_fit(pred, params=saved)
    assert reused.fit is saved and reused.notes == ()
    assert reused.describe() == "p=3 from a saved fit (tuned on val.h5, 449 rows); not re-tuned"
    zb = np.random.default_rng(0).normal(0, 2, 80).astype(np.float32)
    yb = (zb > 0).astype(np.int64)
    binary = choose_fit(_pred("b", zb, yb), fit_fraction=0.5, temperature=True)
    assert binary.kind == "binary" and binary.fit.p is None and binary.notes == ()
    assert binary.fit.n_fit == 40 and binary.temperature is not None
    assert math.isnan(binary.fit.msp_aurc)


def test_one_way_at_a_time() -> None:
    z, y = _ls(4)
    with pytest.raises(UsageError, match="give only one of"):
        choose_fit(_pred("t", z, y), p=1.0, fit_fraction=0.2)
    with pytest.raises(UsageError, match="nothing to choose p from"):
        choose_fit(_pred("t", z, y))
    with pytest.raises(UsageError, match="--select must be"):
        choose_fit(_pred("t", z, y), p=1.0, select="maybe")

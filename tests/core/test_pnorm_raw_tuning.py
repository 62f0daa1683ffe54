"""Tuning the un-centred MaxLogit-pNorm (``tune_pnorm(..., centred=False)``, ``normalise
--no-centre``) against a slow reference, its properties, and the saved fit that says which
variant it is."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lsfix.core import PNormFit, compute_scores, parse_score, tune_pnorm
from lsfix.core.metrics import aurc
from lsfix.errors import InputError
from tests.core import reference as ref


def _slow_raw(row: list[float], p: float) -> float:
    """``max z / (Σ |z|^p)^(1/p)`` in Python floats, scaled by max |z| (p = 0: max z)."""
    if p == 0:
        return max(row)
    m = max(abs(v) for v in row)
    if m == 0:
        return 0.0
    return (max(row) / m) / math.fsum((abs(v) / m) ** p for v in row) ** (1.0 / p)


def _slow_tune(z: np.ndarray, y: np.ndarray, grid: list[float], convention: str
               ) -> tuple[float | None, list[tuple[float, float]], float]:
    """Reference: per-row Python scores, exact (Fraction) AURC from tests/core/reference.py,
    lowest AURC wins (ties: smallest p), MSP kept when its AURC is <= the best."""
    rows = z.astype(np.float64).tolist()
    correct = [ref._argmax(r) == int(t) for r, t in zip(rows, y.tolist(), strict=True)]
    results = []
    for p in grid:
        conf = [_slow_raw(r, p) for r in rows]
        results.append((p, float(ref.aurc(conf, correct, convention))))
    best_p, best = min(results, key=lambda t: (t[1], t[0]))
    msp_a = float(ref.aurc([ref.msp_row(r) for r in rows], correct, convention))
    return (None if msp_a <= best else best_p), results, msp_a


def _ls_like(seed: int, n: int = 240, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose errors carry larger norms (MSP's ranking broken, pNorm's fixed), with a
    positive offset so that centring matters."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(0.0, 1.0, (n, k))
    z[np.arange(n), y] += rng.normal(2.0, 1.0, n)
    wrong = z.argmax(axis=1) != y
    s = rng.lognormal(0.0, 0.3, n) * np.where(wrong, 2.5, 1.0)
    return z * s[:, None] + 1.5, y


@pytest.mark.parametrize("convention", ["lsfix", "xia"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_slow_reference(seed: int, convention: str) -> None:
    z, y = _ls_like(seed)
    grid = [0.0, 1.0, 2.0, 3.0, 5.0, 8.0]
    fit = tune_pnorm(z, y, grid=grid, convention=convention, centred=False)
    want_p, want_grid, want_msp = _slow_tune(z, y, grid, convention)
    assert fit.centred is False
    assert fit.p == want_p and fit.fallback_msp == (want_p is None)
    assert [p for p, _ in fit.grid] == [p for p, _ in want_grid]
    for (_, got), (_, want) in zip(fit.grid, want_grid, strict=True):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert fit.msp_aurc == pytest.approx(want_msp, rel=1e-12, abs=1e-15)
    assert fit.n_fit == z.shape[0]


def test_differs_from_centred_tuning_on_shifted_logits() -> None:
    z, y = _ls_like(0)
    raw = tune_pnorm(z, y, centred=False)
    centred = tune_pnorm(z, y)
    assert centred.centred is True and raw.centred is False
    assert [a for _, a in raw.grid] != [a for _, a in centred.grid]  # not the same score
    assert raw.p is not None and not raw.fallback_msp  # errors carry larger norms
    assert raw.spec == parse_score(f"pnorm_raw:{raw.p:g}")


finite = st.floats(-30, 30, allow_nan=False, allow_subnormal=False)


@settings(max_examples=60, deadline=None)
@given(z=arrays(np.float64, st.tuples(st.integers(2, 30), st.integers(2, 5)), elements=finite),
       data=st.data())
def test_grid_is_the_fixed_score_and_the_choice_follows_the_rule(z: np.ndarray,
                                                                  data: st.DataObject) -> None:
    n, k = z.shape
    y = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    grid = data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 4.5, 8.0]), min_size=1,
                              max_size=4, unique=True))
    fit = tune_pnorm(z, y, grid=grid, centred=False)
    correct = np.argmax(z, axis=1) == y
    for p, a in fit.grid:  # each grid AURC is the AURC of the fixed score pnorm_raw:p
        spec = parse_score(f"pnorm_raw:{p!r}")
        want = aurc(compute_scores(z, [spec])[spec.name], correct)
        assert a == want or (math.isnan(a) and math.isnan(want))
    best_p, best = min(fit.grid, key=lambda t: (t[1], t[0]))
    msp = aurc(compute_scores(z, [parse_score("msp")])["msp"], correct)
    assert fit.msp_aurc == msp or (math.isnan(msp) and math.isnan(fit.msp_aurc))
    assert fit.fallback_msp == (msp <= best)  # the same MSP fallback rule as centred pNorm
    assert fit.p == (None if fit.fallback_msp else best_p)
    assert fit.spec.family == ("msp" if fit.fallback_msp else "pnorm_raw")


def test_saved_fit_says_which_variant_and_round_trips() -> None:
    z, y = _ls_like(1)
    fit = tune_pnorm(z, y, centred=False)
    d = fit.to_dict()
    assert d["method"] == "maxlogit_pnorm_raw" and d["centred"] is False
    back = PNormFit.from_dict(json.loads(json.dumps(d)))
    assert back == fit and back.centred is False and back.spec == fit.spec
    c = tune_pnorm(z, y).to_dict()
    assert c["method"] == "maxlogit_pnorm" and c["centred"] is True
    old = {k: v for k, v in c.items() if k != "centred"}  # a fit saved before the variant
    assert PNormFit.from_dict(old).centred is True


@pytest.mark.parametrize("bad", [{"centred": "no"}, {"centred": False},
                                 {"method": "maxlogit_pnorm_raw"}])
def test_inconsistent_variant_refused(bad: dict[str, object]) -> None:
    z, y = _ls_like(1)
    d = {**tune_pnorm(z, y).to_dict(), **bad}  # centred fit with a contradicting key
    with pytest.raises(InputError):
        PNormFit.from_dict(d)

"""Un-centred MaxLogit-pNorm (``pnorm_raw:P``) against a slow reference and its properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lsfix.core import compute_scores, max_logit, parse_score, pnorm
from lsfix.errors import UsageError


def _slow(row: list[float], p: float) -> float:
    """``max z / (Σ |z|^p)^(1/p)`` in Python floats, scaled by max |z| (p = 0: max z)."""
    if p == 0:
        return max(row)
    m = max(abs(v) for v in row)
    if m == 0:
        return 0.0
    s = math.fsum((abs(v) / m) ** p for v in row)
    return (max(row) / m) / s ** (1.0 / p)


def _raw(z: np.ndarray, p: float) -> np.ndarray:
    spec = parse_score(f"pnorm_raw:{p:g}")
    return compute_scores(z, [spec])[spec.name]


def test_hand_values() -> None:
    z = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, -2.0], [1.0, 1.0]])
    assert _raw(z, 2).tolist() == [0.8, 0.0, -1 / math.sqrt(5), 1 / math.sqrt(2)]
    assert _raw(z, 1).tolist() == [4 / 7, 0.0, -1 / 3, 0.5]
    assert np.array_equal(_raw(z, 0), max_logit(z))


def test_name_params_and_refusals() -> None:
    spec = parse_score("pnorm_raw:8")
    assert spec.name == "pnorm_raw_p8" and spec.params() == {"p": 8.0, "centred": False}
    with pytest.raises(UsageError, match="pnorm_raw needs p"):
        parse_score("pnorm_raw")
    with pytest.raises(UsageError, match="p must be a finite number >= 0"):
        parse_score("pnorm_raw:-1")


finite = st.floats(-50, 50, allow_nan=False, allow_subnormal=False)


@settings(max_examples=150, deadline=None)
@given(z=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 7)), elements=finite),
       p=st.sampled_from([0.0, 1.0, 2.0, 3.5, 8.0]))
def test_matches_slow_reference(z: np.ndarray, p: float) -> None:
    got = _raw(z, p)
    want = [_slow(row, p) for row in z.tolist()]
    assert np.allclose(got, want, rtol=1e-12, atol=1e-15)


@settings(max_examples=100, deadline=None)
@given(z=arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)), elements=finite),
       c=st.floats(0.01, 100))
def test_scale_invariant_not_shift_invariant_and_equals_pnorm_on_centred_rows(
        z: np.ndarray, c: float) -> None:
    assert np.allclose(_raw(z * c, 8), _raw(z, 8), rtol=1e-12, atol=1e-15)
    assume(bool(np.all(np.ptp(z, axis=1) > 1e-3)))  # pnorm scores constant rows exactly 0
    centred = z - z.mean(axis=1, keepdims=True)
    assert np.allclose(_raw(centred, 2), pnorm(z, 2), rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(_raw(z, 8)) <= 1.0 + 1e-12)


def test_float16_and_huge_logits_do_not_overflow() -> None:
    z = np.array([[60000.0, 1.0, -60000.0]], dtype=np.float16)
    assert np.isfinite(_raw(z, 9)).all()
    big = np.array([[1e300, 1e299, -1e300]])
    assert _raw(big, 8)[0] == pytest.approx(_slow(big[0].tolist(), 8), rel=1e-12)

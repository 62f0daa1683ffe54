"""msp of (K, P) dense pieces (lsfix.core.densescores) equals the row kernels bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from lsfix.core import compute_scores, parse_score
from lsfix.core.densescores import msp_columns, row_sum_order
from lsfix.core.source import ArrayRows


@pytest.mark.parametrize("k", [1, 2, 5, 7, 8, 9, 16, 19, 21, 64, 128, 129, 300, 1000])
def test_row_sum_order_is_numpys_row_sum(k):
    rng = np.random.default_rng(k)
    w = rng.random((50, k)) * np.exp(rng.normal(size=(50, k)) * 6)
    want = np.add.reduce(w, axis=1)
    got = row_sum_order(np.ascontiguousarray(w.T), np.empty(50))
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("k", [2, 3, 8, 19, 150])  # K = 1 is read as binary (0, z)
def test_msp_columns_equal_row_kernels(dtype, k):
    rng = np.random.default_rng(k)
    z = (rng.normal(size=(2000, k)) * rng.choice([0.01, 1, 30, 300], (2000, 1))).astype(dtype)
    z[:100] = np.round(z[:100])  # exact ties, repeated maxima
    z[100:120] = z[100:120, :1]  # every logit equal
    if dtype == np.float64:
        z[120:130] *= 1e300
    labels = rng.integers(0, k, 2000)
    want = compute_scores(ArrayRows(z), [parse_score("msp")], labels=labels)
    generic = compute_scores(z.astype(np.float64), [parse_score("msp")], chunk_rows=333)
    msp, arg, finite = msp_columns(np.asarray(z.T))  # a strided (K, P) view
    assert finite
    assert msp.tobytes() == want["msp"].tobytes() == generic["msp"].tobytes()
    np.testing.assert_array_equal(arg == labels, want["_correct"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_piece_is_flagged(bad):
    z = np.zeros((4, 10), np.float32)
    z[2, 3] = bad
    assert not msp_columns(z)[2]

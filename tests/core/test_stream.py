"""The one-pass msp kernel equals the general chunked path bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lsfix.core import ScoreSpec, compute_scores
from lsfix.core.rowblocks import block_rows_for, piece_rows_for
from lsfix.core.source import ArrayRows
from lsfix.core.stream import can_stream, msp_stream
from lsfix.errors import InputError


def _general(z: np.ndarray, labels: np.ndarray | None) -> dict[str, np.ndarray]:
    # chunk_rows forces the general _Chunk path (the kernel runs only without it)
    return compute_scores(z, [ScoreSpec("msp")], labels=labels, chunk_rows=7)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("k", [2, 3, 1000])
def test_kernel_is_bit_identical(dtype, k):
    rng = np.random.default_rng(k)
    z = (rng.normal(size=(1500, k)) * 8).astype(dtype)
    z[3, :2] = z[3].max()  # a tie at the maximum: the first one is excluded
    z[4] = 0  # a constant row
    y = rng.integers(0, k, 1500)
    src = ArrayRows(z)
    assert can_stream(src)
    got, corr = msp_stream(src, y)
    want = _general(z, y)
    np.testing.assert_array_equal(got, want["msp"])
    np.testing.assert_array_equal(corr, want["_correct"])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=40),
                  elements=st.floats(-1e4, 1e4, width=32)))
def test_kernel_matches_the_general_path_on_any_finite_logits(z):
    got, _ = msp_stream(ArrayRows(z))
    np.testing.assert_array_equal(got, _general(z, None)["msp"])


def test_kernel_reads_hdf5_in_storage_aligned_blocks(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5000, 37)).astype(np.float32)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("logits", data=z, chunks=(300, 37))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        src = ArrayRows(f["logits"])
        assert block_rows_for(37, src.storage_rows, piece_rows_for(37)) % 300 == 0
        got, _ = msp_stream(src)
    np.testing.assert_array_equal(got, _general(z, None)["msp"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_kernel_refuses_non_finite_logits(bad):
    z = np.zeros((100, 4), np.float32)
    z[37, 2] = bad
    z[80, 1] = bad
    with pytest.raises(InputError, match=r"2 non-finite logit value\(s\).*first in row 37"):
        msp_stream(ArrayRows(z))


def test_huge_finite_logits_are_not_taken_for_non_finite():
    z = np.full((10, 4), 3e38, np.float32)  # the float32 row sum overflows; values are finite
    z[:, 0] = 0
    got, _ = msp_stream(ArrayRows(z))
    np.testing.assert_array_equal(got, _general(z, None)["msp"])


def test_saturated_rows_still_rank_apart_against_long_double():
    """MSP 1 - e^-45 vs 1 - e^-46 (both 1.0 in float64) keep their order and value."""
    z = np.full((3, 1000), -45.0, np.float32)
    z[1] = -46.0
    z[2] = -44.0
    z[:, 17] = 0.0
    got, _ = msp_stream(ArrayRows(z))
    assert got[2] < got[0] < got[1] < 0.0
    ld = np.longdouble
    ref = [-np.log1p(ld(999) * np.exp(ld(-v))) for v in (45, 46, 44)]
    np.testing.assert_allclose(got, np.array(ref, dtype=np.float64), rtol=1e-12, atol=0)


class _CountingImages:
    """A dense ``(N, K, H, W)`` array-like that counts how often each image is read."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        self.shape, self.dtype, self.ndim = a.shape, a.dtype, a.ndim
        self.reads = np.zeros(a.shape[0], dtype=np.int64)

    def __getitem__(self, key):
        out = self._a[key]
        items = range(self.shape[0])[key[0] if isinstance(key, tuple) else key]
        for i in items if isinstance(items, range) else [items]:
            self.reads[i] += 1
        return out


@pytest.mark.parametrize("chunk_rows", [None, 7, 50, 1000])
def test_dense_rows_read_each_image_once(chunk_rows):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 3, 12, 10)).astype(np.float32)
    data = _CountingImages(z)
    src = ArrayRows(data)
    got = compute_scores(src, [ScoreSpec("msp"), ScoreSpec("energy")], chunk_rows=chunk_rows)
    flat = np.moveaxis(z, 1, -1).reshape(-1, 3)  # pixels in (N, H, W) order
    want = compute_scores(flat, [ScoreSpec("msp"), ScoreSpec("energy")])
    np.testing.assert_array_equal(got["msp"], want["msp"])
    np.testing.assert_array_equal(got["energy"], want["energy"])
    assert data.reads.tolist() == [1] * 5

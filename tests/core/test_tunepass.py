"""p-tuning's one-pass kernel (lsfix.core.tunepass) gives the same fits, bit for bit, as the
implementation before it, and the same per-row scores as ``pnorm`` and ``msp``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lsfix.core import scores as S
from lsfix.core import tunepass
from lsfix.core.metrics import aurc
from lsfix.core.source import ArrayRows
from lsfix.errors import InputError, UsageError

from . import reference as R

GOLDENS = Path(__file__).resolve().parent / "data" / "tune_pnorm_goldens.json"


def _case(seed: int, n: int, k: int, dtype: str, flat: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The goldens' data (do not change: the goldens were recorded from it)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k))
    z *= rng.uniform(0.3, 4.0, size=(n, 1))
    y = np.where(rng.random(n) < 0.6, z.argmax(axis=1), rng.integers(0, k, n))
    z[np.arange(n), y] += rng.gamma(2.0, 1.5, n)
    z = z.astype(dtype)
    if flat:
        z[:flat] = z[:flat, :1]  # constant rows
    return z, y


CASES = {
    "f32_k1000": dict(seed=1, n=1200, k=1000, dtype="float32"),
    "f32_k100": dict(seed=2, n=3000, k=100, dtype="float32", flat=5),
    "f64_k10": dict(seed=3, n=2500, k=10, dtype="float64", flat=3),
    "f16_k20": dict(seed=4, n=1500, k=20, dtype="float16"),
    "f64_k2": dict(seed=5, n=800, k=2, dtype="float64"),
}
GRIDS = {"default": tuple(range(10)), "mixed": (0, 0.5, 1, 2.5, 3, 12, 9)}


def _golden_keys() -> list[str]:
    return sorted(json.loads(GOLDENS.read_text())["fits"])


def _check_golden(fit: S.PNormFit, want: dict) -> None:
    assert fit.p == want["p"]
    assert fit.fallback_msp is want["fallback"]
    assert [(p, a.hex()) for p, a in fit.grid] == [(p, a) for p, a in want["grid"]]
    assert fit.msp_aurc.hex() == want["msp"]
    assert fit.n_errors == want["n_errors"]


@pytest.mark.parametrize("key", _golden_keys())
def test_fit_equals_the_golden_recorded_before_the_one_pass_kernel(key):
    """Chosen p, every p's AURC, MSP's AURC and the fallback, to the last bit, as recorded from
    the chunked implementation (lsfix 64ca39c) on the same data."""
    want = json.loads(GOLDENS.read_text())["fits"][key]
    name, grid, convention = key.split("/")
    z, y = _case(**CASES[name])
    _check_golden(S.tune_pnorm(z, y, grid=GRIDS[grid], convention=convention), want)


@pytest.mark.parametrize("chunk_rows,threads", [(None, 1), (None, 2), (None, 3), (1, None),
                                                (97, None)])
@pytest.mark.parametrize("piece_elements", [None, 100 * 9])
def test_golden_fit_through_every_read_path(chunk_rows, threads, piece_elements, monkeypatch):
    """The streamed path (stored dtype, storage blocks, pieces over 1-3 threads) and the
    float64 chunk path (down to one row per chunk), with any piece size, give the same fit."""
    want = json.loads(GOLDENS.read_text())["fits"]["f32_k100/default/lsfix"]
    z, y = _case(**CASES["f32_k100"])
    if piece_elements:
        monkeypatch.setattr(tunepass, "SUB_ELEMENTS", piece_elements)  # 9-row pieces
    _check_golden(S.tune_pnorm(z, y, chunk_rows=chunk_rows, threads=threads), want)


def test_golden_fit_from_hdf5_reads_in_blocks(tmp_path):
    h5py = pytest.importorskip("h5py")
    want = json.loads(GOLDENS.read_text())["fits"]["f32_k1000/default/lsfix"]
    z, y = _case(**CASES["f32_k1000"])
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("logits", data=z, chunks=(100, 1000))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        _check_golden(S.tune_pnorm(ArrayRows(f["logits"]), y), want)


class _CountingData:
    """An array-like that records how many rows each read asks for."""

    def __init__(self, z: np.ndarray, chunk_rows: int) -> None:
        self._z = z
        self.shape, self.dtype, self.chunks = z.shape, z.dtype, (chunk_rows, z.shape[1])
        self.reads: list[int] = []

    def read_direct(self, out, source_sel, dest_sel) -> None:
        part = self._z[source_sel]
        self.reads.append(part.shape[0])
        out[dest_sel] = part

    def __getitem__(self, sel):
        part = self._z[sel]
        self.reads.append(part.shape[0])
        return part


@pytest.mark.parametrize("threads", [1, 2])
def test_tuning_never_reads_the_whole_logits(threads):
    """A file-backed source is read once, in bounded blocks aligned to its storage chunks."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6000, 1000), dtype=np.float32)
    y = rng.integers(0, 1000, 6000)
    data = _CountingData(z, chunk_rows=300)
    fit = S.tune_pnorm(ArrayRows(data), y, threads=threads)
    assert sum(data.reads) == z.shape[0]  # every row read exactly once
    assert max(data.reads) < z.shape[0] and all(r % 300 == 0 for r in data.reads[:-1])
    assert fit == S.tune_pnorm(z, y, chunk_rows=500)


def _scores_before(z: np.ndarray, ps) -> tuple[np.ndarray, np.ndarray]:
    """Per-p scores and MSP from the chunked single-score path (``_pnorm_many`` per chunk)."""
    conf = np.array([S.pnorm(z, p) for p in ps])
    return conf, S.msp(z)


_finite = st.floats(-1e4, 1e4, width=32)


def _centred_scale_is_normal(z: np.ndarray) -> bool:
    """The centring is finite and every row's max|x| is 0 or a normal float (subnormal spreads
    are tested on their own: test_subnormal_spreads_are_scored_not_inf)."""
    view = ArrayRows(z).rows(0, z.shape[0])  # one logit per row is read as (0, z)
    x = view - view.mean(axis=1, keepdims=True)
    m = np.abs(x).max(axis=1)
    return bool(np.isfinite(x).all() and ((m == 0) | (m > 1e-307)).all())


@settings(max_examples=80, deadline=None)
@given(z=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1,
                                                 max_side=40), elements=_finite),
       data=st.data())
def test_one_pass_scores_are_bit_identical_to_pnorm_and_msp(z, data):
    n, k = z.shape
    if data.draw(st.booleans()):  # ties and constant rows
        z = np.round(z / 1000).astype(np.float32)
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    ps = data.draw(st.sampled_from([tuple(range(10)), (0, 1, 2, 3), (9, 4, 0.5, 1.5, 11)]))
    conf, msp, correct = S._grid_scores(ArrayRows(z), y, ps, None,
                                        threads=data.draw(st.sampled_from([1, 2])))
    want_conf, want_msp = _scores_before(z, ps)
    np.testing.assert_array_equal(conf, want_conf)
    np.testing.assert_array_equal(msp, want_msp)
    np.testing.assert_array_equal(correct, S.correctness(z, y))
    fit = S.tune_pnorm(z, y, grid=ps)
    assert [a for _, a in fit.grid] == [aurc(c, correct) for c in want_conf]
    assert fit.msp_aurc == aurc(want_msp, correct)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1,
                                               max_side=12),
                  elements=st.floats(-1e300, 1e300) | st.floats(-1e-300, 1e-300)))
def test_one_pass_scores_bit_identical_on_extreme_float64(z):
    assume(_centred_scale_is_normal(z))
    y = np.zeros(z.shape[0], dtype=np.int64)
    conf, msp, _ = S._grid_scores(ArrayRows(z), y, tuple(range(10)), None)
    want_conf, want_msp = _scores_before(z, range(10))
    np.testing.assert_array_equal(conf, want_conf)
    np.testing.assert_array_equal(msp, want_msp)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2,
                                               max_side=15),
                  elements=st.floats(-50, 50)))
def test_one_pass_scores_match_the_slow_reference(z):
    """Against tests/core/reference.py (exact centring in rationals, fsum of powers)."""
    assume(_centred_scale_is_normal(z))
    y = np.zeros(z.shape[0], dtype=np.int64)
    conf, msp, _ = S._grid_scores(ArrayRows(z), y, tuple(range(10)), None)
    rows = [[float(v) for v in row] for row in z]
    for p in range(10):
        ref = np.array([R.pnorm_row(row, p) for row in rows])
        np.testing.assert_allclose(conf[p], ref, rtol=1e-12, atol=1e-12, err_msg=f"p={p}")
    np.testing.assert_allclose(msp, [R.msp_row(row) for row in rows], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("chunk_rows", [None, 10])
def test_non_finite_logits_are_refused(bad, chunk_rows):
    z = np.zeros((100, 4), np.float32)
    z[37, 2] = bad
    z[80, 1] = bad
    y = np.zeros(100, dtype=np.int64)
    with pytest.raises(InputError, match=r"2 non-finite logit value\(s\).*first in row 37"):
        S.tune_pnorm(z, y, chunk_rows=chunk_rows)


def test_plan_of_the_default_grid_uses_one_stacked_einsum():
    plan = tunepass.TunePlan.for_grid(range(10))
    assert plan.int_ps == tuple(range(2, 10)) and plan.groups == 4 and plan.planes == 5
    assert plan.other_ps == () and plan.need_pos
    odd = tunepass.TunePlan.for_grid((0, 2, 3, 5, 12, 2.5))
    assert odd.groups == 0 and odd.int_ps == (2, 3, 5) and odd.other_ps == (2.5, 12.0)
    assert not odd.need_pos and odd.planes == 3


def _fit_tuple(fit: S.PNormFit) -> tuple:
    return (fit.p, fit.fallback_msp, fit.grid, fit.msp_aurc, fit.n_fit, fit.n_errors)


def test_golden_fit_on_selected_rows_of_a_larger_file(tmp_path):
    """``rows=``: the golden data hidden among other rows (and a storage chunk that splits
    pieces), selected by a mask, gives the golden fit; the file is read once, whole blocks."""
    h5py = pytest.importorskip("h5py")
    want = json.loads(GOLDENS.read_text())["fits"]["f32_k100/default/lsfix"]
    z, y = _case(**CASES["f32_k100"])
    rng = np.random.default_rng(7)
    n_all = 3 * z.shape[0]
    mask = np.zeros(n_all, dtype=bool)
    mask[np.sort(rng.choice(n_all, z.shape[0], replace=False))] = True
    big = rng.standard_normal((n_all, z.shape[1])).astype(np.float32)
    labels = rng.integers(0, z.shape[1], n_all)
    big[mask], labels[mask] = z, y
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("logits", data=big, chunks=(37, z.shape[1]))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        for threads in (1, 2):
            _check_golden(S.tune_pnorm(ArrayRows(f["logits"]), labels, rows=mask,
                                       threads=threads), want)
    _check_golden(S.tune_pnorm(big, labels, rows=mask, chunk_rows=50), want)


@settings(max_examples=40, deadline=None)
@given(z=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2,
                                                 max_side=30), elements=_finite),
       data=st.data())
def test_fit_on_selected_rows_equals_fit_on_those_rows_alone(z, data):
    n, k = z.shape
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    mask = data.draw(hnp.arrays(np.bool_, n))
    assume(mask.any())
    chunk_rows = data.draw(st.sampled_from([None, 1, 4]))
    centred = data.draw(st.booleans())  # the un-centred variant takes the chunked path
    got = S.tune_pnorm(z, y, rows=mask, chunk_rows=chunk_rows, threads=1, centred=centred)
    assert _fit_tuple(got) == _fit_tuple(S.tune_pnorm(z[mask], y[mask], centred=centred))


def test_selected_rows_are_checked_finite_like_every_row():
    z = np.zeros((100, 4), np.float32)
    z[37, 2] = np.nan
    mask = np.ones(100, dtype=bool)
    mask[37] = False
    with pytest.raises(InputError, match=r"non-finite.*first in row 37"):
        S.tune_pnorm(z, np.zeros(100, dtype=np.int64), rows=mask)


@pytest.mark.parametrize("rows", [np.ones(5, dtype=bool), np.ones(6, dtype=np.int64)])
def test_rows_must_be_a_boolean_mask_of_the_logits_rows(rows):
    with pytest.raises(UsageError, match="boolean mask"):
        S.tune_pnorm(np.zeros((6, 3)), np.zeros(6, dtype=np.int64), rows=rows)


@pytest.mark.parametrize("threads", [1, 2])
def test_subnormal_spreads_are_scored_not_inf(threads):
    """A row whose centred logits are subnormal (1/max|x| overflows) is divided by max|x|
    instead: pnorm() and the tuning pass agree, and equal the row scaled by 2^1000 (pNorm is
    scale invariant) to rounding of the subnormal mean."""
    z = np.array([[0.0, 0.0, 1e-310], [0.0, 3e-320, -1e-321], [1.0, 2.0, 3.0],
                  [5e-324, 0.0, 0.0]] * 5)
    y = np.array([2, 1, 2, 0] * 5)
    ps = tuple(range(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conf, msp, _ = S._grid_scores(ArrayRows(z), y, ps, None, threads=threads)
        want = np.array([S.pnorm(z, p) for p in ps])
    np.testing.assert_array_equal(conf, want)
    assert np.isfinite(conf).all()
    # rows 0 and 2 of each 4 keep ~13 digits in their subnormal mean; rows 1 and 3 are at the
    # float64 floor (5e-324 / 3 rounds to 0), so only finiteness is asked of them
    sure = np.tile([True, False, True, False], 5)
    scaled = np.array([S.pnorm(z[sure] * 2.0**1000, p) for p in ps[1:]])  # p = 0: max x
    np.testing.assert_allclose(conf[1:, sure], scaled, rtol=1e-9, atol=0)

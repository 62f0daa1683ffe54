"""Row blocks: threads and block sizes never change a bit; errors stay in file order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import ScoreSpec, compute_scores
from lsfix.core.rowblocks import block_rows_for, run_pieces, thread_count
from lsfix.core.source import ArrayRows
from lsfix.core.stream import msp_stream
from lsfix.errors import InputError, UsageError


def _logits(n: int, k: int, seed: int, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(n, k)) * rng.uniform(0.1, 30, size=(n, 1))).astype(dtype)
    z[:: max(1, n // 7), : min(k, 2)] = 7.0  # ties at the maximum, some rows
    return z


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n,k", [(1, 5), (9, 1000), (5000, 37), (40000, 3)])
def test_threads_do_not_change_a_bit(threads, n, k):
    z = _logits(n, k, n + k)
    y = np.random.default_rng(1).integers(0, k, n)
    one, c1 = msp_stream(ArrayRows(z), y, threads=1)
    many, cm = msp_stream(ArrayRows(z), y, threads=threads)
    assert one.tobytes() == many.tobytes()
    np.testing.assert_array_equal(c1, cm)
    # and both equal the general chunked path (float64 rows, another chunking)
    want = compute_scores(z, [ScoreSpec("msp")], labels=y, chunk_rows=11)
    assert one.tobytes() == want["msp"].tobytes()


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3000), k=st.integers(2, 300), seed=st.integers(0, 2**31),
       block=st.integers(1, 5000), piece=st.integers(1, 2000), threads=st.integers(1, 4))
def test_any_block_and_piece_size_gives_the_same_bits(n, k, seed, block, piece, threads):
    z = _logits(n, k, seed)
    out = np.full(n, np.nan)
    seen = np.zeros(n, dtype=np.int64)

    def fn(zp: np.ndarray, start: int, scratch: object) -> bool:
        assert scratch == "scratch"
        out[start : start + zp.shape[0]] = zp.astype(np.float64).sum(axis=1)
        seen[start : start + zp.shape[0]] += 1
        return False

    run_pieces(ArrayRows(z), fn, lambda rows: "scratch", threads=threads,
               block_elements=block, piece_elements=piece)
    assert (seen == 1).all()  # every row once
    np.testing.assert_array_equal(out, z.astype(np.float64).sum(axis=1))


def test_blocks_are_whole_storage_chunks():
    assert block_rows_for(1000, 262, 65) % 262 == 0
    assert block_rows_for(1000, 100000, 65) == 100000  # one chunk larger than a block
    assert block_rows_for(10, None, 6553) >= 6553


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_first_bad_row_of_the_file_is_named_whatever_the_threads(threads, bad):
    z = _logits(12000, 1000, 3)  # three blocks of 4194 rows
    assert block_rows_for(1000, None, 65) == 4194
    z[9111, 5] = bad  # the last block
    z[11000, 1] = bad
    with pytest.raises(InputError, match=r"2 non-finite logit value\(s\).*first in row 9111"):
        msp_stream(ArrayRows(z), threads=threads)


def test_an_error_in_a_piece_propagates_after_running_pieces_finish():
    z = _logits(20000, 50, 4)
    done: list[int] = []

    def fn(zp: np.ndarray, start: int, scratch: object) -> bool:
        if start == 0:
            raise RuntimeError("boom")
        done.append(start)
        return False

    with pytest.raises(RuntimeError, match="boom"):
        run_pieces(ArrayRows(z), fn, lambda rows: None, threads=2, block_elements=50 * 1000,
                   piece_elements=50 * 100)
    assert all(isinstance(s, int) for s in done)


@pytest.mark.parametrize("text,want", [("1", 1), (" 3 ", 3), ("256", 256)])
def test_lsfix_threads_is_read(monkeypatch, text, want):
    monkeypatch.setenv("LSFIX_THREADS", text)
    assert thread_count() == want


@pytest.mark.parametrize("text", ["0", "-1", "257", "two", "1.5", "1e3"])
def test_lsfix_threads_is_checked(monkeypatch, text):
    monkeypatch.setenv("LSFIX_THREADS", text)
    with pytest.raises(UsageError, match="LSFIX_THREADS must be an integer from 1 to 256"):
        thread_count()


def test_default_threads_are_the_usable_cpus(monkeypatch):
    monkeypatch.delenv("LSFIX_THREADS", raising=False)
    assert 1 <= thread_count() <= 8


@pytest.mark.parametrize("threads", ["1", "2", "5"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_every_score_in_pieces_equals_the_chunked_path(monkeypatch, threads, dtype):
    monkeypatch.setenv("LSFIX_THREADS", threads)
    z = _logits(7000, 60, 9, dtype)
    y = np.random.default_rng(2).integers(0, 60, 7000)
    specs = [ScoreSpec("msp"), ScoreSpec("max_logit"), ScoreSpec("logit_margin"),
             ScoreSpec("softmax_margin"), ScoreSpec("neg_entropy"), ScoreSpec("gini"),
             ScoreSpec("energy"), ScoreSpec("pnorm", 2.0), ScoreSpec("pnorm_raw", 8.0),
             ScoreSpec("msp_ts", 1.7)]
    got = compute_scores(ArrayRows(z), specs, labels=y)
    want = compute_scores(z, specs, labels=y, chunk_rows=13)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].tobytes() == want[name].tobytes(), name


def test_every_score_in_pieces_refuses_non_finite_logits(monkeypatch):
    monkeypatch.setenv("LSFIX_THREADS", "2")
    z = _logits(9000, 500, 1)
    z[8999, 3] = -np.inf
    with pytest.raises(InputError, match=r"1 non-finite logit value\(s\).*first in row 8999"):
        compute_scores(ArrayRows(z), [ScoreSpec("energy"), ScoreSpec("msp")])


@pytest.mark.parametrize("kind", ["dataframe", "dataframe-offset-index", "dataframe-f32",
                                  "series", "tensor", "list", "fortran", "strided"])
def test_scores_of_arrays_as_pandas_torch_and_numpy_users_hold_them(kind):
    z = _logits(300, 6, 5, np.float64)
    want_rows = z
    if kind.startswith("dataframe"):
        pd = pytest.importorskip("pandas")
        if kind == "dataframe-f32":
            want_rows = z.astype(np.float32)
        index = np.arange(1000, 1300) if kind == "dataframe-offset-index" else None
        x = pd.DataFrame(want_rows, index=index)
    elif kind == "series":  # one logit per row: a binary classifier
        pd = pytest.importorskip("pandas")
        want_rows = z[:, 0]
        x = pd.Series(want_rows, index=np.arange(5, 305))
    elif kind == "tensor":
        torch = pytest.importorskip("torch")
        x = torch.tensor(z)
    elif kind == "list":
        x = z.tolist()
    elif kind == "fortran":
        x = np.asfortranarray(z)
    else:
        big = np.zeros((600, 12))
        big[::2, ::2] = z
        x = big[::2, ::2]
    specs = [ScoreSpec("msp"), ScoreSpec("energy"), ScoreSpec("pnorm", 2.0)]
    got = compute_scores(x, specs)
    want = compute_scores(np.ascontiguousarray(want_rows), specs, chunk_rows=7)
    for name in want:
        assert got[name].tobytes() == want[name].tobytes(), name

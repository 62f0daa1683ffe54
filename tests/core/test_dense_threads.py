"""The dense msp kernel in worker threads (``run_image_pieces``): the same bits as the row
kernels for any thread count and piece size, and ``finish`` in image order."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import ScoreSpec, compute_scores
from lsfix.core.densescores import msp_columns
from lsfix.core.rowblocks import run_image_pieces
from lsfix.readers.logitsfile import set_root_attrs


def _scores(z: np.ndarray, threads: int, piece: int) -> tuple[np.ndarray, np.ndarray, list]:
    n, k = z.shape[:2]
    pixels = int(np.prod(z.shape[2:]))
    vals = [np.empty(pixels), np.empty(pixels)]
    args = [np.empty(pixels, np.intp), np.empty(pixels, np.intp)]
    out_v, out_a, order = np.empty(n * pixels), np.empty(n * pixels, np.intp), []

    def read(item, out):
        np.copyto(out, z[item])

    def fn(flat, slot, a, b, work):
        v, g, finite = msp_columns(flat[:, a:b], work[:, : b - a])
        assert finite
        vals[slot][a:b], args[slot][a:b] = v, g
        return False

    def finish(item, slot, image, bad):
        assert not bad
        np.testing.assert_array_equal(image, z[item])  # the buffer still holds this image
        order.append(item)
        out_v[item * pixels : (item + 1) * pixels] = vals[slot]
        out_a[item * pixels : (item + 1) * pixels] = args[slot]

    run_image_pieces(n, z.shape[1:], z.dtype, read, fn,
                     lambda p: np.empty((k, p)), finish, piece_pixels=piece, threads=threads)
    return out_v, out_a, order


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5), k=st.integers(2, 40), h=st.integers(1, 9), w=st.integers(1, 9),
       piece=st.integers(1, 100), threads=st.integers(1, 4),
       dtype=st.sampled_from([np.float16, np.float32, np.float64]),
       seed=st.integers(0, 2**32 - 1))
def test_any_thread_count_gives_the_row_kernels_bits(n, k, h, w, piece, threads, dtype, seed):
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(n, k, h, w)) * 4).round(1).astype(dtype)  # ties between classes
    v, a, order = _scores(z, threads, piece)
    assert order == list(range(n))
    rows = np.ascontiguousarray(z.reshape(n, k, -1).transpose(0, 2, 1).reshape(-1, k))
    want = compute_scores(rows, [ScoreSpec("msp")])["msp"]
    assert v.tobytes() == want.tobytes()
    np.testing.assert_array_equal(a, np.argmax(rows, axis=1))
    v1, a1, _ = _scores(z, 1, piece)
    assert v1.tobytes() == v.tobytes() and np.array_equal(a1, a)


def test_an_error_in_finish_stops_the_pass_after_the_workers():
    z = np.zeros((4, 3, 5, 5), np.float32)

    def finish(item, slot, image, bad):
        if item == 1:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        run_image_pieces(4, z.shape[1:], z.dtype, lambda i, o: np.copyto(o, z[i]),
                         lambda f, s, a, b, w: False, lambda p: None, finish,
                         piece_pixels=4, threads=3)


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_bounded_dense_curve_is_the_same_for_any_thread_count(tmp_path, monkeypatch, threads):
    from lsfix.evaluation.bounded import evaluate_bounded
    from lsfix.evaluation.inmemory import evaluate_file
    from lsfix.readers.entry import read as load

    rng = np.random.default_rng(5)
    z = rng.normal(size=(4, 6, 20, 30)).round(1).astype(np.float32)
    y = rng.integers(0, 6, (4, 20, 30)).astype(np.uint8)
    y[:, :3] = 255
    z[2, 1, 4, 5] = np.inf if threads == "3" else z[2, 1, 4, 5]
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z, chunks=(1, 6, 20, 30))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(255)
    monkeypatch.setattr("lsfix.evaluation.bounded.PIECE_PIXELS", 64)
    monkeypatch.setenv("LSFIX_THREADS", threads)
    if threads == "3":  # a non-finite logit: the normal error, naming its image's row
        from lsfix.errors import InputError

        with pytest.raises(InputError, match="1 non-finite logit value"):
            evaluate_bounded(load(str(path)), ["msp"], convention="lsfix", coverages=(0.5,),
                             risks=())
        return
    pred = load(str(path))
    got = evaluate_bounded(pred, ["msp"], convention="lsfix", coverages=(0.5,), risks=(0.3,),
                           run_rows=500)[0]
    want = evaluate_file(pred, ["msp"], convention="lsfix", coverages=(0.5,), risks=(0.3,))
    assert repr(got[0].metrics) == repr(want[0].metrics)

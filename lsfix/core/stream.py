"""Streaming kernels: one pass over ``(n, K)`` logits with buffers allocated once.

:func:`msp_stream` computes log-MSP (and correctness) exactly as :func:`lsfix.core.scores.msp`
does — the same float64 operations in the same order, so the values are bit-identical — but
reads the logits in their stored dtype straight into reused buffers (``read_direct`` for an
``h5py.Dataset``), in blocks aligned to the storage chunks, and computes cache-sized pieces of
each block in worker threads, in place in per-thread float64 buffers
(:mod:`lsfix.core.rowblocks`): no per-chunk temporaries, so no page faults per chunk.

Per piece of rows ``z`` (stored dtype) and a float64 work piece ``w``::

    a = argmax(z)                  # first maximum, in the stored dtype (exact)
    m = z[a]                       # the maximum (no separate max pass)
    w = z - m                      # float64 (exact for float16/float32 inputs)
    w = exp(w); w[a] = 0           # exclude the first maximum exactly
    S = sum(w); msp = -log1p(S)

Non-finite logits are found from the row's argmax (where a NaN or +inf lands) and argmin
(where -inf lands): two cheap passes in the stored dtype instead of an ``isfinite`` array, and
reported like :class:`ArrayRows` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsfix.core.rowblocks import run_pieces
from lsfix.core.source import ArrayRows
from lsfix.errors import InputError


def can_stream(src: Any) -> bool:
    """True for plain ``(N, K)`` logits (not binary, not dense) in float16/32/64."""
    return (isinstance(src, ArrayRows) and not src.binary and not src.spatial
            and src.raw_dtype.kind == "f")


class _MspScratch:
    """Per-thread buffers of one piece (see :mod:`lsfix.core.rowblocks`)."""

    def __init__(self, rows: int, k: int) -> None:
        self.work = np.empty((rows, k), dtype=np.float64)
        self.arg = np.empty(rows, dtype=np.intp)
        self.arg_low = np.empty(rows, dtype=np.intp)
        self.top = np.empty(rows, dtype=np.float64)
        self.low = np.empty(rows, dtype=np.float64)
        self.rest = np.empty(rows, dtype=np.float64)
        self.idx = np.arange(rows)


def msp_stream(src: ArrayRows, labels: np.ndarray | None = None, *,
               threads: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """log-MSP of every row (float64) and, with ``labels``, ``argmax == label`` per row.

    One pass through :func:`lsfix.core.rowblocks.run_pieces` (``threads`` as there); the
    values do not depend on the number of threads.
    """
    n, k = src.shape
    out = np.empty(n, dtype=np.float64)
    correct = np.empty(n, dtype=bool) if labels is not None else None
    def piece(z: np.ndarray, start: int, sc: _MspScratch) -> bool:
        r = z.shape[0]
        w, a, b, t, low, s, ix = (sc.work[:r], sc.arg[:r], sc.arg_low[:r], sc.top[:r],
                                  sc.low[:r], sc.rest[:r], sc.idx[:r])
        np.argmax(z, axis=1, out=a)  # a NaN is its row's argmax, so is +inf
        t[:] = z[ix, a]
        np.argmin(z, axis=1, out=b)  # and -inf is its row's argmin
        low[:] = z[ix, b]
        if not (np.isfinite(t).all() and np.isfinite(low).all()):
            return True
        if z.dtype == np.float64:
            np.subtract(z, t[:, None], out=w)
        else:
            w[...] = z  # exact widening, then an exact float64 difference
            np.subtract(w, t[:, None], out=w)
        np.exp(w, out=w)
        w[ix, a] = 0.0
        np.add.reduce(w, axis=1, out=s)
        np.log1p(s, out=s)
        np.negative(s, out=out[start : start + r])
        if correct is not None:
            assert labels is not None
            np.equal(a, labels[start : start + r], out=correct[start : start + r])
        return False

    run_pieces(src, piece, lambda rows: _MspScratch(rows, k), threads=threads)
    return out, correct


def check_labels_shape(labels: np.ndarray, n: int) -> None:
    if labels.shape != (n,):
        raise InputError(f"labels shape {labels.shape} does not match logits rows ({n},)")

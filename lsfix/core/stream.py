"""Streaming kernels: one pass over ``(n, K)`` logits with buffers allocated once.

:func:`msp_stream` computes log-MSP (and correctness) exactly as :func:`lsfix.core.scores.msp`
does — the same float64 operations in the same order, so the values are bit-identical — but
reads the logits in their stored dtype straight into one reused buffer (``read_direct`` for an
``h5py.Dataset``), in row blocks aligned to the storage chunks, and works in place in a second
reused float64 buffer: no per-chunk temporaries of chunk size, so no page faults per chunk.

Per block of rows ``z`` (stored dtype) and a float64 work block ``w``::

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

from lsfix.core.source import CHUNK_ELEMENTS, ArrayRows
from lsfix.errors import InputError

#: Rows of a block are a multiple of the storage chunk rows, about this many elements.
BLOCK_ELEMENTS = CHUNK_ELEMENTS


def can_stream(src: Any) -> bool:
    """True for plain ``(N, K)`` logits (not binary, not dense) in float16/32/64."""
    return (isinstance(src, ArrayRows) and not src.binary and not src.spatial
            and src.raw_dtype.kind == "f")


def block_rows(src: ArrayRows, elements: int = BLOCK_ELEMENTS) -> int:
    """Rows per block: about ``elements`` values, a multiple of the storage chunk rows."""
    k = src.shape[1]
    rows = max(1, elements // max(1, k))
    storage = src.storage_rows
    if storage:
        rows = max(storage, (rows // storage) * storage)
    return rows


def msp_stream(src: ArrayRows, labels: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """log-MSP of every row (float64) and, with ``labels``, ``argmax == label`` per row."""
    n, k = src.shape
    rows = min(block_rows(src), n)
    raw = np.empty((rows, k), dtype=src.raw_dtype)
    work = np.empty((rows, k), dtype=np.float64)
    arg = np.empty(rows, dtype=np.intp)
    top = np.empty(rows, dtype=np.float64)
    rest = np.empty(rows, dtype=np.float64)
    arg_low = np.empty(rows, dtype=np.intp)
    lowest = np.empty(rows, dtype=np.float64)
    idx = np.arange(rows)
    out = np.empty(n, dtype=np.float64)
    correct = np.empty(n, dtype=bool) if labels is not None else None
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        r = stop - start
        z, w, a, b, t, low, s, ix = (raw[:r], work[:r], arg[:r], arg_low[:r], top[:r],
                                     lowest[:r], rest[:r], idx[:r])
        src.read_into(start, stop, z)
        np.argmax(z, axis=1, out=a)  # a NaN is its row's argmax, so is +inf
        t[:] = z[ix, a]
        np.argmin(z, axis=1, out=b)  # and -inf is its row's argmin
        low[:] = z[ix, b]
        if not (np.isfinite(t).all() and np.isfinite(low).all()):
            src.check_finite_block(start, z)
        np.subtract(z, t[:, None], out=w)
        np.exp(w, out=w)
        w[ix, a] = 0.0
        np.add.reduce(w, axis=1, out=s)
        np.log1p(s, out=s)
        np.negative(s, out=out[start:stop])
        if correct is not None:
            assert labels is not None
            np.equal(a, labels[start:stop], out=correct[start:stop])
    return out, correct


def check_labels_shape(labels: np.ndarray, n: int) -> None:
    if labels.shape != (n,):
        raise InputError(f"labels shape {labels.shape} does not match logits rows ({n},)")

"""log-MSP of dense ``(K, pixels)`` logits in their stored layout, bit-identical to the row
kernels.

A dense file stores an image as ``(K, H, W)``: for one pixel the K logits are ``H·W`` apart.
The row kernels (:func:`lsfix.core.scores.msp`, :func:`lsfix.core.stream.msp_stream`) work on
``(rows, K)`` blocks, so feeding them an image means transposing it. :func:`msp_columns`
computes the same numbers on a ``(K, P)`` piece of pixels directly, each step a whole-row
operation over ``P`` pixels (SIMD-friendly, no transposition):

* ``t = max_k z_k`` and ``a`` = the first ``k`` reaching it (the row kernels' ``argmax``);
* ``w_k = exp(z_k − t)`` in float64, ``w_a = 0``;
* ``S = Σ_k w_k`` summed in **numpy's order for a row of K values** (:func:`row_sum_order`:
  eight running sums, then the remainder, split in halves above 128 terms), so ``S`` is the
  float numpy's ``add.reduce(axis=1)`` gives for that pixel's row;
* ``msp = −log1p(S)``.

Every operation is the same IEEE float64 operation on the same operands as in the row
kernels, so the result is bit-identical (``tests/core/test_densescores.py``).
"""

from __future__ import annotations

import numpy as np


def row_sum_order(w: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[p] = Σ_k w[k, p]`` in the order numpy sums a contiguous row of ``K`` float64
    (its pairwise summation), for every column ``p`` at once."""
    k = w.shape[0]
    if k <= 128:
        if k < 8:
            out[...] = 0.0
            for i in range(k):
                out += w[i]
            return out
        r = w[:8].copy()
        stop = k - k % 8
        for i in range(8, stop, 8):
            r += w[i : i + 8]
        np.add(r[0], r[1], out=out)
        a = r[2] + r[3]
        out += a
        b = r[4] + r[5]
        np.add(r[6], r[7], out=a)
        b += a
        out += b
        for i in range(stop, k):
            out += w[i]
        return out
    half = k // 2
    half -= half % 8
    row_sum_order(w[:half], out)
    rest = np.empty_like(out)
    row_sum_order(w[half:], rest)
    out += rest
    return out


def msp_columns(z: np.ndarray, work: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, bool]:
    """log-MSP and the predicted class of every column of ``z`` (shape ``(K, P)``, any float
    dtype, any strides).

    Returns ``(msp float64 (P,), argmax intp (P,), finite)``; ``finite`` is False when some
    logit of the piece is NaN or ±inf, or finite float64 logits so large that their sum
    overflows (the caller then checks the piece exactly and reports it; the values are
    zeros). ``work``: an optional float64 ``(K, P)`` buffer to reuse.
    """
    k, p = z.shape
    w = work if work is not None and work.shape == (k, p) else np.empty((k, p), np.float64)
    np.copyto(w, z, casting="safe")  # float16/32 -> float64 is exact
    with np.errstate(over="ignore", invalid="ignore"):
        finite = bool(np.isfinite(np.add.reduce(w, axis=None)))
    arg = np.zeros(p, dtype=np.intp)
    if not finite:
        return np.zeros(p), arg, False
    top = np.max(w, axis=0)
    hit = np.empty(p, dtype=bool)
    for i in range(k - 1, 0, -1):  # the first maximum: lower k overwrite higher ones
        np.equal(w[i], top, out=hit)
        np.copyto(arg, i, where=hit)
    np.equal(w[0], top, out=hit)
    np.copyto(arg, 0, where=hit)
    w -= top
    np.exp(w, out=w)
    w[arg, np.arange(p)] = 0.0
    s = row_sum_order(w, np.empty(p, dtype=np.float64))
    np.log1p(s, out=s)
    np.negative(s, out=s)
    return s, arg, finite


__all__ = ["msp_columns", "row_sum_order"]

"""Per-pixel uncertainty ranks of dense predictions, laid out as images.

The **uncertainty rank** of an evaluated row with confidence ``c`` among ``n`` evaluated rows
is ``(#{c_j > c} + (t − 1)/2) / (n − 1)`` where ``t`` is the number of rows with confidence
equal to ``c`` (itself included): 0 for the most confident row, 1 for the least confident,
ties sharing the mean of their ranks; 0 for every row when ``n = 1``. The ranks are global
(over every evaluated pixel of the file), so maps of two images use one scale. Rows that are
not evaluated (ignored pixels, fit rows) are NaN.
"""

from __future__ import annotations

import numpy as np

from lsfix.errors import UsageError


def uncertainty_ranks(confidence: np.ndarray) -> np.ndarray:
    """Tie-averaged uncertainty rank of each value (module docstring), float64 in [0, 1].

    Examples
    --------
    >>> uncertainty_ranks(np.array([0.9, 0.5, 0.5, 0.1])).tolist()
    [0.0, 0.5, 0.5, 1.0]
    """
    c = np.asarray(confidence, dtype=np.float64)
    n = c.shape[0]
    if n <= 1:
        return np.zeros(n)
    s = np.sort(c)
    above = n - np.searchsorted(s, c, side="right")  # strictly more confident
    ties = np.searchsorted(s, c, side="right") - np.searchsorted(s, c, side="left")
    return (above + (ties - 1) / 2.0) / (n - 1)


def rank_maps(confidence: np.ndarray, evaluated: np.ndarray | None, n_items: int,
              spatial: tuple[int, ...]) -> np.ndarray:
    """``(n_items, *spatial)`` maps of :func:`uncertainty_ranks` over the evaluated rows,
    NaN elsewhere (``confidence``: one value per row, image by image)."""
    n = n_items * int(np.prod(spatial))
    c = np.asarray(confidence, dtype=np.float64)
    if c.shape != (n,):
        raise UsageError(f"confidence has shape {c.shape}, expected ({n},)")
    out = np.full(n, np.nan)
    if evaluated is None:
        out[:] = uncertainty_ranks(c)
    else:
        out[evaluated] = uncertainty_ranks(c[evaluated])
    return out.reshape(n_items, *spatial)

"""Seeded pixel subsampling of dense predictions (the paper's protocol for Cityscapes).

The official code of the paper evaluates a random subset of pixels: 5,000 pixels drawn from
every batch of 12 images. :func:`subsample_rows` does that for rows laid out image by image
(``n_items`` images of ``pixels`` rows each, as lsfix reads ``(N, K, H, W)`` logits):

* images are taken in file order in batches of ``images`` consecutive images (the last batch
  may be smaller);
* from each batch, ``per_batch`` rows are drawn uniformly **without replacement** among the
  batch's *eligible* rows (``eligible``: not an ignored pixel, not a fit row); a batch with
  fewer eligible rows keeps them all;
* the draws come from one ``numpy.random.default_rng(seed)`` stream, batch after batch
  (``rng.choice(m, size=k, replace=False)`` over the batch's eligible rows in row order), so
  a seed gives the same pixels on every machine and numpy version with the same
  ``Generator.choice``.

The result is a boolean row mask; every metric is then computed on the kept rows exactly as on
any other input.
"""

from __future__ import annotations

import numpy as np

from lsfix.errors import UsageError


def parse_subsample(text: str) -> tuple[int, int]:
    """``N`` or ``N/IMAGES`` (``--subsample-pixels``) into ``(per_batch, images)``."""
    per, sep, imgs = text.strip().partition("/")
    try:
        p = int(per)
        i = int(imgs) if sep else 1
    except ValueError:
        raise UsageError(f"--subsample-pixels must be N or N/IMAGES (e.g. 5000/12), got "
                         f"{text[:40]!r}") from None
    if p < 1 or i < 1:
        raise UsageError(f"--subsample-pixels: N and IMAGES must be >= 1, got {text[:40]!r}")
    return p, i


def subsample_rows(eligible: np.ndarray, n_items: int, pixels: int, *, per_batch: int,
                   images: int = 1, seed: int = 0) -> np.ndarray:
    """Boolean mask of the drawn rows (see the module docstring).

    Parameters
    ----------
    eligible : ndarray of bool, shape (n_items * pixels,)
        Rows that may be drawn.
    n_items, pixels : int
        Images and rows per image.
    per_batch : int
        Rows drawn per batch of ``images`` images (>= 1).
    images : int
        Images per batch (>= 1).
    seed : int
        Seed of the one random stream.

    Examples
    --------
    >>> m = subsample_rows(np.ones(12, bool), 3, 4, per_batch=2, images=2, seed=0)
    >>> int(m[:8].sum()), int(m[8:].sum())
    (2, 2)
    """
    eligible = np.asarray(eligible, dtype=bool)
    if eligible.shape != (n_items * pixels,):
        raise UsageError(f"eligible rows: shape {eligible.shape}, expected "
                         f"({n_items * pixels},)")
    if per_batch < 1 or images < 1:
        raise UsageError("per_batch and images must be >= 1")
    rng = np.random.default_rng(seed)
    out = np.zeros(eligible.shape[0], dtype=bool)
    step = images * pixels
    for start in range(0, eligible.shape[0], step):
        idx = start + np.flatnonzero(eligible[start : start + step])
        k = min(per_batch, idx.shape[0])
        if k == 0:
            continue
        if k == idx.shape[0]:
            out[idx] = True
            continue
        out[idx[rng.choice(idx.shape[0], size=k, replace=False)]] = True
    return out

"""``--subsample-pixels`` on a dense file in bounded memory: only the drawn pixels are kept.

The paper's protocol evaluates a few thousand random pixels of every batch of images
(:mod:`lsfix.core.subsample`). Holding every pixel's score to then keep 0.02 % of them is what
made ``curve --subsample-pixels``, ``compare`` and ``audit`` need memory in proportion to the
whole file. :func:`gather` draws the **same** pixels as
:func:`lsfix.core.subsample.subsample_rows` (one seeded stream, batch after batch, the same
eligible rows in the same order) but reads the file batch by batch:

1. for each batch of ``IMAGES`` images, the labels of its images (read image by image from
   disk when they were left there) give the eligible pixels (not ignored, not excluded);
2. the draw is made among them exactly as :func:`~lsfix.core.subsample.subsample_rows` does;
3. each image of the batch is read whole, once, in its stored layout, checked for non-finite
   logits (the whole image, as the in-memory path does), and the drawn pixels' logits are
   copied out in their stored dtype (``K`` values per drawn pixel).

The result is a :class:`Drawn`: an ordinary in-memory
:class:`~lsfix.readers.predictions.Predictions` of the drawn pixels (``(M, K)`` logits,
their labels), the image of every drawn pixel (the clusters of ``--bootstrap-unit image``),
the file row of every drawn pixel, and the counts of pixels left out. Every score of a row
depends on that row alone, so the scores, metrics and bootstrap intervals computed on it are
bit-identical to the in-memory path's on the whole file (``tests/cli/test_drawn.py``).

Memory: ``K × itemsize + 17`` bytes per drawn pixel (logits, label, image, row), plus one
batch's eligibility and draw (about 17 bytes per pixel of ``IMAGES`` images) and one image of
logits; not in proportion to the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lsfix.core.source import ArrayRows
from lsfix.core.subsample import parse_subsample
from lsfix.errors import UsageError
from lsfix.evaluation.dense import items_and_pixels
from lsfix.evaluation.inmemory import ExcludedRows
from lsfix.readers.predictions import Predictions


@dataclass(frozen=True)
class Drawn:
    """The drawn pixels of a dense file (:func:`gather`)."""

    #: the drawn pixels as an in-memory ``(M, K)`` input (logits in the stored dtype)
    pred: Predictions
    #: the image of each drawn pixel (``--bootstrap-unit image`` clusters)
    images: np.ndarray
    #: the row of each drawn pixel in the whole file (image-major, as lsfix reads it)
    rows: np.ndarray
    #: pixels left out: ignored, fit rows (``exclude``), not drawn; ``evaluated`` = ``M``
    excluded: ExcludedRows


def gather(pred: Predictions, subsample: str, seed: int, *,
           exclude: np.ndarray | None = None, use_fit_mask: bool = True) -> Drawn:
    """Draw ``subsample`` (``N[/IMAGES]``) pixels of ``pred`` with ``seed`` among the pixels
    that are not ignored and not in ``exclude`` (a row mask, e.g. the fit rows; default the
    file's ``/fit_mask``, none with ``use_fit_mask=False``), reading the file batch by
    batch (module docstring).

    ``pred`` must hold dense logits (labels in memory or left on disk); the result equals
    :func:`lsfix.evaluation.dense.apply_subsample` followed by the in-memory evaluation rows."""
    per, images = parse_subsample(subsample)
    n_items, pixels = items_and_pixels(pred, "--subsample-pixels")
    src = pred.logits
    if src is None or not getattr(src, "spatial", ()):
        raise UsageError(f"{pred.name}: --subsample-pixels needs the dense logits")
    if exclude is None and use_fit_mask:
        exclude = pred.fit_mask
    deferred = pred.deferred_labels
    if deferred is None:
        pred.require_labels("evaluation (correctness)")
    k = int(src.shape[1])
    rng = np.random.default_rng(seed)
    image = np.empty((k, *src.spatial), dtype=src.raw_dtype)
    flat = image.reshape(k, pixels)
    src.drop_cache()
    z_parts: list[np.ndarray] = []
    y_parts: list[np.ndarray] = []
    img_parts: list[np.ndarray] = []
    row_parts: list[np.ndarray] = []
    n_kept = n_fit = n_eligible = 0
    for b0 in range(0, n_items, images):
        items = range(b0, min(n_items, b0 + images))
        labs, elig = [], np.empty(len(items) * pixels, dtype=bool)
        for j, item in enumerate(items):
            first = item * pixels
            if deferred is not None:
                lab, keep = deferred.image(item)
            else:
                assert pred.labels is not None
                lab = pred.labels[first : first + pixels]
                keep = None if pred.keep is None else pred.keep[first : first + pixels]
            e = elig[j * pixels : (j + 1) * pixels]
            e[...] = True if keep is None else keep
            n_kept += int(e.sum())
            if exclude is not None:
                ex = exclude[first : first + pixels]
                n_fit += int((e & ex).sum())
                e &= ~ex
            labs.append(lab)
        idx = np.flatnonzero(elig)
        n_eligible += int(idx.shape[0])
        take = min(per, idx.shape[0])
        if 0 < take < idx.shape[0]:  # as subsample_rows: the same call on the same stream
            chosen = np.zeros(idx.shape[0], dtype=bool)
            chosen[rng.choice(idx.shape[0], size=take, replace=False)] = True
            idx = idx[chosen]  # row order
        del elig
        for j, item in enumerate(items):
            lo, hi = np.searchsorted(idx, [j * pixels, (j + 1) * pixels])
            local = idx[lo:hi] - j * pixels
            src.read_image_into(item, image)
            if not _all_finite(image):
                src.check_finite_block(item, image[None])  # raises, naming the row
            if not local.shape[0]:
                continue
            z_parts.append(np.ascontiguousarray(flat[:, local].T))
            y_parts.append(labs[j][local])
            img_parts.append(np.full(local.shape[0], item, dtype=np.intp))
            row_parts.append(item * pixels + local.astype(np.int64))
    m = sum(p.shape[0] for p in z_parts)
    z = np.concatenate(z_parts) if z_parts else np.empty((0, k), dtype=src.raw_dtype)
    labels_dtype = deferred.dtype if deferred is not None else pred.labels.dtype  # type: ignore[union-attr]
    y = np.concatenate(y_parts) if y_parts else np.empty(0, dtype=labels_dtype)
    small = replace(pred, logits=ArrayRows(z, name=pred.name), labels=y, sample_ids=None,
                    scores={}, score_attrs={}, fit_mask=None, keep=None, drawn=None,
                    raw_logits=z, h5=None, correct=None, fingerprint=None, groups={},
                    deferred_labels=None, notes=[])
    excluded = ExcludedRows(ignored=pred.n - n_kept, fit=n_fit, not_drawn=n_eligible - m,
                            evaluated=m)
    return Drawn(pred=small,
                 images=np.concatenate(img_parts) if img_parts else np.empty(0, np.intp),
                 rows=np.concatenate(row_parts) if row_parts else np.empty(0, np.int64),
                 excluded=excluded)


def _all_finite(image: np.ndarray) -> bool:
    """Every value finite (exponent bits not all set: one integer pass, no float temporaries)."""
    if image.dtype.kind != "f":
        return True
    bits = {2: (np.uint16, 0x7C00), 4: (np.uint32, 0x7F800000),
            8: (np.uint64, 0x7FF0000000000000)}.get(image.dtype.itemsize)
    if bits is None or not image.dtype.isnative:
        return bool(np.isfinite(image).all())
    u = image.view(bits[0])
    exp = np.bitwise_and(u, bits[0](bits[1]))
    return not bool((exp == bits[0](bits[1])).any())


def same_draw(a: Drawn, b: Drawn) -> str | None:
    """Why the drawn pixels of two files cannot be paired, or None (the same file rows and
    the same labels at them)."""
    if not np.array_equal(a.rows, b.rows):
        return "their drawn pixels differ (other ignored pixels or fit rows)"
    if not np.array_equal(a.pred.labels, b.pred.labels):  # type: ignore[arg-type]
        i = int(np.argmax(a.pred.labels != b.pred.labels))  # type: ignore[operator]
        return f"labels differ (first at drawn pixel {i}, row {int(a.rows[i])})"
    return None


__all__ = ["Drawn", "gather", "same_draw"]

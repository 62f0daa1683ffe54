"""Options of the paper's protocol for dense ``(N, K, H, W)`` predictions, applied to a read
:class:`~lsfix.readers.predictions.Predictions` (the math is in :mod:`lsfix.core.subsample`).

``--subsample-pixels N[/IMAGES] --seed S``: evaluate only ``N`` random pixels of every batch
of ``IMAGES`` images (default 1: per image), drawn among the pixels that would be evaluated
anyway (not ignored, not fit rows). The paper's Cityscapes evaluation is ``5000/12``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsfix.core.subsample import parse_subsample, subsample_rows
from lsfix.errors import UsageError
from lsfix.readers.predictions import Predictions


def items_and_pixels(pred: Predictions, option: str) -> tuple[int, int]:
    """Images and pixels per image of a dense input (logits file, or a scores file from
    one); :class:`UsageError` naming ``option`` for anything else."""
    spatial = tuple(getattr(pred.logits, "spatial", ())) if pred.logits is not None else ()
    if not spatial and pred.fingerprint and isinstance(pred.fingerprint.get("shape"), list):
        shape = pred.fingerprint["shape"]
        spatial = tuple(int(s) for s in shape[2:]) if len(shape) > 2 else ()
    if not spatial:
        raise UsageError(f"{pred.name}: {option} needs dense (N, K, H, W) predictions; this "
                         "input has one row per sample")
    pixels = int(np.prod(spatial))
    return pred.n // pixels, pixels


def apply_subsample(pred: Predictions, text: str, seed: int) -> int:
    """Restrict ``pred``'s evaluated rows to the drawn pixels (``pred.drawn``, apart from the
    ignored pixels of ``pred.keep``, so the counts of each stay right); returns how many rows
    are drawn."""
    per, images = parse_subsample(text)
    n_items, pixels = items_and_pixels(pred, "--subsample-pixels")
    eligible = np.ones(pred.n, dtype=bool) if pred.keep is None else pred.keep.copy()
    if pred.fit_mask is not None:
        eligible &= ~pred.fit_mask
    mask = subsample_rows(eligible, n_items, pixels, per_batch=per, images=images, seed=seed)
    pred.drawn = mask
    return int(mask.sum())


def is_dense(pred: Predictions) -> bool:
    """True for ``(N, K, H, W)`` predictions (or a scores file made from them)."""
    try:
        items_and_pixels(pred, "")
    except UsageError:
        return False
    return True


def fit_split(pred: Predictions, fraction: float, seed: int) -> np.ndarray:
    """The ``--fit-fraction`` row mask: a random fraction of the **images** of a dense input
    (every pixel of a chosen image is a fit row: pixels of one image are not independent, so a
    pixel-level split would tune on the images it then evaluates), else of the rows. The
    images are drawn exactly as rows are (:func:`lsfix.evaluation.inmemory.split_fit_rows` on the image
    count)."""
    from lsfix.evaluation.inmemory import split_fit_rows

    if not is_dense(pred):
        return split_fit_rows(pred.n, fraction, seed, pred.name)
    n_items, pixels = items_and_pixels(pred, "--fit-fraction")
    return np.repeat(split_fit_rows(n_items, fraction, seed, pred.name), pixels)


def image_of_rows(pred: Predictions, option: str) -> np.ndarray:
    """The image index of every row of a dense input (for ``--bootstrap-unit image``)."""
    n_items, pixels = items_and_pixels(pred, option)
    return np.repeat(np.arange(n_items, dtype=np.intp), pixels)


def evaluated_images(pred: Predictions, unit: str, option: str = "--bootstrap-unit image"
                     ) -> np.ndarray | None:
    """``--bootstrap-unit``: ``None`` for ``row``; for ``image``, the image index of every
    **evaluated** row (:func:`lsfix.evaluation.inmemory.eval_mask` applied), the cluster ids that
    :func:`lsfix.core.bootstrap.cluster_bootstrap_ci` and
    :func:`lsfix.core.bootstrap.paired_bootstrap` take."""
    if unit == "row":
        return None
    from lsfix.evaluation.inmemory import eval_mask

    images = image_of_rows(pred, option)
    mask = eval_mask(pred)
    return images if mask is None else images[mask]


def rank_map_data(pred: Predictions, score: str) -> tuple[Any, list[str]]:
    """``curve --rank-map``: the per-pixel uncertainty-rank map of every image under
    ``score``, and the images' names (drawn by :func:`lsfix.output.plot.rank_map_plot`)."""
    from lsfix.core.rankmap import rank_maps
    from lsfix.evaluation.inmemory import eval_mask, resolve_scores

    n_items, pixels = items_and_pixels(pred, "--rank-map")
    spatial = tuple(getattr(pred.logits, "spatial", ())) if pred.logits is not None else ()
    if not spatial:
        spatial = tuple(int(s) for s in pred.fingerprint["shape"][2:])  # type: ignore[index]
    conf = resolve_scores(pred, [score])[score]
    maps = rank_maps(conf, eval_mask(pred), n_items, spatial)
    names = ([str(s) for s in pred.sample_ids] if pred.sample_ids is not None
             else [f"image {i}" for i in range(n_items)])
    return maps, names
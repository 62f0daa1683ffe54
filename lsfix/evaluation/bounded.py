"""``curve``'s bounded-memory path: exact metrics of scores computed from logits, never held
per row.

The logits are read once, in pieces (a dense ``(N, K, H, W)`` file image by image in its own
layout, each image once; a plain ``(N, K)`` file in row blocks). Each piece is scored in
float64 by the same kernels as the in-memory path (:func:`lsfix.core.compute_scores`, so every
value is the same float), its correctness is ``argmax == label`` (labels in their stored
dtype), rows that are not evaluated (ignored pixels, fit rows) are dropped at once, and the
``(confidence, correct)`` pairs go to one :class:`~lsfix.core.spill.SpilledBlocks` per score:
sorted runs in a temporary folder, merged into exact tie-block totals on disk. Every metric,
in every convention, is computed from those totals a window at a time
(:mod:`lsfix.core.blockmetrics`): bit-identical to the in-memory path, with memory bounded by
a run (about 100 MB) whatever ``n`` is. The RC plot is drawn from ``E_k`` at
:data:`CURVE_POINTS` evenly spaced ``k`` (exact values at those points).

When the planner takes it (:func:`lsfix.evaluation.planner.wanted`): the input has logits
and every requested score is computed from them (none stored), no option needs per-row
arrays (``--by``, ``--bootstrap``, ``--rank-map``, ``--subsample-pixels``, ``--with``, a
``--scheduler`` other than ``sync``),
and either the logits are dense, or the in-memory path's estimated memory,
``n × (IN_MEMORY_BYTES_PER_ROW + 8 × (scores − 1))`` bytes, is above ``--memory-limit``
(default 2 GiB; ``0`` always takes this path).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsfix.core import ScoreSpec
from lsfix.core import compute_scores as core_compute_scores
from lsfix.core.blockmetrics import errors_at, totals
from lsfix.core.densescores import msp_columns
from lsfix.core.rowblocks import run_image_pieces
from lsfix.core.source import ArrayRows, chunk_rows_for
from lsfix.core.spill import DISK_BYTES_PER_ROW, RUN_ROWS, SpilledBlocks, check_space
from lsfix.readers.predictions import Predictions

#: Points of the RC curve drawn by ``--plot`` on this path.
CURVE_POINTS = 4096

def evaluate_bounded(pred: Predictions, names: list[str] | None, *, convention: str,
                     coverages: tuple[float, ...], risks: tuple[float, ...],
                     curve_points: int = 0, run_rows: int = RUN_ROWS,
                     folder: str | None = None) -> tuple[list[Any], list[Any], Any, Any]:
    """Every metric of each score of ``pred`` (see the module docstring).

    Returns ``(results, curves, oracle, excluded)``: :class:`lsfix.evaluation.inmemory.ScoreResult`
    per score (empty ``confidence``/``correct``); with ``curve_points``, the RC curve of each score
    and of the ideal ranking as ``(coverage, risk)`` at up to that many ``k``; and the
    :class:`lsfix.evaluation.inmemory.ExcludedRows` counts, made while reading (no per-row array).
    ``folder``: where the temporary runs go (``--tmpdir``; else ``TMPDIR``, else the system
    default); its free space is checked first against :data:`lsfix.core.spill.
    DISK_BYTES_PER_ROW` per row that may be evaluated (not ignored, not a fit row; dense
    labels on disk are read once more, image by image, to count them) and score (an upper
    bound: every confidence distinct), with a one-line :class:`~lsfix.errors.RuntimeFailure`
    when short.
    """
    from lsfix.core.metrics import metrics_from_blocks
    from lsfix.evaluation.inmemory import ExcludedRows, ScoreResult, eval_mask, score_specs

    if pred.deferred_labels is not None and not getattr(pred.logits, "spatial", ()):
        pred.load_labels()  # a view of the logits (probabilities) that is not image-shaped
    deferred = pred.deferred_labels
    labels = None if deferred is not None else pred.require_labels("evaluation (correctness)")
    names = list(names) if names else ["msp"]
    specs = score_specs(pred, names)
    mask = eval_mask(pred)  # fit rows (and ignored pixels when the labels are in memory)
    src = pred.logits
    assert src is not None
    n, k = src.shape
    step = chunk_rows_for(k)
    # dense labels left on disk are read image by image (a row range never spans two)
    spatial = getattr(src, "spatial", ())
    pixels = n // int(src.n_items) if spatial else n  # type: ignore[attr-defined]
    upper = n if mask is None else int(mask.sum())  # rows that may be evaluated
    if upper > run_rows and deferred is not None and spatial:
        upper = _not_ignored(deferred, n // pixels, pixels, mask)  # one pass over the labels
    if upper > run_rows:  # fewer stay in memory: no disk
        check_space(folder, upper * DISK_BYTES_PER_ROW * len(names),
                    f"{DISK_BYTES_PER_ROW} B per row that may be evaluated x {upper:,} rows"
                    f"{f' x {len(names)} scores' if len(names) > 1 else ''}")
    spills = {name: SpilledBlocks(run_rows=run_rows, folder=folder) for name in names}
    try:
        kernel = bool(spatial)  # dense: the (K, pixels) msp kernel when only msp is asked
        if kernel and all(sp.name == "msp" for sp in specs) and isinstance(src, ArrayRows) \
                and src.raw_dtype.kind == "f":
            _dense_msp(src, deferred, labels, mask, names, spills)
        else:
            for first in range(0, n, pixels):
                if deferred is not None:
                    lab, keep = deferred.image(first // pixels)
                else:
                    assert labels is not None
                    lab, keep = labels, None
                off = first if deferred is not None else 0
                for start in range(first, first + pixels, step):
                    stop = min(first + pixels, start + step)
                    sel = _select(mask, keep, start, stop, first)
                    _add_rows(src.rows(start, stop), lab[start - off : stop - off], sel,
                              specs, names, spills)
        if not spills[names[0]].n:  # every row ignored or fit: the in-memory path's error
            pred.load_labels()
            eval_mask(pred)
        evaluated = spills[names[0]].n
        fit = 0 if pred.fit_mask is None else int(pred.fit_mask.sum()) - _fit_ignored(
            pred, deferred, pixels)
        excluded = ExcludedRows(ignored=n - evaluated - fit, fit=fit, not_drawn=0,
                                evaluated=evaluated)
        results, curves = [], []
        oracle = None
        for name in names:
            blocks = spills[name].block_source()
            m = metrics_from_blocks(blocks, convention=convention, coverages=coverages,
                                    risks=risks)
            empty = np.empty(0)
            results.append(ScoreResult(pred.name, name, m, None, empty, empty.astype(bool)))
            if curve_points:
                curves.append(_curve(blocks, curve_points))
                if oracle is None:
                    oracle = oracle_curve(m.n, m.n_errors, curve_points)
    finally:
        for sb in spills.values():
            sb.close()
    return results, curves, oracle, excluded


def _not_ignored(deferred: Any, n_items: int, pixels: int, mask: np.ndarray | None) -> int:
    """Pixels that may be evaluated (not ignored, not masked), from the labels on disk read
    image by image (1 byte per pixel for uint8 labels): the temporary-disk estimate."""
    total = 0
    for item in range(n_items):
        _, keep = deferred.image(item)
        sel = _select(mask, keep, item * pixels, (item + 1) * pixels, item * pixels)
        total += pixels if sel is None else int(sel.sum())
    return total


def _fit_ignored(pred: Predictions, deferred: Any, pixels: int) -> int:
    """Fit rows that are also ignored pixels (counted as ignored, like
    :func:`lsfix.evaluation.inmemory.excluded_rows`), image by image when the labels are on disk."""
    fit = pred.fit_mask
    assert fit is not None
    if deferred is None:
        return 0 if pred.keep is None else int((fit & ~pred.keep).sum())
    total = 0
    for item in range(pred.n // pixels):
        _, keep = deferred.image(item)
        if keep is not None:
            total += int((fit[item * pixels : (item + 1) * pixels] & ~keep).sum())
    return total


#: Pixels per piece of the dense msp kernel (a float64 piece of K = 19 is 0.6 MB).
PIECE_PIXELS = 4096


def _select(mask: np.ndarray | None, keep: np.ndarray | None, start: int, stop: int,
            first: int) -> np.ndarray | None:
    """Rows ``start:stop`` to evaluate: the file-wide mask (fit rows, ignored pixels held in
    memory) and the mask of the image starting at row ``first`` (ignored pixels read with it)."""
    sel = None if mask is None else mask[start:stop]
    if keep is not None:
        kp = keep[start - first : stop - first]
        sel = kp if sel is None else (sel & kp)
    return sel


def _dense_msp(src: ArrayRows, deferred: Any, labels: np.ndarray | None,
               mask: np.ndarray | None, names: list[str],
               spills: dict[str, SpilledBlocks], threads: int | None = None) -> None:
    """msp of a dense source image by image: each image read once into one of two reused
    buffers in its stored layout, scored piece by piece in ``(K, pixels)`` by worker threads
    (:func:`lsfix.core.rowblocks.run_image_pieces`; bit-identical to the row kernels:
    :func:`lsfix.core.densescores.msp_columns`), spilled in image order by this thread."""
    n, k = src.shape
    n_items = int(src.n_items)
    pixels = n // n_items
    src.drop_cache()  # an image read whole for a look at the first rows (input detection)
    values = [np.empty(pixels), np.empty(pixels)]
    args = [np.empty(pixels, dtype=np.intp), np.empty(pixels, dtype=np.intp)]

    def exact(piece_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # finite logits whose float64 sum overflowed (or unchecked non-finite ones): the row
        # kernels, exactly
        return (core_compute_scores(np.ascontiguousarray(piece_.T), [ScoreSpec("msp")])["msp"],
                np.argmax(piece_, axis=0))

    def piece(flat: np.ndarray, slot: int, a: int, b: int, work: np.ndarray) -> bool:
        value, arg, finite = msp_columns(flat[:, a:b], work[:, : b - a])
        if not finite:
            if not np.isfinite(flat[:, a:b]).all():
                return True  # the main thread raises the input error (finish)
            value, arg = exact(flat[:, a:b])
        values[slot][a:b] = value
        args[slot][a:b] = arg
        return False

    def finish(item: int, slot: int, image: np.ndarray, bad: bool) -> None:
        if bad:
            src.check_finite_block(item, image[None])  # raises, naming the row
            flat = image.reshape(k, pixels)  # not checked: score every piece as before
            for a in range(0, pixels, PIECE_PIXELS):
                b = min(pixels, a + PIECE_PIXELS)
                value, arg, finite = msp_columns(flat[:, a:b])
                if not finite:
                    value, arg = exact(flat[:, a:b])
                values[slot][a:b], args[slot][a:b] = value, arg
        first = item * pixels
        if deferred is not None:
            lab, keep = deferred.image(item)
        else:
            assert labels is not None
            lab, keep = labels[first : first + pixels], None
        correct = args[slot] == lab
        value = values[slot]
        sel = _select(mask, keep, first, first + pixels, first)
        if sel is not None:
            value, correct = value[sel], correct[sel]
        for name in names:
            spills[name].add(value, correct)

    run_image_pieces(n_items, (k, *src.spatial), src.raw_dtype, src.read_image_into, piece,
                     lambda p: np.empty((k, p), dtype=np.float64), finish,
                     piece_pixels=PIECE_PIXELS, threads=threads)


def _add_rows(z: np.ndarray, labels: np.ndarray, mask: np.ndarray | None,
              specs: list[ScoreSpec], names: list[str],
              spills: dict[str, SpilledBlocks]) -> None:
    """Score one piece of rows (float64), drop the rows not evaluated, spill the pairs."""
    out = core_compute_scores(z, specs, labels=labels)
    correct = out["_correct"]
    if mask is not None:
        correct = correct[mask]
    for spec, name in zip(specs, names, strict=True):
        conf = out[spec.name]
        spills[name].add(conf if mask is None else conf[mask], correct)


def _ks(n: int, points: int) -> np.ndarray:
    return np.unique(np.linspace(1, n, min(n, points)).round().astype(np.int64))


def _curve(blocks: Any, points: int) -> tuple[np.ndarray, np.ndarray]:
    n, _, n_blocks, _ = totals(blocks)
    ks = _ks(n, points)
    e = errors_at(blocks, n, n_blocks != n, ks)
    return ks / n, e / ks


def oracle_curve(n: int, n_errors: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The ideal ranking's RC curve (every correct sample first) at up to ``points`` k."""
    ks = _ks(n, points)
    e = np.maximum(0, ks - (n - n_errors)).astype(np.float64)
    return ks / n, e / ks





__all__ = ["CURVE_POINTS", "evaluate_bounded", "oracle_curve"]

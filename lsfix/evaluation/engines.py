"""Evaluate one or several files, each on the engine :func:`lsfix.evaluation.planner.choose_engine`
picks for it (``compare`` today; the planner of ``lsfix.evaluate`` calls the same).

* ``memory``: every row in memory (:func:`lsfix.evaluation.inmemory.evaluate_file`; with
  ``--subsample-pixels``, the drawn rows of :func:`lsfix.evaluation.dense.apply_subsample`);
* ``bounded``: :func:`lsfix.evaluation.bounded.evaluate_bounded` (exact, memory bounded by a
  run, the RC curve at up to ``curve_points`` points);
* ``drawn``: only the drawn pixels of a dense file are read (:func:`lsfix.evaluation.drawn.gather`),
  then evaluated in memory.

Every engine gives the same numbers for the same rows (tests/cli/test_drawn.py,
tests/cli/test_curve_outofcore.py); only memory and time differ. Pairing files for a
bootstrap (:meth:`Evaluated.paired_clusters`) checks that they hold the same samples (and, for
drawn pixels, the same drawn pixels) and gives the image clusters of ``--bootstrap-unit
image``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsfix.errors import InputError
from lsfix.readers.predictions import Predictions


@dataclass
class Evaluated:
    """What :func:`evaluate_files` returns: the results of every file (in order), and per
    file its engine, its drawn pixels (``drawn`` engine) and its RC curve (``bounded``)."""

    preds: list[Predictions]
    engines: list[str]
    results: list[Any] = field(default_factory=list)
    #: per result: ``(coverage, risk)`` from the bounded engine, else None (from the rows)
    curves: list[Any] = field(default_factory=list)
    #: the ideal ranking's curve of the first file when it ran bounded
    oracle: Any = None
    drawn: list[Any] = field(default_factory=list)
    excluded: list[Any] = field(default_factory=list)
    #: per result: the position of its file in ``preds`` (a file may be given twice)
    file_index: list[int] = field(default_factory=list)

    def paired_clusters(self, unit: str) -> np.ndarray | None:
        """Check that every file can be paired with the first one, row by row (the same
        samples; for drawn pixels the same drawn pixels); return the clusters of ``unit``
        (``None`` for ``row``, the image of every evaluated row for ``image``)."""
        base, base_d = self.preds[0], self.drawn[0]
        if any(e == "bounded" for e in self.engines):  # pragma: no cover - per_row excludes it
            raise InputError("a paired bootstrap needs every row's scores; internal error")
        for pred, d in zip(self.preds[1:], self.drawn[1:], strict=True):
            why = same_samples(base, pred) if base_d is None and d is None else (
                _same_drawn(base, base_d, pred, d))
            if why is not None:
                raise InputError(f"cannot pair {base.name} and {pred.name} for the "
                                 f"bootstrap: {why}")
        if base_d is not None:
            if unit == "row":
                return None
            _same_image_shape(self.preds, unit)
            return base_d.images  # type: ignore[no-any-return]
        return paired_images(self.preds, unit)


def evaluate_files(preds: list[Predictions], names: list[str] | None, *, convention: str,
                   coverages: tuple[float, ...], risks: tuple[float, ...], per_row: bool,
                   subsample: str | None, seed: int, memory_limit: int,
                   curve_points: int = 0, folder: str | None = None,
                   allow_drawn: bool = True, command: str = "compare",
                   scores_of: Any = None, n_boot: int = 0, level: float = 0.95) -> Evaluated:
    """Evaluate ``names`` on each of ``preds`` (dense labels may still be on disk), each on
    the engine :func:`~lsfix.evaluation.planner.choose_engine` picks; ``per_row``: the caller needs
    each row's confidence and correctness (a bootstrap, ``--by``, ...). A file whose
    in-memory estimate is above ``memory_limit`` and that no bounded engine can take is
    refused before anything is computed. ``scores_of(pred)``, when given, supplies the
    confidences of the in-memory engines (``compare``: computed from the logits, stored ones
    checked, pNorm tuned; :func:`lsfix.evaluation.comparison.compare_scores`); ``n_boot``
    adds each row's bootstrap intervals there."""
    from lsfix.evaluation.bounded import evaluate_bounded, oracle_curve
    from lsfix.evaluation.drawn import gather
    from lsfix.evaluation.inmemory import evaluate_file
    from lsfix.evaluation.planner import choose_engine

    engines = [choose_engine(p, names, per_row=per_row, subsample=subsample,
                             memory_limit=memory_limit, command=command,
                             allow_drawn=allow_drawn) for p in preds]
    out = Evaluated(preds=preds, engines=engines)
    for i, (pred, engine) in enumerate(zip(preds, engines, strict=True)):
        d = None
        if engine == "bounded":
            res, curves, oracle, ex = evaluate_bounded(
                pred, names, convention=convention, coverages=coverages, risks=risks,
                curve_points=curve_points, folder=folder)
            out.curves += curves if curves else [None] * len(res)
            if out.oracle is None and pred is preds[0]:
                out.oracle = oracle
        elif engine == "drawn":
            d = gather(pred, subsample, seed)  # type: ignore[arg-type]
            res, ex = evaluate_file(d.pred, names, convention=convention, coverages=coverages,
                                    risks=risks, n_boot=n_boot, seed=seed, level=level,
                                    scores=None if scores_of is None else scores_of(d.pred)
                                    ), d.excluded
            out.curves += [None] * len(res)
        else:
            pred.load_labels()
            if subsample is not None:
                from lsfix.evaluation.dense import apply_subsample

                apply_subsample(pred, subsample, seed)
            res, ex = evaluate_file(pred, names, convention=convention, coverages=coverages,
                                    risks=risks, n_boot=n_boot, seed=seed, level=level,
                                    scores=None if scores_of is None else scores_of(pred)
                                    ), None
            out.curves += [None] * len(res)
        out.results += res
        out.file_index += [i] * len(res)
        out.drawn.append(d)
        out.excluded.append(ex)
    if out.oracle is None and engines[0] == "bounded":  # pragma: no cover - set above
        out.oracle = oracle_curve(out.results[0].metrics.n, out.results[0].metrics.n_errors,
                                  curve_points)
    if all(c is None for c in out.curves):
        out.curves = []
    return out


def _same_drawn(a: Predictions, da: Any, b: Predictions, db: Any) -> str | None:
    from lsfix.evaluation.drawn import same_draw

    if da is None or db is None:
        return "one file's pixels were drawn (--subsample-pixels) and the other's were not"
    if a.n != b.n:
        return f"{a.name} has {a.n} rows, {b.name} has {b.n}"
    if a.sample_ids is not None and b.sample_ids is not None and not np.array_equal(
            a.sample_ids.astype(str), b.sample_ids.astype(str)):
        i = int(np.argmax(a.sample_ids.astype(str) != b.sample_ids.astype(str)))
        return f"sample ids differ (first at row {i})"
    return same_draw(da, db)


def _same_image_shape(preds: list[Predictions], unit: str) -> tuple[int, int]:
    from lsfix.evaluation.dense import items_and_pixels

    shape = items_and_pixels(preds[0], "--bootstrap-unit image")
    for pred in preds[1:]:
        other = items_and_pixels(pred, "--bootstrap-unit image")
        if other != shape:
            raise InputError(f"cannot pair {preds[0].name} and {pred.name} by image: "
                             f"{shape[0]} images of {shape[1]} pixels vs {other[0]} of "
                             f"{other[1]}")
    return shape


def same_samples(a: Any, b: Any) -> str | None:
    """Why two files do not hold the same samples, or None when they do."""
    if a.n != b.n:
        return f"{a.name} has {a.n} rows, {b.name} has {b.n}"
    if a.sample_ids is not None and b.sample_ids is not None:
        if not np.array_equal(a.sample_ids.astype(str), b.sample_ids.astype(str)):
            i = int(np.argmax(a.sample_ids.astype(str) != b.sample_ids.astype(str)))
            return f"sample ids differ (first at row {i})"
    if a.labels is None or b.labels is None:
        return "labels are missing"
    if not np.array_equal(a.labels, b.labels):
        i = int(np.argmax(a.labels != b.labels))
        return f"labels differ (first at row {i})"
    ma = a.fit_mask if a.fit_mask is not None else np.zeros(a.n, bool)
    mb = b.fit_mask if b.fit_mask is not None else np.zeros(b.n, bool)
    if not np.array_equal(ma, mb):
        return "their fit splits (/fit_mask) differ"
    return None


def paired_images(preds: list[Any], unit: str) -> Any:
    """``--bootstrap-unit image``: the image of every evaluated row of the baseline, shared by
    every paired difference (the files hold the same samples, :func:`same_samples`; each must
    be dense with the same pixels per image, so its rows are the same images'); ``None`` for
    ``row``."""
    from lsfix.evaluation.dense import evaluated_images

    if unit == "row":
        return None
    _same_image_shape(preds, unit)
    return evaluated_images(preds[0], unit)


__all__ = ["Evaluated", "evaluate_files", "paired_images", "same_samples"]

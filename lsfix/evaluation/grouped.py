"""Metrics per group of rows (``--by``): by true class, predicted class, image, or a named
group (``/groups/NAME`` in an lsfix file, or any extra column of a table).

``--by class``
    the true class of each row (needs labels); group names use ``/class_names`` when present.
``--by predicted``
    the predicted class, ``argmax z`` (needs logits).
``--by image``
    dense files only: every pixel row of one image forms a group (the image's sample id).
``--by NAME``
    ``/groups/NAME`` (one integer or string per sample) or the table column ``NAME``.

Every metric is computed on the rows of each group exactly as on a whole file (the same
conventions, tie rule and undefined cases), and the whole file comes first as group ``all``.
Bootstrap intervals resample rows *within* the group. Rows excluded from evaluation (the fit
split, ignored pixels) are excluded from every group too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core import bootstrap_ci, evaluate
from lsfix.core.bootstrap import Interval
from lsfix.core.metrics import Metrics
from lsfix.errors import InputError, UsageError
from lsfix.safetext import quote as _quote
from lsfix.evaluation.inmemory import correct_of, eval_mask, resolve_scores
from lsfix.readers.predictions import Predictions

#: ``--by`` values with a built-in meaning; anything else names a group.
BUILTIN = ("class", "predicted", "image")
#: the name of the whole-file group, listed first
ALL = "all"


@dataclass(frozen=True)
class Grouping:
    """Group of every row (``n`` rows, as the file's evaluation rows before masking).

    ``names`` never holds :data:`ALL`: a data group of that name is shown as ``all (data)``
    (names are data; the whole-file row keeps its reserved name)."""

    by: str
    index: np.ndarray  #: int64 (n,): position of the row's group in ``names``
    names: list[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", unreserved(self.names))


def unreserved(names: list[str]) -> list[str]:
    """``names`` with a data group named :data:`ALL` renamed ``all (data)`` (then
    ``all (data) (data)``, ...: never equal to another name)."""
    if ALL not in names:
        return names
    taken = set(names)
    out = []
    for n in names:
        if n == ALL:
            n = f"{ALL} (data)"
            while n in taken:
                n += " (data)"
            taken.add(n)
        out.append(n)
    return out


@dataclass(frozen=True)
class GroupResult:
    """One score of one file on one group (``group == "all"``: the whole file)."""

    file: str
    score: str
    group: str
    metrics: Metrics
    ci: dict[str, Interval] | None
    confidence: np.ndarray
    correct: np.ndarray


def _class_names(pred: Predictions, values: np.ndarray) -> list[str]:
    names = pred.class_names
    out = []
    for v in values.tolist():
        if names is not None and 0 <= int(v) < len(names):
            out.append(f"{int(v)} ({names[int(v)]})")
        else:
            out.append(str(int(v)))
    return out


def _per_row(pred: Predictions, per_sample: np.ndarray) -> np.ndarray:
    """Per-sample values repeated over the pixel rows of a dense file."""
    if per_sample.shape[0] == pred.n:
        return per_sample
    pixels = pred.n // max(1, per_sample.shape[0])
    if per_sample.shape[0] * pixels != pred.n:
        raise InputError(f"{per_sample.shape[0]} group values for {pred.n} rows", file=pred.name)
    return np.repeat(per_sample, pixels)


def grouping(pred: Predictions, by: str) -> Grouping:
    """Which group every row of ``pred`` belongs to (see the module docstring)."""
    if by == "class":
        if pred.labels is None or pred.logits is None:
            raise UsageError(f"{pred.name}: --by class needs labels and logits (a score table "
                             "has neither; add a class column and use --by COLUMN)")
        values = np.asarray(pred.labels, dtype=np.int64)
        uniq, index = np.unique(values, return_inverse=True)
        return Grouping(by, index.astype(np.int64), _class_names(pred, uniq))
    if by == "predicted":
        if pred.logits is None:
            raise UsageError(f"{pred.name}: --by predicted needs logits")
        from lsfix.core.scores import predictions

        values = predictions(pred.logits)
        uniq, index = np.unique(values, return_inverse=True)
        return Grouping(by, index.astype(np.int64), _class_names(pred, uniq))
    if by == "image":
        spatial = getattr(pred.logits, "spatial", ()) if pred.logits is not None else ()
        if not spatial:
            raise UsageError(f"{pred.name}: --by image needs dense (N, K, H, W) logits; this "
                             "file has one row per sample")
        items = pred.n // int(np.prod(spatial))
        ids = (list(pred.sample_ids) if pred.sample_ids is not None
               else [str(i) for i in range(items)])
        index = np.repeat(np.arange(items, dtype=np.int64), int(np.prod(spatial)))
        return Grouping(by, index, [str(s) for s in ids])
    if by not in pred.groups:
        from lsfix.safetext import listing

        have = listing(sorted(pred.groups))
        raise UsageError(f"{pred.name}: no group {_quote(by)} (groups in the file: {have}; or "
                         f"--by {', '.join(BUILTIN)})")
    raw = np.asarray(pred.groups[by])
    values = raw.astype(str) if raw.dtype.kind in "OSU" else raw
    uniq, index = np.unique(values, return_inverse=True)
    return Grouping(by, _per_row(pred, index.astype(np.int64)), [str(u) for u in uniq])


def evaluate_by(
    pred: Predictions,
    names: list[str] | None,
    by: str,
    *,
    convention: str = "lsfix",
    coverages: tuple[float, ...] = (),
    risks: tuple[float, ...] = (),
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
    scores: dict[str, np.ndarray] | None = None,
) -> list[GroupResult]:
    """Every metric of each score, for the whole file (group ``all``) and for each group.

    ``scores`` (per row, before masking) replaces the file's stored scores when given.
    """
    g = grouping(pred, by)
    scores = resolve_scores(pred, names) if scores is None else scores
    correct = correct_of(pred)
    index = g.index
    mask = eval_mask(pred)
    if mask is not None:
        correct, index = correct[mask], index[mask]
    # the rows of each group, by one stable sort: O(n log n) time and O(n) memory however
    # many groups there are (a boolean mask per group would cost n bytes per group)
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(len(g.names) + 1))
    out = []
    for name, conf in scores.items():
        c = conf if mask is None else conf[mask]
        parts: list[tuple[str, Any]] = [(ALL, slice(None))]
        parts += [(gname, order[bounds[i]:bounds[i + 1]]) for i, gname in enumerate(g.names)]
        for gname, sel in parts:
            cg, yg = c[sel], correct[sel]
            if cg.shape[0] == 0:
                continue  # a group whose rows are all excluded (fit split, ignored pixels)
            m = evaluate(cg, yg, convention=convention, coverages=coverages, risks=risks)
            ci = None
            if n_boot:
                ci = bootstrap_ci(cg, yg, n_boot=n_boot, seed=seed, level=level,
                                  convention=convention)
            out.append(GroupResult(pred.name, name, gname, m, ci, cg, yg))
    return out


def group_rows(results: list[GroupResult], *, percent: bool) -> list[dict[str, Any]]:
    """Flat rows (``file, score, group``, metrics, interval columns) for tables and TSV."""
    from lsfix.output.report import ci_dict, flat_row, metrics_dict

    return [flat_row({"file": r.file, "score": r.score, "group": r.group},
                     metrics_dict(r.metrics, percent=percent), ci_dict(r.ci, percent=percent))
            for r in results]


def group_json(results: list[GroupResult], *, percent: bool) -> list[dict[str, Any]]:
    from lsfix.output.report import ci_dict, metrics_dict

    return [{"file": r.file, "score": r.score, "group": r.group,
             **metrics_dict(r.metrics, percent=percent), "ci": ci_dict(r.ci, percent=percent)}
            for r in results]

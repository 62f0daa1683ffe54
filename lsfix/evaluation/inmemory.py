"""Operations on a read :class:`~lsfix.readers.predictions.Predictions` shared by the commands.

Kept apart from the CLI so notebooks and ``audit`` get the same numbers as ``curve``/``compare``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core import (
    Metrics,
    PNormFit,
    ScoreSpec,
    bootstrap_ci,
    parse_score,
    tune_pnorm,
)
from lsfix.core.bootstrap import Interval
from lsfix.errors import InputError, UsageError
from lsfix.safetext import listing
from lsfix.safetext import quote as _quote
from lsfix.readers.predictions import FIT_MASK, Predictions


def is_score_table(pred: Predictions) -> bool:
    """A ``confidence``/``correct`` table (no logits): ``labels`` hold correctness."""
    from lsfix.readers.foreign import SCORE_TABLE

    return pred.foreign_format == SCORE_TABLE


def correct_of(pred: Predictions) -> np.ndarray:
    """Per-row correctness: ``pred.correct`` when the input gives it (scores file, score
    table), else ``argmax logits == label``, computed once and kept in ``pred.correct``."""
    if pred.correct is not None:
        return pred.correct
    if is_score_table(pred):
        out = np.asarray(pred.require_labels("evaluation"), dtype=bool)
    else:
        labels = pred.require_labels("evaluation (correctness)")
        if pred.logits is None:
            raise InputError("has labels but no /logits; cannot tell which predictions are right",
                             file=pred.name)
        out = _compute_scores(pred, [], labels=labels)["_correct"]
    pred.correct = out
    return out


def _compute_scores(pred: Predictions, specs: list[Any], *, labels: Any = None
                    ) -> dict[str, np.ndarray]:
    """Scores of ``pred``'s logits: in this process, or on ``pred.runner`` (a Dask
    scheduler, :mod:`lsfix.evaluation.scheduler`; identical numbers)."""
    if pred.runner is None:
        from lsfix.core import compute_scores

        return compute_scores(pred.logits, specs, labels=labels)
    from lsfix.evaluation import scheduler

    return scheduler.compute_scores(pred.logits, specs, labels=labels, runner=pred.runner)


@dataclass(frozen=True)
class ExcludedRows:
    """Why rows are not evaluated; each row counts once, in this order of precedence:
    ``ignored`` (an ignored pixel, ``keep``), ``fit`` (a fit row of ``/fit_mask`` that is not
    ignored), ``not_drawn`` (left out by ``--subsample-pixels``: neither ignored nor a fit
    row, but not drawn). ``evaluated`` is the rest; the four add up to ``n``."""

    ignored: int
    fit: int
    not_drawn: int
    evaluated: int


def excluded_rows(pred: Predictions) -> ExcludedRows:
    """The row counts of :class:`ExcludedRows` for ``pred``."""
    kept = np.ones(pred.n, dtype=bool) if pred.keep is None else pred.keep
    fit = kept & pred.fit_mask if pred.fit_mask is not None else np.zeros(pred.n, dtype=bool)
    eligible = kept & ~fit
    drawn = eligible if pred.drawn is None else (eligible & pred.drawn)
    n_eligible = int(eligible.sum())
    n_drawn = int(drawn.sum())
    return ExcludedRows(ignored=pred.n - int(kept.sum()), fit=int(fit.sum()),
                        not_drawn=n_eligible - n_drawn, evaluated=n_drawn)


def evaluation_rows(pred: Predictions) -> tuple[np.ndarray | None, int, int]:
    """(eval mask, rows left out as ignored pixels, rows left out as fit data); the rows
    ``--subsample-pixels`` did not draw are in neither count (:func:`excluded_rows`)."""
    mask = eval_mask(pred)
    ex = excluded_rows(pred)
    return mask, ex.ignored, ex.fit


def available_scores(pred: Predictions) -> list[str]:
    """Scores stored in the file, in file order."""
    return list(pred.scores)


def resolve_scores(pred: Predictions, names: list[str] | None) -> dict[str, np.ndarray]:
    """Confidences to evaluate: the named ones (stored, or computed from logits on the fly);
    with no names, every stored score, or ``msp`` when the file has none."""
    if not names:
        if pred.scores:
            return dict(pred.scores)
        names = ["msp"]
    out = {name: pred.scores[name] for name in names if name in pred.scores}
    missing = score_specs(pred, [n for n in names if n not in pred.scores])
    if missing:
        computed = _compute_scores(pred, missing)
        for spec, name in zip(missing, [n for n in names if n not in pred.scores], strict=True):
            out[name] = computed[spec.name]
    return {n: out[n] for n in names}


def score_specs(pred: Predictions, names: list[str]) -> list[ScoreSpec]:
    """The specs of scores ``names`` to compute from ``pred``'s logits (none stored);
    :class:`UsageError` naming the file for a name that is neither stored nor a score."""
    specs = []
    for name in names:
        if pred.logits is None:
            have = listing(pred.scores)
            raise UsageError(f"{pred.name}: no score {_quote(name)} (stored scores: {have})")
        try:
            specs.append(parse_score(name))
        except UsageError:
            have = listing(pred.scores)
            raise UsageError(
                f"{pred.name}: no stored score {_quote(name)} and it is not a score lsfix can "
                "compute "
                f"(stored: {have})"
            ) from None
    return specs


def eval_mask(pred: Predictions) -> np.ndarray | None:
    """Rows to evaluate: all but rows used to fit parameters (``/fit_mask``), ignored
    pixels of dense tasks (``ignore_index``) and pixels ``--subsample-pixels`` did not draw
    (``drawn``); ``None`` when every row counts."""
    mask = pred.keep
    if pred.drawn is not None:
        mask = pred.drawn if mask is None else (mask & pred.drawn)
    if pred.fit_mask is not None and pred.fit_mask.any():
        mask = ~pred.fit_mask if mask is None else (mask & ~pred.fit_mask)
        if not mask.any():
            raise InputError("every row is marked as fit data; nothing left to evaluate",
                             file=pred.name, dataset=FIT_MASK)
    return mask


@dataclass(frozen=True)
class ScoreResult:
    """One evaluated score of one file."""

    file: str
    score: str
    metrics: Metrics
    ci: dict[str, Interval] | None
    confidence: np.ndarray
    correct: np.ndarray


def evaluate_file(
    pred: Predictions,
    names: list[str] | None,
    *,
    convention: str = "lsfix",
    coverages: tuple[float, ...] = (),
    risks: tuple[float, ...] = (),
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
    scores: dict[str, np.ndarray] | None = None,
) -> list[ScoreResult]:
    """Evaluate each resolved score of ``pred`` on its evaluation rows. ``clusters`` (one
    id per row, e.g. the image of each pixel) makes the bootstrap resample clusters
    (:func:`lsfix.core.bootstrap.cluster_bootstrap_ci`). ``scores``: the confidences of every
    row, already resolved by the caller (``names`` then only orders nothing)."""
    correct = correct_of(pred)  # first: "no /labels" is found before any pass for scores
    if scores is None:
        scores = resolve_scores(pred, names)
    mask = eval_mask(pred)
    if mask is not None:
        correct = correct[mask]
        clusters = None if clusters is None else clusters[mask]
    out = []
    for name, conf in scores.items():
        c = conf if mask is None else conf[mask]
        if pred.runner is None:
            from lsfix.core import evaluate as core_evaluate

            m = core_evaluate(c, correct, convention=convention, coverages=coverages,
                              risks=risks)
        else:  # tie blocks on the runner (:mod:`lsfix.evaluation.scheduler`; the same bits)
            from lsfix.evaluation import scheduler

            m = scheduler.evaluate(c, correct, convention=convention, coverages=coverages,
                                   runner=pred.runner, risks=risks)
        ci = None
        if n_boot and clusters is not None:
            from lsfix.core.bootstrap import cluster_bootstrap_ci

            ci = cluster_bootstrap_ci(c, correct, clusters, n_boot=n_boot, seed=seed,
                                      level=level, convention=convention,
                                      coverages=tuple(coverages), risks=tuple(risks))
        elif n_boot:
            ci = bootstrap_ci(c, correct, n_boot=n_boot, seed=seed, level=level,
                              convention=convention, coverages=tuple(coverages),
                              risks=tuple(risks))
        out.append(ScoreResult(pred.name, name, m, ci, c, correct))
    return out


# --------------------------------------------------------------------------------------------
# fitting p


def split_fit_rows(n: int, fraction: float, seed: int, name: str = "input") -> np.ndarray:
    """Boolean mask of a random ``fraction`` of ``n`` rows (at least 1, at most n - 1)."""
    if not 0 < fraction < 1:
        raise UsageError(f"--fit-fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise UsageError(f"{name}: cannot split {n} row(s) into fit and evaluation parts; "
                         "fit on another labelled file (--fit/--val) or fix p (--p)")
    k = min(n - 1, max(1, math.ceil(fraction * n)))
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def fit_on_rows(pred: Predictions, rows: np.ndarray, *, grid: tuple[float, ...],
                convention: str, split: dict[str, Any], centred: bool = True) -> PNormFit:
    """Tune p on the selected rows of ``pred`` (one read of the logits, in blocks); ignored
    pixels (``keep``) are never fit rows. ``centred=False``: the un-centred variant."""
    labels = pred.require_labels("fitting p")
    assert pred.logits is not None
    if pred.keep is not None:
        rows = rows & pred.keep
    return tune_pnorm(pred.logits, labels, grid=grid, convention=convention, split=split,
                      rows=np.asarray(rows, dtype=bool), centred=centred)


class _RowSubset:
    """Row source over selected rows of another row source (ascending indices)."""

    def __init__(self, src: Any, idx: np.ndarray) -> None:
        self._src = src
        self._idx = idx
        self.shape = (int(idx.shape[0]), int(src.shape[1]))

    def rows(self, start: int, stop: int) -> np.ndarray:
        sel = self._idx[start:stop]
        if sel.shape[0] == 0:
            return np.empty((0, self.shape[1]))
        lo, hi = int(sel[0]), int(sel[-1]) + 1
        block = self._src.rows(lo, hi)
        return block[sel - lo]


#: below these, the held-out AURCs of neighbouring p differ by less than their sampling noise
MIN_FIT_ROWS = 500
MIN_FIT_ERRORS = 20


def small_fit_warning(fit: PNormFit) -> str | None:
    """One line when the fit set is too small to choose p reliably (None otherwise).

    AURC is driven by the errors: with e errors its sampling sd is roughly AURC / sqrt(e), and
    the held-out AURCs of neighbouring p differ by a few percent, so fewer than about 20
    errors (or 500 rows) make the choice of p mostly noise.
    """
    if fit.n_fit >= MIN_FIT_ROWS and fit.n_errors >= MIN_FIT_ERRORS:
        return None
    return (f"the fit set has {fit.n_fit} rows and {fit.n_errors} errors: too few to choose p "
            f"reliably; a reliable choice needs at least {MIN_FIT_ROWS} rows with at least "
            f"{MIN_FIT_ERRORS} wrong predictions (more errors, steadier choice)")


def describe_fit(fit: PNormFit) -> str:
    """One line: the choice and the held-out AURC that made it."""
    best = min(fit.grid, key=lambda t: (t[1], t[0]))
    family = "pnorm" if fit.centred else "pnorm_raw"
    variant = "" if fit.centred else " (un-centred pNorm)"
    if fit.fallback_msp:
        return (f"MSP kept (fallback): held-out AURC {fit.msp_aurc:.6g} <= best {family} "
                f"p={best[0]:g} {best[1]:.6g} on {fit.n_fit} samples")
    return (f"chose p={fit.p:g}{variant}: held-out AURC {best[1]:.6g} vs MSP "
            f"{fit.msp_aurc:.6g} on {fit.n_fit} samples")

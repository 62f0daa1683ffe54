"""What ``compare`` (and its gate) evaluates: scores from the logits, checked stored scores,
and rows paired across files.

**Scores come from the logits.** For every requested score lsfix can compute (``msp``,
``energy``, ``pnorm:2``, ``msp_ts:1.5``, ... and a stored score whose recorded method and
parameters name one, such as a tuned ``/scores/pnorm``), :func:`compare_scores` computes it
from the file's logits. A stored score of that name is then only checked: when its ranking
disagrees with the computed one the file is refused, naming both (:func:`check_stored`), so
a release file cannot choose its own score. A stored score is used as stored only where the
file has no logits (a scores file, a score table) or where it names nothing lsfix can compute.

**pNorm and T need fit data.** A bare ``pnorm`` (or ``msp_ts``) is the choice of
:func:`lsfix.evaluation.fitpolicy.choose_fit` when fit data are given; else the stored tuned
score (its recorded p recomputed from the logits); else an error that says the command to run.

**Pairing** (:func:`pair_rows`): two files' evaluated rows are the same samples when both
have sample ids and they are the same set (in any order: the second file's rows are then
aligned to the first's by id), or, without ids, when they are the same number of rows with
the same true labels in the same order. Correctness is never taken for a label: a score table
of ``confidence, y_true, y_pred`` pairs on its ``y_true``; one of ``confidence, correct``
only by sample id.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core import PLAIN_SCORES, ScoreSpec, parse_score
from lsfix.errors import InputError, UsageError
from lsfix.readers.predictions import Predictions

#: Scores that need fit data when named bare (p or T to choose).
FIT_SCORES = ("pnorm", "msp_ts")


def needs_fit(names: list[str] | None) -> bool:
    return any(n in FIT_SCORES for n in names or [])


def stored_spec(pred: Predictions, name: str) -> ScoreSpec | None:
    """The score a stored ``/scores/<name>`` says it is (from its name, or its recorded
    ``method``/``params``), or None when it names nothing lsfix computes."""
    try:
        spec = parse_score(name)
        if spec.param is not None or spec.family not in ("msp_ts",):
            return spec
    except UsageError:
        pass  # a bare pnorm, or a name of the user's: its recorded method says what it is
    attrs = pred.score_attrs.get(name) or {}
    method = attrs.get("method")
    params: Any = attrs.get("params") or {}
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return None
    if not isinstance(method, str) or not isinstance(params, dict):
        return None
    try:
        if method == "msp":
            return ScoreSpec("msp")
        if method in ("maxlogit_pnorm", "pnorm") and params.get("p") is not None:
            return parse_score(f"pnorm:{float(params['p'])!r}")
        if method in ("maxlogit_pnorm_raw", "pnorm_raw") and params.get("p") is not None:
            return parse_score(f"pnorm_raw:{float(params['p'])!r}")
        if method in ("msp_ts", "energy") and params.get("temperature") is not None:
            return parse_score(f"{method}:{float(params['temperature'])!r}")
        if method in PLAIN_SCORES:
            return parse_score(method)
    except (UsageError, TypeError, ValueError):
        return None
    return None


def check_stored(pred: Predictions, name: str, stored: np.ndarray, computed: np.ndarray,
                 what: str) -> None:
    """Refuse a stored score whose ranking disagrees with the same score computed from the
    logits beside it. Equal values pass; so does any increasing transform (MSP stored as a
    probability where lsfix computes log-MSP), up to a relative 1e-6 for rounding. Raises
    :class:`InputError` naming the stored dataset, the computed score and two rows ranked
    the other way."""
    s = np.asarray(stored, dtype=np.float64)
    c = np.asarray(computed, dtype=np.float64)
    if s.shape != c.shape:
        raise InputError(f"/scores/{name} has {s.shape[0]} rows, the logits {c.shape[0]}",
                         file=pred.name)
    with np.errstate(invalid="ignore"):
        if np.array_equal(s, c) or np.allclose(s, c, rtol=1e-9, atol=1e-12):
            return
    order = np.argsort(c, kind="stable")
    ss, cs = s[order], c[order]
    finite = np.isfinite(ss)
    scale = float(np.max(np.abs(ss[finite]))) if finite.any() else 1.0
    tol = 1e-6 * max(1.0, scale)
    lead = np.maximum.accumulate(np.where(np.isnan(ss), -np.inf, ss))
    # row j is out of order when an earlier row (lower computed score) has a stored score
    # above it by more than the tolerance, and their computed scores are not (near) ties
    tol_c = 1e-9 * max(1.0, float(np.max(np.abs(cs))))
    bad = np.flatnonzero((lead[:-1] > ss[1:] + tol) | np.isnan(ss[1:]))
    for j in bad[:1000]:
        i = int(np.argmax(ss[: j + 1] > ss[j + 1] + tol)) if not np.isnan(ss[j + 1]) else j
        if np.isnan(ss[j + 1]) or cs[j + 1] - cs[i] > tol_c:
            a, b = int(order[i]), int(order[j + 1])
            raise InputError(
                f"/scores/{name} disagrees with {what} computed from its /logits (rows {b} "
                f"and {a} are ranked the other way); a stored score must come from the "
                "logits beside it: recompute it, or compare a scores file without logits",
                file=pred.name)


def _spec_name(spec: ScoreSpec) -> str:
    return spec.name


def compare_scores(pred: Predictions, names: list[str] | None, fit: Any = None, *,
                   command: str | None = None) -> dict[str, np.ndarray]:
    """The confidences ``compare`` evaluates for ``pred`` (module docstring), one per row.

    ``names``: the requested scores (None: every stored score, or ``msp`` when there is
    none; with a fit, ``msp`` and ``pnorm``). ``fit``: a
    :class:`lsfix.evaluation.fitpolicy.FitResult` for this file, or None. ``command``: the
    command line that would tune p, for the error when a bare ``pnorm`` cannot be had.
    """
    from lsfix.evaluation import scheduler as parallel

    if not names:
        names = ["msp", "pnorm"] if fit is not None else (list(pred.scores) or ["msp"])
    todo: dict[str, ScoreSpec] = {}
    fitted: set[str] = set()  # chosen here on fit data: a stored copy is another choice
    stored_used: dict[str, np.ndarray] = {}
    for name in names:
        spec: ScoreSpec | None = None
        if name == "pnorm" and fit is not None:
            spec = fit.spec
            fitted.add(name)
        elif name == "msp_ts" and fit is not None:
            if fit.temperature is None:
                raise UsageError(f"{pred.name}: no temperature fitted for msp_ts")
            spec = ScoreSpec("msp_ts", fit.temperature)
            fitted.add(name)
        elif pred.logits is not None:
            spec = stored_spec(pred, name) if name in pred.scores else _computable(name)
            if spec is not None and spec.param is None and spec.family in ("msp_ts",):
                spec = None
            if spec is None and name in FIT_SCORES:
                raise UsageError(_fit_hint(pred, name, command))
        if spec is not None and pred.logits is not None:
            todo[name] = spec
        elif name in pred.scores:
            stored_used[name] = pred.scores[name]
        elif pred.logits is None:
            have = ", ".join(pred.scores) or "none"
            hint = (" (tune it where the logits are: 'lsfix normalise LOGITS --fit VAL')"
                    if name in FIT_SCORES else "")
            raise UsageError(f"{pred.name}: no score {name!r} (stored scores: {have}){hint}")
        else:
            have = ", ".join(pred.scores) or "none"
            raise UsageError(f"{pred.name}: no stored score {name!r} and it is not a score "
                             f"lsfix can compute (stored: {have})")
    out: dict[str, np.ndarray] = {}
    if todo:
        specs = list({s.name: s for s in todo.values()}.values())
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            computed = parallel.compute_scores(pred.logits, specs,
                                               runner=getattr(pred, "runner", None))
        for name, spec in todo.items():
            values = computed[spec.name]
            if name in pred.scores and name not in fitted:
                check_stored(pred, name, pred.scores[name], values,
                             _describe_spec(spec))
            out[name] = values
    out.update(stored_used)
    return {n: out[n] for n in names}


def _computable(name: str) -> ScoreSpec | None:
    try:
        return parse_score(name)
    except UsageError:
        return None


def _describe_spec(spec: ScoreSpec) -> str:
    if spec.param is None:
        return spec.family
    return f"{spec.family}:{spec.param:g}"


def _fit_hint(pred: Predictions, name: str, command: str | None) -> str:
    what = "p" if name == "pnorm" else "the temperature T"
    run = command or "lsfix compare FILES... -s msp -s pnorm --fit-fraction 0.2"
    return (f"{pred.name}: -s {name} needs {what} chosen on labelled data, and there is no "
            f"fit data and no stored {name}; run: {run} (or give --fit VAL once per input, "
            f"in input order; or -s {'pnorm:P' if name == 'pnorm' else 'msp_ts:T'} to fix "
            "it)")


def suggest_command(prog: str, argv: list[str]) -> str:
    """``argv`` with ``--fit-fraction 0.2`` added: the command to run when fit data are
    missing (quoted for a POSIX shell)."""
    return " ".join([prog, *(shlex.quote(a) for a in argv), "--fit-fraction", "0.2"])


# --------------------------------------------------------------------------------------------
# pairing


@dataclass(frozen=True)
class Pairing:
    """How a file's evaluated rows line up with the baseline's: ``order`` takes the file's
    evaluated rows into the baseline's order (None: they cannot be paired, ``why``)."""

    order: np.ndarray | None
    why: str | None = None
    by_id: bool = False

    @property
    def paired(self) -> bool:
        return self.order is not None


def _eval_rows(pred: Predictions, mask: np.ndarray | None) -> np.ndarray:
    return np.arange(pred.n) if mask is None else np.flatnonzero(mask)


def _true_labels(pred: Predictions) -> np.ndarray | None:
    from lsfix.evaluation.inmemory import is_score_table

    if is_score_table(pred):
        return pred.true_labels  # the labels column holds correctness there
    return pred.labels


def pair_rows(base: Predictions, base_mask: np.ndarray | None, pred: Predictions,
              mask: np.ndarray | None) -> Pairing:
    """Line up ``pred``'s evaluated rows with ``base``'s (module docstring)."""
    ra, rb = _eval_rows(base, base_mask), _eval_rows(pred, mask)
    if ra.shape[0] != rb.shape[0]:
        return Pairing(None, f"{base.name} has {ra.shape[0]} evaluated rows, {pred.name} "
                             f"has {rb.shape[0]}")
    la, lb = _true_labels(base), _true_labels(pred)
    if base.sample_ids is not None and pred.sample_ids is not None:
        ia = base.sample_ids[ra].astype(str)
        ib = pred.sample_ids[rb].astype(str)
        if np.array_equal(ia, ib):
            order, by_id = np.arange(rb.shape[0]), False
        else:
            sa, sb = np.argsort(ia, kind="stable"), np.argsort(ib, kind="stable")
            if not np.array_equal(ia[sa], ib[sb]):
                if (base.fit_mask is not None or pred.fit_mask is not None) and np.array_equal(
                        np.sort(base.sample_ids.astype(str)), np.sort(pred.sample_ids.astype(str))):
                    return Pairing(None, "their fit splits (/fit_mask) differ")
                missing = np.setdiff1d(ia, ib)
                first = str(missing[0]) if missing.shape[0] else str(np.setdiff1d(ib, ia)[0])
                return Pairing(None, f"their sample ids are not the same set (e.g. "
                                     f"{first[:40]!r} is in only one)")
            order = np.empty(rb.shape[0], dtype=np.intp)
            order[sa] = sb  # baseline row sa[k] is pred row sb[k]
            by_id = True
        if la is not None and lb is not None:
            ya, yb = _comparable(np.asarray(la)[ra], np.asarray(lb)[rb][order])
            if not np.array_equal(ya, yb):
                i = int(np.argmax(ya != yb))
                return Pairing(None, f"labels differ for sample id {str(ia[i])[:40]!r}")
        return Pairing(order, by_id=by_id)
    if la is None or lb is None:
        return Pairing(None, "no sample ids, and the labels of "
                       f"{(base if la is None else pred).name} are missing (a score table of "
                       "confidence and correct pairs only by sample_id)")
    ma = base.fit_mask if base.fit_mask is not None else np.zeros(base.n, bool)
    mb = pred.fit_mask if pred.fit_mask is not None else np.zeros(pred.n, bool)
    if base.n == pred.n and not np.array_equal(ma, mb):
        return Pairing(None, "their fit splits (/fit_mask) differ")
    ya, yb = _comparable(np.asarray(la)[ra], np.asarray(lb)[rb])
    if not np.array_equal(ya, yb):
        i = int(np.argmax(ya != yb))
        return Pairing(None, f"labels differ (first at row {i})")
    return Pairing(np.arange(rb.shape[0]))


def _comparable(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as they compare: numbers as numbers, else both as text (a table's ``y_true``
    is text; ``"3"`` from a table equals 3 from an array)."""
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        return a, b
    return a.astype(str), b.astype(str)

"""``lsfix threshold``'s library: a deployable confidence threshold with a risk guarantee.

:func:`choose_threshold` runs SGR (:mod:`lsfix.core.sgr`) on a labelled file and returns
:class:`ThresholdParams`: :meth:`~ThresholdParams.params_dict` is the JSON document
``lsfix threshold --save-params`` writes (format ``lsfix.threshold``) and that
``score --params`` / ``curve --threshold-params`` apply; :meth:`~ThresholdParams.to_dict` is
``lsfix threshold -f json``'s. :func:`run_threshold` (``lsfix.threshold``) is the whole command
from Python: it reads and checks its inputs, then calls :func:`choose_threshold`.

How a score tuned on the certifying rows keeps its guarantee (the document's ``tuning``):

``none``
    The score is fixed before the rows are seen: a stored score (``normalise``'s tuned
    ``pnorm`` is fitted on rows that are never evaluated), or a spec with its parameter
    (``msp``, ``pnorm:2``, ``msp_ts:1.5``). SGR runs at the full ``δ``.
``union_bound``
    ``-s pnorm`` (or ``pnorm_raw``) without ``p`` and without ``--fit``: MSP and MaxLogit-pNorm
    for every ``p`` of the grid are ``G`` candidates, each certified at ``δ / G``; the one with
    the largest certified coverage is chosen. The union bound keeps the chosen threshold's
    guarantee at ``1 − δ``.
``fit_file``
    ``--fit VAL``: ``p`` (``-s pnorm``, tuned by held-out AURC with the MSP fallback) or ``T``
    (``-s msp_ts``, by NLL) is fitted on other rows; SGR runs on the input at the full ``δ``.

A temperature cannot be tuned on the certifying rows (it is continuous: no finite union
bound); ``-s msp_ts`` without ``:T`` needs ``--fit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsfix.core import P_GRID, ScoreSpec, fit_temperature, parse_score, tune_pnorm
from lsfix.core.sgr import SGRResult, sgr, sgr_select
from lsfix.errors import InputError, UsageError

FORMAT = "lsfix.threshold"
VERSION = 1
METHOD = "SGR (Geifman & El-Yaniv 2017), exact binomial bound"


@dataclass(frozen=True)
class ThresholdParams:
    """A chosen threshold and everything needed to apply and to audit it."""

    score: str
    spec: str | None
    threshold: float
    certified: bool
    certified_coverage: float
    bound: float
    empirical_risk: float
    risk: float
    delta: float
    n: int
    n_accepted: int
    n_errors: int
    n_tests: int
    delta_per_test: float
    tuning: dict[str, Any] = field(default_factory=dict)
    file: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``lsfix threshold -f json`` (format ``lsfix.threshold`` of the
        report documents: the params of :meth:`params_dict` and the lsfix version)."""
        from lsfix.output.report import document, strict

        body = {k: v for k, v in self.params_dict().items() if k not in ("format", "version")}
        return strict(document("threshold", body))

    def params_dict(self) -> dict[str, Any]:
        """The params document ``--save-params`` writes and :func:`params_from_json` reads."""
        spec = None if self.spec is None else parse_score(self.spec)
        p = spec.param if spec is not None and spec.family in ("pnorm", "pnorm_raw") else None
        t = spec.param if spec is not None and spec.family in ("msp_ts", "energy") else None

        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        as_prob = None  # msp is stored as log-MSP: the threshold on the probability scale
        if spec is not None and spec.family in ("msp", "msp_ts") and self.certified:
            as_prob = math.exp(self.threshold)
        return {
            "format": FORMAT, "version": VERSION, "method": METHOD,
            "file": self.file, "score": self.score, "spec": self.spec,
            "p": p, "temperature": t,
            "threshold": num(self.threshold), "threshold_probability": as_prob,
            "accept": "confidence >= threshold" if self.certified else "nothing (no threshold "
                      "was certified)",
            "certified": self.certified,
            "certified_coverage": self.certified_coverage,
            "bound": self.bound, "empirical_risk": num(self.empirical_risk),
            "risk": self.risk, "delta": self.delta, "n": self.n,
            "n_accepted": self.n_accepted, "n_errors": self.n_errors,
            "n_tests": self.n_tests, "delta_per_test": self.delta_per_test,
            "tuning": self.tuning,
        }


def spec_of_stored(attrs: dict[str, Any]) -> str | None:
    """The score spec (``pnorm:2``, ``msp``, ``msp_ts:1.3``) a stored score was computed with,
    from its ``method``/``params`` attributes; None when it cannot be told."""
    method = str(attrs.get("method", ""))
    params = attrs.get("params", {}) if isinstance(attrs.get("params"), dict) else {}
    fam = {"maxlogit_pnorm": "pnorm", "maxlogit_pnorm_raw": "pnorm_raw"}.get(method, method)
    if params.get("fallback_msp") is True or fam == "msp":
        return "msp"
    try:
        if fam in ("pnorm", "pnorm_raw"):
            return _spec_text(ScoreSpec(fam, float(params["p"])))
        if fam in ("msp_ts", "energy"):
            return _spec_text(ScoreSpec(fam, float(params.get("temperature", 1.0))))
        return _spec_text(parse_score(fam))
    except (KeyError, TypeError, ValueError, UsageError):
        return None


def _spec_text(spec: ScoreSpec) -> str:
    """``family`` or ``family:param`` with the parameter's exact repr (round-trips)."""
    if spec.param is None:
        return spec.family
    v = float(spec.param)
    return f"{spec.family}:{int(v) if v.is_integer() else repr(v)}"


def _from_result(name: str, spec: str | None, res: SGRResult, tuning: dict[str, Any],
                 file: str, delta: float | None = None) -> ThresholdParams:
    """``delta``: the overall level when ``res`` ran at a share of it (a union bound)."""
    return ThresholdParams(
        score=name, spec=spec, threshold=res.threshold, certified=res.certified,
        certified_coverage=res.coverage, bound=res.bound, empirical_risk=res.risk,
        risk=res.target_risk, delta=res.delta if delta is None else delta, n=res.n,
        n_accepted=res.n_accepted,
        n_errors=res.n_errors, n_tests=len(res.tests), delta_per_test=res.delta_per_test,
        tuning=tuning, file=file)


def choose_threshold(pred: Any, score: str, *, risk: float, delta: float,
                     fit: Any = None, grid: tuple[float, ...] = P_GRID) -> ThresholdParams:
    """The largest-coverage threshold of ``score`` on ``pred``'s evaluation rows whose
    selective risk is ``≤ risk`` with probability ``≥ 1 − delta`` (see the module).

    ``pred``: a labelled :class:`lsfix.predictions.Predictions`; ``fit``: an optional labelled
    Predictions to fit ``p`` or ``T`` on (other rows).
    """
    from lsfix.evaluation import scheduler as parallel
    from lsfix.evaluation.inmemory import correct_of, eval_mask

    correct = correct_of(pred)
    mask = eval_mask(pred)
    ok = correct if mask is None else correct[mask]

    def rows(conf: np.ndarray) -> np.ndarray:
        return conf if mask is None else conf[mask]

    family, _, arg = score.strip().partition(":")
    family = family.replace("-", "_")
    if score in pred.scores:
        if fit is not None or tuple(grid) != tuple(P_GRID):
            what = "--fit" if fit is not None else "--grid"
            raise UsageError(f"-s {score} is stored in {pred.name} (its parameters fixed when it "
                             f"was stored), so {what} has nothing to tune: drop {what} to "
                             f"certify the stored score, or name a spec (-s {family}:2)")
        _refuse_tuned_here(pred, score)
        stored = spec_of_stored(pred.score_attrs.get(score, {}))
        res = sgr(rows(pred.scores[score]), ok, risk=risk, delta=delta)
        return _from_result(score, stored, res, {"kind": "none", "note": "stored score"},
                            pred.name)
    if pred.logits is None:
        have = ", ".join(pred.scores) or "none"
        raise UsageError(f"{pred.name}: no score {score!r} (stored scores: {have})")
    if family in ("pnorm", "pnorm_raw") and not arg:
        centred = family == "pnorm"
        if fit is not None:
            f = tune_pnorm(fit.logits, fit.labels, grid=grid, centred=centred,
                           split={"kind": "file", "file": fit.name})
            tuned = f.spec
            conf = parallel.compute_scores(pred.logits, [tuned], runner=pred.runner)[tuned.name]
            res = sgr(rows(conf), ok, risk=risk, delta=delta)
            tuning = {"kind": "fit_file", "fit_file": fit.name, "fit_n": fit.n,
                      "fitted": "p", "fallback_msp": f.fallback_msp}
            return _from_result(tuned.name, _spec_text(tuned), res, tuning, pred.name)
        specs = [ScoreSpec("msp")] + [ScoreSpec(family, float(p)) for p in grid]
        computed = parallel.compute_scores(pred.logits, specs, runner=pred.runner)
        cands = [(_spec_text(s), rows(computed[s.name])) for s in specs]
        sel = sgr_select(cands, ok, risk=risk, delta=delta)
        chosen = sel.chosen or cands[0][0]
        tuning = {"kind": "union_bound", "candidates": [c for c, _ in cands],
                  "delta_per_candidate": sel.delta_per_candidate,
                  "coverages": {nm: r.coverage for nm, r in sel.results}}
        spec_obj = parse_score(chosen)
        return _from_result(spec_obj.name, chosen, sel.result, tuning, pred.name, delta)
    if family == "msp_ts" and not arg:
        if fit is None:
            raise UsageError("msp_ts's temperature must be fitted on rows other than the ones "
                             "the threshold is certified on: pass --fit VAL, or msp_ts:T")
        t = fit_temperature(fit.logits, fit.labels)
        scaled = ScoreSpec("msp_ts", t)
        conf = parallel.compute_scores(pred.logits, [scaled], runner=pred.runner)[scaled.name]
        res = sgr(rows(conf), ok, risk=risk, delta=delta)
        tuning = {"kind": "fit_file", "fit_file": fit.name, "fit_n": fit.n,
                  "fitted": "temperature"}
        return _from_result(scaled.name, _spec_text(scaled), res, tuning, pred.name)
    fixed = parse_score(score)
    if fit is not None:
        raise UsageError(f"-s {score} has nothing to fit; --fit goes with -s pnorm or -s msp_ts")
    conf = parallel.compute_scores(pred.logits, [fixed], runner=pred.runner)[fixed.name]
    res = sgr(rows(conf), ok, risk=risk, delta=delta)
    return _from_result(fixed.name, _spec_text(fixed), res, {"kind": "none"}, pred.name)


def _same_file(a: str, b: str) -> bool:
    """Two paths name the same existing file (display names like ``<array>`` never do)."""
    import os

    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def run_threshold(
    source: Any,
    score: str = "msp",
    *,
    risk: float = 0.05,
    delta: float = 0.05,
    fit: Any = None,
    grid: Any = P_GRID,
    labels: Any = None,
    input: str | None = None,  # noqa: A002  (the CLI's --input)
    with_scores: Any = (),
    allow_incomplete: bool = False,
) -> ThresholdParams:
    """A confidence threshold to deploy: ``lsfix.threshold``, the whole of ``lsfix threshold``.

    Parameters
    ----------
    source, fit : str, os.PathLike, array-like or Predictions
        The labelled rows that certify the threshold, and optional labelled other rows to fit
        ``pnorm``'s p or ``msp_ts``'s T on; anything :func:`lsfix.read` reads (``source`` with
        ``labels``/``input``/``with_scores``), or what it returned.
    score : str
        A stored score or a spec (``msp``, ``pnorm:2``, ``msp_ts:1.5``); ``pnorm`` alone is
        tuned on ``source`` with a union bound over ``grid`` (or fitted on ``fit``).
    risk, delta
        The target selective risk in [0, 1) and the allowed failure probability in (0, 1).

    Returns
    -------
    ThresholdParams
        ``.to_dict()`` is ``lsfix threshold -f json``'s document; ``.params_dict()`` what
        ``--save-params`` writes.

    Examples
    --------
    >>> import numpy as np, lsfix
    >>> z = np.random.default_rng(0).normal(size=(400, 3)) + 3 * np.eye(3)[np.arange(400) % 3]
    >>> t = lsfix.threshold(z, labels=np.arange(400) % 3, risk=0.1)
    >>> t.certified, t.to_dict()["format"]
    (True, 'lsfix.threshold')
    """
    import lsfix
    from lsfix.readers.entry import require_fit_labels

    if not (0.0 <= risk < 1.0) or math.isnan(risk):
        raise UsageError(f"--risk must be in [0, 1), got {risk:g}")
    if not (0.0 < delta < 1.0):
        raise UsageError(f"--delta must be in (0, 1), got {delta:g}")
    ps = tuple(float(p) for p in grid)
    if isinstance(fit, str) and isinstance(source, str) and (fit == source
                                                             or _same_file(fit, source)):
        raise UsageError(f"--fit {fit} is the input: a p or T fitted on the rows that "
                         "certify the threshold voids the guarantee (use other rows, or "
                         "-s pnorm without --fit for the union bound)")
    opened: list[Any] = []
    try:
        pred = lsfix.read(source, labels=labels, input=input, with_scores=with_scores,
                          allow_incomplete=allow_incomplete, need_labels="threshold")
        if pred is not source:
            opened.append(pred)
        fit_pred = None
        if fit is not None:
            fit_pred = lsfix.read(fit, need_logits=True)
            if fit_pred is not fit:
                opened.append(fit_pred)
            if fit_pred is pred or _same_file(fit_pred.name, pred.name):
                raise UsageError(f"--fit {fit_pred.name} is the input: a p or T fitted on the "
                                 "rows that certify the threshold voids the guarantee (use "
                                 "other rows, or -s pnorm without --fit for the union bound)")
            require_fit_labels(fit_pred, "--fit with its own /labels")
            if pred.logits is not None and fit_pred.k != pred.k:
                raise UsageError(f"{fit_pred.name} has K={fit_pred.k} classes, {pred.name} "
                                 f"has K={pred.k}")
        return choose_threshold(pred, score, risk=risk, delta=delta, fit=fit_pred, grid=ps)
    finally:
        for p in opened:
            p.close()


def _refuse_tuned_here(pred: Any, score: str) -> None:
    """A stored score whose p was tuned on a file that is this input (``normalise --fit``
    recorded the file in its params): certifying on those rows would see them twice."""
    import os

    params = pred.score_attrs.get(score, {}).get("params", {})
    split = params.get("split") if isinstance(params, dict) else None
    if not isinstance(split, dict) or split.get("kind") != "file":
        return
    fitted = split.get("file")
    if not isinstance(fitted, str) or not fitted:
        return
    here = pred.name
    same = fitted == here
    if not same and os.path.exists(fitted) and os.path.exists(here):
        same = os.path.samefile(fitted, here)
    if not same and os.path.isfile(fitted):  # a scores file of those rows: same fingerprint
        from lsfix.errors import LsfixError
        from lsfix.readers.entry import read
        from lsfix.readers.scoresfile import fingerprint

        try:
            other = read(fitted)
            try:
                same = fingerprint(other) == fingerprint(pred)
            finally:
                other.close()
        except (LsfixError, OSError):
            same = False  # unreadable now: nothing to compare
    if same:
        raise UsageError(f"{here}: /scores/{score} was tuned on this file ({fitted}); a "
                         "threshold certified on the rows p was tuned on has no guarantee. "
                         "Certify on other rows, or on the logits alone, where -s pnorm tunes "
                         "p with a union bound over the grid")


# --------------------------------------------------------------------------------------------
# reading a params document back (untrusted JSON)


@dataclass(frozen=True)
class AppliedThreshold:
    """A params document, checked: what to compute and where to cut."""

    score: str
    spec: str | None
    threshold: float  #: +inf: reject everything
    doc: dict[str, Any]


def params_from_json(doc: object, name: str) -> AppliedThreshold:
    """Check a ``lsfix.threshold`` document key by key (exit 3 naming ``name``)."""
    if not isinstance(doc, dict):
        raise InputError("not a threshold params document (expected a JSON object)", file=name)
    if doc.get("format") != FORMAT:
        raise InputError(f"not an lsfix threshold params file (format "
                         f"{str(doc.get('format'))[:40]!r})", file=name)
    v = doc.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= VERSION:
        raise InputError(f"threshold params version {str(v)[:20]} is not one this lsfix reads "
                         f"(1..{VERSION})", file=name)
    score = doc.get("score")
    if not isinstance(score, str) or not 0 < len(score) <= 200:
        raise InputError("key 'score' must be a score name", file=name)
    spec = doc.get("spec")
    if spec is not None:
        if not isinstance(spec, str) or len(spec) > 200:
            raise InputError("key 'spec' must be a score spec or null", file=name)
        try:
            parse_score(spec)
        except UsageError as exc:
            raise InputError(f"key 'spec': {exc}", file=name) from None
    thr = doc.get("threshold")
    certified = doc.get("certified")
    if not isinstance(certified, bool):
        raise InputError("key 'certified' must be true or false", file=name)
    if thr is None:
        if certified:
            raise InputError("key 'threshold' is null but 'certified' is true", file=name)
        value = math.inf
    elif isinstance(thr, int | float) and not isinstance(thr, bool) and math.isfinite(thr):
        if not certified:
            raise InputError("key 'threshold' is set but 'certified' is false", file=name)
        value = float(thr)
    else:
        raise InputError(f"key 'threshold' must be a finite number or null, got "
                         f"{str(thr)[:40]}", file=name)
    return AppliedThreshold(score, spec, value, doc)


def accept(conf: np.ndarray, t: AppliedThreshold) -> np.ndarray:
    """Rows accepted at the threshold (``conf ≥ threshold``)."""
    return np.asarray(conf, dtype=np.float64) >= t.threshold


def confidence_for(pred: Any, t: AppliedThreshold) -> np.ndarray:
    """The params' score on ``pred``: computed from its logits with the recorded spec, or a
    stored score of that name when the params carry no spec (e.g. a score table's)."""
    from lsfix.evaluation import scheduler as parallel

    if t.spec is not None and pred.logits is not None:
        s = parse_score(t.spec)
        if s.family == "msp_ts" and s.param is None:
            raise InputError("spec 'msp_ts' has no temperature", file=pred.name)
        return parallel.compute_scores(pred.logits, [s], runner=pred.runner)[s.name]
    if t.score in pred.scores:
        return pred.scores[t.score]
    if t.spec is None:
        raise UsageError(f"{pred.name}: no stored score {t.score!r}, and the threshold params "
                         "do not say how to compute it from logits")
    raise UsageError(f"{pred.name}: has no logits to compute {t.spec} from")


@dataclass(frozen=True)
class Realised:
    """The realised coverage and selective risk at a threshold on (test) rows."""

    n: int
    n_accepted: int
    n_errors: int
    coverage: float
    risk: float  #: NaN when nothing is accepted

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "n_accepted": self.n_accepted, "n_errors": self.n_errors,
                "coverage": self.coverage,
                "risk": None if math.isnan(self.risk) else self.risk}


def realised(conf: np.ndarray, correct: np.ndarray, t: AppliedThreshold) -> Realised:
    acc = accept(conf, t)
    n = int(acc.shape[0])
    k = int(np.count_nonzero(acc))
    e = int(np.count_nonzero(acc & ~np.asarray(correct, dtype=bool)))
    return Realised(n, k, e, k / n if n else math.nan, e / k if k else math.nan)

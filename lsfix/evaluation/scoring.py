"""New scores of one input, to store or print: :func:`score` (``lsfix score``) and
:func:`normalise` (``lsfix normalise``: MaxLogit-pNorm with p chosen by
:mod:`lsfix.evaluation.fitpolicy`).

Both return a :class:`Scored`: the computed scores with the method and parameters a scores
file records for them, the fit behind them, and the lines the command prints (``notes`` at
once, ``warnings`` when it succeeds). :meth:`Scored.write` writes the scores file (or a
logits file, or the TSV table of :mod:`lsfix.output.scores`) atomically;
:meth:`Scored.to_dict` describes the result as JSON.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lsfix.errors import UsageError
from lsfix.evaluation.fitpolicy import Fit, FitResult, as_fit
from lsfix.readers.paramsfile import MAX_P
from lsfix.readers.predictions import Predictions


@dataclass
class Scored:
    """What :func:`score` or :func:`normalise` computed for one input.

    Attributes
    ----------
    command : str
        ``"score"`` or ``"normalise"``.
    predictions : Predictions
        The input (kept open until :meth:`close`: writing copies from it).
    scores : dict
        Score name -> ``(values, method, params)``, as the scores file records them.
    correct : ndarray of bool or None
        Per-row correctness (the input has labels).
    fit : FitResult or None
        ``normalise``: how p was chosen (:func:`lsfix.evaluation.fitpolicy.choose_fit`).
    fit_mask : ndarray of bool or None
        Rows p was just tuned on (``--fit-fraction``): stored, and left out of the table.
    threshold : dict or None
        ``score(threshold=...)``: the threshold applied (its file, score, spec, threshold,
        certified); ``scores`` then holds its score (method: the spec it was computed by, or
        ``stored``).
    accept : ndarray of bool or None
        ``score(threshold=...)``: each row accepted (confidence >= threshold).
    notes, warnings : list of str
        Lines for stderr: what was chosen or fitted (at once), and what to know about the
        result (when the command succeeds).
    """

    command: str
    predictions: Predictions = field(repr=False)
    scores: dict[str, tuple[np.ndarray, str, dict[str, Any]]]
    correct: np.ndarray | None = field(default=None, repr=False)
    fit: FitResult | None = None
    fit_mask: np.ndarray | None = field(default=None, repr=False)
    threshold: dict[str, Any] | None = None
    accept: np.ndarray | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON (format ``lsfix.score`` or ``lsfix.normalise``): the input, each score with
        the method and parameters its scores file records (``/scores/NAME``'s ``method`` and
        ``params``), the fit (:meth:`FitResult.to_dict`, whose ``fit`` is the
        ``--save-params`` document) and the rows left out as fit rows."""
        from lsfix.output.report import document, strict

        pred = self.predictions
        mask = self.fit_mask if self.fit_mask is not None else pred.fit_mask
        body: dict[str, Any] = {
            "file": pred.name, "n": pred.n,
            "n_fit_excluded": 0 if mask is None else int(np.asarray(mask).sum()),
            "scores": [{"name": k, "method": m, "params": p}
                       for k, (_, m, p) in self.scores.items()]}
        if self.command == "normalise":
            body["fit"] = None if self.fit is None else self.fit.to_dict()
        if self.threshold is not None:
            assert self.accept is not None
            body["threshold"] = {**self.threshold, "n_accepted": int(self.accept.sum())}
        return strict(document(self.command, body))

    def save_fit(self, path: str | os.PathLike[str]) -> None:
        """Write the p-norm fit (``--save-params``: :meth:`lsfix.core.PNormFit.to_dict`) as
        JSON, atomically; ``normalise --params`` reads it back."""
        from lsfix.streams import dumps_json, write_text_atomic

        if self.fit is None:
            raise UsageError("no p-norm fit to save (only normalise chooses one)")
        write_text_atomic(os.fspath(path), dumps_json(self.fit.fit.to_dict(), indent=2) + "\n")

    def write(self, path: str | os.PathLike[str] = "-", *, format: str = "h5",  # noqa: A002
              copy_logits: bool = False) -> list[str]:
        """Write the result to ``path`` (``-`` = stdout) atomically, only whole: ``h5`` a
        scores file of the input's stored scores plus these (a logits file with
        ``copy_logits``), ``tsv`` the table of :func:`lsfix.output.scores.score_table`.
        An existing file is replaced (the commands refuse one first without ``--overwrite``);
        the input never changes. Returns the notes to print (rows left out of a table)."""
        from lsfix.output.scores import check_format, threshold_table
        from lsfix.streams import write_text_atomic

        path = os.fspath(path)
        pred = self.predictions
        if self.threshold is not None:
            check_format(format, 1, copy_logits, table_only=True)
            conf = next(iter(self.scores.values()))[0]
            write_text_atomic(path, threshold_table(_ids(pred), conf, self.accept,
                                                    self.correct))
            return []
        check_format(format, len(self.scores), copy_logits, command=self.command)
        if format == "tsv":
            return self._write_table(path)
        if copy_logits:  # the input never changes: its stored score of this name is replaced
            from lsfix.readers.logitsfile import write_predictions

            write_predictions(path, pred, new_scores=self.scores, overwrite=True,
                              fit_mask=self.fit_mask)
        else:
            from lsfix.readers.scoresfile import write_scores_file

            write_scores_file(path, pred, new_scores=self.scores, correct=self.correct,
                              fit_mask=self.fit_mask)
        return []

    def _write_table(self, path: str) -> list[str]:
        """``-f tsv``: the evaluated rows of the one score; ignored pixels, stored fit rows
        and the rows p was just tuned on are left out (and said so)."""
        from lsfix.evaluation.grouped import _per_row
        from lsfix.evaluation.inmemory import evaluation_rows
        from lsfix.output.scores import left_out_note, score_table
        from lsfix.streams import write_text_atomic

        pred = self.predictions
        if pred.labels is None or self.correct is None:
            raise UsageError(f"{pred.name}: --format tsv needs /labels to print 'correct'")
        mask, ignored, fitted = evaluation_rows(pred)
        if self.fit_mask is not None:  # the rows just tuned on: never evaluated
            fm = np.asarray(self.fit_mask, dtype=bool)
            new_fit = fm & (mask if mask is not None else True)
            fitted += int(new_fit.sum())
            mask = ~fm if mask is None else mask & ~new_fit

        def rows(a: Any) -> Any:
            return a if mask is None else np.asarray(a)[mask]

        note = None if mask is None else left_out_note(self.command, ignored, fitted)
        ids = _ids(pred)
        values = next(iter(self.scores.values()))[0]
        groups = {k: rows(_per_row(pred, np.asarray(v))) for k, v in pred.groups.items()}
        write_text_atomic(path, score_table(None if ids is None else rows(ids), rows(values),
                                            rows(self.correct), groups))
        return [] if note is None else [note]

    def close(self) -> None:
        """Close the input's backing file."""
        self.predictions.close()


def _ids(pred: Predictions) -> Any:
    """One sample id per row, or None."""
    ids = pred.sample_ids
    return ids if ids is not None and len(ids) == pred.n else None


def require_finite_scores(values: object, what: str, file: str) -> None:
    """Refuse (exit 2, before anything is written) scores that are NaN or +-inf: options
    such as ``energy:1e-308`` overflow float64 and would give numbers that mean nothing."""
    arr = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise UsageError(f"{file}: {what} gives {int(bad.sum())} non-finite score(s) (first at "
                         f"row {int(np.argmax(bad))}): the option overflows float64; choose a "
                         "milder value. Nothing was written")


def _read(source: Any, read: dict[str, Any], **need: Any) -> Predictions:
    import lsfix

    if isinstance(source, Predictions) and not any(read.values()):
        return source
    return lsfix.read(source, **read, **need)


def _compute(pred: Predictions, specs: list[Any]) -> dict[str, np.ndarray]:
    from lsfix.evaluation import scheduler as parallel

    assert pred.logits is not None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return parallel.compute_scores(pred.logits, specs, labels=pred.labels,
                                       runner=pred.runner)


def normalise(
    source: Any,
    fit: Any = None,
    *,
    name: str | None = None,
    convention: str = "lsfix",
    labels: Any = None,
    input: str | None = None,  # noqa: A002  (the CLI's --input)
    ignore_index: int | None = None,
    with_scores: Sequence[Any] = (),
    overwrite_scores: bool = False,
    allow_incomplete: bool = False,
) -> Scored:
    """MaxLogit-pNorm of ``source`` with p chosen by the one policy (``lsfix normalise``).

    Parameters
    ----------
    source : str, os.PathLike, array-like or Predictions
        Anything :func:`lsfix.read` reads, with logits (read with ``labels``, ``input``,
        ``ignore_index``, ``with_scores``, ``overwrite_scores``, ``allow_incomplete``).
    fit : Fit, optional
        How p is chosen (:class:`lsfix.Fit`; or what :func:`lsfix.evaluate`'s ``fit=``
        takes). Default: a single-logit model has nothing to tune (MSP); a labelled input
        is tuned on ``Fit(fraction=0.2)``; an unlabelled one is an error.
    name : str, optional
        The score's name (``pnorm``, or ``pnorm_raw`` for the un-centred variant).
    convention : str
        The AURC convention p is tuned in.

    Returns
    -------
    Scored
        ``scores[name]`` the values (MSP's on fallback), ``fit`` the choice; :meth:`Scored.write`
        writes the scores file.

    Examples
    --------
    >>> import numpy as np, lsfix
    >>> z = np.array([[3.0, 0.0, 1.0], [0.0, 1.0, 0.5], [1.0, 0.9, 0.0], [0.2, 2.0, 1.0]])
    >>> res = lsfix.normalise(z, lsfix.Fit(p=2))
    >>> res.fit.describe(), res.to_dict()["scores"][0]["method"]
    ('fixed p=2', 'maxlogit_pnorm')
    >>> lsfix.normalise(z)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lsfix.errors.UsageError: <array> has no labels to tune p on: give --p, --fit VAL.h5, ...
    """
    from lsfix.core import CONVENTIONS
    from lsfix.core.scores import BINARY_NOTE, is_single_logit

    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {convention!r}; choose one of "
                         f"{', '.join(CONVENTIONS)}")
    spec = as_fit(fit) or Fit()
    if name is None:
        name = "pnorm" if spec.is_centred else "pnorm_raw"
    if not name.replace("_", "").isalnum():
        raise UsageError(f"--name must be letters, digits and _, got {name!r}")
    pred = _read(source, dict(labels=labels, input=input, ignore_index=ignore_index,
                              with_scores=tuple(with_scores), overwrite_scores=overwrite_scores,
                              allow_incomplete=allow_incomplete), need_logits=True)
    if pred.logits is None:
        raise UsageError(f"{pred.name} has no logits: p can only be applied to logits")
    binary = is_single_logit(pred.logits)
    warnings = [f"{pred.name}: {BINARY_NOTE}"] if binary else []
    if binary and spec.p is None and spec.params is None:
        # nothing to tune: p = 0 is MSP's ranking, every p >= 1 a constant
        spec = replace(spec, data=None, labels=None, fraction=None)
    elif not spec.given:
        if pred.labels is None:
            none = "no labels" if pred.foreign_format else "no /labels"
            raise UsageError(f"{pred.name} has {none} to tune p on: give --p, --fit "
                             "VAL.h5, --params P.json or --labels FILE")
        spec = replace(spec, fraction=0.2)
    res = spec.resolve(pred, convention=convention, ignore_index=ignore_index)
    fitted = res.fit
    # one pass: the score and correctness (reads every row: bad rows fail before any note)
    computed = _compute(pred, [fitted.spec])
    values = computed[fitted.spec.name]
    require_finite_scores(values, f"p={fitted.p:g}" if fitted.p is not None else "msp",
                          pred.name)
    notes = []
    if res.kind == "binary":
        warnings.append(f"nothing to tune; /scores/{name} holds MSP (the |z| ranking)")
    else:
        notes.append(res.describe())
    warnings += [f"warning: {line}" for line in res.notes]
    if res.fit_mask is not None:
        k = int(res.fit_mask.sum())
        notes.append(f"tuned on {k} of {pred.n} rows (seed {spec.seed}); curve/compare "
                     f"evaluate the other {pred.n - k}")
    doc = fitted.to_dict()
    method = "msp" if fitted.fallback_msp else doc["method"]
    return Scored("normalise", pred, {name: (values, method, doc)},
                  correct=computed.get("_correct"), fit=res, fit_mask=res.fit_mask,
                  notes=notes, warnings=warnings)


def score(
    source: Any,
    methods: Sequence[str] | str | None = None,
    *,
    fit: Any = None,
    threshold: str | os.PathLike[str] | None = None,
    labels: Any = None,
    input: str | None = None,  # noqa: A002  (the CLI's --input)
    ignore_index: int | None = None,
    with_scores: Sequence[Any] = (),
    overwrite_scores: bool = False,
    allow_incomplete: bool = False,
) -> Scored:
    """Confidence scores of ``source`` to store (``lsfix score``).

    Parameters
    ----------
    source : str, os.PathLike, array-like or Predictions
        Anything :func:`lsfix.read` reads, with logits.
    methods : str or sequence of str, optional
        Score specs (``msp``, ``energy:0.5``, ``pnorm:2``, ``msp_ts``, ...); default ``msp``.
    fit : str, os.PathLike, array-like or Predictions, optional
        Labelled logits to fit ``msp_ts``'s temperature on (when no ``msp_ts:T`` is given).
    threshold : str or os.PathLike, optional
        A threshold saved by ``lsfix threshold --save-params``: its score and an ``accept``
        per row (``Scored.accept``; written as a table). Not with ``methods`` or ``fit``.

    Returns
    -------
    Scored

    Examples
    --------
    >>> import numpy as np, lsfix
    >>> z = np.array([[3.0, 0.0], [0.0, 1.0], [1.0, 0.9], [0.2, 2.0]])
    >>> res = lsfix.score(z, ["msp", "energy:2"], labels=[0, 1, 1, 1])
    >>> list(res.scores), res.to_dict()["scores"][1]["params"]
    (['msp', 'energy_t2'], {'temperature': 2.0})
    >>> lsfix.score(z, "msp_ts")
    Traceback (most recent call last):
    lsfix.errors.UsageError: msp_ts needs a temperature: give msp_ts:T or --fit VAL.h5
    """
    from lsfix.core import ScoreSpec, fit_temperature, parse_score
    from lsfix.core.scores import BINARY_NOTE, is_single_logit

    read = dict(labels=labels, input=input, ignore_index=ignore_index,
                with_scores=tuple(with_scores), overwrite_scores=overwrite_scores,
                allow_incomplete=allow_incomplete)
    names = [methods] if isinstance(methods, str) else list(methods or [])
    if threshold is not None:
        return _apply_threshold(source, read, os.fspath(threshold), names, fit)
    specs = [parse_score(m) for m in (names or ["msp"])]
    for spec in specs:  # |z|^p overflows float64 for large p: refuse up front (exit 2)
        if spec.family == "pnorm" and spec.param is not None and spec.param > MAX_P:
            raise UsageError(f"-m pnorm:{spec.param:g}: p above the limit of {MAX_P:g}")
    shown = [s.name for s in specs]
    if len(set(shown)) != len(shown):
        raise UsageError(f"score given twice: {', '.join(shown)}")
    # a stored score of a name computed here is replaced in the file written: no clash
    pred = _read(source, read, need_logits=True)
    if pred.logits is None:
        raise UsageError(f"{pred.name} has no logits to compute scores from")
    warnings = [f"{pred.name}: {BINARY_NOTE}"] if is_single_logit(pred.logits) else []
    notes: list[str] = []
    extra: dict[str, dict[str, object]] = {}
    resolved = []
    for spec in specs:
        if spec.family == "msp_ts" and spec.param is None:
            if fit is None:
                raise UsageError("msp_ts needs a temperature: give msp_ts:T or --fit VAL.h5")
            val = _read(fit, {}, need_labels=True, need_logits=True)
            try:
                if val.k != pred.k:
                    raise UsageError(f"{val.name} has K={val.k} classes, {pred.name} has "
                                     f"K={pred.k}")
                t = fit_temperature(val.logits, val.require_labels("fitting T (--fit)"))
                notes.append(f"fitted temperature T={t:.6g} on {val.name} ({val.n} samples)")
                spec = ScoreSpec("msp_ts", t)
                extra[spec.name] = {"fit_file": val.name, "fit_n": val.n}
            finally:
                if val is not fit:
                    val.close()
        resolved.append(spec)
    computed = _compute(pred, resolved)
    for spec in resolved:  # an option that overflows float64: exit 2, nothing written
        what = spec.family if spec.param is None else f"{spec.family}:{spec.param:.6g}"
        require_finite_scores(computed[spec.name], f"-m {what}", pred.name)
    new = {s.name: (computed[s.name], s.family, {**s.params(), **extra.get(s.name, {})})
           for s in resolved}
    return Scored("score", pred, new, correct=computed.get("_correct"), notes=notes,
                  warnings=warnings)


def _apply_threshold(source: Any, read: dict[str, Any], path: str, names: list[str],
                     fit: Any) -> Scored:
    """``score(threshold=THR.json)``: the threshold's score on ``source`` and ``accept``."""
    from lsfix.evaluation.threshold import accept, confidence_for, params_from_json
    from lsfix.readers.untrusted import read_json
    from lsfix.streams import display_name

    if names:
        raise UsageError("--params decides the score; it does not go with -m")
    if fit is not None:
        raise UsageError("--params carries its fitted parameters; it does not go with --fit")
    t = params_from_json(read_json(path), path)
    pred = _read(source, read)
    conf = confidence_for(pred, t)
    require_finite_scores(conf, f"the score of {display_name(path)}", pred.name)
    correct = None
    if pred.labels is not None or pred.correct is not None:
        from lsfix.evaluation.inmemory import correct_of

        correct = correct_of(pred)
    doc = {k: t.doc.get(k) for k in ("score", "spec", "threshold", "certified")}
    how = t.spec if t.spec is not None and pred.logits is not None else "stored"
    return Scored("score", pred, {t.score: (np.asarray(conf, dtype=float), how, {})},
                  correct=correct, threshold={"file": display_name(path), **doc},
                  accept=accept(conf, t))

"""One-command audit of a classifier's logits: every score, tuned MaxLogit-pNorm, a verdict.

Procedure (:func:`audit`):

1. Fit data: the labelled validation file ``val`` if given, else a random ``fit_fraction`` of
   the input (seeded), which is then excluded from every reported number.
2. On the fit data: tune ``p`` (:func:`lsfix.core.tune_pnorm`, AURC objective, MSP fallback)
   and the temperature of ``msp_ts``.
3. On the evaluation rows: every plain score, ``msp_ts`` and ``pnorm`` (the fitted choice).
4. Paired bootstrap of ``AURC(pnorm) − AURC(msp)`` on the evaluation rows.
A single-logit (binary) model is read as the logits ``(0, z)``: MSP ranks by ``|z|`` and
centred pNorm has nothing to normalise (``|z|/2`` at p = 0, a constant at p >= 1), so step 2
tunes nothing, ``pnorm`` is MSP, and the verdict is the binary answer with that reason.

5. Verdict. The share of MSP's excess AURC that normalisation removes is
   ``(AURC_msp − AURC_pnorm) / (AURC_msp − AURC_oracle)``. The ranking is called **broken**
   when the fit did not fall back to MSP and the whole paired interval lies below 0 (pNorm
   is better beyond bootstrap noise); otherwise MSP is **fine**, with the reason (fallback,
   pNorm worse, or a change within noise).
6. Label smoothing read from the logits (:mod:`lsfix.core.ceiling`, on every correctly
   classified row that is not an ignored pixel, fit rows included: nothing is fitted): do the
   logit gaps pile up at a ceiling, and what α does it imply? Shown next to the α recorded
   in the provenance (``training.label_smoothing``) when there is one. The verdict cites it:
   a broken ranking with an LS-like ceiling is the known label-smoothing failure; a fine
   ranking with no ceiling is plain cross-entropy behaviour. The sentences every output
   format prints are :func:`lsfix.output.audit.label_smoothing_summary` and
   :func:`~lsfix.output.audit.label_smoothing_notes`.

:func:`run_audit` (``lsfix.audit``) is the whole command from Python: it reads and checks, runs
:func:`audit_planned` (the engine for dense files within the memory limit), adds the
calibration section, and returns an :class:`AuditResult` whose :meth:`AuditResult.to_dict` is
``lsfix audit -f json``'s document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsfix.core import (
    PairedDifference,
    PNormFit,
    ScoreSpec,
    evaluate,
    paired_bootstrap,
)
from lsfix.core.ceiling import LabelSmoothingEstimate, estimate_label_smoothing
from lsfix.core.scores import plain_scores
from lsfix.core.selection import Selection
from lsfix.errors import InputError, UsageError
from lsfix.evaluation import scheduler as parallel
from lsfix.evaluation.inmemory import ScoreResult, correct_of, eval_mask
from lsfix.readers.predictions import Predictions


@dataclass(frozen=True)
class AuditResult:
    """Everything ``lsfix audit`` reports."""

    file: str
    n_eval: int
    k: int
    convention: str
    fit: PNormFit
    temperature: float
    fit_source: str
    results: tuple[ScoreResult, ...]
    paired: PairedDifference
    excess_removed: float
    broken: bool
    verdict: str
    label_smoothing: LabelSmoothingEstimate | None = None
    recorded_alpha: float | None = None
    #: one logit per sample (a binary sigmoid model): nothing was tuned
    binary: bool = False
    #: ``--by``: msp and pnorm per group (``all`` first), on the evaluation rows
    by: str | None = None
    groups: tuple[Any, ...] = ()
    #: what the paired bootstrap resampled: ``row`` or ``image`` (dense files)
    bootstrap_unit: str = "row"
    #: every score against MSP on simultaneous bounds (None with image clusters)
    selection: Selection | None = None
    #: one-line remarks on the fit (a small fit set, a skipped selection test)
    fit_notes: tuple[str, ...] = ()
    #: the p-fitting policy's whole answer (lsfix.evaluation.fitpolicy)
    fit_result: Any = None
    #: the evaluation rows of the input (None: all), for sections computed after the audit
    eval_rows: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: accuracy and calibration beside AURC (:func:`lsfix.output.calibration.audit_calibration`;
    #: set by :func:`run_audit`)
    calibration: Any = field(default=None, compare=False)
    #: the predictions the audit ran on (the drawn pixels of a dense file, or the input), for
    #: the report's figures (set by :func:`run_audit`)
    predictions: Predictions | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``lsfix audit -f json`` (format ``lsfix.audit``), with undefined
        numbers as ``None`` (the reason of an undefined ``excess_aurc_removed`` under
        ``undefined``)."""
        from lsfix.output.audit import label_smoothing_dict
        from lsfix.output.report import document, metrics_dict, paired_dict, strict

        removed = self.excess_removed
        body: dict[str, Any] = {
            "file": self.file, "convention": self.convention, "n_eval": self.n_eval,
            "k": self.k, "fit_source": self.fit_source, "fit": self.fit.to_dict(),
            "temperature": self.temperature,
            "scores": [{"file": r.file, "score": r.score, **metrics_dict(r.metrics),
                        "ci": None} for r in self.results],
            "paired_pnorm_minus_msp": {**paired_dict(self.paired), "unit": self.bootstrap_unit},
            "excess_aurc_removed": None if math.isnan(removed) else removed,
            "undefined": ({} if not math.isnan(removed) else {
                "excess_aurc_removed": "MSP's AURC equals the oracle's: there is no excess to "
                                       "remove"}),
            "broken": self.broken,
            "selection": None if self.selection is None else self.selection.to_dict(),
            "best": self._best(),
            "fit_policy": None if self.fit_result is None else self.fit_result.to_dict(),
            "binary": bool(self.binary),
        }
        if self.by:
            from lsfix.evaluation.grouped import group_json

            body.update(by=self.by, groups=group_json(list(self.groups), percent=False))
        body.update(verdict=self.verdict, label_smoothing=label_smoothing_dict(self))
        if self.calibration is not None:
            body["calibration"] = self.calibration.as_dict()
        return strict(document("audit", body))

    def _best(self) -> dict[str, Any] | None:
        """The best score against MSP, on the simultaneous bounds (None without them)."""
        sel = self.selection
        if sel is None:
            return None
        best = min(sel.candidates, key=lambda c: (c.delta, c.name))
        return {"score": best.name, "aurc": best.aurc, "delta_vs_msp": best.delta,
                "low": best.low, "high": best.high, "level": sel.level,
                "significant": sel.choice is not None, "chosen": sel.choice}

    def close(self) -> None:
        """Close the file of :attr:`predictions` (``lsfix.audit(..., keep_open=True)``)."""
        if self.predictions is not None:
            self.predictions.close()


def audit(
    pred: Predictions,
    *,
    val: Predictions | None = None,
    fit_fraction: float = 0.2,
    seed: int = 0,
    convention: str = "lsfix",
    n_boot: int = 1000,
    level: float = 0.95,
    by: str | None = None,
    bootstrap_unit: str = "row",
    select: str = "test",
    select_level: float = 0.95,
    images: np.ndarray | None = None,
    n_images: int | None = None,
    coverages: tuple[float, ...] = (),
    risks: tuple[float, ...] = (),
) -> AuditResult:
    """Audit ``pred`` (see module docstring). ``pred`` needs logits and labels.

    ``by`` (:mod:`lsfix.evaluation.grouped`) adds msp and pnorm per group, with bootstrap intervals.
    ``bootstrap_unit="image"`` (dense files) makes the paired bootstrap resample whole images
    (:func:`lsfix.core.bootstrap.paired_bootstrap` with the image of each evaluated pixel as
    its cluster): both scores get the same drawn images.

    ``images``: the image of every row when ``pred`` holds pixels drawn from a dense file
    (:func:`lsfix.evaluation.drawn.gather`, ``--subsample-pixels``): without ``val`` the fit
    rows are then the drawn pixels of a random ``fit_fraction`` of the file's ``n_images``
    **images** (drawn as :func:`lsfix.evaluation.dense.fit_split` draws them), and
    ``bootstrap_unit="image"`` resamples those images. ``coverages``/``risks`` add
    risk@coverage and coverage@risk to every score's metrics (as ``lsfix.evaluate``).
    ``select``/``select_level``: how p is chosen (:func:`lsfix.evaluation.fitpolicy.choose_fit`)."""

    pred.require_labels("audit")
    if pred.logits is None:
        raise UsageError(f"{pred.name}: audit needs /logits")
    if val is None and pred.fit_mask is not None and pred.fit_mask.any():
        raise UsageError(f"{pred.name} already holds a fit split (/fit_mask); audit the file "
                         "before 'normalise --fit-fraction', or pass --val")
    from lsfix.evaluation.fitpolicy import choose_fit

    if val is not None:
        val.require_labels("fitting (--val)")
        if val.logits is None:
            raise UsageError(f"{val.name}: --val needs /logits")
        chosen = choose_fit(pred, fit=val, convention=convention, temperature=True,
                            select=select, level=select_level, seed=seed)
        mask = eval_mask(pred)
    else:
        fraction_rows = None
        if images is not None:  # drawn pixels: the fit images of the whole file
            from lsfix.evaluation.inmemory import split_fit_rows

            if n_images is None:
                raise UsageError("audit(images=...) needs n_images")
            fraction_rows = split_fit_rows(n_images, fit_fraction, seed, pred.name)[images]
        chosen = choose_fit(pred, fit_fraction=fit_fraction, seed=seed, convention=convention,
                            temperature=True, select=select, level=select_level,
                            fraction_rows=fraction_rows)
        assert chosen.fit_mask is not None
        fit_rows = chosen.fit_mask
        mask = ~fit_rows if pred.keep is None else (pred.keep & ~fit_rows)
    fit, source = chosen.fit, chosen.source
    binary = chosen.kind == "binary"
    temperature = chosen.temperature
    assert temperature is not None
    specs = [ScoreSpec(s) for s in plain_scores()] + [ScoreSpec("msp_ts", temperature)]
    scores = parallel.compute_scores(pred.logits, specs, runner=pred.runner)
    scores["pnorm"] = parallel.compute_scores(pred.logits, [fit.spec],
                                              runner=pred.runner)[fit.spec.name]
    correct = correct_all = correct_of(pred)
    clusters = None
    if bootstrap_unit == "image" and images is not None:
        clusters = images
    elif bootstrap_unit == "image":
        from lsfix.evaluation.dense import image_of_rows

        clusters = image_of_rows(pred, "--bootstrap-unit image")
    elif bootstrap_unit != "row":
        raise UsageError(f"--bootstrap-unit must be row or image, got {bootstrap_unit!r}")
    group_index = None
    if by is not None:
        from lsfix.evaluation.grouped import grouping

        grp = grouping(pred, by)
        group_index = grp.index
    if mask is not None:
        correct = correct[mask]
        scores = {k: v[mask] for k, v in scores.items()}
        group_index = None if group_index is None else group_index[mask]
        clusters = None if clusters is None else clusters[mask]
    per_group: tuple[Any, ...] = ()
    if by is not None:
        per_group = _by_group(pred.name, {k: scores[k] for k in ("msp", "pnorm")}, correct,
                              group_index, grp.names, convention=convention, n_boot=n_boot,
                              seed=seed, level=level)
    results = tuple(
        ScoreResult(pred.name, name, parallel.evaluate(conf, correct, convention=convention,
                                                   coverages=coverages, risks=risks,
                                                   runner=pred.runner),
                    None, conf, correct)
        for name, conf in scores.items()
    )
    by_score = {r.score: r for r in results}
    msp_m, pn_m = by_score["msp"].metrics, by_score["pnorm"].metrics
    paired = paired_bootstrap(scores["msp"], correct, scores["pnorm"], correct, n_boot=n_boot,
                              seed=seed, level=level, convention=convention, clusters=clusters)
    selection = None
    if clusters is None:  # the row bootstrap; image clusters: pNorm vs MSP only (above)
        from lsfix.core.selection import select_better

        selection = select_better([(k, v) for k, v in scores.items() if k != "msp"],
                                  ("msp", scores["msp"]), correct, n_boot=n_boot, seed=seed,
                                  level=level, convention=convention)
    excess = msp_m.aurc - msp_m.oracle_aurc
    removed = (msp_m.aurc - pn_m.aurc) / excess if excess > 0 else math.nan
    from lsfix.output.explain import alpha_of

    ls = estimate_label_smoothing(pred.logits, rows=pred.keep, correct=correct_all,
                                  n_boot=n_boot, level=level, seed=seed)
    if binary:
        broken, verdict = False, BINARY_VERDICT
    elif selection is not None:
        broken, verdict = _verdict_all(fit, selection, removed, paired)
        verdict += _ls_clause(broken, ls)
    else:
        broken, verdict = _verdict(fit, paired, removed)
        verdict += _ls_clause(broken, ls)
    return AuditResult(
        file=pred.name, n_eval=int(correct.shape[0]), k=int(pred.k or 0), convention=convention,
        fit=fit, temperature=temperature, fit_source=source, results=results, paired=paired,
        excess_removed=removed, broken=broken, verdict=verdict, label_smoothing=ls,
        recorded_alpha=alpha_of(pred), binary=binary, by=by, groups=per_group,
        bootstrap_unit=bootstrap_unit, selection=selection, fit_notes=chosen.notes,
        fit_result=chosen, eval_rows=mask,
    )

#: Peak bytes per row of :func:`audit`'s in-memory path on a dense file: measured 318 B per
#: pixel (peak RSS 0.79 GB less a 0.12 GB floor for 4 x 19 x 512 x 1024 float32, --bootstrap
#: 200; bench/README.md, issue 20), rounded up for margin: every plain score, msp_ts and
#: pnorm in float64, correctness, masks, the fit's row subset, the bootstrap's copies.
AUDIT_BYTES_PER_ROW = 400


def audit_planned(pred: Predictions, *, val: Predictions | None = None,
                  subsample: str | None = None, memory_limit: int = 2 << 30,
                  fit_option: str = "--val-labels", seed: int = 0, by: str | None = None,
                  **kw: Any) -> tuple[AuditResult, Predictions]:
    """:func:`audit` on the engine :func:`lsfix.evaluation.planner.choose_engine` picks.

    ``pred`` and ``val`` may hold dense labels still on disk. With ``subsample``
    (``--subsample-pixels N[/IMAGES]``) on dense logits, only the drawn pixels are read
    (:func:`lsfix.evaluation.drawn.gather`, with ``seed``): the input's drawn pixels among those not
    ignored (and not in its ``/fit_mask``); without ``val`` the fit rows are the drawn pixels
    of the ``fit_fraction`` of images :func:`audit` holds out; a dense ``val`` file is drawn
    the same way (among its pixels that are not ignored). The label-smoothing estimate then
    reads the drawn pixels. Without ``subsample``, a dense input whose in-memory estimate
    (:data:`AUDIT_BYTES_PER_ROW` per pixel) is above ``memory_limit`` is refused with a
    one-line error that names the way out. Returns the result and the predictions it was
    computed on (the drawn pixels, or ``pred``), for the report.
    """
    from lsfix.evaluation.drawn import gather
    from lsfix.evaluation.planner import choose_engine

    if subsample is not None and by is not None:
        raise UsageError("--subsample-pixels does not go with --by in audit")
    engine = choose_engine(pred, None, per_row=True, subsample=subsample,
                           memory_limit=memory_limit, bytes_per_row=AUDIT_BYTES_PER_ROW,
                           command="audit")
    if engine != "drawn" and subsample is not None:
        from lsfix.evaluation.dense import items_and_pixels

        items_and_pixels(pred, "--subsample-pixels")  # not dense: the usual error
    if engine != "drawn":
        pred.load_labels()
        pred.require_labels("this command")
    fit_val = None
    if val is not None:
        v_engine = choose_engine(val, None, per_row=True, subsample=subsample
                                 if engine == "drawn" else None, memory_limit=memory_limit,
                                 bytes_per_row=AUDIT_BYTES_PER_ROW, command="audit --val")
        if v_engine == "drawn":
            fit_val = gather(val, subsample, seed, use_fit_mask=False).pred  # type: ignore[arg-type]
        else:
            val.load_labels()
            if val.labels is None:
                what = "no labels" if val.foreign_format else "no /labels dataset"
                raise InputError(f"{what}; fitting needs labels (pass {fit_option} FILE; "
                                 "--labels is for the input only)", file=val.name)
            fit_val = val
    if engine != "drawn":
        return audit(pred, val=fit_val, seed=seed, by=by, **kw), pred
    if val is None and pred.fit_mask is not None and pred.fit_mask.any():
        raise UsageError(f"{pred.name} already holds a fit split (/fit_mask); audit the file "
                         "before 'normalise --fit-fraction', or pass --val")
    from lsfix.evaluation.dense import items_and_pixels

    d = gather(pred, subsample, seed)  # type: ignore[arg-type]
    n_images = items_and_pixels(pred, "--subsample-pixels")[0]
    return audit(d.pred, val=fit_val, seed=seed, by=by, images=d.images, n_images=n_images,
                 **kw), d.pred


#: Most replicates the audit's bootstrap takes (each costs a pass over the confidences), as
#: every command's ``--bootstrap``.
MAX_BOOTSTRAP = 100_000


def check_options(*, convention: str, bootstrap: int, level: float, bootstrap_unit: str,
                  by: str | None, coverages: Any, risks: Any, bins: int,
                  memory_limit: int | str, val: Any, val_labels: Any) -> int:
    """The values :func:`run_audit` takes, checked before anything is read (the messages name
    the command's options). Returns the memory limit in bytes."""
    from lsfix.core import CONVENTIONS
    from lsfix.evaluation.planner import parse_memory_limit
    from lsfix.output.calibration import check_bins

    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {str(convention)[:40]!r}; choose one of "
                         f"{', '.join(CONVENTIONS)}")
    if bootstrap < 0:
        raise UsageError(f"--bootstrap must be >= 0, got {bootstrap}")
    if bootstrap > MAX_BOOTSTRAP:
        raise UsageError(f"--bootstrap {bootstrap} is above the limit of {MAX_BOOTSTRAP} "
                         "replicates")
    if not 0 < level < 1:
        raise UsageError(f"--level must be in (0, 1), got {level}")
    if bootstrap < 1:
        raise UsageError("--bootstrap must be >= 1 for audit (the verdict needs it)")
    if bootstrap_unit not in ("row", "image"):
        raise UsageError(f"--bootstrap-unit must be row or image, got {bootstrap_unit!r}")
    if bootstrap_unit == "image" and by is not None:
        raise UsageError("--bootstrap-unit image does not go with --by (groups resample rows)")
    for what, values, lo_open in (("--coverage", coverages, True), ("--risk", risks, False)):
        for v in values:
            if not ((v > 0 if lo_open else v >= 0) and v <= 1):
                raise UsageError(f"{what} must be in {'(' if lo_open else '['}0, 1], got {v:g}")
    check_bins(bins)
    if val_labels is not None and val is None:
        raise UsageError("--val-labels gives the labels of the --val file; pass --val too")
    return (parse_memory_limit(memory_limit) if isinstance(memory_limit, str)
            else int(memory_limit))


def run_audit(
    source: Any,
    *,
    val: Any = None,
    labels: Any = None,
    val_labels: Any = None,
    input: str | None = None,  # noqa: A002  (the CLI's --input)
    ignore_index: int | None = None,
    with_scores: Any = (),
    allow_incomplete: bool = False,
    fit_fraction: float = 0.2,
    seed: int = 0,
    convention: str = "lsfix",
    bootstrap: int = 1000,
    level: float = 0.95,
    select: str = "test",
    select_level: float = 0.95,
    coverages: Any = (),
    risks: Any = (),
    by: str | None = None,
    bootstrap_unit: str = "row",
    subsample_pixels: str | None = None,
    memory_limit: int | str = "2G",
    bins: int = 15,
    keep_open: bool = False,
) -> AuditResult:
    """Audit a classifier's logits: ``lsfix.audit``, the whole of ``lsfix audit``.

    Parameters
    ----------
    source, val : str, os.PathLike, array-like or Predictions
        The input and an optional labelled validation file to fit p and T on; anything
        :func:`lsfix.read` reads (a path is read with ``labels``/``input``/``ignore_index``/
        ``with_scores``, ``val`` with ``val_labels``), or what it returned. Without ``val``,
        a seeded ``fit_fraction`` of the input is held out for fitting and excluded from
        every number.
    convention, bootstrap, level, seed
        The AURC convention; replicates (>= 1), level and seed of the paired bootstrap and
        of the simultaneous bounds behind the verdict.
    select, select_level
        How p is chosen (:func:`lsfix.evaluation.fitpolicy.choose_fit`).
    coverages, risks
        Add risk@coverage and coverage@risk to every score's metrics.
    by, bootstrap_unit
        msp and pnorm per group; ``image`` resamples whole images (dense files).
    subsample_pixels, memory_limit
        Dense files: draw ``N[/IMAGES]`` pixels (only those are read), else refuse an input
        whose in-memory audit would need more than ``memory_limit`` (bytes or ``2G``).
    bins
        Bins of ECE/MCE in the calibration section.
    keep_open
        Keep a file read here open, so that :attr:`AuditResult.predictions` can still be
        read (``lsfix.output.audit.write_report``); then call :meth:`AuditResult.close`.

    Returns
    -------
    AuditResult
        ``.verdict``, ``.broken``, ``.results``, ... ; ``.to_dict()`` is the JSON document
        of ``lsfix audit -f json``.

    Examples
    --------
    >>> import lsfix
    >>> res = lsfix.audit("sample_data/fmnist_ls02_test.h5",
    ...                   val="sample_data/fmnist_ls02_val.h5", bootstrap=50)  # doctest: +SKIP
    >>> res.broken, res.to_dict()["format"]  # doctest: +SKIP
    (True, 'lsfix.audit')
    """
    import lsfix

    limit = check_options(convention=convention, bootstrap=bootstrap, level=level,
                          bootstrap_unit=bootstrap_unit, by=by, coverages=coverages,
                          risks=risks, bins=bins, memory_limit=memory_limit, val=val,
                          val_labels=val_labels)
    covs, rsk = tuple(float(c) for c in coverages), tuple(float(r) for r in risks)
    opened: list[Predictions] = []
    kept: Predictions | None = None  # with keep_open: the predictions the result holds

    def read(src: Any, **kw: Any) -> Predictions:
        pred = lsfix.read(src, **kw)
        if pred is not src:
            opened.append(pred)
        return pred

    try:
        if isinstance(source, Predictions) and labels is None and input is None \
                and not with_scores:
            pred = source
        else:
            pred = read(source, labels=labels, input=input, ignore_index=ignore_index,
                        with_scores=with_scores, allow_incomplete=allow_incomplete,
                        need_labels=True, need_logits=True,
                        defer_dense_labels=labels is None and not with_scores)
        val_pred = None
        if isinstance(val, Predictions) and val_labels is None:
            val_pred = val
        elif val is not None:
            val_pred = read(val, need_logits=True, ignore_index=ignore_index,
                            labels=val_labels, defer_dense_labels=val_labels is None)
        res, evaluated = audit_planned(pred, val=val_pred, fit_fraction=fit_fraction,
                                       seed=seed, convention=convention, n_boot=bootstrap,
                                       level=level, by=by, bootstrap_unit=bootstrap_unit,
                                       subsample=subsample_pixels, memory_limit=limit,
                                       fit_option="--val-labels", select=select,
                                       select_level=select_level, coverages=covs, risks=rsk)
        from lsfix.output.calibration import audit_calibration

        cal = audit_calibration(res, evaluated, n_bins=bins, n_boot=bootstrap, seed=seed,
                                level=level)
        from dataclasses import replace

        kept = evaluated if keep_open else None
        return replace(res, calibration=cal, predictions=evaluated)
    finally:
        for p in opened:
            if p is not kept:
                p.close()


def _by_group(file: str, scores: dict[str, np.ndarray], correct: np.ndarray,
              index: Any, names: list[str], *, convention: str, n_boot: int, seed: int,
              level: float) -> tuple[Any, ...]:
    from lsfix.core import bootstrap_ci
    from lsfix.evaluation.grouped import ALL, GroupResult

    out = []
    for name, conf in scores.items():
        parts = [(ALL, np.ones(conf.shape[0], dtype=bool))]
        parts += [(g, index == i) for i, g in enumerate(names)]
        for g, sel in parts:
            if not sel.any():
                continue
            c, y = conf[sel], correct[sel]
            ci = bootstrap_ci(c, y, n_boot=n_boot, seed=seed, level=level,
                              convention=convention) if n_boot else None
            out.append(GroupResult(file, name, g, evaluate(c, y, convention=convention), ci,
                                   c, y))
    return tuple(out)


#: The verdict for a single-logit model (the reason is in docs/metrics.md, "Binary models").
BINARY_VERDICT = (
    "binary (single-logit) model: keep MSP, the |z| ranking. With one logit there is nothing "
    "to normalise: centred pNorm is |z|/2 at p = 0 (the same ranking) and a constant at "
    "p >= 1, so no p can beat MSP; if label smoothing hurt this model, the damage is in |z| "
    "itself, which no post-hoc normalisation of one logit undoes"
)


def _verdict(fit: PNormFit, d: PairedDifference, removed: float) -> tuple[bool, str]:
    iv = f"ΔAURC = {d.estimate:+.4g}, {d.level:.0%} interval [{d.low:+.4g}, {d.high:+.4g}]"
    if fit.fallback_msp:
        return False, ("MSP is fine: keep it (on the fit data no p beat MSP, so normalisation "
                       "falls back to MSP)")
    if d.high < 0:
        return True, (f"MSP ranking is broken: normalisation (p={fit.p:g}) removes "
                      f"{100 * removed:.1f}% of excess AURC ({iv})")
    if d.low > 0:
        return False, f"MSP is fine: keep it (normalisation makes AURC worse: {iv})"
    return False, f"MSP is fine: keep it (normalisation's change is within noise: {iv})"


def _two_levels(best: Any, n: int, paired: PairedDifference | None) -> str:
    """When pNorm has the lowest AURC, short of the simultaneous bounds, while its single
    paired comparison with MSP (the report's ``paired_pnorm_minus_msp``) excludes 0: one
    sentence on why the verdict follows the wider bounds."""
    if best.name != "pnorm" or paired is None or not paired.high < 0:
        return ""
    return (f"; pNorm's single paired comparison with MSP ({paired.level:.0%} interval "
            f"[{paired.low:+.4g}, {paired.high:+.4g}]) excludes 0 on its own, but the verdict "
            f"uses the wider simultaneous bounds, which hold for all {n} scores at once so "
            "that the best of many is not picked by luck")


def _verdict_all(fit: PNormFit, sel: Selection, removed: float,
                 paired: PairedDifference | None = None) -> tuple[bool, str]:
    """The verdict from every score against MSP (module docstring, step 5). ``paired``: the
    single pNorm − MSP comparison, cited when it and the simultaneous bounds disagree."""
    lvl = f"{sel.level:.0%}"
    n = len(sel.candidates)
    if sel.choice is None:
        best = min(sel.candidates, key=lambda c: (c.delta, c.name))
        tail = ""
        if fit.fallback_msp:
            tested = (fit.split or {}).get("selection") is not None
            tail = ("; on the fit data no p beat MSP " + ("significantly, " if tested else ", ")
                    + "so pNorm is MSP").replace(" ,", ",")
        if best.delta >= 0:
            return False, (f"MSP is fine: keep it (none of the {n} other scores has a lower "
                           f"AURC than MSP{tail})")
        return False, (f"MSP is fine: keep it (no score is significantly better: the best of "
                       f"{n}, {best.name}, has ΔAURC = {best.delta:+.4g}, simultaneous {lvl} "
                       f"upper bound {best.high:+.4g} >= 0{tail})"
                       + _two_levels(best, n, paired))
    c = sel.candidate(sel.choice)
    best = min(sel.candidates, key=lambda x: (x.delta, x.name))
    iv = (f"ΔAURC = {c.delta:+.4g}, simultaneous {lvl} bounds [{c.low:+.4g}, {c.high:+.4g}], "
          f"{n} scores against MSP")
    if sel.choice == "pnorm":
        head = (f"MSP ranking is broken: normalisation (p={fit.p:g}) removes "
                f"{100 * removed:.1f}% of excess AURC ({iv})")
    else:
        head = (f"MSP ranking is broken: {sel.choice} ranks better than MSP ({iv}); use "
                f"{sel.choice} instead of MSP")
    if best.name != c.name:  # the lowest AURC is another score's, short of significance
        what = (f"normalisation (p={fit.p:g}) would remove {100 * removed:.1f}% of excess "
                "AURC, " if best.name == "pnorm" and fit.p is not None else "")
        head += (f"; the lowest AURC is {best.name}'s ({what}ΔAURC = {best.delta:+.4g}, upper "
                 f"bound {best.high:+.4g}: not significant)" + _two_levels(best, n, paired))
    return True, head


# --------------------------------------------------------------------------------------------
# label smoothing read from the logits (lsfix.core.ceiling): what it adds to the verdict
# (the sentences every format prints are lsfix.output.audit's)


def _ls_clause(broken: bool, ls: LabelSmoothingEstimate) -> str:
    """What the logit-gap ceiling adds to the verdict."""
    from lsfix.output.audit import alpha_text as _a

    if ls.verdict == "undetermined":
        return ""
    if ls.has_ceiling:
        if broken:
            return (f"; the logit gaps pile up at a ceiling like label smoothing α ≈ "
                    f"{_a(ls.alpha)}, the known cause of this failure")
        return (f"; the logit gaps pile up at a ceiling like label smoothing α ≈ "
                f"{_a(ls.alpha)}, yet normalisation brings no clear gain here")
    if broken:
        return ("; the logit gaps show no label-smoothing ceiling, so the cause is likely "
                "something else")
    return "; no sign of label smoothing in the logit gaps"

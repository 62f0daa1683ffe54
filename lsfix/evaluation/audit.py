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
   ranking with no ceiling is plain cross-entropy behaviour. :func:`label_smoothing_summary` and
   :func:`label_smoothing_notes` are the sentences every output format prints.
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
from lsfix.core.ceiling import (
    LabelSmoothingEstimate,
    ceiling_from_alpha,
    estimate_label_smoothing,
)
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
        broken, verdict = _verdict_all(fit, selection, removed)
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


def _verdict_all(fit: PNormFit, sel: Selection, removed: float) -> tuple[bool, str]:
    """The verdict from every score against MSP (module docstring, step 5)."""
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
                       f"upper bound {best.high:+.4g} >= 0{tail})")
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
                 f"bound {best.high:+.4g}: not significant)")
    return True, head


# --------------------------------------------------------------------------------------------
# label smoothing read from the logits (lsfix.core.ceiling): the sentences every format prints


def _a(x: float) -> str:
    return f"{x:.3f}" if x >= 0.0095 else f"{x:.2g}"


def _ls_clause(broken: bool, ls: LabelSmoothingEstimate) -> str:
    """What the logit-gap ceiling adds to the verdict."""
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


def _of_rows(ls: LabelSmoothingEstimate) -> str:
    return " of correct predictions" if ls.rows_used == "correct" else ""


def label_smoothing_summary(ls: LabelSmoothingEstimate, recorded: float | None = None) -> str:
    """One line: what the logit gaps say about label smoothing (and the recorded α)."""
    rec = "" if recorded is None else f"; the provenance records α = {recorded:g}"
    if ls.verdict == "undetermined":
        return f"label smoothing cannot be read from the logit gaps: {ls.reason}{rec}"
    iv = ("" if math.isnan(ls.alpha_low) else
          f" [{_a(ls.alpha_low)}, {_a(ls.alpha_high)}]")
    if ls.has_ceiling:
        return (f"logit gaps{_of_rows(ls)} pile up at a ceiling of {ls.ceiling:.2f} (spread "
                f"{ls.spread:.2f} < {ls.spread_threshold:g}): consistent with label smoothing "
                f"α ≈ {_a(ls.alpha)}{iv}{rec}")
    return (f"no ceiling: the logit gaps{_of_rows(ls)} spread out (median {ls.ceiling:.2f}, "
            f"spread {ls.spread:.2f} ≥ {ls.spread_threshold:g}): no sign of label smoothing{rec}")


def label_smoothing_notes(ls: LabelSmoothingEstimate, recorded: float | None = None
                          ) -> list[str]:
    """Caveats: what else makes a ceiling, where α̂ is known to fail, recorded-α mismatches."""
    notes: list[str] = []
    if ls.verdict == "undetermined":
        return notes
    if ls.binary:
        notes.append("single logit: read as BCE label smoothing (targets y(1−α) + α/2, "
                     "ceiling |z| = log((1 − α/2)/(α/2)))")
    if ls.has_ceiling:
        notes.append("a ceiling can also come from heavy weight decay or a logit penalty, and "
                     "logits saved after temperature scaling move it by 1/T (α̂ then describes "
                     "the scaled logits, not the training)")
        if ls.k >= 100:
            notes.append(f"with K = {ls.k} classes α̂ assumes most rows reach the ceiling; "
                         "when few do (hard data sets), the median gap falls short of it and "
                         "α̂ overestimates α")
    elif ls.k >= 100:
        notes.append(f"with K = {ls.k} classes an LS model may leave most rows short of its "
                     "ceiling (hard data sets), which also reads as no ceiling: weaker "
                     "evidence than for small K")
    if recorded is not None:
        if recorded == 0 and ls.has_ceiling:
            notes.append("the provenance records cross-entropy (α = 0): the ceiling comes "
                         "from something else (weight decay, a logit penalty, rescaled "
                         "logits)")
        elif recorded > 0 and not ls.has_ceiling:
            notes.append(f"the provenance records α = {recorded:g} but the gaps show no "
                         "ceiling: the logits may have been rescaled per sample, or the "
                         "recorded α is wrong")
        elif recorded > 0 and ls.has_ceiling:
            c_rec = ceiling_from_alpha(recorded, ls.k)
            ratio = c_rec / ls.ceiling
            if not 0.8 <= ratio <= 1.25:
                notes.append(f"the recorded α = {recorded:g} implies a ceiling of {c_rec:.2f}, "
                             f"not {ls.ceiling:.2f}: logits divided by a temperature "
                             f"T ≈ {ratio:.2f} would explain it")
    return notes

"""What ``lsfix audit`` prints and writes, from an :class:`lsfix.evaluation.audit.AuditResult`:
the text report, the TSV table and its stderr notes, the label-smoothing sentences (also in the
JSON), and ``--report``'s Markdown/HTML page with its figures (:mod:`lsfix.output.html`)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from lsfix.output.table import render_table, result_rows

# --------------------------------------------------------------------------------------------
# label smoothing read from the logits (lsfix.core.ceiling): the sentences every format prints


def alpha_text(x: float) -> str:
    """An α for a sentence: three decimals, or two significant digits when small."""
    return f"{x:.3f}" if x >= 0.0095 else f"{x:.2g}"


def _of_rows(ls: Any) -> str:
    return " of correct predictions" if ls.rows_used == "correct" else ""


def label_smoothing_summary(ls: Any, recorded: float | None = None) -> str:
    """One line: what the logit gaps say about label smoothing (and the recorded α)."""
    rec = "" if recorded is None else f"; the provenance records α = {recorded:g}"
    if ls.verdict == "undetermined":
        return f"label smoothing cannot be read from the logit gaps: {ls.reason}{rec}"
    iv = ("" if math.isnan(ls.alpha_low) else
          f" [{alpha_text(ls.alpha_low)}, {alpha_text(ls.alpha_high)}]")
    if ls.has_ceiling:
        return (f"logit gaps{_of_rows(ls)} pile up at a ceiling of {ls.ceiling:.2f} (spread "
                f"{ls.spread:.2f} < {ls.spread_threshold:g}): consistent with label smoothing "
                f"α ≈ {alpha_text(ls.alpha)}{iv}{rec}")
    return (f"no ceiling: the logit gaps{_of_rows(ls)} spread out (median {ls.ceiling:.2f}, "
            f"spread {ls.spread:.2f} ≥ {ls.spread_threshold:g}): no sign of label smoothing{rec}")


def label_smoothing_notes(ls: Any, recorded: float | None = None) -> list[str]:
    """Caveats: what else makes a ceiling, where α̂ is known to fail, recorded-α mismatches."""
    from lsfix.core.ceiling import ceiling_from_alpha

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


def label_smoothing_dict(res: Any) -> dict[str, Any] | None:
    """The JSON ``label_smoothing`` section: the logit-gap ceiling with its sentences and the
    recorded α (None when it was not estimated)."""
    from lsfix.core.ceiling import ceiling_from_alpha

    ls = res.label_smoothing
    if ls is None:
        return None
    rec = res.recorded_alpha
    rec_c = None if rec is None or rec == 0 else ceiling_from_alpha(rec, ls.k)
    return {**ls.to_dict(), "recorded_alpha": rec, "recorded_ceiling": rec_c,
            "summary": label_smoothing_summary(ls, rec),
            "notes": label_smoothing_notes(ls, rec)}


def label_smoothing_lines(res: Any) -> list[str]:
    """``label smoothing: …`` and its notes, for the table, TSV (stderr) and reports."""
    if res.label_smoothing is None:
        return []
    ls, rec = res.label_smoothing, res.recorded_alpha
    return ([f"label smoothing: {label_smoothing_summary(ls, rec)}"]
            + [f"  note: {n}" for n in label_smoothing_notes(ls, rec)])


# --------------------------------------------------------------------------------------------
# the command's outputs


def audit_table(res: Any) -> str:
    """``-f table``: the scores (and groups), the fit, the label smoothing, the verdict, and
    the calibration section when the result holds one."""
    rows = result_rows(list(res.results), percent=False)
    table = render_table(rows, f"{res.file} — {res.n_eval} samples, convention {res.convention}",
                         show_file=False)
    if res.by:
        from lsfix.evaluation.grouped import group_rows

        table += "\n" + render_table(group_rows(list(res.groups), percent=False),
                                     f"msp and pnorm by {res.by}", show_file=False)
    cal = "" if res.calibration is None else "\n" + calibration_text(res.calibration)
    fit = res.fit
    if res.binary:
        from lsfix.core.scores import BINARY_NOTE

        return (f"{table}\n{BINARY_NOTE}\nT fitted on {res.fit_source}: "
                f"T = {res.temperature:.4g}; p: not tuned (pnorm = msp)\n\n"
                f"verdict: {res.verdict}\n{cal}")
    choice = "MSP (fallback)" if fit.fallback_msp else f"p = {fit.p:g}"
    grid = ", ".join(f"p={p:g}: {a:.5g}" for p, a in fit.grid)
    ls = "".join(f"{line}\n" for line in label_smoothing_lines(res))
    how = "" if res.fit_result is None else f"p: {res.fit_result.describe()}\n"
    return (f"{table}\nfit on {res.fit_source}: {choice}; temperature T = {res.temperature:.4g}\n"
            f"held-out AURC by p: {grid}; MSP: {fit.msp_aurc:.5g}\n{how}{ls}\n"
            f"verdict: {res.verdict}\n{cal}")


def calibration_text(cal: Any) -> str:
    """The audit's calibration section as text: accuracy, calibration and AURC side by side,
    then the calibration table of the model's and the temperature-scaled probabilities."""
    from lsfix.output.calibration import side_by_side_text, table_text

    return (side_by_side_text(list(cal.rows)) + "\n"
            + table_text(list(cal.variants), "calibration (evaluation rows)"))


def audit_tsv(res: Any) -> str:
    """``-f tsv``: the scores table (with ``by``, msp and pnorm per group)."""
    from lsfix.output.report import tsv

    if res.by is not None:
        from lsfix.evaluation.grouped import group_rows

        rows = group_rows(list(res.groups), percent=False)
    else:
        rows = result_rows(list(res.results), percent=False)
    return tsv(rows, list(rows[0].keys()))


def tsv_notes(res: Any) -> list[str]:
    """With ``-f tsv`` the verdict and the label smoothing are notes (stderr lines)."""
    return ([f"lsfix audit: verdict: {res.verdict}"]
            + [f"lsfix audit: {line.strip()}" for line in label_smoothing_lines(res)])


def check_report_path(path: str | None) -> None:
    """``--report PATH`` with an unknown suffix: the usage error, before any work."""
    if path is not None:
        from lsfix.output.html import report_target

        report_target(path)


def write_report(res: Any, path: str) -> list[str]:
    """``--report PATH``: a self-contained ``.html`` page, a ``.md`` file with its figures
    beside it, or a folder with report.md, report.html and the figures
    (:mod:`lsfix.output.html`). ``res`` must hold the predictions it was computed on
    (:func:`lsfix.audit` keeps them; its file still open). Returns the files written."""
    from lsfix.output import html as H
    from lsfix.output.explain import explain_plots
    from lsfix.output.plot import curve_lines, oracle_curve, rc_plot
    from lsfix.output.report import fmt, markdown_figure, markdown_table
    from lsfix.streams import write_text_atomic

    pred, cal = res.predictions, res.calibration
    target = H.report_target(path)
    H.prepare(target)  # folders removed again if the command fails
    figs = H.Figures(target)
    by = {r.score: r for r in res.results}
    fell_back = res.fit.fallback_msp or res.fit.p is None
    rc = figs.path("rc.png")
    # a fallback: the pnorm line lies under msp's, and the legend says so
    notes = {(res.file, "pnorm"): "MSP (fell back: no p beat MSP)"} if fell_back else {}
    lines = curve_lines([by["msp"], by["pnorm"], by["msp_ts"]], show_file=False, notes=notes)
    rc_plot(lines, rc, title=f"Risk-coverage: {os.path.basename(res.file)}",
            oracle=oracle_curve(by["msp"].correct))
    shown = [rc]
    if cal is not None:
        from lsfix.output.calibration import reliability_series
        from lsfix.output.plot import reliability_plot

        rel = figs.path("rc.reliability.png")
        reliability_plot(reliability_series(list(cal.variants)), rel,
                         title=f"Reliability: {os.path.basename(res.file)}")
        shown.append(rel)
    shown += explain_plots([pred], rc)
    rows = result_rows(list(res.results), percent=False)
    cols = ["score", "n", "accuracy", "aurc", "oracle_aurc", "eaurc", "naurc", "augrc", "auroc",
            "fpr_at_95tpr"]
    d = res.paired
    chosen = "MSP kept (no p beat it)" if fell_back else f"p = {res.fit.p:g}"

    def fitted_with(show: Any) -> str:  # names are data: escaped for the report's language
        text = (f"Fitted on {show(res.fit_source)}: pNorm {chosen}; temperature T = "
                f"{res.temperature:.4g} (msp_ts); oracle AURC (ideal ranking) = "
                f"{fmt(by['msp'].metrics.oracle_aurc)}.")
        return text + "".join(f" Warning: {show(line)}." for line in res.fit_notes)

    fitted = fitted_with(str)  # the HTML page escapes it whole
    unit = ", resampling images" if res.bootstrap_unit == "image" else ""
    written: list[str] = []
    if target.md is not None:
        md = (
            f"# lsfix audit: {H.md_code(res.file)}\n\n**Verdict:** {H.md_esc(res.verdict)}\n\n"
            f"Evaluated on {res.n_eval} samples (convention `{res.convention}`). "
            f"{fitted_with(H.md_esc)}\n\n"
            f"## Scores\n\n{markdown_table(rows, cols)}\n"
            f"## pNorm vs MSP (paired bootstrap, {d.n_boot} replicates{unit})\n\n"
            f"AURC(pnorm) − AURC(msp) = {fmt(d.estimate)} "
            f"[{fmt(d.low)}, {fmt(d.high)}] at {d.level:.0%}; p = {fmt(d.p_value, 3)}\n\n"
            + (_cal_markdown(cal) if cal is not None else "")
            + _ls_markdown(res)
            + "## Plots\n\n" + "".join(markdown_figure(p, Path(p).stem) for p in shown)
        )
        write_text_atomic(target.md, md)
        written.append(target.md)
    if target.html is not None:
        write_text_atomic(target.html, _audit_html(res, cal, rows, fitted, figs, shown, unit))
        written.append(target.html)
    written += figs.write_files()
    return written


def _cal_markdown(cal: Any) -> str:
    from lsfix.output.report import fmt

    out = ["## Accuracy, calibration and selective classification\n\n",
           "| | acc | ECE | NLL | Brier | AURC |\n|---|---|---|---|---|---|\n"]
    for r in cal.rows:
        star = "\\*" if r["probabilities_unchanged"] else ""
        out.append(f"| {r['variant']} | {fmt(r['accuracy'], 4)} | {fmt(r['ece'], 4)}{star} | "
                   f"{fmt(r['nll'], 4)}{star} | {fmt(r['brier'], 4)}{star} | "
                   f"{fmt(r['aurc'], 4)} |\n")
    out.append("\n\\* pNorm re-ranks rows without changing any probability: its calibration "
               "is the model's.\n\n")
    return "".join(out)


def _audit_html(res: Any, cal: Any, rows: list[dict[str, Any]], fitted: str, figs: Any,
                shown: list[str], unit: str) -> str:
    from lsfix.output import html as H
    from lsfix.output.report import caption

    d = res.paired
    parts = [f"<p class='meta'>Evaluated on {res.n_eval} samples (convention "
             f"{H.esc(res.convention)}). {H.esc(fitted)}</p>"]
    if cal is not None:
        side = [dict(r) for r in cal.rows]
        parts.append("<h2>Accuracy, calibration and selective classification</h2>")
        parts.append(H.table(side, [H.Column("accuracy", "accuracy", None),
                                    H.Column("ece", "ECE"), H.Column("nll", "NLL"),
                                    H.Column("brier", "Brier"), H.Column("aurc", "AURC")],
                             label_keys=["variant", "changes"], ci=False,
                             caption="What temperature scaling and pNorm each change, on the "
                                     "evaluation rows. pNorm re-ranks rows without changing "
                                     "any probability, so its calibration is the model's. "
                                     "Lower is better except accuracy."))
        from lsfix.output.calibration import CAL_COLUMNS

        vrows = []
        for v in cal.variants:
            r: dict[str, Any] = {"probabilities": v.label}
            for k, _ in CAL_COLUMNS:
                r[k] = getattr(v.metrics, k)
                if v.ci is not None:
                    r[f"{k}_low"], r[f"{k}_high"] = v.ci[k].low, v.ci[k].high
            vrows.append(r)
        parts.append(H.table(vrows, [H.Column(k, h, None if k == "accuracy" else True)
                                     for k, h in CAL_COLUMNS],
                             label_keys=["probabilities"],
                             caption=f"Calibration ({cal.variants[0].metrics.n_bins} "
                                     "equal-width bins as torchmetrics; equal-mass bins as "
                                     "netcal) with bootstrap intervals."))
    parts.append("<h2>Scores</h2>")
    parts.append(H.table(rows, [H.Column("accuracy", "accuracy", None),
                                H.Column("aurc", "AURC"), H.Column("eaurc", "E-AURC"),
                                H.Column("naurc", "NAURC"), H.Column("augrc", "AUGRC"),
                                H.Column("auroc", "AUROC", False),
                                H.Column("fpr_at_95tpr", "FPR@95TPR"),
                                H.Column("oracle_aurc", "oracle AURC", None)],
                         label_keys=["score"],
                         caption="Every confidence score on the evaluation rows (pnorm: the "
                                 "fitted choice; msp_ts: MSP after temperature scaling). "
                                 "AURC, E-AURC, NAURC, AUGRC, FPR: lower is better; AUROC: "
                                 "higher."))
    parts.append(f"<h2>pNorm vs MSP (paired bootstrap, {d.n_boot} replicates{H.esc(unit)})"
                 "</h2>")
    parts.append(f"<p>AURC(pnorm) − AURC(msp) = {H.with_interval(d.estimate, d.low, d.high)} "
                 f"at {d.level:.0%}; p = {H.esc(H.num(d.p_value, 3))}</p>")
    parts.append(_ls_html(res))
    parts.append("<h2>Figures</h2>")
    for p in shown:
        parts.append(H.figure(figs, p, Path(p).stem, caption(p)))
    kind = "bad" if res.broken else "good"
    return H.page(f"lsfix audit: {os.path.basename(res.file)}", res.verdict, kind,
                  "".join(parts), meta=H.esc(res.file))


def _ls_markdown(res: Any) -> str:
    from lsfix.safetext import md_text

    lines = label_smoothing_lines(res)
    if not lines:
        return ""
    head, notes = lines[0].removeprefix("label smoothing: "), lines[1:]
    return ("## Label smoothing read from the logits\n\n" + md_text(head) + "\n\n"
            + "".join(f"- {md_text(n.strip().removeprefix('note: '))}\n" for n in notes)
            + ("\n" if notes else ""))


def _ls_html(res: Any) -> str:
    from lsfix.safetext import html

    lines = label_smoothing_lines(res)
    if not lines:
        return ""
    head, notes = lines[0].removeprefix("label smoothing: "), lines[1:]
    items = "".join(f"<li>{html(n.strip().removeprefix('note: '))}</li>" for n in notes)
    return (f"<h2>Label smoothing read from the logits</h2><p>{html(head)}</p>"
            + (f"<ul>{items}</ul>" if items else ""))

"""``lsfix audit``: one command that tells whether a classifier's MSP ranking is broken."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import (
    check_boot,
    check_boot_unit,
    check_convention,
    load,
    parse_floats,
    report_format,
    use_scheduler,
)
from lsfix.cli.options import (
    AllowIncompleteOpt,
    BootUnitOpt,
    ByOpt,
    ConventionOpt,
    CoverageOpt,
    FormatOpt,
    IgnoreIndexOpt,
    InputArg,
    InputKindOpt,
    LabelsOpt,
    LevelOpt,
    MemoryLimitOpt,
    OutputOpt,
    QuietOpt,
    RiskOpt,
    SchedulerOpt,
    SchedulerTimeoutOpt,
    SeedOpt,
    SubsampleOpt,
    WithOpt,
)
from lsfix.output.table import render_table, result_rows

HELP = """Audit any classifier's logits: every confidence score, MaxLogit-pNorm with p fitted
on --val (or on a held-out --fit-fraction of the input, excluded from the numbers; MSP kept
unless a p is significantly better there, --select), the paired bootstrap difference
pNorm − MSP, a plain-language verdict that weighs every score against MSP (simultaneous
bounds at --level: "keep MSP" only when none is significantly better), and the label
smoothing the logit gaps reveal (a ceiling at log(1 + K(1−α)/α) means LS with α; none
means plain CE), with accuracy, calibration (ECE, NLL, Brier) and AURC side by side for the
model, the fitted temperature and pNorm. --report audit.html writes one self-contained page;
--report DIR/ report.md, report.html and the plots (RC curves, reliability, the
label-smoothing mechanism, the histogram of logit gaps).

Examples:

  lsfix audit model.h5 --val val.h5 --report audit.html

  lsfix audit logits.npz --labels labels.npy --coverage 0.9 --format json -o audit.json
"""


def audit_json(res: Any) -> dict[str, Any]:
    from lsfix.output.report import metrics_dict, paired_dict

    return {
        "file": res.file,
        "convention": res.convention,
        "n_eval": res.n_eval,
        "k": res.k,
        "fit_source": res.fit_source,
        "fit": res.fit.to_dict(),
        "temperature": res.temperature,
        "scores": [{"file": r.file, "score": r.score, **metrics_dict(r.metrics), "ci": None}
                   for r in res.results],
        "paired_pnorm_minus_msp": {**paired_dict(res.paired),
                                   "unit": getattr(res, "bootstrap_unit", "row")},
        "excess_aurc_removed": None if res.excess_removed != res.excess_removed
        else res.excess_removed,
        "undefined": ({} if res.excess_removed == res.excess_removed else {
            "excess_aurc_removed": "MSP's AURC equals the oracle's: there is no excess to remove"
        }),
        "broken": res.broken,
        "selection": None if getattr(res, "selection", None) is None
        else res.selection.to_dict(),
        "best": _best_json(res),
        "fit_policy": None if getattr(res, "fit_result", None) is None
        else res.fit_result.to_dict(),
        "binary": bool(getattr(res, "binary", False)),
        **({"by": res.by, "groups": _group_json(res)} if getattr(res, "by", None) else {}),
        "verdict": res.verdict,
        "label_smoothing": label_smoothing_json(res),
    }


def _best_json(res: Any) -> dict[str, Any] | None:
    """The best score against MSP, on the simultaneous bounds (None without them)."""
    sel = getattr(res, "selection", None)
    if sel is None:
        return None
    best = min(sel.candidates, key=lambda c: (c.delta, c.name))
    return {"score": best.name, "aurc": best.aurc, "delta_vs_msp": best.delta,
            "low": best.low, "high": best.high, "level": sel.level,
            "significant": sel.choice is not None, "chosen": sel.choice}


def label_smoothing_json(res: Any) -> dict[str, Any] | None:
    """The logit-gap ceiling (lsfix.core.ceiling) with its sentences and the recorded α."""
    from lsfix.core.ceiling import ceiling_from_alpha
    from lsfix.evaluation.audit import label_smoothing_notes, label_smoothing_summary

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
    from lsfix.evaluation.audit import label_smoothing_notes, label_smoothing_summary

    if res.label_smoothing is None:
        return []
    ls, rec = res.label_smoothing, res.recorded_alpha
    return ([f"label smoothing: {label_smoothing_summary(ls, rec)}"]
            + [f"  note: {n}" for n in label_smoothing_notes(ls, rec)])


def _group_json(res: Any) -> list[dict[str, Any]]:
    from lsfix.evaluation.grouped import group_json

    return group_json(list(res.groups), percent=False)


def audit_text(res: Any) -> str:
    rows = result_rows(list(res.results), percent=False)
    table = render_table(rows, f"{res.file} — {res.n_eval} samples, convention {res.convention}",
                         show_file=False)
    if getattr(res, "by", None):
        from lsfix.evaluation.grouped import group_rows

        table += "\n" + render_table(group_rows(list(res.groups), percent=False),
                                     f"msp and pnorm by {res.by}", show_file=False)
    fit = res.fit
    if getattr(res, "binary", False):
        from lsfix.core.scores import BINARY_NOTE

        return (f"{table}\n{BINARY_NOTE}\nT fitted on {res.fit_source}: "
                f"T = {res.temperature:.4g}; p: not tuned (pnorm = msp)\n\n"
                f"verdict: {res.verdict}\n")
    choice = "MSP (fallback)" if fit.fallback_msp else f"p = {fit.p:g}"
    grid = ", ".join(f"p={p:g}: {a:.5g}" for p, a in fit.grid)
    ls = "".join(f"{line}\n" for line in label_smoothing_lines(res))
    how = ""
    if getattr(res, "fit_result", None) is not None:
        how = f"p: {res.fit_result.describe()}\n"
    return (f"{table}\nfit on {res.fit_source}: {choice}; temperature T = {res.temperature:.4g}\n"
            f"held-out AURC by p: {grid}; MSP: {fit.msp_aurc:.5g}\n{how}{ls}\n"
            f"verdict: {res.verdict}\n")


def write_report(res: Any, pred: Any, path: str, cal: Any = None) -> list[str]:
    """``--report PATH``: a self-contained ``.html`` page, a ``.md`` file with its figures
    beside it, or a folder with report.md, report.html and the figures
    (:mod:`lsfix.output.html`). Returns the files written."""
    from lsfix.output import html as H
    from lsfix.output.explain import explain_plots
    from lsfix.output.plot import curve_lines, oracle_curve, rc_plot
    from lsfix.output.report import fmt, markdown_figure, markdown_table
    from lsfix.streams import write_text_atomic

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
    notes = tuple(getattr(res, "fit_notes", ()))

    def fitted_with(show: Any) -> str:  # names are data: escaped for the report's language
        text = (f"Fitted on {show(res.fit_source)}: pNorm {chosen}; temperature T = "
                f"{res.temperature:.4g} (msp_ts); oracle AURC (ideal ranking) = "
                f"{fmt(by['msp'].metrics.oracle_aurc)}.")
        return text + "".join(f" Warning: {show(line)}." for line in notes)

    fitted = fitted_with(str)  # the HTML page escapes it whole
    unit = ", resampling images" if getattr(res, "bootstrap_unit", "row") == "image" else ""
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

    rows = cal.rows
    out = ["## Accuracy, calibration and selective classification\n\n",
           "| | acc | ECE | NLL | Brier | AURC |\n|---|---|---|---|---|---|\n"]
    for r in rows:
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
    lines = label_smoothing_lines(res)
    if not lines:
        return ""
    head, notes = lines[0].removeprefix("label smoothing: "), lines[1:]
    from lsfix.safetext import md_text

    return ("## Label smoothing read from the logits\n\n" + md_text(head) + "\n\n"
            + "".join(f"- {md_text(n.strip().removeprefix('note: '))}\n" for n in notes)
            + ("\n" if notes else ""))


def _ls_html(res: Any) -> str:
    lines = label_smoothing_lines(res)
    if not lines:
        return ""
    head, notes = lines[0].removeprefix("label smoothing: "), lines[1:]
    items = "".join(f"<li>{_esc(n.strip().removeprefix('note: '))}</li>" for n in notes)
    return (f"<h2>Label smoothing read from the logits</h2><p>{_esc(head)}</p>"
            + (f"<ul>{items}</ul>" if items else ""))


def _esc(s: Any) -> str:
    from lsfix.safetext import html

    return html(s)


@app.command("audit", help=HELP)
def audit_cmd(
    input: InputArg = "-",
    val: Annotated[str | None, typer.Option("--val", help="Labelled validation file to fit p "
                                                          "and T on.")] = None,
    fit_labels: Annotated[str | None, typer.Option(
        "--val-labels", "--fit-labels", metavar="FILE",
        help="Labels for the --val file (same forms as --labels, which is for the input "
             "only).")] = None,
    fit_fraction: Annotated[float, typer.Option(
        "--fit-fraction", help="Without --val: fraction of the input held out for fitting.")
    ] = 0.2,
    seed: SeedOpt = 0,
    convention: ConventionOpt = "lsfix",
    bootstrap: Annotated[int, typer.Option("--bootstrap", "-b",
                                           help="Replicates of the paired bootstrap.")] = 1000,
    level: LevelOpt = 0.95,
    select: Annotated[str, typer.Option(
        "--select", help="How p is chosen: test (leave MSP only for a significant gain on "
                         "the fit rows) or point (the lowest fit AURC).")] = "test",
    select_level: Annotated[float, typer.Option(
        "--select-level", help="Level of the p-selection test.")] = 0.95,
    coverage: CoverageOpt = None,
    risk: RiskOpt = None,
    report: Annotated[str | None, typer.Option(
        "--report", metavar="PATH",
        help="PATH.html: one self-contained page; PATH.md: Markdown with its figures beside "
             "it; a folder (PATH/ or no suffix): report.md, report.html and the figures.")
    ] = None,
    fmt: FormatOpt = None,
    by: ByOpt = None,
    output: OutputOpt = "-",
    with_files: WithOpt = None,
    ignore_index: IgnoreIndexOpt = None,
    scheduler: SchedulerOpt = "sync",
    scheduler_timeout: SchedulerTimeoutOpt = 10.0,
    bootstrap_unit: BootUnitOpt = "row",
    allow_incomplete: AllowIncompleteOpt = False,
    labels: LabelsOpt = None,
    input_kind: InputKindOpt = None,
    subsample: SubsampleOpt = None,
    memory_limit: MemoryLimitOpt = "2G",
    bins: Annotated[int, typer.Option(
        "--bins", help="Bins of ECE/MCE and the reliability diagram.")] = 15,
    quiet: QuietOpt = False,
) -> None:
    with handle_errors("audit", labels=labels, kind=input_kind, inputs=[input],
                       quiet=quiet) as run, \
            use_scheduler(scheduler, scheduler_timeout) as runner:
        from lsfix.errors import UsageError
        from lsfix.output.report import document, dumps
        from lsfix.streams import write_text_atomic

        check_convention(convention)
        check_boot(bootstrap, level)
        if bootstrap < 1:
            raise UsageError("--bootstrap must be >= 1 for audit (the verdict needs it)")
        check_boot_unit(bootstrap_unit, by)
        out_fmt = report_format(fmt)
        if report is not None:
            from lsfix.output.html import report_target

            report_target(report)  # an unknown suffix: exit 2 before any work
        covs = parse_floats(coverage, "--coverage", lo=0.0, hi=1.0)
        risks = parse_floats(risk, "--risk", lo=0.0, hi=1.0, lo_open=False)
        from lsfix.evaluation.audit import audit_planned
        from lsfix.evaluation.planner import parse_memory_limit

        limit = parse_memory_limit(memory_limit)
        defer = not labels and not with_files  # dense labels stay on disk until needed
        pred = load(input, run, runner=runner, with_files=with_files,
                    allow_incomplete=allow_incomplete, need_labels=True, need_logits=True,
                    ignore_index=ignore_index, defer_dense_labels=defer)
        if fit_labels is not None and val is None:
            raise UsageError("--val-labels gives the labels of the --val file; pass --val too")
        val_pred = (load(val, run, need_logits=True, ignore_index=ignore_index,
                         labels=fit_labels, defer_dense_labels=fit_labels is None)
                    if val else None)
        res, evaluated = audit_planned(pred, val=val_pred, fit_fraction=fit_fraction, seed=seed,
                                       convention=convention, n_boot=bootstrap, level=level,
                                       by=by, bootstrap_unit=bootstrap_unit,
                                       subsample=subsample, memory_limit=limit,
                                       fit_option="--val-labels", select=select,
                                       select_level=select_level, coverages=covs, risks=risks)
        from lsfix.output.calibration import audit_calibration, check_bins

        cal = audit_calibration(res, evaluated, n_bins=check_bins(bins), n_boot=bootstrap,
                                seed=seed, level=level)
        for line in res.fit_notes if not quiet else ():  # printed when the command succeeds
            run.warn_later(f"lsfix audit: warning: {line}")
        if out_fmt == "json":
            text = dumps(document("audit", {**audit_json(res), "calibration": cal.as_dict()}))
        elif out_fmt == "tsv":
            from lsfix.output.report import tsv

            if by is not None:
                from lsfix.evaluation.grouped import group_rows

                rows = group_rows(list(res.groups), percent=False)
            else:
                rows = result_rows(list(res.results), percent=False)
            text = tsv(rows, list(rows[0].keys()))
            if not quiet:  # the verdict is in the table and JSON outputs; here it is a note
                note(f"lsfix audit: verdict: {res.verdict}")
                for line in label_smoothing_lines(res):
                    note(f"lsfix audit: {line.strip()}")
        else:
            text = audit_text(res) + "\n" + cal.text()
        if report is not None:
            write_report(res, evaluated, report, cal)
        write_text_atomic(output, text)
        pred.close()
        if val_pred is not None:
            val_pred.close()

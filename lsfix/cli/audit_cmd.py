"""``lsfix audit``: one command that tells whether a classifier's MSP ranking is broken."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import (
    AllowIncompleteOpt,
    ConventionOpt,
    FormatOpt,
    IgnoreIndexOpt,
    InputArg,
    InputKindOpt,
    LabelsOpt,
    OutputOpt,
    SchedulerOpt,
    SchedulerTimeoutOpt,
    WithOpt,
    check_convention,
    load,
    report_format,
    use_scheduler,
)
from lsfix.cli.curve_cmd import (
    BootUnitOpt,
    ByOpt,
    LevelOpt,
    MemoryLimitOpt,
    SeedOpt,
    SubsampleOpt,
    check_boot,
    check_boot_unit,
    render_table,
    result_rows,
)

HELP = """Audit any classifier's logits: every confidence score, MaxLogit-pNorm with p fitted
on --val (or on a held-out --fit-fraction of the input, excluded from the numbers), the paired
bootstrap difference pNorm − MSP, a plain-language verdict, and the label smoothing the logit
gaps reveal (a ceiling at log(1 + K(1−α)/α) means LS with α; none means plain CE). --report
DIR writes report.md, report.html and the plots (RC curves, the label-smoothing mechanism,
the histogram of logit gaps).

Examples:

  lsfix audit test.h5 --val val.h5 --report audit/

  lsfix audit logits.npz --format json | jq .verdict
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
        "binary": bool(getattr(res, "binary", False)),
        **({"by": res.by, "groups": _group_json(res)} if getattr(res, "by", None) else {}),
        "verdict": res.verdict,
        "label_smoothing": label_smoothing_json(res),
    }


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
    return (f"{table}\nfit on {res.fit_source}: {choice}; temperature T = {res.temperature:.4g}\n"
            f"held-out AURC by p: {grid}; MSP: {fit.msp_aurc:.5g}\n{ls}\nverdict: {res.verdict}\n")


def write_report(res: Any, pred: Any, folder: str) -> list[str]:
    """report.md, report.html, rc.png, mechanism/gradient plots in ``folder``."""
    from lsfix.cli.curve_cmd import curve_lines, oracle_curve
    from lsfix.output.explain import explain_plots
    from lsfix.output.plot import rc_plot
    from lsfix.output.report import fmt, html_figure, markdown_figure, markdown_table
    from lsfix.streams import make_folders, write_text_atomic

    make_folders(folder)  # removed again if the command fails
    by = {r.score: r for r in res.results}
    rc = os.path.join(folder, "rc.png")
    rc_plot(curve_lines([by["msp"], by["pnorm"], by["msp_ts"]], show_file=False), rc,
            title=f"Risk-coverage: {res.file}", oracle=oracle_curve(by["msp"].correct))
    extra = explain_plots([pred], rc)
    rows = result_rows(list(res.results), percent=False)
    cols = ["score", "n", "accuracy", "aurc", "oracle_aurc", "eaurc", "naurc", "augrc", "auroc",
            "fpr_at_95tpr"]
    d = res.paired
    chosen = ("MSP kept (no p beat it)" if res.fit.fallback_msp or res.fit.p is None
              else f"p = {res.fit.p:g}")
    from lsfix.evaluation.inmemory import small_fit_warning
    from lsfix.safetext import md_code, md_text

    small = small_fit_warning(res.fit)

    def fitted_with(show: Any) -> str:  # names are data: escaped for the report's language
        text = (f"Fitted on {show(res.fit_source)}: pNorm {show(chosen)}; temperature T = "
                f"{res.temperature:.4g} (msp_ts); oracle AURC (ideal ranking) = "
                f"{fmt(by['msp'].metrics.oracle_aurc)}.")
        return text + (f" Warning: {show(small)}." if small else "")

    fitted = fitted_with(_esc)
    md = (
        f"# lsfix audit: {md_code(res.file)}\n\n**Verdict:** {md_text(res.verdict)}\n\n"
        f"Evaluated on {res.n_eval} samples (convention {md_code(res.convention)}). "
        f"{fitted_with(md_text)}\n\n"
        f"## Scores\n\n{markdown_table(rows, cols)}\n"
        f"## pNorm vs MSP (paired bootstrap, {d.n_boot} replicates"
        f"{', resampling images' if getattr(res, 'bootstrap_unit', 'row') == 'image' else ''})"
        "\n\n"
        f"AURC(pnorm) − AURC(msp) = {fmt(d.estimate)} "
        f"[{fmt(d.low)}, {fmt(d.high)}] at {d.level:.0%}; p = {fmt(d.p_value, 3)}\n\n"
        + _ls_markdown(res)
        + "## Plots\n\n" + markdown_figure(rc, "risk-coverage")
        + "".join(markdown_figure(p, Path(p).stem) for p in extra)
    )
    md_path = os.path.join(folder, "report.md")
    write_text_atomic(md_path, md)
    html_rows = "".join(
        "<tr>" + "".join(f"<td>{_esc(fmt(r[c]) if not isinstance(r[c], str) else r[c])}</td>"
                         for c in cols) + "</tr>" for r in rows)
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>lsfix audit</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}"
        "img{max-width:100%}figure{margin:1.5em 0}figcaption{color:#444;font-size:0.9em;"
        "margin-top:0.3em}</style></head><body>"
        f"<h1>lsfix audit: {_esc(res.file)}</h1><p><b>Verdict:</b> {_esc(res.verdict)}</p>"
        f"<p>Evaluated on {res.n_eval} samples (convention {_esc(res.convention)}). "
        f"{fitted}</p><table><tr>"
        + "".join(f"<th>{c}</th>" for c in cols) + f"</tr>{html_rows}</table>"
        + _ls_html(res)
        + "<h2>Plots</h2>" + html_figure(rc, "risk-coverage")
        + "".join(html_figure(p, Path(p).stem) for p in extra)
        + "</body></html>\n"
    )
    html_path = os.path.join(folder, "report.html")
    write_text_atomic(html_path, html)
    return [md_path, html_path, rc, *extra]


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
    report: Annotated[str | None, typer.Option("--report", help="Folder for report.md, "
                                                                "report.html and plots.")] = None,
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
) -> None:
    with handle_errors("audit", labels=labels, kind=input_kind,
                       inputs=[input]) as run, \
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
        from lsfix.evaluation.audit import audit_planned
        from lsfix.evaluation.bounded import parse_memory_limit

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
                                       fit_option="--val-labels")
        from lsfix.evaluation.inmemory import small_fit_warning

        small = small_fit_warning(res.fit)
        if small:  # printed when the command succeeds (a failure is one error line)
            run.warn_later(f"lsfix audit: warning: {small}")
        if out_fmt == "json":
            text = dumps(document("audit", audit_json(res)))
        elif out_fmt == "tsv":
            from lsfix.output.report import tsv

            if by is not None:
                from lsfix.evaluation.grouped import group_rows

                rows = group_rows(list(res.groups), percent=False)
            else:
                rows = result_rows(list(res.results), percent=False)
            text = tsv(rows, list(rows[0].keys()))
            note(f"lsfix audit: verdict: {res.verdict}")
            for line in label_smoothing_lines(res):
                note(f"lsfix audit: {line.strip()}")
        else:
            text = audit_text(res)
        if report is not None:
            write_report(res, evaluated, report)
        write_text_atomic(output, text)
        pred.close()
        if val_pred is not None:
            val_pred.close()

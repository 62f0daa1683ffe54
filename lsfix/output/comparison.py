"""How a :class:`lsfix.evaluation.compare.Comparison` reads: the ``compare`` table, its TSV and
JSON text (:func:`comparison_text`), and its files (:func:`write_figures`): the RC plot, the
label-smoothing mechanism plots and the ``--report`` Markdown / HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsfix.errors import UsageError

#: Points of each RC curve kept (on the bounded engine) for the plots.
PLOT_POINTS = 4096


def comparison_text(cmp: Any, fmt: str) -> str:
    """``-f json``, ``tsv`` or ``table`` text of a comparison."""
    from lsfix.output.report import dumps, tsv
    from lsfix.output.table import render_table, result_rows

    if fmt == "json":
        return dumps(cmp.to_dict())
    rows = result_rows(cmp.results, percent=cmp.percent)
    grouped = cmp.grouped
    if fmt == "tsv" and cmp.seeds is not None:
        return tsv(*_seed_tsv(cmp.seeds))
    if fmt == "tsv" and grouped is not None:
        g_rows = grouped.rows()
        # the paired difference inside each group as extra columns
        return tsv(*_with_differences(g_rows, grouped.paired, ("file", "score", "group")))
    if fmt == "tsv":  # one table: the paired difference to the baseline as extra columns
        return tsv(*_with_differences(rows, cmp.paired, ("file", "score"),
                                      baseline=[i == 0 for i in cmp.file_index]))
    text = render_table(rows, f"compare — baseline {cmp.baseline}, convention "
                              f"{cmp.convention}", show_file=True)
    if cmp.paired:
        text += _paired_text(cmp.paired)
    if cmp.seeds is not None:
        text += _seed_text(cmp.seeds, percent=cmp.percent)
    if grouped is not None:
        text += "\n" + render_table(grouped.rows(), f"by {grouped.by}", show_file=True)
        if grouped.paired:
            text += _paired_text([{**p, "score": f"{p['score']} [{p['group']}]"}
                                  for p in grouped.paired])
    return text


def _with_differences(rows: list[dict[str, Any]], paired: list[dict[str, Any]],
                      key: tuple[str, ...], baseline: list[bool] | None = None
                      ) -> tuple[list[dict[str, Any]], list[str]]:
    """``rows`` and their columns, with each row's paired difference as four more columns
    (none for the rows of the baseline: a file given twice differs from itself only there)."""
    cols = list(rows[0].keys())
    if paired:
        metric = paired[0]["metric"]
        extra = [f"d_{metric}", f"d_{metric}_low", f"d_{metric}_high", f"d_{metric}_p"]
        by_key = {tuple(p[k] for k in key): p for p in paired}
        for j, r in enumerate(rows):
            p = None if baseline and baseline[j] else by_key.get(tuple(r[k] for k in key))
            r.update(zip(extra, [p["difference"], p["low"], p["high"], p["p_value"]] if p
                         else [None] * 4, strict=True))
        cols += extra
    return rows, cols


def check_figure_options(plot: str | None, report: str | None, explain: bool) -> Any:
    """Refuse figure options that cannot work before anything is computed; return what
    ``report`` writes (:func:`lsfix.output.html.report_target`) or None."""
    target = None
    if report is not None:
        from lsfix.output.html import report_target

        target = report_target(report)  # .html, .md or a folder (lsfix.output.html)
    if explain and plot is None and report is None:
        raise UsageError("--explain draws plots: give --plot or --report too")
    return target


def write_figures(cmp: Any, *, plot: str | None, report: Any = None,
                  explain: bool = False) -> None:
    """Draw the RC plot at ``plot``, the mechanism plots beside it with ``explain``, and the
    report ``report`` (a :class:`lsfix.output.html.ReportTarget`): Markdown (its figures
    beside it), one HTML page, or a folder of both. ``explain`` needs the comparison's files
    open (``lsfix.compare(..., keep_open=True, keep_rows=True)``)."""
    from lsfix.streams import write_text_atomic

    figs = None
    report_plot = None
    if report is not None:
        from lsfix.output import html as H
        from lsfix.output.plot import FigurePath

        H.prepare(report)  # folders removed again if the command fails
        figs = H.Figures(report)
        # Markdown: PATH.png beside PATH.md (as before); a folder: rc.png in it
        report_plot = (FigurePath(str(Path(report.path).with_suffix(".png")), figs.sink)
                       if report.kind == "md" else figs.path("rc.png"))
    preds, results = cmp.predictions, cmp.results
    for where in (plot, report_plot):
        if where is None:
            continue
        from lsfix.output.plot import curve_lines, fallback_notes, oracle_curve, rc_plot

        rc_plot(curve_lines(results, show_file=True, percent=cmp.percent, curves=cmp.curves,
                            notes=fallback_notes(preds)), where,
                title="Risk-coverage comparison",
                oracle=cmp.oracle if cmp.oracle is not None
                else oracle_curve(results[0].correct),
                oracle_label=f"oracle of {results[0].file} (ideal ranking)")
    explain_path = None
    if explain:
        if plot is None and report_plot is None:
            raise UsageError("--explain draws plots: give --plot or --report too")
        from lsfix.output.explain import explain_plots

        if plot is not None:
            explain_path = explain_plots(preds, plot)
        if report_plot is not None:
            explain_path = explain_plots(preds, report_plot)
    plot_path = report_plot if report_plot is not None else plot
    if report is not None and report.html is not None:
        write_text_atomic(report.html, _html(cmp, figs, [plot_path, *(explain_path or [])]))
    if report is not None and report.md is not None:
        write_text_atomic(report.md, _markdown(cmp, plot_path, explain_path or []))
    if figs is not None:
        figs.write_files()


def _markdown(cmp: Any, plot_path: str | None, explain_paths: list[str]) -> str:
    from lsfix.output.report import markdown_figure, markdown_table
    from lsfix.output.table import result_rows
    from lsfix.safetext import md_code

    rows = result_rows(cmp.results, percent=cmp.percent)
    cols = ["file", "score", "n", "accuracy", "aurc", "oracle_aurc", "eaurc", "naurc",
            "augrc", "auroc", "fpr_at_95tpr"]
    md = [f"## lsfix compare (convention {md_code(cmp.convention)})\n\n",
          f"Baseline: {md_code(cmp.baseline)}\n\n", markdown_table(rows, cols)]
    if cmp.paired:
        md.append("\nPaired bootstrap (row − baseline):\n\n")
        md.append(markdown_table(cmp.paired, ["file", "score", "metric", "difference", "low",
                                              "high", "p_value"]))
    if cmp.rules:
        how = ("on the point estimates" if cmp.gate == "point" else
               f"on {cmp.level:.0%} bootstrap intervals")
        md.append("\n**Gate: " + {"failed": "FAILED", "inconclusive": "INCONCLUSIVE",
                                  "passed": "passed"}[cmp.outcome] + "**"
                  + f" ({len(cmp.failed)} of {len(cmp.checks)} check(s) failed, "
                  f"{len(cmp.inconclusive)} inconclusive; judged {how})\n\n")
        md.append(markdown_table(_check_rows(cmp.checks), ["rule", "row", "value", "verdict"],
                                 markdown=("rule", "value", "verdict")))
    if plot_path:
        md.append("\n" + markdown_figure(plot_path, "risk-coverage"))
    for extra in explain_paths:
        md.append("\n" + markdown_figure(extra, Path(extra).stem))
    return "".join(md)


def _check_rows(checks: list[Any]) -> list[dict[str, str]]:
    """Every rule on every row, as the Markdown and HTML reports list them."""
    return [{"rule": f"`{c.rule.text}`", "row": f"{c.file} · {c.score}", "value": c.line(),
             "verdict": {"fail": "**FAIL**", "pass": "pass",
                         "inconclusive": "inconclusive"}[c.verdict]} for c in checks]


def _html(cmp: Any, figs: Any, shown: list[Any]) -> str:
    """The self-contained HTML page of ``compare --report``: the verdict first (the gate,
    or the best AURC), the table with the best values marked, the paired bootstrap, every
    rule on every row, and the figures with their captions."""
    import os

    from lsfix.evaluation.compare import breach
    from lsfix.output import html as H
    from lsfix.output.plot import fallback_notes
    from lsfix.output.report import caption
    from lsfix.output.table import result_rows

    notes = fallback_notes(cmp.predictions)
    rows = [{**r, "score": f"{r['score']} = {notes[(r['file'], r['score'])]}"}
            if (r["file"], r["score"]) in notes else r
            for r in result_rows(cmp.results, percent=cmp.percent)]
    checks = _check_rows(cmp.checks)
    breaches = [breach(c) for c in cmp.failed]
    undecided = [breach(c) for c in cmp.inconclusive]
    best = min((r for r in rows if isinstance(r.get("aurc"), float)),
               key=lambda r: r["aurc"], default=None)
    if cmp.rules:
        verdict = (f"gate FAILED: {len(breaches)} of {len(checks)} check(s) failed; first: "
                   f"{breaches[0]}" if breaches else
                   f"gate INCONCLUSIVE: {len(undecided)} of {len(checks)} check(s) undecided; "
                   f"first: {undecided[0]}" if undecided else
                   f"gate passed: {len(checks)} check(s) of {len(cmp.rules)} rule(s)")
        kind = "bad" if breaches or undecided else "good"
    else:
        verdict = ("lowest AURC: " + f"{os.path.basename(best['file'])} · {best['score']} "
                   f"({H.num(best['aurc'])})" if best else "no AURC defined")
        kind = ""
    parts = [H.table([{**r, "file": os.path.basename(r["file"])} for r in rows],
                     [H.Column("accuracy", "accuracy", False), H.Column("aurc", "AURC"),
                      H.Column("eaurc", "E-AURC"), H.Column("naurc", "NAURC"),
                      H.Column("augrc", "AUGRC"), H.Column("auroc", "AUROC", False),
                      H.Column("fpr_at_95tpr", "FPR@95TPR"),
                      H.Column("oracle_aurc", "oracle AURC", None)],
                     label_keys=["file", "score"],
                     caption=f"Every file and score (convention {cmp.convention}); baseline: "
                             f"{os.path.basename(cmp.baseline)}. ★ marks the best value of "
                             "each column (AUROC and accuracy: highest; the rest: lowest).")]
    if cmp.paired:
        prow = [{"file": os.path.basename(p["file"]), "score": p["score"],
                 "metric": p["metric"], "difference": p["difference"], "difference_low":
                 p["low"], "difference_high": p["high"], "p_value": p["p_value"]}
                for p in cmp.paired]
        parts.append("<h2>Paired bootstrap (row − baseline)</h2>")
        parts.append(H.table(prow, [H.Column("difference", "difference"),
                                    H.Column("p_value", "p", None)],
                             label_keys=["file", "score", "metric"],
                             caption="The same samples resampled for both rows; an interval "
                                     "that excludes 0 is a difference beyond bootstrap "
                                     "noise."))
    if checks:
        parts.append("<h2>Gate</h2><table><thead><tr><th class='l'>rule</th><th class='l'>"
                     "row</th><th class='l'>value</th><th class='l'>verdict</th></tr></thead>"
                     "<tbody>")
        for c in checks:
            bad = "FAIL" in c["verdict"]
            word = "FAIL" if bad else ("inconclusive" if "inconclusive" in c["verdict"]
                                       else "pass")
            parts.append(
                f"<tr><td class='l'><code>{H.esc(c['rule'].strip('`'))}</code></td>"
                f"<td class='l'>{H.esc(c['row'])}</td><td class='l'>{H.esc(c['value'])}</td>"
                f"<td class='l {'fail' if bad else 'pass'}'>{word}</td>"
                "</tr>")
        parts.append("</tbody></table>")
    parts.append("<h2>Figures</h2>")
    for p in shown:
        if p is not None and str(p) in figs.sink:
            parts.append(H.figure(figs, p, Path(p).stem, caption(p)))
    return H.page("lsfix compare", verdict, kind, "".join(parts),
                  meta="Baseline: " + H.esc(cmp.baseline))


def _paired_text(paired: list[dict[str, Any]]) -> str:
    from lsfix.output.report import fmt

    lines = ["", "paired bootstrap (row − baseline):"]
    for p in paired:
        lines.append(f"  {p['file']} {p['score']}: Δ{p['metric']} = {fmt(p['difference'])} "
                     f"[{fmt(p['low'], 4)}, {fmt(p['high'], 4)}] ({p['level']:.0%}), "
                     f"p = {fmt(p['p_value'], 3)}")
    return "\n".join(lines) + "\n"


def _seed_text(seeds: Any, *, percent: bool) -> str:
    from lsfix.output.report import fmt

    summaries, paired = seeds
    f = 100.0 if percent else 1.0
    lines = ["", "across seeds (mean ± sd over each model's files):"]
    for s in summaries:
        k = f if s.metric != "auroc" or percent else 1.0
        lines.append(f"  {s.model} {s.score}: {s.metric} = {fmt(s.mean * k, 4)} ± "
                     f"{fmt(s.sd * k, 3)} (n = {s.n})")
    if paired:
        lines.append("paired across seeds (model − baseline, seed by seed; Student's t):")
    for p in paired:
        iv = ("" if p.low is None else
              f" [{fmt(p.low * f, 4)}, {fmt(p.high * f, 4)}] ({p.level:.0%})")
        tp = ("t undefined (the differences do not vary)" if p.t is None else
              f"t = {p.t:.3g}, p = {fmt(p.p_value, 3)}")
        lines.append(f"  {p.model} − {p.baseline} {p.score}: Δ{p.metric} = "
                     f"{fmt(p.mean * f, 4)} ± {fmt(p.sd * f, 3)} over {p.n_pairs} seed(s){iv}; "
                     f"{tp}")
    return "\n".join(lines) + "\n"


def _seed_tsv(seeds: Any) -> tuple[list[dict[str, Any]], list[str]]:
    summaries, paired = seeds
    by = {(p.model, p.score, p.metric): p for p in paired}
    rows = []
    for s in summaries:
        p = by.get((s.model, s.score, s.metric))
        rows.append({"model": s.model, "score": s.score, "metric": s.metric, "n": s.n,
                     "mean": s.mean, "sd": s.sd,
                     "d_mean": None if p is None else p.mean,
                     "d_sd": None if p is None else p.sd,
                     "t": None if p is None else p.t,
                     "p_value": None if p is None else p.p_value,
                     "d_low": None if p is None else p.low,
                     "d_high": None if p is None else p.high})
    return rows, list(rows[0].keys()) if rows else ["model"]


__all__ = ["PLOT_POINTS", "check_figure_options", "comparison_text", "write_figures"]

"""``lsfix compare``: files × scores side by side, paired bootstrap, and a CI gate."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import (
    AllowIncompleteOpt,
    ConventionOpt,
    FormatOpt,
    IgnoreIndexOpt,
    InputKindOpt,
    LabelsOpt,
    OutputOpt,
    load,
)
from lsfix.cli.options import PlotOpt
from lsfix.cli.curve_cmd import (
    BootOpt,
    BootUnitOpt,
    ByOpt,
    CoverageOpt,
    LevelOpt,
    MemoryLimitOpt,
    PercentOpt,
    RiskOpt,
    ScoreOpt,
    SeedOpt,
    SubsampleOpt,
    TmpdirOpt,
    check_boot_unit,
    check_report_options,
    curve_lines,
    render_table,
    result_json,
    result_rows,
    warn_undefined,
)
from lsfix.errors import GateFailed, UsageError

HELP = """Compare files × scores: one row each, the first file's rows being the baseline.
Paired bootstrap of each row's AURC difference to the baseline when the files hold the same
samples (same labels, same sample ids); --bootstrap-unit image resamples whole images of
dense files instead (the same images for both sides of a difference). --fail-if turns it into
a CI gate (exit 4).

Gate rules: METRIC OP VALUE, OP one of > >= < <=.
  'aurc>+0.002'  fails when a row's AURC exceeds its baseline's by more than 0.002
  'auroc<-1%'    fails when a row's AUROC falls more than 1 % (relative) below its baseline
  'aurc>0.08'    fails when any row's AURC is above 0.08 (absolute)
Metrics: aurc, oracle_aurc, eaurc, naurc, augrc, auroc, fpr_at_95tpr, accuracy,
risk@C and coverage@R (C/R given by --coverage/--risk).

Examples:

  lsfix compare ce.h5 ls.h5 --score msp --fail-if 'aurc>+0.002'

  lsfix compare ce.h5 ls.h5 -s msp -s pnorm --bootstrap 1000 --plot rc.png --report pr.md
"""

_RULE = re.compile(r"^\s*([a-z0-9_@.]+)\s*(>=|<=|>|<)\s*([+-]?)\s*([0-9.eE+-]+)\s*(%?)\s*$")
#: The VALUE of a rule: a plain unsigned decimal (``-1``, ``1e``, ``.`` and ``1.2.3`` are not)
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Rule:
    """A gate rule: ``metric op value``; ``relative_to_baseline`` when signed, ``percent``."""

    text: str
    metric: str
    op: str
    value: float
    delta: bool
    percent: bool

    def breached(self, value: float | None, baseline: float | None) -> tuple[bool, str]:
        if value is None:
            return False, "undefined"
        if self.delta:
            if baseline is None:
                return False, "baseline undefined"
            diff = value - baseline
            if self.percent:
                if baseline == 0:
                    return False, "baseline is 0 (relative change undefined)"
                diff = 100.0 * diff / abs(baseline)
            subject = diff
            unit = "%" if self.percent else ""
            shown = f"{value:.6g} vs baseline {baseline:.6g} (change {diff:+.6g}{unit})"
        else:
            subject = value
            shown = f"{value:.6g}"
        ok = {">": subject > self.value, ">=": subject >= self.value,
              "<": subject < self.value, "<=": subject <= self.value}[self.op]
        return ok, shown


def parse_rule(text: str) -> Rule:
    m = _RULE.match(text)
    if not m:
        raise UsageError(f"--fail-if {text!r}: expected METRIC OP VALUE, e.g. 'aurc>+0.002'")
    metric, op, sign, num, pct = m.groups()
    try:
        if not _NUMBER.fullmatch(num):  # float() would take '-1' after a sign: 'aurc>--1'
            raise ValueError
        val = float(num)
    except ValueError:
        raise UsageError(f"--fail-if {text!r}: {num!r} is not a number") from None
    if not math.isfinite(val):
        raise UsageError(f"--fail-if {text!r}: value must be finite")
    if pct and not sign:
        raise UsageError(f"--fail-if {text!r}: a % threshold is relative to the baseline; "
                         "give a sign, e.g. 'auroc<-1%'")
    val = -val if sign == "-" else val
    return Rule(text=text.strip(), metric=metric, op=op, value=val, delta=bool(sign),
                percent=bool(pct))


def _check_rule_metric(rule: Rule, rows: list[dict[str, Any]]) -> None:
    from lsfix.core import bootstrap_metrics

    known = set(bootstrap_metrics()) | {k for k in rows[0]
                                        if k.startswith(("risk@", "coverage@"))}
    if rule.metric not in known:
        raise UsageError(f"--fail-if {rule.text!r}: unknown metric {rule.metric!r}; "
                         f"choose from {', '.join(sorted(known))}")


@app.command("compare", help=HELP)
def compare(
    inputs: Annotated[list[str], typer.Argument(help="Files to compare; the first is the "
                                                     "baseline.")],
    score: ScoreOpt = None,
    convention: ConventionOpt = "lsfix",
    coverage: CoverageOpt = None,
    risk: RiskOpt = None,
    bootstrap: BootOpt = 0,
    seed: SeedOpt = 0,
    level: LevelOpt = 0.95,
    fail_if: Annotated[list[str] | None, typer.Option(
        "--fail-if", help="Gate rule (repeatable); exit 4 when one is breached.")] = None,
    plot: PlotOpt = None,
    report: Annotated[str | None, typer.Option(
        "--report", metavar="PATH",
        help="PATH.md: Markdown for a pull request (the plot beside it); PATH.html: one "
             "self-contained page; a folder (PATH/ or no suffix): both and the figures.")
    ] = None,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Also plot the label-smoothing mechanism (needs --plot or --report)."
    )] = False,
    fmt: FormatOpt = None,
    percent: PercentOpt = False,
    by: ByOpt = None,
    output: OutputOpt = "-",
    ignore_index: IgnoreIndexOpt = None,
    bootstrap_unit: BootUnitOpt = "row",
    allow_incomplete: AllowIncompleteOpt = False,
    labels: LabelsOpt = None,
    input_kind: InputKindOpt = None,
    subsample: SubsampleOpt = None,
    memory_limit: MemoryLimitOpt = "2G",
    tmpdir: TmpdirOpt = None,
) -> None:
    with handle_errors("compare", labels=labels, kind=input_kind,
                       inputs=inputs) as run:
        from lsfix.core import paired_bootstrap
        from lsfix.output.report import document, dumps, paired_dict, tsv
        from lsfix.streams import write_text_atomic

        out_fmt, covs, risks = check_report_options(convention, bootstrap, level, fmt, coverage,
                                                    risk, plot)
        check_boot_unit(bootstrap_unit, by)
        rules = [parse_rule(t) for t in (fail_if or [])]
        target = None
        if report is not None:
            from lsfix.output.html import report_target

            target = report_target(report)  # .html, .md or a folder (lsfix.output.html)
        if sum(1 for i in inputs if i == "-") > 1:
            raise UsageError("stdin (-) can be given only once")
        from lsfix.evaluation.bounded import parse_memory_limit
        from lsfix.evaluation.engines import evaluate_files

        limit = parse_memory_limit(memory_limit)
        preds = [load(p, run, allow_incomplete=allow_incomplete, ignore_index=ignore_index,
                      defer_dense_labels=not labels)  # dense labels stay on disk until needed
                 for p in inputs]
        from lsfix.cli.preflight import check_unfitted_scores

        for pred in preds:
            check_unfitted_scores(score, pred.scores, pred.name, "compare")
        ev = evaluate_files(preds, score, convention=convention, coverages=covs, risks=risks,
                            per_row=bool(bootstrap) or by is not None or explain,
                            subsample=subsample, seed=seed, memory_limit=limit,
                            curve_points=0 if plot is None and report is None else 4096,
                            folder=tmpdir, allow_drawn=by is None)
        results = ev.results
        warn_undefined("compare", results)
        base_name = preds[0].name
        rows = result_rows(results, percent=percent)  # display
        gate_rows = result_rows(results, percent=False)  # rules are always on fractions
        for rule in rules:
            _check_rule_metric(rule, gate_rows)
        baseline = {r["score"]: r for r in gate_rows if r["file"] == base_name}

        paired: list[dict[str, Any]] = []
        if bootstrap:
            clusters = ev.paired_clusters(bootstrap_unit)
            base_res = {r.score: r for r in results if r.file == base_name}
            for r in results:
                if r.file == base_name:
                    continue
                b = base_res.get(r.score)
                if b is None:
                    continue
                d = paired_bootstrap(b.confidence, b.correct, r.confidence, r.correct,
                                     n_boot=bootstrap, seed=seed, level=level,
                                     convention=convention, clusters=clusters)
                paired.append({"file": r.file, "score": r.score, "baseline": b.file,
                               "unit": bootstrap_unit, **paired_dict(d, percent=percent)})

        breaches: list[str] = []
        checks: list[dict[str, str]] = []  # every rule on every row, for the report
        for rule in rules:
            for r in gate_rows:
                if rule.delta and r["file"] == base_name:
                    continue
                base_row = baseline.get(r["score"])
                ok, shown = rule.breached(r.get(rule.metric),
                                          None if base_row is None else base_row.get(rule.metric))
                checks.append({"rule": f"`{rule.text}`", "row": f"{r['file']} · {r['score']}",
                               "value": f"{rule.metric} {shown}",
                               "verdict": "**FAIL**" if ok else "pass"})
                if ok:
                    breaches.append(f"rule '{rule.text}' failed for {r['file']} "
                                    f"{r['score']}: {rule.metric} {shown}")

        grouped = None
        if by is not None:
            grouped = compare_by(preds, score, by, convention=convention, coverages=covs,
                                 risks=risks, n_boot=bootstrap, seed=seed, level=level,
                                 percent=percent)
        if out_fmt == "json":
            body = {
                "baseline": base_name, "convention": convention, "percent": percent,
                "results": result_json(results, percent=percent), "paired": paired,
                "gate": {"rules": [r.text for r in rules], "failed": breaches,
                         "passed": not breaches},
            }
            if grouped is not None:
                body.update({"by": by, "groups": grouped[0], "paired_groups": grouped[2]})
            text = dumps(document("compare", body))
        elif out_fmt == "tsv" and grouped is not None:
            g_rows, g_paired = grouped[1], grouped[2]
            g_cols = list(g_rows[0].keys())
            if g_paired:  # the paired difference inside each group as extra columns
                metric = g_paired[0]["metric"]
                extra = [f"d_{metric}", f"d_{metric}_low", f"d_{metric}_high", f"d_{metric}_p"]
                by_key = {(p["file"], p["score"], p["group"]): p for p in g_paired}
                for r in g_rows:
                    p = by_key.get((r["file"], r["score"], r["group"]))
                    r.update(zip(extra, [p["difference"], p["low"], p["high"], p["p_value"]]
                                 if p else [None] * 4, strict=True))
                g_cols += extra
            text = tsv(g_rows, g_cols)
        elif out_fmt == "tsv":
            # one table: the paired difference to the baseline as extra columns
            by_row = {(p["file"], p["score"]): p for p in paired}
            cols = list(rows[0].keys())
            if paired:
                metric = paired[0]["metric"]
                extra = [f"d_{metric}", f"d_{metric}_low", f"d_{metric}_high", f"d_{metric}_p"]
                for r in rows:
                    p = by_row.get((r["file"], r["score"]))
                    vals = ([p["difference"], p["low"], p["high"], p["p_value"]] if p
                            else [None] * 4)
                    r.update(zip(extra, vals, strict=True))
                cols += extra
            text = tsv(rows, cols)
        else:
            text = render_table(rows, f"compare — baseline {base_name}, convention {convention}",
                                show_file=True)
            if paired:
                text += _paired_text(paired)
            if grouped is not None:
                text += "\n" + render_table(grouped[1], f"by {by}", show_file=True)
                if grouped[2]:
                    text += _paired_text([{**p, "score": f"{p['score']} [{p['group']}]"}
                                          for p in grouped[2]])
        plot_path = plot
        figs = None
        report_plot = None
        if target is not None:
            from lsfix.output import html as H
            from lsfix.output.plot import FigurePath

            H.prepare(target)  # folders removed again if the command fails
            figs = H.Figures(target)
            # Markdown: PATH.png beside PATH.md (as before); a folder: rc.png in it
            report_plot = (FigurePath(str(Path(target.path).with_suffix(".png")), figs.sink)
                           if target.kind == "md" else figs.path("rc.png"))
        for where in (plot_path, report_plot):
            if where is None:
                continue
            from lsfix.cli.curve_cmd import fallback_notes, oracle_curve
            from lsfix.output.plot import rc_plot

            rc_plot(curve_lines(results, show_file=True, percent=percent, curves=ev.curves,
                                notes=fallback_notes(preds)), where,
                    title="Risk-coverage comparison",
                    oracle=ev.oracle if ev.oracle is not None
                    else oracle_curve(results[0].correct),
                    oracle_label=f"oracle of {results[0].file} (ideal ranking)")
        explain_path = None
        if explain:
            if plot_path is None and report_plot is None:
                raise UsageError("--explain draws plots: give --plot or --report too")
            from lsfix.output.explain import explain_plots

            if plot_path is not None:
                explain_path = explain_plots(preds, plot_path)
            if report_plot is not None:
                explain_path = explain_plots(preds, report_plot)
        if report_plot is not None:
            plot_path = report_plot
        if target is not None and target.html is not None:
            from lsfix.cli.curve_cmd import fallback_notes

            notes = fallback_notes(preds)
            shown_rows = [{**r, "score": f"{r['score']} = {notes[(r['file'], r['score'])]}"}
                          if (r["file"], r["score"]) in notes else r for r in rows]
            write_text_atomic(target.html, _compare_html(
                base_name, convention, shown_rows, paired, rules, checks, breaches, figs,
                [plot_path, *(explain_path or [])]))
        if target is not None and target.md is not None:
            from lsfix.output.report import markdown_table

            cols = ["file", "score", "n", "accuracy", "aurc", "oracle_aurc", "eaurc", "naurc",
                    "augrc", "auroc", "fpr_at_95tpr"]
            from lsfix.safetext import md_code

            md = [f"## lsfix compare (convention {md_code(convention)})\n\n",
                  f"Baseline: {md_code(base_name)}\n\n", markdown_table(rows, cols)]
            if paired:
                md.append("\nPaired bootstrap (row − baseline):\n\n")
                md.append(markdown_table(paired, ["file", "score", "metric", "difference", "low",
                                                  "high", "p_value"]))
            if rules:
                md.append("\n**Gate: " + ("FAILED**" if breaches else "passed**")
                          + f" ({len(breaches)} of {len(checks)} check(s) failed)\n\n")
                md.append(markdown_table(checks, ["rule", "row", "value", "verdict"],
                                         markdown=("rule", "value", "verdict")))
            from lsfix.output.report import markdown_figure

            if plot_path:
                md.append("\n" + markdown_figure(plot_path, "risk-coverage"))
            for extra in explain_path or []:
                md.append("\n" + markdown_figure(extra, Path(extra).stem))
            write_text_atomic(target.md, "".join(md))
        if figs is not None:
            figs.write_files()
        write_text_atomic(output, text)
        for pred in preds:
            pred.close()
        if breaches:
            for b in breaches:
                note(f"lsfix compare: gate: {b}")
            raise GateFailed(f"{len(breaches)} gate rule breach(es); first: {breaches[0]}")
        if rules:
            note(f"lsfix compare: gate passed ({len(rules)} rule(s))")


def _compare_html(base_name: str, convention: str, rows: list[dict[str, Any]],
                  paired: list[dict[str, Any]], rules: list[Any], checks: list[dict[str, str]],
                  breaches: list[str], figs: Any, shown: list[str]) -> str:
    """The self-contained HTML page of ``compare --report``: the verdict first (the gate,
    or the best AURC), the table with the best values marked, the paired bootstrap, every
    rule on every row, and the figures with their captions."""
    import os

    from lsfix.output import html as H
    from lsfix.output.report import caption

    best = min((r for r in rows if isinstance(r.get("aurc"), float)),
               key=lambda r: r["aurc"], default=None)
    if rules:
        verdict = (f"gate FAILED: {len(breaches)} of {len(checks)} check(s) failed; first: "
                   f"{breaches[0]}" if breaches else
                   f"gate passed: {len(checks)} check(s) of {len(rules)} rule(s)")
        kind = "bad" if breaches else "good"
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
                     caption=f"Every file and score (convention {convention}); baseline: "
                             f"{os.path.basename(base_name)}. ★ marks the best value of each "
                             "column (AUROC and accuracy: highest; the rest: lowest).")]
    if paired:
        prow = [{"file": os.path.basename(p["file"]), "score": p["score"],
                 "metric": p["metric"], "difference": p["difference"], "difference_low":
                 p["low"], "difference_high": p["high"], "p_value": p["p_value"]}
                for p in paired]
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
            parts.append(
                f"<tr><td class='l'><code>{H.esc(c['rule'].strip('`'))}</code></td>"
                f"<td class='l'>{H.esc(c['row'])}</td><td class='l'>{H.esc(c['value'])}</td>"
                f"<td class='l {'fail' if bad else 'pass'}'>{'FAIL' if bad else 'pass'}</td>"
                "</tr>")
        parts.append("</tbody></table>")
    parts.append("<h2>Figures</h2>")
    for p in shown:
        if p is not None and str(p) in figs.sink:
            parts.append(H.figure(figs, p, Path(p).stem, caption(p)))
    return H.page("lsfix compare", verdict, kind, "".join(parts),
                  meta="Baseline: " + H.esc(base_name))


def _paired_text(paired: list[dict[str, Any]]) -> str:
    from lsfix.output.report import fmt

    lines = ["", "paired bootstrap (row − baseline):"]
    for p in paired:
        lines.append(f"  {p['file']} {p['score']}: Δ{p['metric']} = {fmt(p['difference'])} "
                     f"[{fmt(p['low'], 4)}, {fmt(p['high'], 4)}] ({p['level']:.0%}), "
                     f"p = {fmt(p['p_value'], 3)}")
    return "\n".join(lines) + "\n"


def compare_by(preds: list[Any], score: list[str] | None, by: str, *, convention: str,
               coverages: tuple[float, ...], risks: tuple[float, ...], n_boot: int, seed: int,
               level: float, percent: bool
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """``compare --by``: every file's metrics per group (JSON, flat rows) and, with
    ``--bootstrap``, the paired difference to the baseline inside each group — only where the
    groups hold the same rows in both files (not for ``--by predicted``: each model predicts
    its own classes)."""
    import numpy as np

    from lsfix.core import paired_bootstrap
    from lsfix.evaluation.grouped import ALL, evaluate_by, group_json, group_rows, grouping
    from lsfix.output.report import paired_dict

    results = []
    for pred in preds:
        results += evaluate_by(pred, score, by, convention=convention, coverages=coverages,
                               risks=risks, n_boot=n_boot, seed=seed, level=level)
    paired: list[dict[str, Any]] = []
    if n_boot and by != "predicted":
        base = preds[0]
        base_g = grouping(base, by)
        base_res = {(r.score, r.group): r for r in results if r.file == base.name}
        for pred in preds[1:]:
            g = grouping(pred, by)
            if g.names != base_g.names or not np.array_equal(g.index, base_g.index):
                note(f"lsfix compare: {pred.name}: its {by} groups differ from the baseline's; "
                     "no paired differences per group")
                continue
            for r in results:
                b = base_res.get((r.score, r.group))
                if r.file != pred.name or r.group == ALL or b is None:
                    continue
                d = paired_bootstrap(b.confidence, b.correct, r.confidence, r.correct,
                                     n_boot=n_boot, seed=seed, level=level,
                                     convention=convention)
                paired.append({"file": r.file, "score": r.score, "group": r.group,
                               "baseline": b.file, **paired_dict(d, percent=percent)})
    return (group_json(results, percent=percent), group_rows(results, percent=percent), paired)

"""``lsfix compare``: files × scores side by side, paired bootstrap, and a CI gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import check_boot_unit, check_report_options, load, require_fit_labels
from lsfix.cli.options import (
    AllowIncompleteOpt,
    BootOpt,
    BootUnitOpt,
    ByOpt,
    ConventionOpt,
    CoverageOpt,
    FormatOpt,
    IgnoreIndexOpt,
    InputKindOpt,
    LabelsOpt,
    LevelOpt,
    MemoryLimitOpt,
    OutputOpt,
    PercentOpt,
    PlotOpt,
    RiskOpt,
    ScoreOpt,
    SeedOpt,
    SubsampleOpt,
    TmpdirOpt,
)
from lsfix.errors import GateFailed, GateInconclusive, InputError, UsageError
from lsfix.evaluation.gate import Rule, parse_rule
from lsfix.output.table import render_table, result_json, result_rows

HELP = """Compare files × scores: one row each, the first file's rows being the baseline.
Paired bootstrap of each row's AURC difference to the baseline when the files hold the same
samples (the same sample ids in any order, aligned by id; or, without ids, the same labels in
the same order); --bootstrap-unit image resamples whole images of dense files instead.
Every score lsfix can compute is computed from the logits; a stored copy is checked against
them (a mismatch is an error), and stored scores are used as stored only without logits.

pNorm in one command: -s pnorm tunes p on --fit VAL (one per input, in input order) or on
--fit-fraction F of each input (--seed), keeping MSP unless a p is significantly better
(--select test); -s msp_ts fits T the same way. A file that carries a tuned /scores/pnorm
(sample_data/ does) needs no fit data: its recorded p is recomputed from its logits.

--fail-if turns it into a CI gate. Each rule is judged on the bootstrap interval (--level,
95 %) of its subject, paired with the baseline where the rows pair: exit 4 when the whole
interval breaches the rule, 5 (inconclusive, with the sample size that would decide) when
part of it does, 0 when none does. --gate point judges the estimates alone.

Gate rules: METRIC OP VALUE, OP one of > >= < <=.
  'aurc>+0.002'  fails when a row's AURC exceeds its baseline's by more than 0.002
  'auroc<-1%'    fails when a row's AUROC falls more than 1 % (relative) below its baseline
  'aurc>0.08'    fails when any row's AURC is above 0.08 (absolute)
Metrics: aurc, oracle_aurc, eaurc, naurc, augrc, auroc, fpr_at_95tpr, accuracy,
risk@C and coverage@R (C/R given by --coverage/--risk).

Seeds: --model NAME=FILES (repeatable; FILES comma-separated or a glob) compares models
trained over several seeds: mean ± sd over each model's files and Student's paired t-test
across seeds (the i-th file of a model against the i-th of the first model).

Examples:

  lsfix compare ce.h5 ls.h5 --score msp --fail-if 'aurc>+0.002'

  lsfix compare ce.h5 ls.h5 -s msp -s pnorm --fit-fraction 0.2 -b 200

  lsfix compare --model 'CE=ce*.h5' --model 'LS=ls*.h5' -s msp
"""

def _check_rule_metric(rule: Rule, rows: list[dict[str, Any]]) -> None:
    from lsfix.core import bootstrap_metrics

    known = set(bootstrap_metrics()) | {k for k in rows[0]
                                        if k.startswith(("risk@", "coverage@"))}
    if rule.metric not in known:
        raise UsageError(f"--fail-if {rule.text!r}: unknown metric {rule.metric!r}; "
                         f"choose from {', '.join(sorted(known))}")


GateOpt = Annotated[str, typer.Option(
    "--gate", help="How --fail-if rules are judged: interval (the bootstrap interval of the "
                   "rule's subject: fail when all of it breaches, pass when none does, "
                   "otherwise inconclusive, exit 5) or point (the estimate alone).")]


@app.command("compare", help=HELP)
def compare(
    inputs: Annotated[list[str] | None, typer.Argument(
        help="Files to compare; the first is the baseline.")] = None,
    score: ScoreOpt = None,
    convention: ConventionOpt = "lsfix",
    coverage: CoverageOpt = None,
    risk: RiskOpt = None,
    bootstrap: BootOpt = 0,
    seed: SeedOpt = 0,
    level: LevelOpt = 0.95,
    fail_if: Annotated[list[str] | None, typer.Option(
        "--fail-if", help="Gate rule (repeatable); exit 4 when one fails, 5 when one is "
                          "inconclusive.")] = None,
    gate: GateOpt = "interval",
    fit: Annotated[list[str] | None, typer.Option(
        "--fit", "--val", help="Labelled file to tune pNorm's p (and msp_ts's T) on: one per "
                               "input, in input order.")] = None,
    fit_labels: Annotated[list[str] | None, typer.Option(
        "--fit-labels", "--val-labels", metavar="FILE",
        help="Labels of each --fit file (one per --fit, in order).")] = None,
    fit_fraction: Annotated[float | None, typer.Option(
        "--fit-fraction", help="Tune p (and T) on this random fraction of each input's rows "
                               "(--seed), left out of every number.")] = None,
    select: Annotated[str, typer.Option(
        "--select", help="How p is chosen on fit data: test (leave MSP only for a "
                         "significant gain) or point (the lowest fit AURC).")] = "test",
    select_level: Annotated[float, typer.Option(
        "--select-level", help="Level of the p-selection test.")] = 0.95,
    model: Annotated[list[str] | None, typer.Option(
        "--model", metavar="NAME=FILES",
        help="A model as a group of files, one per seed: comma-separated paths or globs, "
             "as in CE=ce_s0.h5,ce_s1.h5 or \"CE=ce_s*.h5\" (quoted); repeatable, the first "
             "is the baseline. Adds mean ± sd across seeds and a paired t-test across "
             "seeds.")] = None,
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
                       inputs=inputs or ()) as run:

        from lsfix.core import paired_bootstrap
        from lsfix.evaluation.comparison import pair_rows
        from lsfix.evaluation.gate import GATE_MODES
        from lsfix.output.report import document, dumps, paired_dict, tsv
        from lsfix.streams import write_text_atomic

        out_fmt, covs, risks = check_report_options(convention, bootstrap, level, fmt, coverage,
                                                    risk, plot)
        check_boot_unit(bootstrap_unit, by)
        rules = [parse_rule(t) for t in (fail_if or [])]
        if gate not in GATE_MODES:
            raise UsageError(f"--gate must be one of {', '.join(GATE_MODES)}, got {gate!r}")
        groups: list[tuple[str, list[str]]] = []
        if model:
            from lsfix.evaluation.seeds import parse_model

            if inputs:
                raise UsageError("give the files either as arguments or with --model, not both")
            groups = [parse_model(m) for m in model]
            if len({g for g, _ in groups}) != len(groups):
                raise UsageError("--model: two models share a name")
            inputs = [p for _, ps in groups for p in ps]
            run.inputs = tuple(inputs)  # --labels/--input apply to the models' files
        if not inputs:
            raise UsageError("no files to compare: give FILES or --model NAME=FILES")
        target = None
        if report is not None:
            from lsfix.output.html import report_target

            target = report_target(report)  # .html, .md or a folder (lsfix.output.html)
        if sum(1 for i in inputs if i == "-") > 1:
            raise UsageError("stdin (-) can be given only once")
        if fit and fit_fraction is not None:
            raise UsageError("give --fit or --fit-fraction, not both")
        if fit and len(fit) != len(inputs):
            raise UsageError(f"--fit: give one fit file per input, in input order ({len(inputs)} "
                             f"input(s), {len(fit)} --fit)")
        if fit_labels and (not fit or len(fit_labels) != len(fit)):
            raise UsageError("--fit-labels: give one per --fit file, in the same order")
        if fit_fraction is not None and not 0 < fit_fraction < 1:
            raise UsageError(f"--fit-fraction must be in (0, 1), got {fit_fraction}")
        if (fit or fit_fraction is not None) and subsample is not None:
            raise UsageError("--fit/--fit-fraction do not go with --subsample-pixels; tune p "
                             "with 'lsfix normalise' first")
        from lsfix.evaluation.comparison import compare_scores
        from lsfix.evaluation.engines import evaluate_files
        from lsfix.evaluation.planner import parse_memory_limit

        limit = parse_memory_limit(memory_limit)
        preds = [load(p, run, allow_incomplete=allow_incomplete, ignore_index=ignore_index,
                      defer_dense_labels=not labels)  # dense labels stay on disk until needed
                 for p in inputs]
        if not fit and fit_fraction is None:  # msp_ts without :T and no fit data: say how
            from lsfix.evaluation.planner import check_unfitted_scores

            for pred in preds:
                check_unfitted_scores(score, pred.scores, pred.name, "compare")
        fits = _fits(preds, run, score, fit, fit_labels, fit_fraction, seed=seed,
                     select=select, select_level=select_level, ignore_index=ignore_index)
        hint = _tune_command(inputs, score, groups)
        fit_of = {id(p): f for p, f in zip(preds, fits, strict=True)}

        def scores_of(pred: Any) -> Any:  # scores from the logits, stored ones checked
            return compare_scores(pred, score, fit_of.get(id(pred)), command=hint)

        # the gate, the bootstrap and the fit split need every row's scores (no bounded engine)
        ev = evaluate_files(preds, score, convention=convention, coverages=covs, risks=risks,
                            per_row=(bool(bootstrap) or by is not None or explain or bool(rules)
                                     or any(f is not None for f in fits)),
                            subsample=subsample, seed=seed, memory_limit=limit,
                            curve_points=0 if plot is None and report is None else 4096,
                            folder=tmpdir, allow_drawn=by is None, scores_of=scores_of,
                            n_boot=bootstrap, level=level)
        results = ev.results
        from lsfix.evaluation.inmemory import eval_mask

        masks = [eval_mask(p) if e == "memory" else None
                 for p, e in zip(preds, ev.engines, strict=True)]
        from lsfix.cli.app import warn
        from lsfix.output.table import undefined_warnings

        for line in undefined_warnings(results):
            warn("compare", line)
        base_name = preds[0].name
        rows = result_rows(results, percent=percent)  # display
        gate_rows = result_rows(results, percent=False)  # rules are always on fractions
        for rule in rules:
            _check_rule_metric(rule, gate_rows)
        file_of = {id(r): i for i, pred in enumerate(preds) for r in results
                   if r.file == pred.name}
        pairings = [None] + [pair_rows(preds[0], masks[0], p, masks[i])
                             for i, p in enumerate(preds) if i]
        if any(e != "memory" for e in ev.engines):  # drawn pixels pair as drawn, in order
            pairings = [None] + [_drawn_pairing(ev, i) for i in range(1, len(preds))]
        for i, pr in enumerate(pairings):
            if pr is not None and pr.by_id:
                note(f"lsfix compare: {preds[i].name}: rows aligned to {base_name} by sample id")

        def aligned(r: Any) -> tuple[Any, Any]:
            pr = pairings[file_of[id(r)]]
            if pr is None or pr.order is None:
                return r.confidence, r.correct
            return r.confidence[pr.order], r.correct[pr.order]

        paired: list[dict[str, Any]] = []
        if bootstrap:
            if any(e != "memory" for e in ev.engines):  # drawn pixels: paired as drawn
                clusters = ev.paired_clusters(bootstrap_unit)
            else:
                for i, pred in enumerate(preds[1:], start=1):
                    pr = pairings[i]
                    assert pr is not None
                    if not pr.paired:
                        raise InputError(f"cannot pair {preds[0].name} and {pred.name} for the "
                                         f"bootstrap: {pr.why}")
                from lsfix.evaluation.engines import paired_images

                clusters = paired_images(preds, bootstrap_unit)
            base_res = {r.score: r for r in results if r.file == base_name}
            for r in results:
                if r.file == base_name:
                    continue
                b = base_res.get(r.score)
                if b is None:
                    continue
                rc, ry = aligned(r)
                d = paired_bootstrap(b.confidence, b.correct, rc, ry,
                                     n_boot=bootstrap, seed=seed, level=level,
                                     convention=convention, clusters=clusters)
                paired.append({"file": r.file, "score": r.score, "baseline": b.file,
                               "unit": bootstrap_unit, **paired_dict(d, percent=percent)})

        checks = _gate_checks(rules, results, gate_rows, base_name, pairings, file_of,
                              aligned, mode=gate, n_boot=bootstrap or GATE_BOOT, seed=seed,
                              level=level, convention=convention, coverages=covs, risks=risks)
        from lsfix.evaluation.gate import FAIL, INCONCLUSIVE, outcome

        fails = [c for c in checks if c.verdict == FAIL]
        undecided = [c for c in checks if c.verdict == INCONCLUSIVE]
        result = outcome(checks) if rules else "passed"
        seeds = None
        if groups:
            from lsfix.evaluation.seeds import summarise

            idx = 0
            per_model = []
            for name, paths in groups:
                names = {preds[j].name for j in range(idx, idx + len(paths))}
                per_model.append((name, [r for r in gate_rows if r["file"] in names]))
                idx += len(paths)
            seeds = summarise(per_model, level=level)

        grouped = None
        if by is not None:
            grouped = compare_by(preds, score, by, convention=convention, coverages=covs,
                                 risks=risks, n_boot=bootstrap, seed=seed, level=level,
                                 percent=percent)
        if out_fmt == "json":
            body = {
                "baseline": base_name, "convention": convention, "percent": percent,
                "results": result_json(results, percent=percent), "paired": paired,
                "fits": [{"file": p.name, **f.to_dict()} for p, f in zip(preds, fits,
                                                                      strict=True) if f],
                "gate": {"rules": [r.text for r in rules], "mode": gate, "level": level,
                         "n_boot": (bootstrap or GATE_BOOT) if gate == "interval" else None,
                         "outcome": result, "failed": [_breach(c) for c in fails],
                         "inconclusive": [_breach(c) for c in undecided],
                         "passed": result == "passed",
                         "checks": [c.to_dict() for c in checks]},
            }
            if groups and seeds is not None:
                body["models"] = [{"name": g, "files": ps} for g, ps in groups]
                body["seeds"] = [vars(s) | {"values": list(s.values)} for s in seeds[0]]
                body["seeds_paired"] = [vars(s) for s in seeds[1]]
            if grouped is not None:
                body.update({"by": by, "groups": grouped[0], "paired_groups": grouped[2]})
            text = dumps(document("compare", body))
        elif out_fmt == "tsv" and seeds is not None:
            text = tsv(*_seed_tsv(seeds))
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
            if seeds is not None:
                text += _seed_text(seeds, percent=percent)
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
            from lsfix.output.plot import curve_lines, fallback_notes, oracle_curve, rc_plot

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
            from lsfix.output.plot import fallback_notes

            notes = fallback_notes(preds)
            shown_rows = [{**r, "score": f"{r['score']} = {notes[(r['file'], r['score'])]}"}
                          if (r["file"], r["score"]) in notes else r for r in rows]
            write_text_atomic(target.html, _compare_html(
                base_name, convention, shown_rows, paired, rules, _check_rows(checks),
                [_breach(c) for c in fails], figs, [plot_path, *(explain_path or [])],
                undecided=[_breach(c) for c in undecided]))
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
                how = ("on the point estimates" if gate == "point" else
                       f"on {level:.0%} bootstrap intervals")
                md.append("\n**Gate: " + {"failed": "FAILED", "inconclusive": "INCONCLUSIVE",
                                          "passed": "passed"}[result] + "**"
                          + f" ({len(fails)} of {len(checks)} check(s) failed, "
                          f"{len(undecided)} inconclusive; judged {how})\n\n")
                md.append(markdown_table(_check_rows(checks), ["rule", "row", "value", "verdict"],
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
        if fails:
            for c in fails:
                note(f"lsfix compare: gate: {_breach(c)}")
            raise GateFailed(f"{len(fails)} gate rule breach(es); first: {_breach(fails[0])}")
        if undecided:
            for c in undecided:
                note(f"lsfix compare: gate: {_breach(c)}")
            raise GateInconclusive(f"{len(undecided)} gate check(s) inconclusive, none failed; "
                                   f"first: {_breach(undecided[0])}")
        if rules:
            note(f"lsfix compare: gate passed ({len(rules)} rule(s))")


#: Bootstrap replicates of the interval gate when --bootstrap does not say.
GATE_BOOT = 1000


def _check_rows(checks: list[Any]) -> list[dict[str, str]]:
    """Every rule on every row, as the Markdown and HTML reports list them."""
    return [{"rule": f"`{c.rule.text}`", "row": f"{c.file} · {c.score}", "value": c.line(),
             "verdict": {"fail": "**FAIL**", "pass": "pass",
                         "inconclusive": "inconclusive"}[c.verdict]} for c in checks]


def _breach(c: Any) -> str:
    word = {"fail": "failed", "inconclusive": "inconclusive", "pass": "passed"}[c.verdict]
    return f"rule '{c.rule.text}' {word} for {c.file} {c.score}: {c.line()}"


def _fits(preds: list[Any], run: Any, score: list[str] | None, fit: list[str] | None,
          fit_labels: list[str] | None, fit_fraction: float | None, *, seed: int, select: str,
          select_level: float, ignore_index: int | None) -> list[Any]:
    """One :class:`lsfix.evaluation.fitpolicy.FitResult` per input when fit data are given and
    a score needs them (``pnorm``, ``msp_ts``, or no ``-s``), else None each."""
    from lsfix.evaluation.comparison import needs_fit
    from lsfix.evaluation.fitpolicy import choose_fit

    if not fit and fit_fraction is None:
        return [None] * len(preds)
    if score and not needs_fit(score):
        note("lsfix compare: no score needs fit data (pnorm, msp_ts); --fit/--fit-fraction "
             "not used")
        return [None] * len(preds)
    out = []
    for i, pred in enumerate(preds):
        if pred.logits is None:
            raise UsageError(f"{pred.name} has no logits: p (and T) are tuned on logits; "
                             "compare it without --fit/--fit-fraction")
        val = None
        if fit:
            val = load(fit[i], run, need_logits=True, ignore_index=ignore_index,
                       labels=fit_labels[i] if fit_labels else None)
            require_fit_labels(val, "--fit-labels")
        res = choose_fit(pred, fit=val, fit_fraction=fit_fraction, seed=seed,
                         temperature=bool(score and "msp_ts" in score) or not score,
                         select=select, level=select_level)
        if val is not None:
            val.close()
        if res.fit_mask is not None:
            pred.fit_mask = res.fit_mask
        note(f"lsfix compare: {pred.name}: pnorm: {res.describe()}")
        for line in res.notes:  # printed when the command succeeds
            run.warn_later(f"lsfix compare: {pred.name}: warning: {line}")
        out.append(res)
    return out


def _tune_command(inputs: list[str], score: list[str] | None,
                  groups: list[tuple[str, list[str]]]) -> str:
    import shlex

    files = ([f"--model {shlex.quote(g + '=' + ','.join(ps))}" for g, ps in groups] if groups
             else [shlex.quote(i) for i in inputs])
    scores = [f"-s {shlex.quote(s)}" for s in (score or [])]
    return " ".join(["lsfix compare", *files, *scores, "--fit-fraction 0.2"])


def _drawn_pairing(ev: Any, i: int) -> Any:
    """Pairing of file ``i`` with the first when their pixels were drawn (engine ``drawn``):
    row by row when :meth:`Evaluated.paired_clusters` accepts the two, else unpaired."""
    import numpy as np

    from lsfix.evaluation.comparison import Pairing
    from lsfix.evaluation.engines import Evaluated

    two = Evaluated(preds=[ev.preds[0], ev.preds[i]], engines=[ev.engines[0], ev.engines[i]],
                    drawn=[ev.drawn[0], ev.drawn[i]])
    try:
        two.paired_clusters("row")
    except InputError as exc:
        return Pairing(None, str(exc))
    k = next(r.correct.shape[0] for r in ev.results if r.file == ev.preds[i].name)
    return Pairing(np.arange(k))


def _gate_checks(rules: list[Rule], results: list[Any], gate_rows: list[dict[str, Any]],
                 base_name: str, pairings: list[Any], file_of: dict[int, int], aligned: Any,
                 *, mode: str, n_boot: int, seed: int, level: float, convention: str,
                 coverages: tuple[float, ...], risks: tuple[float, ...]) -> list[Any]:
    """Every rule on every row (lsfix.evaluation.gate): the point estimate, or the bootstrap
    interval (paired with the baseline where the rows pair, independent draws otherwise)."""
    from lsfix.core.replicates import metric_replicates
    from lsfix.evaluation.gate import check_rule

    if not rules:
        return []
    from lsfix.core import bootstrap_metrics

    need = tuple(m for m in bootstrap_metrics() if any(r.metric == m for r in rules))
    covs = tuple(c for c in coverages if any(r.metric == f"risk@{c:g}" for r in rules))
    rsks = tuple(c for c in risks if any(r.metric == f"coverage@{c:g}" for r in rules))
    cache: dict[tuple[int, str], dict[str, Any]] = {}

    def reps(r: Any) -> dict[str, Any]:
        i = file_of[id(r)]
        key = (i, r.score)
        if key not in cache:
            pr = pairings[i]
            together = i == 0 or (pr is not None and pr.paired)
            c, y = aligned(r) if together else (r.confidence, r.correct)
            cache[key] = metric_replicates(c, y, n_boot=n_boot,
                                           seed=seed if together else seed + i,
                                           convention=convention, metrics=need,
                                           coverages=covs, risks=rsks)
        return cache[key]

    base_res = {r.score: (r, row) for r, row in zip(results, gate_rows, strict=True)
                if r.file == base_name}
    checks = []
    for rule in rules:
        for r, row in zip(results, gate_rows, strict=True):
            is_base = r.file == base_name
            if rule.delta and is_base:
                continue
            b = base_res.get(r.score)
            base_value = None if b is None else b[1].get(rule.metric)
            kw: dict[str, Any] = {}
            if mode == "interval" and r.correct.shape[0]:
                kw["rep"] = reps(r)[rule.metric]
                if rule.delta and b is not None:
                    kw["base_rep"] = reps(b[0])[rule.metric]
                pr = pairings[file_of[id(r)]]
                kw["paired"] = pr is not None and pr.paired
            checks.append(check_rule(rule, file=r.file, score=r.score,
                                     value=row.get(rule.metric), baseline=base_value,
                                     mode=mode, n=int(r.correct.shape[0]), level=level, **kw))
    return checks


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


def _compare_html(base_name: str, convention: str, rows: list[dict[str, Any]],
                  paired: list[dict[str, Any]], rules: list[Any], checks: list[dict[str, str]],
                  breaches: list[str], figs: Any, shown: list[str], *,
                  undecided: list[str] | None = None) -> str:
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
                   f"gate INCONCLUSIVE: {len(undecided)} of {len(checks)} check(s) undecided; "
                   f"first: {undecided[0]}" if undecided else
                   f"gate passed: {len(checks)} check(s) of {len(rules)} rule(s)")
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

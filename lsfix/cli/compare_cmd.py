"""``lsfix compare``: files × scores side by side, paired bootstrap, and a CI gate."""

from __future__ import annotations

from typing import Annotated

import typer

from lsfix.cli.app import app, handle_errors, note, warn
from lsfix.cli.common import check_report_options
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
        import lsfix
        from lsfix.output.comparison import (
            PLOT_POINTS,
            check_figure_options,
            comparison_text,
            write_figures,
        )
        from lsfix.output.table import undefined_warnings
        from lsfix.streams import write_text_atomic

        out_fmt, covs, risks = check_report_options(convention, bootstrap, level, fmt, coverage,
                                                    risk, plot)
        target = check_figure_options(plot, report, explain)
        cmp = lsfix.compare(
            inputs, score, models=model, labels=labels, input=input_kind,
            ignore_index=ignore_index, allow_incomplete=allow_incomplete, convention=convention,
            coverages=covs, risks=risks, bootstrap=bootstrap, seed=seed, level=level,
            bootstrap_unit=bootstrap_unit, by=by, subsample_pixels=subsample, percent=percent,
            fail_if=fail_if or (), gate=gate, fit=fit, fit_labels=fit_labels,
            fit_fraction=fit_fraction, select=select, select_level=select_level,
            memory_limit=memory_limit, keep_rows=explain, keep_open=True, tmpdir=tmpdir,
            curve_points=0 if plot is None and report is None else PLOT_POINTS)
        for line in cmp.notes:
            note(line)
        for line in cmp.warnings:  # printed when the command succeeds
            run.warn_later(line)
        for line in undefined_warnings(cmp.results):
            warn("compare", line)
        text = comparison_text(cmp, out_fmt)
        write_figures(cmp, plot=plot, report=target, explain=explain)
        write_text_atomic(output, text)
        cmp.close()
        for line in cmp.gate_notes():
            note(line)
        error = cmp.gate_error()  # exit 4: a rule failed; 5: one is inconclusive
        if error is not None:
            raise error

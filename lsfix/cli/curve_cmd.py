"""``lsfix curve``: every selective-classification metric of one file's scores."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lsfix.cli.app import app, handle_errors, warn
from lsfix.cli.common import check_boot_unit, check_report_options, load, use_scheduler
from lsfix.cli.options import (
    ADVANCED,
    AllowIncompleteOpt,
    BootOpt,
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
    PercentOpt,
    PlotOpt,
    RiskOpt,
    SchedulerOpt,
    SchedulerTimeoutOpt,
    ScoreOpt,
    SeedOpt,
    SubsampleOpt,
    TmpdirOpt,
    WithOpt,
)
from lsfix.errors import UsageError

HELP = """Risk-coverage metrics of each score in a file: AURC (in the named convention),
oracle AURC, E-AURC, NAURC, AUGRC, AUROC, FPR@95TPR, risk@coverage, coverage@risk, with
optional bootstrap intervals and an RC plot. Ties are averaged over their orderings.

Input: an lsfix logits file (every stored score, or msp when none is stored), a scores file
(from score/normalise), or a table with 'confidence' and 'correct' columns. --with joins
scores files to the logits they came from. Rows used to fit p and ignored pixels are excluded.

Examples:

  lsfix curve model.h5 --score msp --score pnorm --coverage 0.8 --plot rc.png

  lsfix score model.h5 -m energy | lsfix normalise model.h5 --with - | lsfix curve - -f json
"""

@app.command("curve", help=HELP)
def curve(
    input: InputArg = "-",
    score: ScoreOpt = None,
    convention: ConventionOpt = "lsfix",
    coverage: CoverageOpt = None,
    risk: RiskOpt = None,
    bootstrap: BootOpt = 0,
    seed: SeedOpt = 0,
    level: LevelOpt = 0.95,
    plot: PlotOpt = None,
    fmt: FormatOpt = None,
    percent: PercentOpt = False,
    by: ByOpt = None,
    output: OutputOpt = "-",
    with_files: WithOpt = None,
    ignore_index: IgnoreIndexOpt = None,
    scheduler: SchedulerOpt = "sync",
    scheduler_timeout: SchedulerTimeoutOpt = 10.0,
    subsample: SubsampleOpt = None,
    rank_map: Annotated[str | None, typer.Option(
        "--rank-map", metavar="PATH", rich_help_panel=ADVANCED,
        help="Dense files: plot each image's per-pixel uncertainty rank under the first "
             "score (.png/.svg/.pdf; up to 12 images).")] = None,
    bootstrap_unit: BootUnitOpt = "row",
    allow_incomplete: AllowIncompleteOpt = False,
    memory_limit: MemoryLimitOpt = "2G",
    labels: LabelsOpt = None,
    input_kind: InputKindOpt = None,
    tmpdir: TmpdirOpt = None,
    calibration: Annotated[bool, typer.Option(
        "--calibration", help="Also report calibration: accuracy, ECE (equal-width, as "
                              "torchmetrics), equal-mass ECE, MCE, NLL, Brier (table/json).")
    ] = False,
    bins: Annotated[int, typer.Option(
        "--bins", help="Bins of ECE/MCE and the reliability diagram.")] = 15,
    calibration_fit: Annotated[str | None, typer.Option(
        "--calibration-fit", metavar="VAL",
        help="Fit a temperature on this labelled file and report calibration after it too.")
    ] = None,
    reliability: Annotated[str | None, typer.Option(
        "--reliability", metavar="PATH",
        help="Write the reliability diagram (.png/.svg/.pdf); implies --calibration.")] = None,
    threshold_params: Annotated[str | None, typer.Option(
        "--threshold-params", metavar="FILE",
        help="Report the realised coverage and risk at a threshold saved by 'lsfix threshold "
             "--save-params' (table/json).")] = None,
) -> None:
    with handle_errors("curve", labels=labels, kind=input_kind, inputs=[input]) as run, \
            use_scheduler(scheduler, scheduler_timeout) as runner:
        import lsfix
        from lsfix.evaluation.bounded import CURVE_POINTS

        out_fmt, covs, risks = check_report_options(convention, bootstrap, level, fmt, coverage,
                                                    risk, plot)
        calibration = calibration or reliability is not None or calibration_fit is not None
        sections = calibration or threshold_params is not None
        if sections:
            from lsfix.output.calibration import check_bins

            check_bins(bins)
            if reliability is not None:
                from lsfix.output.plot import plot_format

                plot_format(reliability)
            if out_fmt == "tsv":
                raise UsageError("--calibration and --threshold-params add sections: pass "
                                 "-f table or -f json (TSV stays one table)")
            if by is not None:
                raise UsageError("--calibration and --threshold-params do not go with --by")
        if rank_map is not None:
            from lsfix.output.plot import plot_format

            plot_format(rank_map)
            if by is not None:
                raise UsageError("--rank-map does not go with --by")
        check_boot_unit(bootstrap_unit, by)
        from lsfix.evaluation.bounded import parse_memory_limit

        limit = parse_memory_limit(memory_limit)
        may_bound = (by is None and not bootstrap and subsample is None and rank_map is None
                     and not sections and not with_files and scheduler == "sync"
                     and not labels)
        may_draw = (subsample is not None and by is None and rank_map is None and not sections
                    and not with_files and scheduler == "sync" and not labels)
        pred = load(input, run, runner=runner, with_files=with_files,
                    allow_incomplete=allow_incomplete, ignore_index=ignore_index,
                    need_labels="evaluation (correctness)",
                    defer_dense_labels=may_bound or may_draw)
        from lsfix.cli.preflight import check_unfitted_scores

        check_unfitted_scores(score, pred.scores, pred.name, "curve")
        ev = lsfix.evaluate(pred, score, convention=convention, coverages=covs, risks=risks,
                            bootstrap=bootstrap, seed=seed, level=level,
                            bootstrap_unit=bootstrap_unit, by=by, subsample_pixels=subsample,
                            percent=percent, memory_limit=limit,
                            curve_points=CURVE_POINTS if plot is not None else 0,
                            tmpdir=tmpdir)
        if ev.subsampled is not None:
            from lsfix.cli.app import note

            ex = ev.excluded
            note(f"lsfix curve: {ev.subsampled} pixels drawn (--subsample-pixels {subsample}, "
                 f"seed {seed}); not drawn {ex.not_drawn}, ignored {ex.ignored}, fit rows "
                 f"{ex.fit}")
        if rank_map is not None:
            from lsfix.evaluation.dense import rank_map_data
            from lsfix.output.plot import rank_map_plot

            first = str(ev.results[0].score)
            maps, names = rank_map_data(pred, first)
            rank_map_plot(maps, names, rank_map,
                          title=f"Uncertainty rank per pixel: {pred.name} · {first}")
        extra: dict[str, Any] = {}
        extra_text = ""
        if calibration:
            from lsfix.cli.sections import calibration_section

            extra["calibration"], text_part = calibration_section(
                pred, run, bins=bins, fit_path=calibration_fit, n_boot=bootstrap, seed=seed,
                level=level, reliability=reliability)
            extra_text += "\n" + text_part
        if threshold_params is not None:
            from lsfix.cli.sections import threshold_section

            extra["threshold"], text_part = threshold_section(pred, threshold_params)
            extra_text += "\n" + text_part
        _report(ev, out_fmt, plot, output, extra, extra_text)
        pred.close()


def _report(ev: Any, out_fmt: str, plot: str | None, output: str,
            extra: dict[str, Any] | None = None, extra_text: str = "") -> None:
    """Print (or write) the report of an :class:`lsfix.evaluation.planner.Evaluation` and draw
    its RC plot."""
    from lsfix.output.report import dumps, tsv
    from lsfix.output.table import render_table, result_rows, undefined_warnings
    from lsfix.streams import write_text_atomic

    for line in undefined_warnings(ev.results):
        warn("curve", line)
    unit = " (×100)" if ev.percent else ""
    if out_fmt == "json":
        text = dumps({**ev.to_dict(), **(extra or {})})
    else:
        if ev.by is not None:
            from lsfix.evaluation.grouped import group_rows

            rows = group_rows(ev.results, percent=ev.percent)
            title = f"{ev.file} — by {ev.by}, convention {ev.convention}{unit}"
        else:
            rows = result_rows(ev.results, percent=ev.percent)
            title = f"{ev.file} — convention {ev.convention}{unit}"
        text = (tsv(rows, list(rows[0].keys())) if out_fmt == "tsv"
                else render_table(rows, title, show_file=False) + extra_text)
    if plot is not None and ev.by is None:
        from lsfix.output.plot import curve_lines, oracle_curve, rc_plot

        rc_plot(curve_lines(ev.results, show_file=False, percent=ev.percent, curves=ev.curves),
                plot, title=f"Risk-coverage: {ev.file}",
                oracle=ev.oracle if ev.oracle is not None
                else oracle_curve(ev.results[0].correct))
    write_text_atomic(output, text)

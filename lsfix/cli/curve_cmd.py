"""``lsfix curve``: every selective-classification metric of one file's scores."""

from __future__ import annotations

from typing import Annotated

import typer

from lsfix import streams
from lsfix.cli.app import app, handle_errors, note, warn
from lsfix.cli.common import parse_floats, report_format
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
    fit: Annotated[str | None, typer.Option(
        "--fit", metavar="VAL", help="Labelled file to tune a bare -s pnorm's p (and -s "
                                     "msp_ts's T) on, as compare --fit does.")] = None,
    fit_labels: Annotated[str | None, typer.Option(
        "--fit-labels", metavar="FILE",
        help="Labels for the --fit file (same forms as --labels, which is for the input "
             "only).")] = None,
    fit_fraction: Annotated[float | None, typer.Option(
        "--fit-fraction", help="Tune p (and T) on this random fraction of the input's rows "
                               "(--seed); those rows are left out of every number.")] = None,
) -> None:
    with handle_errors("curve", labels=labels, kind=input_kind, inputs=[input]) as run:
        import lsfix
        from lsfix.output import curve as out

        out_fmt = report_format(fmt)
        covs = parse_floats(coverage, "--coverage", lo=0.0, hi=1.0)
        risks = parse_floats(risk, "--risk", lo=0.0, hi=1.0, lo_open=False)
        calibration = calibration or reliability is not None or calibration_fit is not None
        out.check_request(out_fmt, calibration or threshold_params is not None, plot,
                          reliability, rank_map)
        ev = lsfix.evaluate(
            input, score, labels=labels, input=input_kind, ignore_index=ignore_index,
            with_scores=with_files or (), allow_incomplete=allow_incomplete,
            convention=convention, coverages=covs, risks=risks, bootstrap=bootstrap, seed=seed,
            level=level, bootstrap_unit=bootstrap_unit, by=by, subsample_pixels=subsample,
            percent=percent, memory_limit=memory_limit, scheduler=scheduler,
            scheduler_timeout=scheduler_timeout, curve_points=plot is not None,
            tmpdir=tmpdir, calibration=calibration, bins=bins, calibration_fit=calibration_fit,
            threshold_params=threshold_params, rank_map=rank_map is not None,
            fit=None if fit is None and fit_fraction is None else lsfix.Fit(
                data=fit, labels=fit_labels, fraction=fit_fraction, seed=seed))
        run.took(ev)
        if ev.fit is not None:
            note(f"lsfix curve: pnorm: {ev.fit.describe()}")
        drawn = out.drawn_note(ev, subsample, seed)
        if drawn:
            note(drawn)
        for line in out.warnings(ev):
            warn("curve", line)
        out.draw(ev, plot=plot, reliability=reliability, rank_map=rank_map)
        streams.write_text_atomic(output, out.text(ev, out_fmt))

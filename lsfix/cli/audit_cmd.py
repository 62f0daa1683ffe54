"""``lsfix audit``: one command that tells whether a classifier's MSP ranking is broken."""

from __future__ import annotations

from typing import Annotated

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import load, parse_floats, report_format, use_scheduler
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
        import lsfix
        from lsfix.output import audit as out
        from lsfix.output.report import dumps
        from lsfix.streams import write_text_atomic

        out_fmt = report_format(fmt)
        out.check_report_path(report)  # an unknown suffix: exit 2 before any work
        covs = parse_floats(coverage, "--coverage", lo=0.0, hi=1.0)
        risks = parse_floats(risk, "--risk", lo=0.0, hi=1.0, lo_open=False)
        pred = load(input, run, runner=runner, with_files=with_files,
                    allow_incomplete=allow_incomplete, need_labels=True, need_logits=True,
                    ignore_index=ignore_index, defer_dense_labels=not labels and not with_files)
        val_pred = (load(val, run, need_logits=True, ignore_index=ignore_index,
                         labels=fit_labels, defer_dense_labels=fit_labels is None)
                    if val else None)
        res = lsfix.audit(pred, val=val_pred, val_labels=None if val else fit_labels,
                          fit_fraction=fit_fraction, seed=seed, convention=convention,
                          bootstrap=bootstrap, level=level, select=select,
                          select_level=select_level, coverages=covs, risks=risks, by=by,
                          bootstrap_unit=bootstrap_unit, subsample_pixels=subsample,
                          memory_limit=memory_limit, bins=bins)
        for line in res.fit_notes:  # printed when the command succeeds
            run.warn_later(f"lsfix audit: warning: {line}")
        if out_fmt == "json":
            text = dumps(res.to_dict())
        elif out_fmt == "tsv":
            text = out.audit_tsv(res)
            for line in [] if quiet else out.tsv_notes(res):  # the verdict is a note here
                note(line)
        else:
            text = out.audit_table(res)
        if report is not None:
            out.write_report(res, report)
        write_text_atomic(output, text)
        pred.close()
        if val_pred is not None:
            val_pred.close()

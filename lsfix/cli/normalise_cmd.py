"""``lsfix normalise``: MaxLogit-pNorm with a fixed, fitted or reused p (MSP fallback)."""

from __future__ import annotations

from typing import Annotated

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import load, use_scheduler
from lsfix.cli.options import (
    AllowIncompleteOpt,
    ConventionOpt,
    IgnoreIndexOpt,
    InputArg,
    InputKindOpt,
    LabelsOpt,
    OutputOpt,
    OverwriteOpt,
    QuietOpt,
    SchedulerOpt,
    SchedulerTimeoutOpt,
    ScoresFormatOpt,
    WithOpt,
)
from lsfix.cli.preflight import refuse_existing
from lsfix.errors import UsageError

HELP = """Compute the MaxLogit-pNorm score (/scores/pnorm): centre the logits, divide by their
p-norm, take the max. The fix for label smoothing's broken confidence ranking. Writes a scores
file (no copy of the logits unless --copy-logits); --with adds the scores of an earlier
scores file of the same logits, so stages chain.

p is fixed (--p), tuned on another labelled file (--fit VAL.h5), tuned on a random labelled
split of the input (--fit-fraction F --seed S; those rows are then excluded from what 'curve'
and 'compare' evaluate), or reused from a saved fit (--params P.json). Tuning keeps MSP
unless a p in --grid beats it significantly on the fit rows (--select test: simultaneous
one-sided 95 % paired-bootstrap upper bounds of AURC(p) - AURC(MSP) over the whole grid,
--select-level; the lowest fit AURC among the p whose bound is below 0), and reports how
often the bootstrap picks the choice; --select point takes the lowest fit AURC (MSP when no
worse). With none of
these, a labelled input is tuned on --fit-fraction 0.2 --seed 0.

--no-centre uses the un-centred variant max_k z_k / ||z||_p (the paper's Cityscapes score,
pnorm_raw:P in 'score' and 'curve') for every way of choosing p; the scores land in
/scores/pnorm_raw and the saved fit records "centred": false. --fit-labels gives the labels of
the --fit file (--labels is for the input only).

-f tsv prints the new score's table instead of a scores file (as 'score -f tsv'): the
evaluated rows (not the rows p was tuned on), confidence (the score's value), correct. An
existing -o or --save-params file is replaced only with --overwrite.

Examples:

  lsfix normalise model.h5 --fit val.h5 --save-params p.json -o model.pnorm.h5

  lsfix score model.h5 -m energy | lsfix normalise model.h5 --with - | lsfix curve -

  lsfix normalise model.h5 --no-centre --fit val.h5 -o model.pnorm_raw.h5

  lsfix normalise model.h5 --params p.json -f tsv -o model.pnorm.tsv
"""


@app.command("normalise", help=HELP)
def normalise(
    input: InputArg = "-",
    output: OutputOpt = "-",
    p: Annotated[float | None, typer.Option("--p", help="Fixed p (0 = centred max logit).")
                 ] = None,
    fit: Annotated[str | None, typer.Option(
        "--fit", "--val", help="Labelled held-out file to tune p on (--val: the same).")
                   ] = None,
    fit_fraction: Annotated[float | None, typer.Option(
        "--fit-fraction", help="Tune on this random fraction of the input's rows.")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, help="Seed of the --fit-fraction split (>= 0).")] = 0,
    params: Annotated[str | None, typer.Option(
        "--params", help="Reuse a fit saved with --save-params.")] = None,
    save_params: Annotated[str | None, typer.Option(
        "--save-params", help="Write the fit (choice, grid, split) as JSON.")] = None,
    grid: Annotated[str, typer.Option("--grid", help="p values to try: 0-9 or 0,1,2,...")
                    ] = "0-9",
    centre: Annotated[bool | None, typer.Option(
        "--centre/--no-centre",
        help="Centre the logits first (MaxLogit-pNorm, the default) or not (the paper's "
             "Cityscapes variant max_k z_k / ||z||_p, pnorm_raw). Default: centred, or what "
             "--params recorded.")] = None,
    fit_labels: Annotated[str | None, typer.Option(
        "--fit-labels", "--val-labels", metavar="FILE",
        help="Labels for the --fit file (same forms as --labels, which is for the input "
             "only).")] = None,
    select: Annotated[str, typer.Option(
        "--select", help="test: switch from MSP only when a p's gain is significant on the "
                         "fit rows (simultaneous paired bootstrap); point: the lowest fit "
                         "AURC, as lsfix 0.1 did.")] = "test",
    select_level: Annotated[float, typer.Option(
        "--select-level", help="Level of the selection test's simultaneous upper bounds.")
    ] = 0.95,
    convention: ConventionOpt = "lsfix",
    name: Annotated[str | None, typer.Option(
        "--name", help="Score dataset name (default pnorm, or pnorm_raw with --no-centre).")
                    ] = None,
    fmt: ScoresFormatOpt = "h5",
    overwrite: OverwriteOpt = False,
    with_files: WithOpt = None,
    copy_logits: Annotated[bool, typer.Option(
        "--copy-logits", help="Write a full logits file (a copy of /logits plus the scores) "
                              "instead of a scores file.")] = False,
    ignore_index: IgnoreIndexOpt = None,
    scheduler: SchedulerOpt = "sync",
    scheduler_timeout: SchedulerTimeoutOpt = 10.0,
    allow_incomplete: AllowIncompleteOpt = False,
    quiet: QuietOpt = False,
    labels: LabelsOpt = None,
    input_kind: InputKindOpt = None,
) -> None:
    with handle_errors("normalise", labels=labels, kind=input_kind, inputs=[input],
                       quiet=quiet) as run, \
            use_scheduler(scheduler, scheduler_timeout) as runner:
        from dataclasses import replace

        import lsfix
        from lsfix.output.scores import check_format
        from lsfix.streams import refuse_binary_to_tty

        how = lsfix.Fit(p=p, data=fit, labels=fit_labels, fraction=fit_fraction, params=params,
                        seed=seed, grid=lsfix.parse_grid(grid), centred=centre, select=select,
                        level=select_level)  # every value checked; a saved fit read
        check_format(fmt, 1, copy_logits, command="normalise")
        if fmt == "h5":
            refuse_binary_to_tty(output)
        refuse_existing(output, overwrite)
        refuse_existing(save_params, overwrite)
        pred = load(input, run, runner=runner, with_files=with_files,
                    allow_incomplete=allow_incomplete, need_logits=True, overwrite=overwrite,
                    ignore_index=ignore_index)
        if fmt == "tsv" and pred.labels is None:  # before any p is tuned
            raise UsageError(f"{pred.name}: --format tsv needs /labels to print 'correct'")
        if fit is not None:  # read here: how a foreign file was read is said as it is read
            how = replace(how, labels=None, data=load(fit, run, need_logits=True,
                                                      ignore_index=ignore_index,
                                                      labels=fit_labels))
        res = lsfix.normalise(pred, how, name=name, convention=convention,
                              ignore_index=ignore_index)
        if how.data is not None:
            how.data.close()
        if save_params is not None:
            res.save_fit(save_params)
        for line in [] if quiet else res.notes:
            note(f"lsfix normalise: {line}")
        for line in [] if quiet else res.warnings:  # printed when the command succeeds
            run.warn_later(f"lsfix normalise: {line}")
        for line in res.write(output, format=fmt, copy_logits=copy_logits):
            if not quiet:
                note(line)
        res.close()

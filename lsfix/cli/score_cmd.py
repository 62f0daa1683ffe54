"""``lsfix score``: add confidence scores to a logit file (or print them as TSV)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import load, use_scheduler
from lsfix.cli.options import (
    AllowIncompleteOpt,
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

HELP = """Compute confidence scores (higher = more confident) from logits and write a scores
file: the scores, per-row correctness, labels, ids and the fingerprint of the logits - never a
copy of the logits (unless --copy-logits). curve, compare and audit read scores files.

Scores: msp (stored as log-MSP, the log of the max softmax probability: the same ranking,
no saturation at 1; exp() gives MSP), max_logit, logit_margin,
softmax_margin, neg_entropy, gini, energy[:T], msp_ts[:T] (T fitted on --fit VAL when not
given), pnorm:P (MaxLogit-pNorm with a fixed p; 'lsfix normalise' tunes p), pnorm_raw:P (the same
without centring the logits, as the paper's Cityscapes code).

-f tsv writes the evaluated rows as a table that 'curve -' reads: sample_id (when known),
confidence (the score's value exactly as stored: log-MSP for msp and msp_ts), correct, and one
column per group. An existing -o file is replaced only with --overwrite; a score computed here
replaces a stored score of the same name in the file written (the input never changes).

Examples:

  lsfix score model.h5 -m msp -m energy -o scored.h5

  lsfix score model.h5 -m msp --format tsv | lsfix curve -
"""


@app.command("score", help=HELP)
def score(
    input: InputArg = "-",
    method: Annotated[list[str] | None, typer.Option(
        "-m", "--method", help="Score to add (repeatable). Default: msp.")] = None,
    output: OutputOpt = "-",
    fmt: ScoresFormatOpt = "h5",
    with_files: WithOpt = None,
    copy_logits: Annotated[bool, typer.Option(
        "--copy-logits", help="Write a full logits file (a copy of /logits plus the scores) "
                              "instead of a scores file.")] = False,
    fit: Annotated[str | None, typer.Option(
        "--fit", help="Labelled held-out file to fit msp_ts's temperature on.")] = None,
    overwrite: OverwriteOpt = False,
    ignore_index: IgnoreIndexOpt = None,
    scheduler: SchedulerOpt = "sync",
    scheduler_timeout: SchedulerTimeoutOpt = 10.0,
    allow_incomplete: AllowIncompleteOpt = False,
    quiet: QuietOpt = False,
    labels: LabelsOpt = None,
    input_kind: InputKindOpt = None,
    params: Annotated[str | None, typer.Option(
        "--params", help="Apply a threshold saved by 'lsfix threshold --save-params': its "
                         "score, plus an accept column (1 = confidence >= threshold); -f tsv."
    )] = None,
) -> None:
    with handle_errors("score", labels=labels, kind=input_kind, inputs=[input],
                       quiet=quiet) as run, \
            use_scheduler(scheduler, scheduler_timeout) as runner:
        import lsfix
        from lsfix.output.scores import check_format, confidence_note
        from lsfix.streams import refuse_binary_to_tty

        if params is not None:  # a saved threshold decides the score: its table
            if method:
                raise UsageError("--params decides the score; it does not go with -m")
            if fit is not None:
                raise UsageError("--params carries its fitted parameters; it does not go "
                                 "with --fit")
            check_format(fmt, 1, copy_logits, table_only=True)
        else:
            check_format(fmt, len(method or ["msp"]), copy_logits)
            if fmt == "h5":
                refuse_binary_to_tty(output)
            refuse_existing(output, overwrite)
        # a stored score of a name computed here is replaced in the file written: no clash
        # (--overwrite: a --with file's differing score of one name replaces the input's)
        pred = load(input, run, runner=runner, with_files=with_files,
                    allow_incomplete=allow_incomplete, need_logits=params is None,
                    ignore_index=ignore_index, overwrite=overwrite)
        if params is None and fmt == "tsv" and pred.labels is None:
            raise UsageError(f"{pred.name}: --format tsv needs /labels to print 'correct'")
        val = None
        if fit is not None and "msp_ts" in (method or []):  # T is fitted on it
            val = load(fit, run, need_labels=True, need_logits=True)
        res = lsfix.score(pred, method, fit=fit if val is None else val, threshold=params)
        if val is not None:
            val.close()
        for line in [] if quiet else res.notes:
            note(f"lsfix score: {line}")
        for line in [] if quiet else res.warnings:  # printed when the command succeeds
            run.warn_later(f"lsfix score: {line}")
        piped = output == "-" and not sys.stdout.isatty()  # read by the next command
        shown = None if quiet or piped or fmt != "tsv" or params else confidence_note(res.scores)
        if shown:  # say what the column holds (docs/cli.md, -f)
            note(shown)
        for line in res.write(output, format=fmt, copy_logits=copy_logits):
            if not quiet:
                note(line)
        res.close()

"""``lsfix normalise``: MaxLogit-pNorm with a fixed, fitted or reused p (MSP fallback)."""

from __future__ import annotations

from typing import Annotated

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import (
    check_convention,
    check_p,
    fit_from_json,
    load,
    parse_grid,
    read_json_file,
    require_finite_scores,
    require_fit_labels,
    use_scheduler,
)
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
        from lsfix.cli.score_cmd import write_score_table
        from lsfix.evaluation import scheduler as parallel
        from lsfix.readers.logitsfile import write_predictions
        from lsfix.readers.scoresfile import write_scores_file
        from lsfix.streams import dumps_json, refuse_binary_to_tty, write_text_atomic

        check_convention(convention)
        chosen = [x for x, v in (("--p", p), ("--fit", fit), ("--fit-fraction", fit_fraction),
                                 ("--params", params)) if v is not None]
        if len(chosen) > 1:
            raise UsageError(f"give only one of --p, --fit, --fit-fraction, --params "
                             f"(got {', '.join(chosen)})")
        if fit_labels is not None and fit is None:
            raise UsageError("--fit-labels gives the labels of the --fit file; pass --fit too")
        saved = None
        if params is not None:  # read first: the saved fit decides the variant
            saved = fit_from_json(read_json_file(params), params)  # size, depth, NaN checked
            if centre is not None and centre != saved.centred:  # type: ignore[attr-defined]
                was = "centred" if saved.centred else "un-centred"  # type: ignore[attr-defined]
                raise UsageError(f"{params}: --{'' if centre else 'no-'}centre contradicts "
                                 f"this saved fit, which is {was}; drop the option")
            centre = saved.centred  # type: ignore[attr-defined]
        if name is None:
            name = "pnorm" if centre is not False else "pnorm_raw"
        if not name.replace("_", "").isalnum():
            raise UsageError(f"--name must be letters, digits and _, got {name!r}")
        if fmt not in ("h5", "tsv"):
            raise UsageError(f"--format must be h5 or tsv, got {fmt!r}")
        if fmt == "h5":
            refuse_binary_to_tty(output)
        elif copy_logits:
            raise UsageError("--copy-logits writes an HDF5 file; it does not go with --format tsv")
        refuse_existing(output, overwrite)
        refuse_existing(save_params, overwrite)
        p_grid = parse_grid(grid)
        pred = load(input, run, runner=runner, with_files=with_files,
                    allow_incomplete=allow_incomplete, need_logits=True, overwrite=overwrite,
                    ignore_index=ignore_index)
        if fmt == "tsv" and pred.labels is None:  # before any p is tuned
            raise UsageError(f"{pred.name}: --format tsv needs /labels to print 'correct'")
        from lsfix.core.scores import BINARY_NOTE, is_single_logit

        binary = is_single_logit(pred.logits)
        if binary and not quiet:
            # printed when the command succeeds: a failure stays one stderr line
            run.warn_later(f"lsfix normalise: {pred.name}: {BINARY_NOTE}")
        centred = centre is not False  # a --params fit decided it above
        if binary and p is None and params is None:
            # nothing to tune: p = 0 is MSP's ranking, every p >= 1 a constant
            chosen, fit, fit_fraction = ["binary"], None, None
        if not chosen:
            if pred.labels is None:
                none = "no labels" if pred.foreign_format else "no /labels"
                raise UsageError(f"{pred.name} has {none} to tune p on: give --p, --fit "
                                 "VAL.h5, --params P.json or --labels FILE")
            fit_fraction = 0.2
        from lsfix.evaluation.fitpolicy import choose_fit

        val = None
        if fit is not None:
            val = load(fit, run, need_logits=True, ignore_index=ignore_index, labels=fit_labels)
            require_fit_labels(val, "--fit-labels")
        result = choose_fit(pred, p=None if p is None else check_p(p), fit=val,
                            fit_fraction=fit_fraction, params=saved,  # type: ignore[arg-type]
                            grid=p_grid, centred=centred, convention=convention, seed=seed,
                            select=select, level=select_level)
        if val is not None:
            val.close()
        fitted, fit_mask = result.fit, result.fit_mask
        if save_params is not None:
            write_text_atomic(save_params, dumps_json(fitted.to_dict(), indent=2) + "\n")
        assert pred.logits is not None
        import numpy as np

        # one pass: the score and correctness (reads every row: bad rows fail before any note)
        spec = fitted.spec
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            computed = parallel.compute_scores(pred.logits, [spec], labels=pred.labels,
                                               runner=pred.runner)
        values = computed[spec.name]
        require_finite_scores(values, f"p={fitted.p:g}" if fitted.p is not None else "msp",
                              pred.name)
        if not quiet:
            if result.kind == "binary":
                run.warn_later(f"lsfix normalise: nothing to tune; /scores/{name} holds MSP "
                               "(the |z| ranking)")
            else:
                note(f"lsfix normalise: {result.describe()}")
            for line in result.notes:  # printed when the command succeeds
                run.warn_later(f"lsfix normalise: warning: {line}")
            if fit_mask is not None:
                note(f"lsfix normalise: tuned on {int(fit_mask.sum())} of {pred.n} rows "
                     f"(seed {seed}); curve/compare evaluate the other "
                     f"{pred.n - int(fit_mask.sum())}")
        if fmt == "tsv":
            write_score_table(pred, values, computed, output, fit_mask=fit_mask, quiet=quiet,
                              command="normalise")
            pred.close()
            return
        method = "msp" if fitted.fallback_msp else fitted.to_dict()["method"]
        new = {name: (values, method, fitted.to_dict())}
        if copy_logits:  # the input never changes: its stored score of this name is replaced
            write_predictions(output, pred, new_scores=new, overwrite=True,
                              fit_mask=fit_mask)
        else:
            write_scores_file(output, pred, new_scores=new, correct=computed.get("_correct"),
                              fit_mask=fit_mask)
        pred.close()

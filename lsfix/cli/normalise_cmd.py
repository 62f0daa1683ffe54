"""``lsfix normalise``: MaxLogit-pNorm with a fixed, fitted or reused p (MSP fallback)."""

from __future__ import annotations

from typing import Annotated

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import (
    AllowIncompleteOpt,
    ConventionOpt,
    IgnoreIndexOpt,
    InputArg,
    OutputOpt,
    QuietOpt,
    SchedulerOpt,
    WithOpt,
    check_convention,
    check_p,
    fit_from_json,
    load,
    load_joined,
    parse_grid,
    read_json_file,
    require_finite_scores,
    use_scheduler,
)
from lsfix.errors import UsageError

HELP = """Compute the MaxLogit-pNorm score (/scores/pnorm): centre the logits, divide by their
p-norm, take the max. The fix for label smoothing's broken confidence ranking. Writes a scores
file (no copy of the logits unless --copy-logits); --with adds the scores of an earlier
scores file of the same logits, so stages chain.

p is fixed (--p), tuned on another labelled file (--fit VAL.h5), tuned on a random labelled
split of the input (--fit-fraction F --seed S; those rows are then excluded from what 'curve'
and 'compare' evaluate), or reused from a saved fit (--params P.json). Tuning picks the p in
--grid with the lowest held-out AURC and falls back to MSP when MSP is no worse. With none of
these, a labelled input is tuned on --fit-fraction 0.2 --seed 0.

Examples:

  lsfix normalise test.h5 --fit val.h5 --save-params p.json -o test.pnorm.h5

  lsfix score a.h5 | lsfix normalise a.h5 --with - | lsfix curve -
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
    convention: ConventionOpt = "lsfix",
    name: Annotated[str, typer.Option("--name", help="Score dataset name.")] = "pnorm",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing score.")
                         ] = False,
    with_files: WithOpt = None,
    copy_logits: Annotated[bool, typer.Option(
        "--copy-logits", help="Write a full logits file (a copy of /logits plus the scores) "
                              "instead of a scores file.")] = False,
    ignore_index: IgnoreIndexOpt = None,
    scheduler: SchedulerOpt = "sync",
    allow_incomplete: AllowIncompleteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    with handle_errors("normalise"), use_scheduler(scheduler):
        from lsfix import parallel
        from lsfix.core import PNormFit, tune_pnorm
        from lsfix.io import dumps_json, refuse_binary_to_tty, write_text_atomic
        from lsfix.pipeline import describe_fit, fit_on_rows
        from lsfix.schema import write_predictions
        from lsfix.scorefile import write_scores_file

        check_convention(convention)
        chosen = [x for x, v in (("--p", p), ("--fit", fit), ("--fit-fraction", fit_fraction),
                                 ("--params", params)) if v is not None]
        if len(chosen) > 1:
            raise UsageError(f"give only one of --p, --fit, --fit-fraction, --params "
                             f"(got {', '.join(chosen)})")
        if not name.replace("_", "").isalnum():
            raise UsageError(f"--name must be letters, digits and _, got {name!r}")
        refuse_binary_to_tty(output)
        p_grid = parse_grid(grid)
        pred = load_joined(input, with_files, allow_incomplete=allow_incomplete,
                           need_logits=True, overwrite=overwrite, ignore_index=ignore_index)
        if name in pred.scores and not overwrite:
            raise UsageError(f"{pred.name}: /scores/{name} already exists; pass --overwrite "
                             "to replace it")
        fit_mask = None
        from lsfix.core.scores import BINARY_NOTE, is_single_logit

        binary = is_single_logit(pred.logits)
        if binary and not quiet:
            from lsfix.cli.inputopts import warn_later

            # printed when the command succeeds: a failure stays one stderr line
            warn_later(f"lsfix normalise: {pred.name}: {BINARY_NOTE}")
        if binary and p is None and params is None:
            # nothing to tune: p = 0 is MSP's ranking, every p >= 1 a constant
            chosen, fit, fit_fraction = ["binary"], None, None
        if not chosen:
            if pred.labels is None:
                none = "no labels" if pred.foreign_format else "no /labels"
                raise UsageError(f"{pred.name} has {none} to tune p on: give --p, --fit "
                                 "VAL.h5, --params P.json or --labels FILE")
            fit_fraction = 0.2
        if p is not None:
            fitted = PNormFit(p=check_p(p), fallback_msp=False, grid=(), msp_aurc=float("nan"),
                              convention=convention, split={"kind": "fixed"})
        elif fit is not None:
            val = load(fit, need_labels=True, need_logits=True, ignore_index=ignore_index)
            if val.k != pred.k:
                raise UsageError(f"{val.name} has K={val.k} classes, {pred.name} has K={pred.k}")
            fitted = tune_pnorm(val.logits, val.labels, grid=p_grid, convention=convention,
                                split={"kind": "file", "file": val.name, "n": val.n})
            val.close()
        elif binary and params is None:
            fitted = PNormFit(p=None, fallback_msp=True, grid=(), msp_aurc=float("nan"),
                              convention=convention,
                              split={"kind": "none", "reason": "single-logit (binary) model: "
                                     "centred pNorm has nothing to normalise"})
        elif params is not None:
            doc = read_json_file(params)  # size, depth, NaN/Infinity checked
            fitted = fit_from_json(doc, params)
        else:
            assert fit_fraction is not None
            pred.require_labels("--fit-fraction")
            if pred.fit_mask is not None and pred.fit_mask.any():
                raise UsageError(f"{pred.name} already has a fit split (/fit_mask); tune with "
                                 "--fit VAL.h5 or reuse --params")
            from lsfix.dense import fit_split, is_dense

            fit_mask = fit_split(pred, fit_fraction, seed)  # dense: whole images
            fitted = fit_on_rows(pred, fit_mask, grid=p_grid, convention=convention,
                                 split={"kind": "fraction", "fraction": fit_fraction,
                                        "seed": seed, "n": int(fit_mask.sum()),
                                        **({"unit": "image"} if is_dense(pred) else {})})
        if save_params is not None:
            write_text_atomic(save_params, dumps_json(fitted.to_dict(), indent=2) + "\n")
        assert pred.logits is not None
        import numpy as np

        # one pass: the score and correctness (reads every row: bad rows fail before any note)
        spec = fitted.spec
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            computed = parallel.compute_scores(pred.logits, [spec], labels=pred.labels)
        values = computed[spec.name]
        require_finite_scores(values, f"p={fitted.p:g}" if fitted.p is not None else "msp",
                              pred.name)
        from lsfix.pipeline import small_fit_warning

        small = small_fit_warning(fitted) if fitted.grid and fitted.n_fit else None
        if not quiet:
            if binary and fitted.fallback_msp and not fitted.grid:
                from lsfix.cli.inputopts import warn_later

                warn_later(f"lsfix normalise: nothing to tune; /scores/{name} holds MSP (the |z| "
                           "ranking)")
            elif fitted.grid:
                note(f"lsfix normalise: {describe_fit(fitted)}")
                if small:  # printed when the command succeeds (a failure is one line)
                    from lsfix.cli.inputopts import warn_later

                    warn_later(f"lsfix normalise: warning: {small}")
            else:
                note(f"lsfix normalise: fixed p={fitted.p:g}" if fitted.p is not None
                     else "lsfix normalise: MSP (from saved fit)")
            if fit_mask is not None:
                note(f"lsfix normalise: tuned on {int(fit_mask.sum())} of {pred.n} rows "
                     f"(seed {seed}); curve/compare evaluate the other "
                     f"{pred.n - int(fit_mask.sum())}")
        method = "msp" if fitted.fallback_msp else "maxlogit_pnorm"
        new = {name: (values, method, fitted.to_dict())}
        if copy_logits:
            write_predictions(output, pred, new_scores=new, overwrite=overwrite,
                              fit_mask=fit_mask)
        else:
            write_scores_file(output, pred, new_scores=new, correct=computed.get("_correct"),
                              fit_mask=fit_mask)
        pred.close()

"""``lsfix threshold``: a confidence threshold to deploy, with a finite-sample risk guarantee."""

from __future__ import annotations

from typing import Annotated

import typer

from lsfix.cli.app import app, handle_errors
from lsfix.cli.common import load, report_format
from lsfix.cli.options import (
    AllowIncompleteOpt,
    FormatOpt,
    InputArg,
    InputKindOpt,
    LabelsOpt,
    OutputOpt,
    WithOpt,
)
from lsfix.errors import UsageError

HELP = """Choose, on labelled data, the confidence threshold with the largest coverage whose
selective risk (error rate among accepted rows) is at most --risk with probability at least
1 - --delta over the draw of the rows: SGR (Geifman & El-Yaniv 2017) with an exact binomial
bound. The rows must be drawn like the data the threshold will meet.

-s pnorm without p tunes p on the same rows with a union bound (MSP and every p of --grid
each certified at delta/G); --fit VAL fits p (or msp_ts's T) on other rows instead, and the
threshold is certified at the full delta. --save-params writes what 'score --params' applies
to new logits (an accept column) and 'curve --threshold-params' checks on test data.

Examples:

  lsfix threshold val.h5 -s msp --risk 0.02 --delta 0.05 --save-params thr.json

  lsfix score model.h5 --params thr.json -f tsv
"""


@app.command("threshold", help=HELP)
def threshold(
    input: InputArg = "-",
    score: Annotated[str, typer.Option(
        "--score", "-s", help="Score: a stored name or a spec (msp, pnorm:2, msp_ts:1.5); "
                              "pnorm or msp_ts alone are tuned (see above).")] = "msp",
    risk: Annotated[float, typer.Option(
        "--risk", help="Target selective risk r* in [0, 1).")] = 0.05,
    delta: Annotated[float, typer.Option(
        "--delta", help="Allowed probability that the guarantee fails, in (0, 1).")] = 0.05,
    fit: Annotated[str | None, typer.Option(
        "--fit", help="Labelled file (other rows) to fit pnorm's p or msp_ts's T on.")] = None,
    grid: Annotated[str, typer.Option(
        "--grid", help="p values for -s pnorm (list 0,1,2 or range 0-9).")] = "0-9",
    save_params: Annotated[str | None, typer.Option(
        "--save-params", help="Write the threshold params (JSON) for score --params and "
                              "curve --threshold-params.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = "-",
    with_files: WithOpt = None,
    allow_incomplete: AllowIncompleteOpt = False,
    labels: LabelsOpt = None,
    input_kind: InputKindOpt = None,
) -> None:
    with handle_errors("threshold", labels=labels, kind=input_kind, inputs=[input]) as run:
        import lsfix
        from lsfix.output.report import dumps
        from lsfix.output.threshold import params_text, threshold_text
        from lsfix.streams import write_text_atomic

        out_fmt = report_format(fmt) if fmt is not None else "table"  # a summary, not a table
        if out_fmt == "tsv":
            raise UsageError("--format must be table or json for threshold")
        ps = lsfix.parse_grid(grid)
        pred = load(input, run, with_files=with_files, allow_incomplete=allow_incomplete,
                    need_labels="threshold")
        fit_pred = load(fit, run, need_logits=True) if fit is not None else None
        res = lsfix.threshold(pred, score, risk=risk, delta=delta, fit=fit_pred, grid=ps)
        if save_params is not None:
            write_text_atomic(save_params, params_text(res))
        text = dumps(res.to_dict()) if out_fmt == "json" else threshold_text(res)
        write_text_atomic(output, text)
        pred.close()
        if fit_pred is not None:
            fit_pred.close()

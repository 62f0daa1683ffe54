"""``lsfix threshold``: a confidence threshold to deploy, with a finite-sample risk guarantee."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lsfix.cli.app import app, handle_errors
from lsfix.cli.common import (
    load,
    parse_grid,
    report_format,
    require_fit_labels,
)
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


def _table(d: dict[str, Any]) -> str:
    from lsfix.output.report import fmt

    how = {"none": "score fixed before the rows were seen",
           "union_bound": (f"p tuned on these rows: union bound over "
                           f"{len(d['tuning'].get('candidates', []))} candidates, each at "
                           f"delta/G = {fmt(d['tuning'].get('delta_per_candidate'), 4)}"),
           "fit_file": f"{d['tuning'].get('fitted')} fitted on {d['tuning'].get('fit_file')}"}
    lines = [f"{d['file']} — threshold for selective risk <= {fmt(d['risk'])} with probability "
             f">= {fmt(1 - d['delta'])} (SGR, exact binomial bound)"]
    if d["certified"]:
        prob = d.get("threshold_probability")
        lines.append(f"  accept when {d['score']} >= {d['threshold']!r}"
                     + ("" if prob is None else f" (log-MSP: max softmax probability >= "
                                                 f"{fmt(prob, 6)})"))
        lines.append(f"  certified coverage {fmt(d['certified_coverage'], 4)} "
                     f"({d['n_accepted']} of {d['n']} rows), empirical risk "
                     f"{fmt(d['empirical_risk'], 4)}, risk bound {fmt(d['bound'], 4)}")
    else:
        lines.append(f"  no threshold certified: reject everything (the best tested bound "
                     f"was above {fmt(d['risk'])}; more rows or a larger --risk/--delta would "
                     "help)")
    lines.append(f"  score {d['score']} ({how.get(d['tuning'].get('kind'), '')}); "
                 f"{d['n_tests']} binary-search tests at {fmt(d['delta_per_test'], 4)} each")
    return "\n".join(lines) + "\n"


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
        import math

        from lsfix.evaluation.threshold import choose_threshold
        from lsfix.output.report import document, dumps
        from lsfix.streams import dumps_json, write_text_atomic

        if not (0.0 <= risk < 1.0) or math.isnan(risk):
            raise UsageError(f"--risk must be in [0, 1), got {risk:g}")
        if not (0.0 < delta < 1.0):
            raise UsageError(f"--delta must be in (0, 1), got {delta:g}")
        out_fmt = report_format(fmt) if fmt is not None else "table"  # a summary, not a table
        if out_fmt == "tsv":
            raise UsageError("--format must be table or json for threshold")
        ps = parse_grid(grid)
        pred = load(input, run, with_files=with_files, allow_incomplete=allow_incomplete,
                    need_labels="threshold")
        fit_pred = None
        if fit is not None:
            import os

            if fit == input or (os.path.exists(fit) and os.path.exists(input)
                                and os.path.samefile(fit, input)):
                raise UsageError(f"--fit {fit} is the input: a p or T fitted on the rows that "
                                 "certify the threshold voids the guarantee (use other rows, or "
                                 "-s pnorm without --fit for the union bound)")
            fit_pred = load(fit, run, need_logits=True)
            require_fit_labels(fit_pred, "--fit with its own /labels")
            if pred.logits is not None and fit_pred.k != pred.k:
                raise UsageError(f"{fit_pred.name} has K={fit_pred.k} classes, {pred.name} "
                                 f"has K={pred.k}")
        res = choose_threshold(pred, score, risk=risk, delta=delta, fit=fit_pred, grid=ps)
        params = res.to_dict()
        if save_params is not None:
            write_text_atomic(save_params, dumps_json(params, indent=2) + "\n")
        body = {k: v for k, v in params.items() if k not in ("format", "version")}
        text = dumps(document("threshold", body)) if out_fmt == "json" else _table(params)
        write_text_atomic(output, text)
        pred.close()
        if fit_pred is not None:
            fit_pred.close()

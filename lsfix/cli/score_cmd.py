"""``lsfix score``: add confidence scores to a logit file (or print them as TSV)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from lsfix.cli.app import app, handle_errors, note
from lsfix.cli.common import (
    MAX_P,
    load,
    require_finite_scores,
    use_scheduler,
)
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
    if params is not None:
        with handle_errors("score", labels=labels, kind=input_kind, inputs=[input],
                           quiet=quiet) as run, \
                use_scheduler(scheduler, scheduler_timeout) as runner:
            _apply_params(input, run, runner, params, method, fmt, output, with_files,
                          ignore_index, allow_incomplete, fit)
        return
    with handle_errors("score", labels=labels, kind=input_kind, inputs=[input],
                       quiet=quiet) as run, \
            use_scheduler(scheduler, scheduler_timeout) as runner:
        import numpy as np

        from lsfix.core import ScoreSpec, fit_temperature, parse_score
        from lsfix.evaluation.scheduler import compute_scores
        from lsfix.readers.logitsfile import write_predictions
        from lsfix.readers.scoresfile import write_scores_file
        from lsfix.streams import refuse_binary_to_tty

        if fmt not in ("h5", "tsv"):
            raise UsageError(f"--format must be h5 or tsv, got {fmt!r}")
        specs = [parse_score(m) for m in (method or ["msp"])]
        for spec in specs:  # |z|^p overflows float64 for large p: refuse up front (exit 2)
            if spec.family == "pnorm" and spec.param is not None and spec.param > MAX_P:
                raise UsageError(f"-m pnorm:{spec.param:g}: p above the limit of {MAX_P:g}")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise UsageError(f"score given twice: {', '.join(names)}")
        if fmt == "tsv" and len(specs) != 1:
            raise UsageError("--format tsv writes one score; give exactly one -m")
        if fmt == "h5":
            refuse_binary_to_tty(output)
        refuse_existing(output, overwrite)
        if copy_logits and fmt != "h5":
            raise UsageError("--copy-logits writes an HDF5 file; it does not go with --format tsv")
        # a stored score of a name computed here is replaced in the file written: no clash
        # (--overwrite: a --with file's differing score of one name replaces the input's)
        pred = load(input, run, runner=runner, with_files=with_files,
                    allow_incomplete=allow_incomplete, need_logits=True,
                    ignore_index=ignore_index, overwrite=overwrite)
        from lsfix.core.scores import BINARY_NOTE, is_single_logit

        if is_single_logit(pred.logits) and not quiet:
            # printed when the command succeeds: a failure stays one stderr line
            run.warn_later(f"lsfix score: {pred.name}: {BINARY_NOTE}")
        params_extra: dict[str, dict[str, object]] = {}
        resolved = []
        for spec in specs:
            if spec.family == "msp_ts" and spec.param is None:
                if fit is None:
                    raise UsageError("msp_ts needs a temperature: give msp_ts:T or --fit VAL.h5")
                val = load(fit, run, need_labels=True, need_logits=True)
                if val.k != pred.k:
                    raise UsageError(f"{val.name} has K={val.k} classes, {pred.name} has "
                                     f"K={pred.k}")
                t = fit_temperature(val.logits, val.labels)
                if not quiet:
                    note(f"lsfix score: fitted temperature T={t:.6g} on {val.name} "
                         f"({val.n} samples)")
                spec = ScoreSpec("msp_ts", t)
                params_extra[spec.name] = {"fit_file": val.name, "fit_n": val.n}
                val.close()
            resolved.append(spec)
        labels = pred.labels
        if fmt == "tsv" and labels is None:  # before any score is computed
            raise UsageError(f"{pred.name}: --format tsv needs /labels to print 'correct'")
        assert pred.logits is not None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = compute_scores(pred.logits, resolved, labels=labels,  # checked below
                                 runner=pred.runner)
        for spec in resolved:  # an option that overflows float64: exit 2, nothing written
            shown = spec.family if spec.param is None else f"{spec.family}:{spec.param:.6g}"
            require_finite_scores(out[spec.name], f"-m {shown}", pred.name)
        if fmt == "tsv":
            piped = output == "-" and not sys.stdout.isatty()  # read by the next command
            if resolved[0].family in ("msp", "msp_ts") and not (quiet or piped):
                # say what the column holds (docs/cli.md, -f)
                note(f"lsfix score: column 'confidence' holds {resolved[0].name} as log-MSP "
                     "(the log of the max softmax probability: MSP's ranking without its "
                     "saturation at 1; exp() gives MSP)")
            write_score_table(pred, out[resolved[0].name], out, output, quiet=quiet,
                              command="score")
            return
        new = {}
        for spec in resolved:
            params = {**spec.params(), **params_extra.get(spec.name, {})}
            new[spec.name] = (out[spec.name], spec.family, params)
        if copy_logits:
            write_predictions(output, pred, new_scores=new, overwrite=True)
        else:
            write_scores_file(output, pred, new_scores=new, correct=out.get("_correct"))
        pred.close()


def write_score_table(pred: Any, values: Any, computed: dict[str, Any], output: str, *,
                      fit_mask: Any = None, quiet: bool, command: str) -> None:
    """``-f tsv`` of ``score`` and ``normalise``: the evaluated rows of one score (``values``;
    ``computed["_correct"]`` the correctness) as a table; ``fit_mask`` the rows a p was just
    tuned on (left out, as the stored fit rows are)."""
    import numpy as np

    from lsfix.evaluation.inmemory import evaluation_rows
    from lsfix.streams import write_text_atomic

    if pred.labels is None or "_correct" not in computed:
        raise UsageError(f"{pred.name}: --format tsv needs /labels to print 'correct'")
    mask, ignored, fitted = evaluation_rows(pred)
    if fit_mask is not None:  # the rows just tuned on: never evaluated
        new_fit = np.asarray(fit_mask, dtype=bool) & (mask if mask is not None else True)
        fitted += int(new_fit.sum())
        mask = ~np.asarray(fit_mask, dtype=bool) if mask is None else mask & ~new_fit
    if mask is not None and not quiet:  # ignored pixels and fit rows: never evaluated
        left = [f"{n} {what}" for n, what in ((ignored, "ignored pixel(s)"),
                                             (fitted, "fit row(s)")) if n]
        if left:
            note(f"lsfix {command}: {' and '.join(left)} left out of the table")
    write_text_atomic(output, _score_table(pred, values,
                                           np.asarray(computed["_correct"]).astype(np.int8),
                                           mask))


def _score_table(pred: Any, conf: Any, corr: Any, mask: Any = None) -> str:
    """``sample_id`` (when one per row), ``confidence``, ``correct`` and one column per group
    (``/groups/NAME``), tab-separated and quoted where a cell needs it, so that
    ``lsfix curve - --by NAME`` reads the groups back. Only the rows of ``mask`` (the
    evaluated rows) when given: ignored pixels and fit rows never reach the table."""
    import csv
    import io

    import numpy as np

    from lsfix.evaluation.grouped import _per_row

    def rows(a: Any) -> Any:
        return a if mask is None else np.asarray(a)[mask]

    cols: list[tuple[str, list[str]]] = []
    if pred.sample_ids is not None and len(pred.sample_ids) == pred.n:
        cols.append(("sample_id", [str(s) for s in rows(pred.sample_ids)]))
    cols.append(("confidence", [repr(c) for c in rows(conf).tolist()]))
    cols.append(("correct", [str(k) for k in rows(corr).tolist()]))
    for key, values in sorted(pred.groups.items()):
        cols.append((key, [str(v) for v in rows(_per_row(pred, np.asarray(values))).tolist()]))
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow([c for c, _ in cols])
    w.writerows(zip(*(v for _, v in cols), strict=True))
    return buf.getvalue()


def _apply_params(input: str, run: Any, runner: Any, params: str, method: list[str] | None,
                  fmt: str, output: str, with_files: list[str] | None,
                  ignore_index: int | None, allow_incomplete: bool, fit: str | None) -> None:
    """``score --params THR.json``: the threshold's score on ``input`` and an ``accept``
    column, as a table (``correct`` too when the input has labels)."""
    import csv
    import io

    import numpy as np

    from lsfix.cli.common import read_json_file
    from lsfix.evaluation.threshold import accept, confidence_for, params_from_json
    from lsfix.streams import display_name, write_text_atomic

    if method:
        raise UsageError("--params decides the score; it does not go with -m")
    if fit is not None:
        raise UsageError("--params carries its fitted parameters; it does not go with --fit")
    if fmt != "tsv":
        raise UsageError("--params writes a table: pass -f tsv (the accept column is a "
                         "decision, not a score to store)")
    t = params_from_json(read_json_file(params), params)
    pred = load(input, run, runner=runner, with_files=with_files,
                allow_incomplete=allow_incomplete, ignore_index=ignore_index)
    conf = confidence_for(pred, t)
    require_finite_scores(conf, f"the score of {display_name(params)}", pred.name)
    acc = accept(conf, t)
    cols: list[tuple[str, list[str]]] = []
    if pred.sample_ids is not None and len(pred.sample_ids) == pred.n:
        cols.append(("sample_id", [str(s) for s in pred.sample_ids]))
    cols.append(("confidence", [repr(c) for c in np.asarray(conf, dtype=float).tolist()]))
    cols.append(("accept", ["1" if a else "0" for a in acc.tolist()]))
    if pred.labels is not None or pred.correct is not None:
        from lsfix.evaluation.inmemory import correct_of

        cols.append(("correct", [str(int(k)) for k in correct_of(pred).tolist()]))
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow([c for c, _ in cols])
    w.writerows(zip(*(v for _, v in cols), strict=True))
    write_text_atomic(output, buf.getvalue())
    pred.close()

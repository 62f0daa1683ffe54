"""The outputs of ``score`` and ``normalise`` other than the scores file: the ``-f tsv``
table of one score's evaluated rows, the ``score --params`` table of a threshold's decisions,
the checks of ``-f``/``--copy-logits``, and the lines said about them."""

from __future__ import annotations

from typing import Any


def check_format(fmt: str, n_scores: int, copy_logits: bool, *, command: str = "score",
                 table_only: bool = False) -> None:
    """``-f`` of ``score``/``normalise``: ``h5`` or ``tsv``; a table holds one score; a logits
    file (``--copy-logits``) is HDF5; applying a threshold writes a table."""
    from lsfix.errors import UsageError

    if fmt not in ("h5", "tsv"):
        raise UsageError(f"--format must be h5 or tsv, got {fmt!r}")
    if table_only:
        if fmt != "tsv":
            raise UsageError("--params writes a table: pass -f tsv (the accept column is a "
                             "decision, not a score to store)")
        return
    if fmt == "tsv" and n_scores != 1 and command == "score":
        raise UsageError("--format tsv writes one score; give exactly one -m")
    if fmt == "tsv" and copy_logits:
        raise UsageError("--copy-logits writes an HDF5 file; it does not go with --format tsv")


def table(cols: list[tuple[str, list[str]]]) -> str:
    """Columns as a tab-separated table, each cell quoted where it needs it, so that
    ``lsfix curve -`` reads it back."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow([c for c, _ in cols])
    w.writerows(zip(*(v for _, v in cols), strict=True))
    return buf.getvalue()


def score_table(sample_ids: Any, conf: Any, correct: Any, groups: dict[str, Any]) -> str:
    """``-f tsv`` of ``score`` and ``normalise``: ``sample_id`` (when given), ``confidence``
    (the score's value as stored), ``correct`` (0/1) and one column per group, one line per
    row given (the caller passes the evaluated rows only)."""
    import numpy as np

    cols: list[tuple[str, list[str]]] = []
    if sample_ids is not None:
        cols.append(("sample_id", [str(s) for s in sample_ids]))
    cols.append(("confidence", [repr(c) for c in np.asarray(conf).tolist()]))
    cols.append(("correct", [str(k) for k in np.asarray(correct).astype(np.int8).tolist()]))
    for key, values in sorted(groups.items()):
        cols.append((key, [str(v) for v in np.asarray(values).tolist()]))
    return table(cols)


def threshold_table(sample_ids: Any, conf: Any, accept: Any, correct: Any) -> str:
    """``score --params THR.json -f tsv``: ``sample_id`` (when given), ``confidence``,
    ``accept`` (1 = confidence >= threshold) and ``correct`` when known."""
    import numpy as np

    cols: list[tuple[str, list[str]]] = []
    if sample_ids is not None:
        cols.append(("sample_id", [str(s) for s in sample_ids]))
    cols.append(("confidence", [repr(c) for c in np.asarray(conf, dtype=float).tolist()]))
    cols.append(("accept", ["1" if a else "0" for a in np.asarray(accept).tolist()]))
    if correct is not None:
        cols.append(("correct", [str(int(k)) for k in np.asarray(correct).tolist()]))
    return table(cols)


def left_out_note(command: str, ignored: int, fitted: int) -> str | None:
    """The line saying which rows a table leaves out (ignored pixels, fit rows), or None."""
    left = [f"{n} {what}" for n, what in ((ignored, "ignored pixel(s)"),
                                         (fitted, "fit row(s)")) if n]
    return f"lsfix {command}: {' and '.join(left)} left out of the table" if left else None


def log_msp_note(score: str) -> str:
    """What a table's ``confidence`` column holds for ``msp``/``msp_ts`` (docs/cli.md, -f)."""
    return (f"lsfix score: column 'confidence' holds {score} as log-MSP (the log of the max "
            "softmax probability: MSP's ranking without its saturation at 1; exp() gives MSP)")


def confidence_note(scores: dict[str, Any]) -> str | None:
    """For a table of ``msp`` or ``msp_ts`` (the first of ``scores``: name -> (values,
    method, params)): what its ``confidence`` column holds; None for other scores."""
    name, (_, method, _) = next(iter(scores.items()))
    return log_msp_note(name) if method in ("msp", "msp_ts") else None

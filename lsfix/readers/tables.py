"""CSV/TSV/whitespace tables: logits tables and score tables, parsed cell by cell with the line
and column of every problem. Dispatched from :mod:`lsfix.readers.foreign`, which documents
the layouts."""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lsfix.errors import InputError
from lsfix.readers.foreign import (
    _LOGIT_COLUMN,
    _TRUE_FALSE,
    LOGITS_TABLE,
    SCORE_TABLE,
    TABLE_SCORE_METHOD,
    TABLE_SCORE_NAME,
    TRUE_LABEL_COLUMN,
    is_number,
)
from lsfix.readers.predictions import Predictions, predictions_from_arrays
from lsfix.safetext import quote as _quote

# --------------------------------------------------------------------------------------------
# CSV / TSV tables


class _CellError(Exception):
    """A bad cell at data row ``index`` (``other``: an earlier row it clashes with)."""

    def __init__(self, index: int, message: str, other: int | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
        self.other = other


def _read_table(data: bytes, name: str, delimiter: str, *, hint_other: bool,
                ignore_index: int | None = None) -> Predictions:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})",
                         file=name) from None
    rows, lines = _csv_rows(text, name, delimiter)
    if not rows:
        raise InputError("empty table (no header line)", file=name)

    notes: list[str] = []
    rows, lines, header, class_names = _normalise_table(rows, list(lines), name, notes)
    header_line = lines[0]
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise InputError(f"line {header_line}: duplicate column {_quote(col)}", file=name)
        seen.add(col)
    data_rows, data_lines = rows[1:], lines[1:]

    if TABLE_SCORE_NAME in seen or "correct" in seen:
        layout, required = SCORE_TABLE, [TABLE_SCORE_NAME, "correct"]
        allowed = {TABLE_SCORE_NAME, "correct", "sample_id", TRUE_LABEL_COLUMN}
        expected = "a score table has confidence, correct and optionally sample_id"
    elif any(_LOGIT_COLUMN.fullmatch(c) for c in header):
        idx = sorted(int(c[len("logit_"):]) for c in header if _LOGIT_COLUMN.fullmatch(c))
        if idx[-1] >= len(idx):  # a gap: checked against the real columns before any K-sized
            gap = next(i for i, v in enumerate(idx) if v != i)  # work (logit_9999999 alone)
            raise InputError(f"line {header_line}: missing column 'logit_{gap}' (a logits "
                             f"table has logit_0..logit_{idx[-1]} and optionally label and "
                             "sample_id)", file=name)
        k = idx[-1] + 1
        layout, required = LOGITS_TABLE, [f"logit_{i}" for i in range(k)]
        allowed = {*required, "label", "sample_id"}
        expected = (f"a logits table has logit_0..logit_{k - 1} and optionally label and "
                    "sample_id")
    else:
        other = "," if delimiter == "\t" else "\t"
        hint = ""
        if hint_other and other in rows[0][0]:
            hint = (" (the file looks tab-separated: name it .tsv)" if other == "\t"
                    else " (the file looks comma-separated: name it .csv)")
        cols = ", ".join(repr(c) for c in header)
        text = [j for j, c in enumerate(header) if data_rows and not all(
            j < len(r) and is_number(r[j]) for r in data_rows[:50])]
        advice = "Rename the columns to those names"
        if len(text) == 1 and len(header) >= 3:
            advice = (f"One numeric column per class is read with a label column: if "
                      f"{_quote(header[text[0]])} holds the labels, rename it to 'label' (or y_true)")
        raise InputError(
            f"line {header_line}: neither a logits table (logit_0..logit_<K-1> or one "
            f"numeric column per class, and label) nor a score table (confidence and correct, "
            f"or confidence, y_true and y_pred); columns: {cols}{hint}. {advice}",
            file=name,
        )
    known = {TABLE_SCORE_NAME, "correct", "sample_id", "label"}
    group_cols = []
    for col in header:
        if col not in allowed:
            if col in known or _LOGIT_COLUMN.fullmatch(col) or col.startswith("logit"):
                raise InputError(f"line {header_line}: unknown column {_quote(col)} ({expected})",
                                 file=name)
            group_cols.append(col)  # any other column: a group (--by COLUMN), said below
    for col in required:
        if col not in seen:
            raise InputError(f"line {header_line}: missing column {_quote(col)} ({expected})",
                             file=name)
    if not data_rows:
        raise InputError(f"no data rows (only the header, line {header_line})", file=name)
    width = len(header)
    if set(map(len, data_rows)) != {width}:
        i = next(i for i, r in enumerate(data_rows) if len(r) != width)
        raise InputError(
            f"line {data_lines[i]}: {len(data_rows[i])} field(s), the header has {width}",
            file=name,
        )

    columns = {col: list(map(operator.itemgetter(j), data_rows)) for j, col in enumerate(header)}
    n_logits = len(required) if layout == LOGITS_TABLE else 0
    parsers: dict[str, Callable[[list[str]], np.ndarray]] = {
        **{col: _group_values for col in group_cols},
        "sample_id": _unique_strings,
        "label": lambda cells: _int_labels(cells, n_logits, ignore_index),
        "correct": _zero_one,
        TRUE_LABEL_COLUMN: _group_values,
    }
    parsed: dict[str, np.ndarray] = {}
    errors: list[tuple[int, int, str, str]] = []
    for pos, col in enumerate(header):
        try:
            parsed[col] = parsers.get(col, _finite_floats)(columns[col])
        except _CellError as exc:
            message = exc.message
            if exc.other is not None:
                message += f" (first on line {data_lines[exc.other]})"
            errors.append((exc.index, pos, col, message))
    if errors:  # report the earliest line, then the leftmost column
        index, _, col, message = min(errors)
        raise InputError(f"line {data_lines[index]}, column {_quote(col)}: {message}", file=name)

    ids = parsed.get("sample_id")
    groups = {col: parsed[col] for col in group_cols}
    notes = [f"{name}: {line}" for line in notes]  # how the table was read (normalised)
    if group_cols:
        used = [c for c in header if c not in group_cols]
        notes.append(f"{name}: column(s) {', '.join(map(repr, group_cols))} read as groups "
                     f"(--by {group_cols[0]}); used: {', '.join(used)}")
    if layout == SCORE_TABLE:
        conf = parsed[TABLE_SCORE_NAME]
        return Predictions(
            name=name,
            logits=None,
            labels=parsed["correct"],
            correct=np.asarray(parsed["correct"], dtype=bool),
            true_labels=parsed.get(TRUE_LABEL_COLUMN),
            sample_ids=None if ids is None else ids.astype(object),
            scores={TABLE_SCORE_NAME: conf},
            score_attrs={TABLE_SCORE_NAME: {"method": TABLE_SCORE_METHOD, "params": {}}},
            foreign_format=SCORE_TABLE,
            groups=groups,
            notes=notes,
        )
    logits = np.column_stack([parsed[c] for c in required])
    pred = predictions_from_arrays(
        name, logits, labels=parsed.get("label"),
        sample_ids=None if ids is None else list(ids), class_names=class_names,
        dataset_names=("", ""), ignore_index=ignore_index,
    )
    pred.foreign_format = LOGITS_TABLE
    pred.groups, pred.notes = groups, notes
    return pred


def _group_values(cells: list[str]) -> np.ndarray:
    """A group column: its cells as stripped strings (an empty cell is its own group '')."""
    return np.asarray([c.strip() for c in cells], dtype=object)


#: column names people use, and the name lsfix reads them as (compared case-insensitively)
COLUMN_ALIASES = {
    "label": "label", "labels": "label", "y": "label", "y_true": "label", "target": "label",
    "targets": "label", "true_label": "label", "true": "label", "gt": "label",
    "ground_truth": "label",
    "confidence": TABLE_SCORE_NAME, "conf": TABLE_SCORE_NAME, "y_score": TABLE_SCORE_NAME,
    "y_conf": TABLE_SCORE_NAME,
    "correct": "correct", "is_correct": "correct",
    "y_pred": "y_pred", "pred": "y_pred", "prediction": "y_pred", "predicted": "y_pred",
    "pred_label": "y_pred",
    "sample_id": "sample_id", "sample_ids": "sample_id", "id": "sample_id",
}
_INDEX_HEADERS = ("", "Unnamed: 0", "index")


def _normalise_table(rows: list[list[str]], lines: list[int], name: str, notes: list[str]
                     ) -> tuple[list[list[str]], list[int], list[str], list[str] | None]:
    """Tables as people save them, mapped onto lsfix's two layouts.

    * No header, every cell of the first line a number (``np.savetxt``): every column is a
      logit (``logit_0..``); labels then come from ``--labels FILE``.
    * pandas' ``df.to_csv()`` index column (an empty or ``Unnamed: 0`` first header): dropped.
    * Usual key names (:data:`COLUMN_ALIASES`: ``y_true``, ``target``, ``y_score``, ...).
    * ``y_true`` + ``y_pred`` + a confidence: a score table, ``correct = y_true == y_pred``.
    * One numeric column per class, headed by the class names, plus a label column (class
      indices or class names): a logits table whose ``class_names`` are the headers.

    Returns the rows (header first, possibly synthetic), their lines, the header in lsfix's
    names, and the class names (or None).
    """
    if rows and all(is_number(c) for c in rows[0]):
        width = len(rows[0])
        notes.append(f"no header line: read its {width} column(s) as logits")
        return ([[f"logit_{i}" for i in range(width)], *rows], [lines[0], *lines],
                [f"logit_{i}" for i in range(width)], None)
    header = [c.strip() for c in rows[0]]
    if len(header) > 1 and header[0] in _INDEX_HEADERS:
        rows = [r[1:] if len(r) == len(header) else r for r in rows]
        header = header[1:]
        notes.append("dropped the index column (pandas' to_csv default)")
    canon = [COLUMN_ALIASES.get(c.lower(), c) for c in header]
    if any(_LOGIT_COLUMN.fullmatch(c) for c in canon) or (
            TABLE_SCORE_NAME in canon and "correct" in canon):
        return rows, lines, canon, None
    if TABLE_SCORE_NAME in canon and "label" in canon and "y_pred" in canon:
        t, p = canon.index("label"), canon.index("y_pred")
        out = [[*("confidence" if c == TABLE_SCORE_NAME else c for c in canon
                  if c not in ("label", "y_pred")), "correct", TRUE_LABEL_COLUMN]]
        keep = [j for j, c in enumerate(canon) if c not in ("label", "y_pred")]
        for r in rows[1:]:
            if len(r) != len(header):
                out.append(r)  # ragged: reported by the caller with its line
                continue
            # y_true is kept: two models' tables pair on it (correctness is not the label)
            out.append([*(r[j] for j in keep), "1" if r[t].strip() == r[p].strip() else "0",
                        r[t]])
        notes.append("correct = (y_true == y_pred)")
        return out, lines, out[0], None
    special = {"label", "sample_id", "y_pred"}
    data = rows[1:]
    cand = [j for j, c in enumerate(canon) if c not in special]
    classes = [j for j in cand if data and all(
        len(r) == len(header) and is_number(r[j]) for r in data[:50])]
    others = [j for j in cand if j not in classes]  # text columns: groups (--by NAME)
    if len(classes) >= 2 and "label" in canon or len(classes) >= 2 and not others:
        names = [header[j] for j in classes]
        lab = canon.index("label") if "label" in canon else None
        index = {n: str(i) for i, n in enumerate(names)}
        out = [[f"logit_{i}" for i in range(len(classes))]
               + (["label"] if lab is not None else [])
               + (["sample_id"] if "sample_id" in canon else [])
               + [header[j] for j in others]]
        sid = canon.index("sample_id") if "sample_id" in canon else None
        for r in data:
            if len(r) != len(header):
                out.append(r)
                continue
            y = [] if lab is None else [index.get(r[lab].strip(), r[lab].strip())]
            out.append([*(r[j] for j in classes), *y, *([r[sid]] if sid is not None else []),
                        *(r[j] for j in others)])
        notes.append(f"one column per class ({', '.join(names[:3])}"
                     f"{', ...' if len(names) > 3 else ''})"
                     + (" and a label column" if lab is not None else ""))
        return out, lines, out[0], names
    return rows, lines, canon, None


def _csv_rows(text: str, name: str, delimiter: str) -> tuple[list[list[str]], Sequence[int]]:
    """Non-blank rows and the physical line each starts on."""

    def reader() -> Any:
        return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    rd = reader()
    try:
        rows = list(rd)
    except csv.Error as exc:
        raise InputError(f"line {rd.line_num}: {exc}", file=name) from None
    if rd.line_num == len(rows) and [] not in rows:  # the common case: one row per line
        return rows, range(1, len(rows) + 1)
    kept: list[list[str]] = []
    lines: list[int] = []
    prev = 0
    rd = reader()
    for row in rd:  # rows spanning lines (quoted newlines) or blank lines: track each start
        if row:
            kept.append(row)
            lines.append(prev + 1)
        prev = rd.line_num
    return kept, lines


def _bad_cell(cell: str, what: str) -> str:
    return "empty cell" if not cell.strip() else f"{_quote(cell.strip())} is not {what}"


def _finite_floats(cells: list[str]) -> np.ndarray:
    try:
        arr = np.fromiter(map(float, cells), dtype=np.float64, count=len(cells))
    except ValueError:
        for i, cell in enumerate(cells):
            try:
                float(cell)
            except ValueError:
                raise _CellError(i, _bad_cell(cell, "a number")) from None
        raise
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise _CellError(i, f"{_quote(cells[i].strip())} is not finite")
    return arr


def _int_labels(cells: list[str], n_logits: int, ignore: int | None) -> np.ndarray:
    """Labels in ``[0, K)``; 0/1 for one logit column (as in
    :func:`lsfix.readers.predictions.validate_labels`)."""
    k = 2 if n_logits == 1 else n_logits
    try:
        values = list(map(int, cells))
    except ValueError:
        for i, cell in enumerate(cells):
            try:
                int(cell)
            except ValueError:
                raise _CellError(i, _bad_cell(cell, "an integer label")) from None
        raise
    lo, hi = min(values), max(values)
    if (lo < 0 or hi >= k) and any((v < 0 or v >= k) and v != ignore for v in values):
        i = next(i for i, v in enumerate(values) if (v < 0 or v >= k) and v != ignore)
        what = "0 or 1 (single-logit binary classifier)" if n_logits == 1 else f"in [0, {k})"
        raise _CellError(i, f"label {values[i]} is not {what}")
    return np.asarray(values, dtype=np.int64)


def _zero_one(cells: list[str]) -> np.ndarray:
    try:
        return np.fromiter(map(_TRUE_FALSE.__getitem__, cells), dtype=np.int64,
                           count=len(cells))
    except KeyError:
        out = np.empty(len(cells), dtype=np.int64)
        for i, cell in enumerate(cells):
            val = _TRUE_FALSE.get(cell.strip().lower())
            if val is None:
                raise _CellError(i, _bad_cell(cell, "0/1 or true/false")) from None
            out[i] = val
        return out


def _unique_strings(cells: list[str]) -> np.ndarray:
    """Sample ids, verbatim (cells are not stripped); non-empty and unique."""
    ids = cells
    if len(set(ids)) != len(ids) or not all(ids):
        first: dict[str, int] = {}
        for i, sid in enumerate(ids):
            if not sid:
                raise _CellError(i, "empty cell")
            if sid in first:
                raise _CellError(i, f"sample id {_quote(sid)} is repeated", other=first[sid])
            first[sid] = i
    return np.asarray(ids, dtype=object)


__all__ = ["LOGITS_TABLE", "SCORE_TABLE"]

"""docs/metrics.md's worked-example table is what lsfix computes (6 decimals, as printed)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lsfix.core import evaluate

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
INPUTS = {
    "A": ([0.9, 0.8, 0.7, 0.6, 0.8], [1, 1, 0, 0, 1]),
    "C": ([0.5, 0.5, 0.5, 0.2], [1, 0, 1, 0]),
    "E": ([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]),
}
FIELDS = ("aurc", "oracle_aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr")


def _rows() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8").split("<!-- worked-examples -->", 1)[1]
    lines = text.strip().splitlines()
    rows = []
    for line in lines[2:]:  # after the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


ROWS = _rows()


def test_table_covers_every_case_and_convention():
    from lsfix.core import CONVENTIONS

    assert {(r[0], r[1]) for r in ROWS} == {(c, v) for c in INPUTS for v in CONVENTIONS}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_row(row):
    case, conv, *values = row
    m = evaluate(*INPUTS[case], convention=conv)
    for name, cell in zip(FIELDS, values, strict=True):
        got = getattr(m, name)
        if cell == "—":
            assert math.isnan(got), name
        else:
            assert f"{got:.6f}" == cell, (name, got, cell)

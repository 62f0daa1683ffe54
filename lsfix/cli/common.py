"""Helpers shared by the commands: reading inputs, choosing output formats, parsing numbers."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from lsfix.errors import UsageError

if TYPE_CHECKING:
    from lsfix.predictions import Predictions


InputArg = Annotated[
    str,
    typer.Argument(help="Input file (lsfix HDF5, .npz, .npy, .pt, .csv, .tsv) or - for stdin.",
                   show_default=True),
]
OutputOpt = Annotated[str, typer.Option("-o", "--output", help="Output path, or - for stdout.")]
ConventionOpt = Annotated[
    str,
    typer.Option("--convention", "-c",
                 help="AURC convention: lsfix (mean risk over k=1..n), xia (paper, trapezoid "
                      "from 0), fd-shifts, torch-uncertainty."),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="table | tsv | json (default: table on a terminal, "
                                        "tsv otherwise)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes on stderr.")]
AllowIncompleteOpt = Annotated[
    bool, typer.Option("--allow-incomplete", help="Read an interrupted extract output anyway.")
]


def load(path: str, *, allow_incomplete: bool = False, need_labels: bool = False,
         need_logits: bool = False) -> Predictions:
    """Read and validate an input (``-`` = stdin)."""
    from lsfix import inputs
    from lsfix.cli import inputopts

    pred = inputs.read_predictions(path, allow_incomplete=allow_incomplete)
    opts = inputopts.current.get()
    cmd = opts.command if opts is not None else ""
    for line in pred.provenance.get("read_notes", []) if pred.foreign_format else []:
        note(f"lsfix {cmd}: note: {pred.name}: {line}")
    inputopts.adapt(pred, path, lambda msg: note(f"lsfix {cmd}: warning: {msg}"))
    if need_labels:
        pred.require_labels("this command")
    if need_logits and pred.logits is None:
        from lsfix.errors import InputError

        raise InputError(f"no logits in {pred.name}; this command needs logits (a score "
                         "table or scores file only gives confidences)")
    return pred


def note(message: str) -> None:
    """One line on stderr (a note or warning about how an input was read)."""
    sys.stderr.write(" ".join(message.split()) + "\n")
    sys.stderr.flush()


def report_format(fmt: str | None) -> str:
    """Resolve ``--format``: table on a terminal stdout, tsv otherwise."""
    if fmt is None:
        return "table" if sys.stdout.isatty() else "tsv"
    if fmt not in ("table", "tsv", "json"):
        raise UsageError(f"--format must be table, tsv or json, got {fmt!r}")
    return fmt


def check_convention(convention: str) -> str:
    from lsfix.core import CONVENTIONS

    if convention not in CONVENTIONS:
        raise UsageError(
            f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}"
        )
    return convention


def parse_floats(values: list[str] | None, what: str, *, lo: float, hi: float,
                 lo_open: bool = True) -> tuple[float, ...]:
    """Parse repeated/comma-separated numbers in (lo, hi] (or [lo, hi])."""
    out: list[float] = []
    for raw in values or []:
        for part in str(raw).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                v = float(part)
            except ValueError:
                raise UsageError(f"{what}: {part!r} is not a number") from None
            ok = (v > lo if lo_open else v >= lo) and v <= hi
            if not ok or v != v:
                bracket = "(" if lo_open else "["
                raise UsageError(f"{what} must be in {bracket}{lo:g}, {hi:g}], got {part}")
            out.append(v)
    return tuple(out)


def parse_grid(text: str) -> tuple[float, ...]:
    """``0,1,2`` or ``0-9`` (integers) into a p grid."""
    text = text.strip()
    try:
        if "-" in text and "," not in text:
            a, b = text.split("-", 1)
            lo, hi = int(a), int(b)
            if hi < lo:
                raise ValueError
            return tuple(float(p) for p in range(lo, hi + 1))
        vals = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageError(f"--grid: {text!r} is not a list like 0,1,2 or a range like 0-9") from None
    if not vals or any(v < 0 or v != v for v in vals):
        raise UsageError(f"--grid: p values must be >= 0, got {text!r}")
    return vals


def stdout_write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()

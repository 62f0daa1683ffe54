"""Helpers shared by the commands: reading inputs, choosing output formats, parsing numbers."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

from lsfix.errors import UsageError

if TYPE_CHECKING:
    from lsfix.cli.app import Run
    from lsfix.readers.predictions import Predictions


def use_scheduler(value: str, timeout: float = 10.0
                  ) -> contextlib.AbstractContextManager[object]:
    """``--scheduler``: the runner scores and metrics run on (:func:`lsfix.scheduler`; ``sync``
    yields None and imports no Dask; an address is checked before Dask is imported and must
    answer within ``timeout`` seconds)."""
    import lsfix

    if not 0 < timeout <= 3600:
        raise UsageError(f"--scheduler-timeout must be in (0, 3600] seconds, got {timeout:g}")
    return lsfix.scheduler(value, timeout)  # type: ignore[no-any-return]


def load(path: str, run: Run, *, allow_incomplete: bool = False,
         need_labels: bool | str = False,
         need_logits: bool = False, ignore_index: int | None = None,
         labels: str | None = None, with_files: list[str] | None = None,
         overwrite: bool = False, defer_dense_labels: bool = False,
         runner: object = None) -> Predictions:
    """Read one input of ``run`` with :func:`lsfix.read` (``-`` = stdin). ``--labels`` and
    ``--input`` apply to the command's own inputs (``run.inputs``); ``labels``: a labels file
    for this input alone (``--fit-labels`` for a ``--fit`` file). How a foreign input was read
    is printed now; what lsfix assumed about it, when the command succeeds."""
    import lsfix
    from lsfix.cli.app import note

    own = path in run.inputs
    spec = labels if labels is not None else (run.labels if own else None)
    pred = lsfix.read(path, labels=spec, input=run.kind if own else None,
                      ignore_index=ignore_index, with_scores=with_files or (),
                      overwrite_scores=overwrite, allow_incomplete=allow_incomplete,
                      need_labels=need_labels,
                      need_logits=need_logits or bool(with_files),
                      defer_dense_labels=defer_dense_labels)
    pred.runner = runner  # --scheduler: where this input's scores and metrics are computed
    for line in [] if run.quiet else pred.notes:  # how a foreign input was read
        note(f"lsfix: {line}")
    for line in pred.warnings:
        run.warn_later(f"lsfix {run.cmd}: warning: {line}")
    return pred


def require_fit_labels(pred: Predictions, option: str) -> None:
    """:func:`lsfix.readers.entry.require_fit_labels` (a fit file without labels: exit 3)."""
    from lsfix.readers.entry import require_fit_labels as require

    require(pred, option)


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


#: Most replicates ``--bootstrap`` accepts (each costs a pass over the confidences).
MAX_BOOTSTRAP = 100_000
#: Most p values ``--grid`` accepts, and the largest p (|z|^p overflows float64 beyond it
#: for ordinary logits; the tuned p of the paper lies in 0..10).
MAX_GRID_POINTS = 1_000
MAX_P = 1_000.0


def parse_grid(text: str) -> tuple[float, ...]:
    """``0,1,2`` or ``0-9`` (integers) into a p grid, at most :data:`MAX_GRID_POINTS` values
    each in ``[0, MAX_P]`` (checked before anything is built)."""
    text = text.strip()
    bad = f"--grid: {text[:40]!r} is not a list like 0,1,2 or a range like 0-9"
    if len(text) > 20 * MAX_GRID_POINTS:
        raise UsageError(f"--grid: more than {MAX_GRID_POINTS} values (the limit)")
    span: tuple[int, int] | None = None
    try:
        if "-" in text and "," not in text:
            a, b = text.split("-", 1)
            span = int(a), int(b)
            if span[1] < span[0] or span[0] < 0:
                raise ValueError
            vals: tuple[float, ...] = ()
        else:
            vals = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageError(bad) from None
    if span is not None:
        count = span[1] - span[0] + 1
        if count > MAX_GRID_POINTS:
            raise UsageError(f"--grid {text}: {count} values; the limit is {MAX_GRID_POINTS}")
        vals = tuple(float(p) for p in range(span[0], span[1] + 1))
    if len(vals) > MAX_GRID_POINTS:
        raise UsageError(f"--grid: {len(vals)} values; the limit is {MAX_GRID_POINTS}")
    if not vals or any(not (0 <= v <= MAX_P) for v in vals):
        raise UsageError(f"--grid: p values must be in [0, {MAX_P:g}], got {text[:40]!r}")
    return vals


def stdout_write(text: str) -> None:
    """Text for stdout, held until the command succeeds (:func:`lsfix.streams.command_outputs`)."""
    from lsfix.streams import STDIO, write_text_atomic

    write_text_atomic(STDIO, text)


def check_boot_unit(unit: str, by: str | None) -> None:
    """``--bootstrap-unit``: ``row`` or ``image``, and ``image`` not with ``--by``."""
    if unit not in ("row", "image"):
        raise UsageError(f"--bootstrap-unit must be row or image, got {unit!r}")
    if unit == "image" and by is not None:
        raise UsageError("--bootstrap-unit image does not go with --by (groups resample rows)")


def check_boot(n_boot: int, level: float) -> None:
    if n_boot < 0:
        raise UsageError(f"--bootstrap must be >= 0, got {n_boot}")
    if n_boot > MAX_BOOTSTRAP:
        raise UsageError(f"--bootstrap {n_boot} is above the limit of {MAX_BOOTSTRAP} "
                         "replicates")
    if not 0 < level < 1:
        raise UsageError(f"--level must be in (0, 1), got {level}")


def check_report_options(convention: str, bootstrap: int, level: float, fmt: str | None,
                         coverage: list[str] | None, risk: list[str] | None,
                         plot: str | None) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    """Validate the options curve and compare share; return (format, coverages, risks)."""
    check_convention(convention)
    check_boot(bootstrap, level)
    out_fmt = report_format(fmt)
    covs = parse_floats(coverage, "--coverage", lo=0.0, hi=1.0)
    risks = parse_floats(risk, "--risk", lo=0.0, hi=1.0, lo_open=False)
    if plot is not None:
        from lsfix.output.plot import plot_format

        plot_format(plot)
    return out_fmt, covs, risks

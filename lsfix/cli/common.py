"""Helpers shared by the commands: reading inputs, choosing output formats, parsing numbers."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

from lsfix.errors import UsageError

if TYPE_CHECKING:
    from lsfix.cli.app import Run
    from lsfix import Predictions


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

    own = path in run.inputs
    spec = labels if labels is not None else (run.labels if own else None)
    pred = lsfix.read(path, labels=spec, input=run.kind if own else None,
                      ignore_index=ignore_index, with_scores=with_files or (),
                      overwrite_scores=overwrite, allow_incomplete=allow_incomplete,
                      need_labels=need_labels,
                      need_logits=need_logits or bool(with_files),
                      defer_dense_labels=defer_dense_labels)
    pred.runner = runner  # --scheduler: where this input's scores and metrics are computed
    run.took(pred)  # how a foreign input was read (now), what lsfix assumed (at the end)
    return pred


def report_format(fmt: str | None) -> str:
    """Resolve ``--format``: table on a terminal stdout, tsv otherwise."""
    if fmt is None:
        return "table" if sys.stdout.isatty() else "tsv"
    if fmt not in ("table", "tsv", "json"):
        raise UsageError(f"--format must be table, tsv or json, got {fmt!r}")
    return fmt


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

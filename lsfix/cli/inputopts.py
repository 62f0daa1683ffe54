"""``--labels FILE`` and ``--input KIND``, on every command that reads logits.

Labels often live apart from the logits (``logits.npy`` + ``labels.npy``), and a model's
outputs are often saved as probabilities. These two options say so, for ``score``,
``normalise``, ``curve``, ``compare`` and ``audit``:

``--labels FILE``
    labels for the command's input file(s) (not for ``--fit``/``--val`` files, which carry
    their own): ``.npy``, ``.npz``, ``.txt``, or a column of a ``.csv``/``.tsv``
    (``table.csv:COLUMN``); integers, or class names matched against the input's class names.
    An input that already holds labels must hold the same ones.
``--input logits|probs|log-probs``
    what the numbers are (:mod:`lsfix.input_kind`); without it lsfix detects probabilities and
    log-probabilities and says in one line what it assumed.

:func:`install` adds both options to the registered commands by wrapping their callbacks (the
command modules stay as they are); :func:`lsfix.cli.common.load` applies them to each input
through :func:`adapt`.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import typing
from dataclasses import dataclass
from typing import Any

import typer

from lsfix.cli.options import InputKindOpt, LabelsOpt
from lsfix.errors import InputError, UsageError

COMMANDS = ("score", "normalise", "curve", "compare", "audit")


@dataclass(frozen=True)
class InputOptions:
    command: str
    labels: str | None
    kind: str | None
    inputs: tuple[str, ...]


current: contextvars.ContextVar[InputOptions | None] = contextvars.ContextVar(
    "lsfix_input_options", default=None)
#: warnings about how inputs were read, printed when the command succeeds (an error is one line)
pending: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "lsfix_input_warnings", default=None)


def warn_later(line: str) -> None:
    """Queue a warning line for the end of a successful command (now, outside a command)."""
    queue = pending.get()
    if queue is None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    else:
        queue.append(" ".join(line.split()))


def _wrap(fn: Any, command: str) -> Any:
    hints = typing.get_type_hints(fn, include_extras=True)
    sig = inspect.signature(fn)
    params = [p.replace(annotation=hints.get(p.name, p.annotation))
              for p in sig.parameters.values()]
    extra = [inspect.Parameter("labels", inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=LabelsOpt),
             inspect.Parameter("input_kind", inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=InputKindOpt)]
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params] + extra

    @functools.wraps(fn)
    def wrapper(*args: Any, labels: str | None = None, input_kind: str | None = None,
                **kwargs: Any) -> Any:
        inputs = kwargs.get("input", kwargs.get("inputs"))
        names = tuple(inputs) if isinstance(inputs, list | tuple) else (
            (inputs,) if inputs is not None else ())
        token = current.set(InputOptions(command, labels, input_kind, names))
        said = pending.set([])
        ok = False
        try:
            out = fn(*args, **kwargs)
            ok = True
            return out
        except typer.Exit as exc:
            ok = exc.exit_code in (0, 4)  # 4: the gate failed, the run itself worked
            raise
        finally:
            lines = pending.get()
            pending.reset(said)
            current.reset(token)
            if ok:  # a failed command prints its one error line and nothing else
                for line in lines:
                    sys.stderr.write(line + "\n")
                sys.stderr.flush()

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**hints, "labels": LabelsOpt, "input_kind": InputKindOpt}
    return wrapper


def install(app: typer.Typer) -> None:
    """Add ``--labels`` and ``--input`` to the commands that read logits (once)."""
    for info in app.registered_commands:
        if info.name in COMMANDS and not getattr(info.callback, "_lsfix_inputopts", False):
            info.callback = _wrap(info.callback, info.name)
            info.callback._lsfix_inputopts = True  # type: ignore[union-attr]


def adapt(pred: Any, path: str, note: Any, *, ignore_index: int | None = None) -> None:
    """Apply the current ``--labels``/``--input`` to ``pred`` (read from ``path``).

    ``note(message)`` prints a one-line warning (what lsfix assumed about the input).
    """
    from lsfix import input_kind

    opts = current.get()
    if opts is None:
        return
    kind = input_kind.check_kind(opts.kind)
    labelled = opts.labels and path in opts.inputs
    if (kind is None and not labelled and opts.command in ("curve", "compare", "audit")
            and getattr(pred, "labels", None) is None and getattr(pred, "correct", None) is None
            and getattr(pred, "deferred_labels", None) is None
            and getattr(pred, "logits", None) is not None):
        return  # it will be refused for its missing labels: read no logit row before that
    said = input_kind.apply(pred, kind)
    if said:
        note(said)
    if opts.labels and path in opts.inputs:
        attach_labels(pred, opts.labels, ignore_index=ignore_index)


def attach_labels(pred: Any, spec: str, *, ignore_index: int | None = None) -> None:
    """Give ``pred`` the labels of ``spec`` (validated against its rows and classes)."""
    import numpy as np

    from lsfix.foreign import read_labels_file
    from lsfix.predictions import validate_labels

    spatial = tuple(getattr(getattr(pred, "logits", None), "spatial", ()) or ())
    dense_shape = None
    if spatial:
        dense_shape = (pred.logits.shape[0] // int(np.prod(spatial)), *spatial)
    raw, name = read_labels_file(spec, dense_shape)
    if getattr(pred, "logits", None) is None:
        raise UsageError(f"--labels: {pred.name} holds scores and their correctness, not "
                         "logits; labels cannot be added to it")
    if raw.dtype.kind == "U":  # class names
        classes = list(pred.class_names or [])
        if not classes:
            raise InputError(f"holds class names ({raw[0]!r}, ...) but {pred.name} has no "
                             "class names to match them with; give class indices",
                             file=name)
        index = {c: i for i, c in enumerate(classes)}
        unknown = [c for c in raw if c not in index]
        if unknown:
            raise InputError(f"class {unknown[0]!r} is not one of {pred.name}'s classes "
                             f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''})",
                             file=name)
        raw = np.asarray([index[c] for c in raw], dtype=np.int64)
    n = pred.logits.shape[0]
    if raw.shape[0] != n:
        raise InputError(f"{raw.shape[0]} labels for {n} rows of {pred.name}", file=name)
    labels, keep = validate_labels(raw, pred.logits.shape[1], name,
                                   ignore_index=ignore_index,
                                   binary=bool(getattr(pred.logits, "binary", False)),
                                   dataset="labels")
    if pred.labels is not None and not np.array_equal(np.asarray(pred.labels), labels):
        row = int(np.argmax(np.asarray(pred.labels) != labels))
        raise InputError(f"differs from the labels {pred.name} already holds (first at row "
                         f"{row}); drop --labels or fix the file", file=name)
    pred.labels = labels
    if keep is not None:
        pred.keep = keep
    pred.correct = None  # recomputed from the new labels


__all__ = ["COMMANDS", "InputOptions", "adapt", "attach_labels", "current", "install",
           "pending", "warn_later"]

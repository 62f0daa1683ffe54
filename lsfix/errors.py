"""Exit codes and the exception hierarchy of lsfix.

The library raises :class:`LsfixError` subclasses; only the CLI turns them into
``lsfix <cmd>: error: <message>`` on stderr and the matching :class:`ExitCode`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; each means exactly one thing (the README carries this table)."""

    OK = 0
    RUNTIME = 1  #: I/O failure, missing optional dependency, model load failure
    USAGE = 2  #: bad command line (unknown option, conflicting flags, bad value)
    BAD_INPUT = 3  #: input data refused (not HDF5, wrong schema, shapes, NaN/inf, labels)
    GATE_FAILED = 4  #: ``compare --fail-if`` rule breached (the run itself worked)
    #: ``compare --fail-if``: no rule breached, but one is undecided (its interval straddles
    #: the threshold; the run itself worked)
    GATE_INCONCLUSIVE = 5
    INTERRUPTED = 130  #: Ctrl-C / SIGINT


class LsfixError(Exception):
    """Base class: a user-facing, one-line error with an exit code."""

    exit_code: ExitCode = ExitCode.RUNTIME

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(LsfixError, ValueError):
    """Input data is unusable; the message names ``file:/dataset`` where there is one."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, file: str | None = None,
                 dataset: str | None = None) -> None:
        where = ""
        if file is not None:
            where = f"{file}:{dataset}" if dataset else f"{file}"
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.dataset = dataset


class UsageError(LsfixError, ValueError):
    """The request itself is invalid (bad option value, conflicting options)."""

    exit_code = ExitCode.USAGE


class RuntimeFailure(LsfixError, RuntimeError):
    """An operation failed for a reason outside the input data (I/O, model loading)."""

    exit_code = ExitCode.RUNTIME


class MissingDependency(RuntimeFailure):
    """An optional dependency (torch, torchvision, timm) is not installed."""


class GateFailed(LsfixError):
    """A ``compare --fail-if`` rule was breached."""

    exit_code = ExitCode.GATE_FAILED


class GateInconclusive(LsfixError):
    """No ``compare --fail-if`` rule was breached, but at least one is undecided: its
    bootstrap interval holds values on both sides of the threshold."""

    exit_code = ExitCode.GATE_INCONCLUSIVE

"""The typer application object, the error-to-exit-code mapping and shared CLI helpers."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import typer

from lsfix.errors import ExitCode, LsfixError

app = typer.Typer(
    name="lsfix",
    help=(
        "How well does a classifier know when it is wrong? Selective-classification metrics "
        "from saved logits, and the MaxLogit-pNorm fix for label smoothing.\n\n"
        "Example: lsfix score model.h5 -m msp | lsfix normalise - | lsfix curve -"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def err(cmd: str, message: str) -> None:
    """Print ``lsfix <cmd>: error: <message>`` on stderr (one line)."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"lsfix {cmd}: error: {line}\n")
    sys.stderr.flush()


def warn(cmd: str, message: str) -> None:
    """Print ``lsfix <cmd>: warning: <message>`` on stderr."""
    sys.stderr.write(f"lsfix {cmd}: warning: {' '.join(str(message).split())}\n")
    sys.stderr.flush()


def note(message: str) -> None:
    """An informational line on stderr."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def handle_errors(cmd: str) -> Iterator[None]:
    """Map lsfix errors, OS errors and Ctrl-C to one-line messages and exit codes."""
    try:
        yield
    except LsfixError as exc:
        err(cmd, str(exc))
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        err(cmd, "interrupted; no output was written")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except BrokenPipeError:
        # the reader went away (e.g. `| head`); not an error of ours
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(int(ExitCode.OK)) from None
    except MemoryError:
        err(cmd, "out of memory; use smaller chunks or a machine with more memory")
        raise typer.Exit(int(ExitCode.RUNTIME)) from None
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        err(cmd, f"{where}{exc.strerror or exc}")
        raise typer.Exit(int(ExitCode.RUNTIME)) from None


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("lsfix: error: interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))

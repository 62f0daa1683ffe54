"""The typer application object, the error-to-exit-code mapping and shared CLI helpers."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import typer
from typer.core import TyperGroup

from lsfix import __version__
from lsfix.errors import ExitCode, LsfixError


class LsfixGroup(TyperGroup):
    """Command group whose command-line errors read like every other lsfix error.

    ``lsfix curve --seed -1`` prints ``lsfix curve: error: Invalid value for '--seed': ...
    (see 'lsfix curve --help')`` on one line and exits 2, instead of click's multi-line usage
    block. ``--help`` and a bare ``lsfix`` still print help.
    """

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        global _reported
        _reported = False
        from lsfix.cli.helptext import polish

        polish(self)
        if os.environ.get("_LSFIX_COMPLETE"):  # a TAB: typer's completion classes answer it
            from typer._completion_classes import completion_init

            completion_init()
        try:
            rv = super().main(args=args, prog_name=prog_name or "lsfix",
                              complete_var=complete_var, standalone_mode=False, **extra)
        except Exception as exc:  # click's exceptions, duck-typed (typer vendors click)
            if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
                if type(exc).__name__ == "Abort":
                    err("", "interrupted")
                    return _finish(int(ExitCode.INTERRUPTED), standalone_mode)
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # type: ignore[attr-defined]
                return _finish(int(exc.exit_code), standalone_mode)
            ctx = getattr(exc, "ctx", None)
            path = ctx.command_path if ctx is not None else "lsfix"
            from lsfix.safetext import one_line

            msg = one_line(exc.format_message())
            sys.stderr.write(one_line(f"{path}: error: {msg} (see '{path} --help')") + "\n")
            sys.stderr.flush()
            return _finish(int(exc.exit_code), standalone_mode)
        code = rv if isinstance(rv, int) else 0
        if code == ExitCode.INTERRUPTED and not _reported:
            # Ctrl-C while click parsed the command line: typer turns it into a silent Exit(130)
            err("", "interrupted")
        return _finish(code, standalone_mode)

    def get_help_option(self, ctx: Any) -> Any:
        """``-h/--help`` of the root, coerced without pydantic (see
        :func:`lsfix.cli.helptext.plain_coercion`)."""
        option = super().get_help_option(ctx)
        if option is not None:
            from lsfix.cli.helptext import plain_coercion

            plain_coercion(option, bool)
        return option


def _finish(code: int, standalone_mode: bool) -> int:
    if standalone_mode:
        sys.exit(code)
    return code


app = typer.Typer(
    name="lsfix",
    cls=LsfixGroup,
    help=(
        "How well does a classifier know when it is wrong? Selective-classification metrics "
        "from saved logits, and the MaxLogit-pNorm fix for label smoothing. "
        f"(lsfix {__version__})\n\n"
        "Examples:\n\n"
        "  lsfix audit model.h5\n\n"
        "  lsfix score model.h5 -m energy | lsfix normalise model.h5 --with - | lsfix curve -"
    ),
    no_args_is_help=True,
    add_completion=False,  # --show-completion/--install-completion SHELL below
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _say(text: str) -> None:
    """``text`` on stdout for a root option (``--version``, ``--show-completion``): a closed
    stdout is one error line and exit 1, as in a command."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except LsfixError as exc:
        err("", str(exc))
        raise typer.Exit(int(exc.exit_code)) from None
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(0)


def _print_version(value: bool) -> None:
    if value:
        _say(f"lsfix {__version__}\n")


#: the shells whose completion script lsfix prints (typer's completion classes)
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _shell(value: str) -> str:
    if value not in SHELLS:
        raise typer.BadParameter(f"{value!r} is not a shell lsfix completes; choose one of "
                                 f"{', '.join(SHELLS)}")
    return value


def completion_script(shell: str) -> str:
    """The completion script ``lsfix --show-completion SHELL`` prints (typer's, for lsfix)."""
    from typer._completion_classes import completion_init
    from typer._completion_shared import get_completion_script

    completion_init()
    return get_completion_script(prog_name="lsfix", complete_var="_LSFIX_COMPLETE",
                                 shell=_shell(shell))


def _show_completion(value: str | None) -> None:
    if value is not None:
        _say(completion_script(value) + "\n")


def _install_completion(value: str | None) -> None:
    if value is not None:
        from typer._completion_classes import completion_init
        from typer._completion_shared import install

        completion_init()
        shell, path = install(shell=_shell(value), prog_name="lsfix",
                              complete_var="_LSFIX_COMPLETE")
        sys.stdout.write(f"{shell} completion installed in {path}; it takes effect in a new "
                         "shell\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", is_eager=True,
                                 callback=_print_version, help="Print the version and exit."),
    show_completion: str | None = typer.Option(
        None, "--show-completion", metavar="SHELL", is_eager=True, expose_value=False,
        callback=_show_completion,
        help=f"Print the completion script for SHELL ({', '.join(SHELLS)}) and exit."),
    install_completion: str | None = typer.Option(
        None, "--install-completion", metavar="SHELL", is_eager=True, expose_value=False,
        callback=_install_completion,
        help="Install the completion script for SHELL in your shell's start-up files."),
) -> None:
    """How well does a classifier know when it is wrong?"""


_reported = False  #: an error line was printed (so an exit code 130 is not silent)


def err(cmd: str, message: str) -> None:
    """Print ``lsfix <cmd>: error: <message>`` on stderr (one line)."""
    global _reported
    _reported = True
    from lsfix.safetext import one_line

    prefix = f"lsfix {cmd}" if cmd else "lsfix"
    sys.stderr.write(one_line(f"{prefix}: error: {message}") + "\n")
    sys.stderr.flush()


def warn(cmd: str, message: str) -> None:
    """Print ``lsfix <cmd>: warning: <message>`` on stderr."""
    from lsfix.safetext import one_line

    sys.stderr.write(one_line(f"lsfix {cmd}: warning: {message}") + "\n")
    sys.stderr.flush()


def note(message: str) -> None:
    """An informational line on stderr."""
    from lsfix.safetext import one_line

    sys.stderr.write(one_line(message) + "\n")
    sys.stderr.flush()


@dataclass
class Run:
    """One command's run: its name, the ``--labels``/``--input`` options for its own inputs,
    and the warning lines printed when it succeeds (a failed command prints one error line and
    nothing else). :func:`handle_errors` makes it; commands pass it to
    :func:`lsfix.cli.common.load`."""

    cmd: str
    labels: str | None = None
    kind: str | None = None
    inputs: tuple[str, ...] = ()
    later: list[str] = field(default_factory=list)
    #: ``-q``: no notes or warnings on stderr (:func:`lsfix.cli.common.load` and
    #: :meth:`warn_later` drop them); errors still print
    quiet: bool = False

    def warn_later(self, line: str) -> None:
        """Queue one stderr line for the end of a successful run (none under ``-q``)."""
        from lsfix.safetext import one_line

        if not self.quiet:
            self.later.append(one_line(line))

    def took(self, result: object) -> None:
        """Say how a result's input was read (``result.notes``, now) and what lsfix assumed
        about it (``result.warnings``, when the run succeeds); nothing under ``-q``."""
        for line in [] if self.quiet else getattr(result, "notes", ()):
            note(f"lsfix: {line}")
        for line in getattr(result, "warnings", ()):
            self.warn_later(f"lsfix {self.cmd}: warning: {line}")

    def flush(self) -> None:
        for line in self.later:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.later.clear()


@contextlib.contextmanager
def handle_errors(cmd: str, *, labels: str | None = None, kind: str | None = None,
                  inputs: Sequence[str] = (), quiet: bool = False) -> Iterator[Run]:
    """Map lsfix errors, OS errors and Ctrl-C to one-line messages and exit codes; yields the
    command's :class:`Run` (``labels``/``kind``: ``--labels``/``--input`` for ``inputs``;
    ``quiet``: ``-q``)."""
    from lsfix import streams as io
    io.reset_committed()
    run = Run(cmd, labels, kind, tuple(inputs), quiet=quiet)
    try:
        with io.command_outputs():  # every output is committed only if the command succeeds
            planned_in, planned_out = _planned_paths()
            # an output may not be an input, and every output file's folder exists: refuse
            # now (--report names a folder, audit, or a file whose folder it makes, compare:
            # its own rule)
            report = _planned_paths(("report",))[1]
            io.check_planned(planned_in, planned_out,
                             folders_exist=[p for p in planned_out if p not in report])
            yield run
        run.flush()
    except typer.Exit as exc:
        if exc.exit_code in (0, 4, 5):  # 4, 5: the gate failed or is undecided; the run worked
            run.flush()
        raise
    except LsfixError as exc:
        if exc.exit_code in (ExitCode.GATE_FAILED, ExitCode.GATE_INCONCLUSIVE):
            run.flush()  # the run itself worked: its warnings stand
        err(cmd, str(exc))
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        if io.committed:  # the signal came after an output was moved into place
            done = ", ".join(io.committed)
            err(cmd, f"interrupted; {done} had already been written completely")
        else:
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
    except ImportError as exc:  # a missing optional package: one line, exit 1 (RUNTIME)
        err(cmd, missing_module_message(exc))
        raise typer.Exit(int(ExitCode.RUNTIME)) from None
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        err(cmd, f"{where}{exc.strerror or exc}")
        raise typer.Exit(int(ExitCode.RUNTIME)) from None


#: The extra of ``pyproject.toml`` that installs each optional top-level package.
OPTIONAL_EXTRAS = {
    "torch": "extract", "torchvision": "extract", "dask": "dask", "distributed": "dask",
}


def missing_module_message(exc: ImportError) -> str:
    """One line for an :class:`ImportError` raised inside a command: the package that is
    missing and what installs it (an optional extra, or a reinstall of lsfix for a core
    dependency such as h5py or matplotlib)."""
    top = (exc.name or "").split(".")[0]
    if not top:  # no module name recorded: a broken install, say what Python said
        return f"cannot import a module this command needs ({exc}); reinstall lsfix"
    if top == "lsfix":
        return f"lsfix is incompletely installed ({exc}); reinstall lsfix"
    if isinstance(exc, ModuleNotFoundError):
        what = f"needs the Python package {top!r}, which is not installed"
    else:
        what = f"cannot import the Python package {top!r} ({exc})"
    extra = OPTIONAL_EXTRAS.get(top)
    if extra is not None:
        return f"{what}: pip install 'lsfix[{extra}]'"
    return f"{what}; it is a dependency of lsfix: reinstall lsfix (pip install lsfix)"


#: Command parameters that name files lsfix reads, and files it writes.
INPUT_PARAMS = ("input", "inputs", "fit", "val", "params", "shards", "model", "dataset",
                "weights", "class_names", "fit_labels", "labels", "with_files", "calibration_fit",
                "threshold_params")
#: of those, the ones that may name a table column after a colon (``table.csv:COLUMN``)
COLUMN_PARAMS = ("labels", "fit_labels")
OUTPUT_PARAMS = ("output", "save_params", "plot", "report", "rank_map", "reliability")


def _planned_paths(outputs: tuple[str, ...] = OUTPUT_PARAMS) -> tuple[list[str], list[str]]:
    """(input paths, output paths) of the running command, from its parsed parameters
    (``outputs``: the parameters that name outputs)."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - typer's layout changed: the write-time check stays
        return [], []
    ctx = get_current_context(silent=True)
    if ctx is None:
        return [], []

    def paths(names: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        for name in names:
            value = ctx.params.get(name)
            for v in value if isinstance(value, list | tuple) else [value]:
                if isinstance(v, str) and v:
                    out.append(v)
                    if name in COLUMN_PARAMS and ":" in v and not os.path.exists(v):
                        out.append(v.rsplit(":", 1)[0])  # FILE.csv:COLUMN reads FILE.csv
        return out

    return paths(INPUT_PARAMS), [p for p in paths(outputs) if not os.path.isdir(p)]


_default_unraisablehook = sys.unraisablehook


def _unraisable(info: Any) -> None:
    """A Ctrl-C (or SIGTERM) that lands inside a finaliser (a garbage-collector callback, a
    ``__del__``) is printed by Python as "Exception ignored in ..." with a traceback, and
    dropped: lsfix would go on running. Deliver it again, to the main program, a moment later."""
    if isinstance(info.exc_type, type) and issubclass(info.exc_type, KeyboardInterrupt):
        import threading

        # a real SIGINT to the main thread (not _thread.interrupt_main): it also wakes a
        # blocking call such as time.sleep or a read
        main_id = threading.main_thread().ident
        timer = threading.Timer(0.01, signal.pthread_kill, (main_id, signal.SIGINT))
        timer.daemon = True
        timer.start()
        return
    _default_unraisablehook(info)


def main() -> None:
    """Console-script entry point."""
    from lsfix import streams as io

    # SIGTERM while an output is being written: clean up and exit 130, like Ctrl-C
    io.sigterm_interrupts_writes = True
    io.guard_closed_stdout()  # started with stdout closed (>&-): one error line, exit 1
    sys.unraisablehook = _unraisable
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("lsfix: error: interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))

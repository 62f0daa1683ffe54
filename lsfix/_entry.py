"""The console script: imports the CLI inside the Ctrl-C guard (a Ctrl-C during start-up
exits 130 with one line, not a traceback).

``lsfix --version`` (alone) is answered before the command line is built: it needs neither
typer nor any command module, so it costs little more than Python's own start-up
(``bench/bench_startup.py``). The root option ``-V/--version`` of :mod:`lsfix.cli.app` prints
the same line wherever else it is given.
"""

from __future__ import annotations

import sys


def main() -> None:
    """``lsfix`` entry point."""
    if sys.argv[1:] in (["--version"], ["-V"]) and sys.stdout is not None:
        import os

        from lsfix import __version__

        try:
            sys.stdout.write(f"lsfix {__version__}\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader went away: not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    try:
        from lsfix.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("lsfix: error: interrupted\n")
        sys.exit(130)
    cli_main()

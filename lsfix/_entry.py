"""The console script: imports the CLI inside the Ctrl-C guard (a Ctrl-C during start-up
exits 130 with one line, not a traceback)."""

from __future__ import annotations

import sys


def main() -> None:
    """``lsfix`` entry point."""
    try:
        from lsfix.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("lsfix: error: interrupted\n")
        sys.exit(130)
    cli_main()

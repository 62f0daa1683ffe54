"""The ``lsfix`` command line: a thin typer layer (parse -> schema/io -> core -> format).

Each command lives in its own module under :mod:`lsfix.cli` and registers itself on :data:`app`.
Heavy libraries (torch, matplotlib) are imported only inside the command that needs them, so
``lsfix --help`` and shell completion stay fast.
"""

from __future__ import annotations

# command modules register themselves on import
from lsfix.cli import commands as _commands  # noqa: F401,E402
from lsfix.cli.app import app, main

__all__ = ["app", "main"]

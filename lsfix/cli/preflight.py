"""Checks every command makes before any work, so that a mistake costs no computation.

* the one rule for where files go (:mod:`lsfix.cli.options`), every file lsfix writes goes
  into a folder that exists, is checked with the input/output clash by
  :func:`lsfix.streams.check_planned` (``folders_exist``) when a command starts.
* :func:`refuse_existing`: the ``--overwrite`` rule of the commands that write data files.
"""

from __future__ import annotations

import os
import stat

from lsfix.errors import UsageError

STDIO = "-"


def refuse_existing(path: str | None, overwrite: bool) -> None:
    """``--overwrite``: an existing regular file at ``path`` (``-o``, ``--save-params``) is
    replaced only with it (exit 2 otherwise, before any work). stdout, a pipe, a device or
    ``/dev/stdout`` are written into, never "replaced"."""
    if path is None or path == STDIO or overwrite:
        return
    try:
        st = os.stat(path)
    except OSError:
        return  # a new file (a missing folder is reported by streams.check_planned)
    if stat.S_ISREG(st.st_mode):
        from lsfix.streams import display_name

        raise UsageError(f"{display_name(path)}: exists; pass --overwrite to replace it")

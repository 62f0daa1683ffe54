"""Checks every command makes before any work, so that a mistake costs no computation.

* :func:`check_output_folders`: the one rule for where files go (:mod:`lsfix.cli.options`):
  every file lsfix writes goes into a folder that exists; lsfix makes no folder the user did
  not name. The same message and exit code (1) as when the file is written
  (:func:`lsfix.streams.atomic_output`), only before the work instead of after it.
* :func:`refuse_existing`: the ``--overwrite`` rule of the commands that write data files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from lsfix.errors import RuntimeFailure, UsageError

STDIO = "-"


def check_output_folders(paths: Iterable[str]) -> None:
    """Refuse (exit 1) an output path whose folder does not exist."""
    from lsfix.streams import display_name

    for path in paths:
        if not path or path == STDIO:
            continue
        folder = os.path.dirname(path)
        if folder and not os.path.isdir(folder):
            raise RuntimeFailure(f"{display_name(path)}: folder {display_name(folder)!r} does "
                                 "not exist; nothing was written")


def refuse_existing(path: str | None, overwrite: bool) -> None:
    """``--overwrite``: an existing regular file at ``path`` (``-o``, ``--save-params``) is
    replaced only with it (exit 2 otherwise, before any work). stdout, a pipe, a device or
    ``/dev/stdout`` are written into, never "replaced"."""
    if path is None or path == STDIO or overwrite:
        return
    try:
        st = os.stat(path)
    except OSError:
        return  # a new file (a missing folder is reported by check_output_folders)
    if stat.S_ISREG(st.st_mode):
        from lsfix.streams import display_name

        raise UsageError(f"{display_name(path)}: exists; pass --overwrite to replace it")

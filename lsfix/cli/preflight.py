"""Checks every command makes before any work, so that a mistake costs no computation.

* :func:`check_output_folders`: the one rule for where files go (:mod:`lsfix.cli.options`):
  every file lsfix writes goes into a folder that exists; lsfix makes no folder the user did
  not name. The same message and exit code (1) as when the file is written
  (:func:`lsfix.streams.atomic_output`), only before the work instead of after it.
* :func:`refuse_existing`: the ``--overwrite`` rule of the commands that write data files.
* :func:`check_unfitted_scores`: ``-s msp_ts`` with no temperature, said with the commands
  that work.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from lsfix.errors import LsfixError, RuntimeFailure, UsageError

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


def check_unfitted_scores(scores: Iterable[str] | None, stored: Iterable[str], file: str,
                          command: str) -> None:
    """``-s msp_ts`` (no ``:T``) that ``file`` does not store: say how to get a temperature,
    with commands that work, before anything is computed (exit 2)."""
    from lsfix.core import parse_score

    have = set(stored)
    for name in scores or []:
        if name in have:
            continue
        try:
            spec = parse_score(name)
        except LsfixError:  # not a score spec: the evaluation says so, naming the file
            continue
        if spec.family == "msp_ts" and spec.param is None:
            raise UsageError(
                f"-s {name} needs a temperature and {file} stores no msp_ts score: give one "
                f"(-s msp_ts:1.5), or fit it on labelled data first: lsfix score {file} -m "
                f"msp_ts --fit VAL.h5 -o scored.h5, then lsfix {command} scored.h5 -s msp_ts")

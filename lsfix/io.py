"""Streams and files: ``-`` handling, stdin buffering, atomic writes, TTY checks.

Every output lsfix writes goes through :func:`atomic_output`: the data is written to a temporary
file in the target folder, flushed and fsynced, then moved over the target with ``os.replace``.
A killed or failed run leaves the previous file (or nothing) at the target, never a truncated one.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import signal
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsfix.errors import InputError, RuntimeFailure, UsageError

STDIO = "-"


#: Test hook (tests/hardening/test_kill.py): ``LSFIX_TEST_STOP_AT=NAME[:N][,NAME[:N]...]``
#: makes lsfix stop itself with SIGSTOP the N-th time (default: the first) it passes the
#: checkpoint NAME. A test waits for the stop (``waitpid(WUNTRACED)``), then kills or
#: interrupts the process at that exact point instead of racing a timer. Checkpoints:
#: ``temp-created`` (the temporary output exists, empty), ``temp-written`` (written and
#: closed, not yet fsynced or renamed), ``replaced`` (moved over the target, the folder not yet
#: fsynced), ``extract-commit`` (an extract committed a batch of rows). Unset, it costs one
#: dictionary lookup per checkpoint.
_STOP_ENV = "LSFIX_TEST_STOP_AT"
_stop_seen: dict[str, int] = {}


def checkpoint(name: str) -> None:
    """Stop this process (SIGSTOP) here when ``$LSFIX_TEST_STOP_AT`` asks for ``name``."""
    spec = os.environ.get(_STOP_ENV)
    if not spec or not hasattr(signal, "SIGSTOP"):
        return
    _stop_seen[name] = seen = _stop_seen.get(name, 0) + 1
    for item in spec.split(","):
        want, _, nth = item.strip().partition(":")
        if want == name and seen == (int(nth) if nth.isdigit() else 1):
            os.kill(os.getpid(), signal.SIGSTOP)


def display_name(path: str | os.PathLike[str]) -> str:
    """Name used in messages: ``<stdin>``/``<stdout>`` for ``-``, else the path as given."""
    return "<stdin>" if str(path) == STDIO else str(path)


def read_stdin_bytes() -> io.BytesIO:
    """Read all of stdin into memory (HDF5 needs seek); refuse a terminal."""
    stream = sys.stdin
    if stream is None:
        raise UsageError("no input: stdin is closed; give a file path")
    if stream.isatty():
        raise UsageError("no input: stdin is a terminal; give a file path or pipe data in")
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    if not data:
        raise InputError("empty input (0 bytes)", file="<stdin>")
    return io.BytesIO(data)


def refuse_binary_to_tty(path: str) -> None:
    """Refuse to write binary (HDF5) output to a terminal."""
    if path == STDIO and sys.stdout is not None and sys.stdout.isatty():
        raise UsageError(
            "refusing to write binary HDF5 to a terminal; use -o FILE or pipe into another command"
        )


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _describe_oserror(exc: OSError, target: str) -> str:
    if exc.errno == errno.ENOSPC:
        return f"{target}: no space left on device; nothing was written"
    if exc.errno == errno.EDQUOT:
        return f"{target}: disk quota exceeded; nothing was written"
    if exc.errno == errno.EFBIG:
        return (f"{target}: file too large (a file-size limit, 'ulimit -f', or the "
                "file system's maximum); nothing was written")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{target}: permission denied; nothing was written"
    return f"{target}: cannot write ({exc.strerror or exc}); nothing was written"


_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def _as_oserror(exc: BaseException) -> OSError | None:
    """The ``OSError`` inside an h5py/HDF5 write failure, if there is one.

    HDF5 reports a failed ``write()`` (disk full, file-size limit) as ``RuntimeError`` or an
    ``OSError`` without ``errno``, with ``errno = 28, error message = '...'`` in the text.
    """
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc
    found = _HDF5_ERRNO.search(str(exc))
    if found is None:
        return exc if isinstance(exc, OSError) else None
    code = int(found.group(1))
    return OSError(code, os.strerror(code))


#: Targets :func:`atomic_output` has replaced since :func:`reset_committed`; the CLI says so
#: when a Ctrl-C lands after a commit ("interrupted; out.h5 had already been written ...").
committed: list[str] = []


def reset_committed() -> None:
    """Forget the committed targets (each command starts with an empty list)."""
    committed.clear()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back for a few instructions, so that ``os.replace`` and the record
    of it happen together; a signal that arrives meanwhile is delivered right after."""
    mask = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    except (AttributeError, ValueError, OSError):  # no pthread_sigmask (Windows)
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


#: Set by the CLI: while :func:`atomic_output` holds a temporary file, SIGTERM (a cancelled CI
#: job, a scheduler's time limit) raises ``KeyboardInterrupt`` like Ctrl-C, so the temporary
#: file is removed and lsfix exits 130. Outside that window SIGTERM keeps its default action
#: (exit at once): nothing is half written then, and a read stuck inside the HDF5 C library on
#: a corrupt file, where no Python handler can run, must still be stoppable with SIGTERM.
sigterm_interrupts_writes = False


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_cleans_up() -> Iterator[None]:
    """Route SIGTERM to ``KeyboardInterrupt`` for the duration (CLI only, main thread only,
    and only where SIGTERM has its default action)."""
    import threading

    if (not sigterm_interrupts_writes
            or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``path`` (or is streamed to stdout).

    Parameters
    ----------
    path : str or PathLike
        Target file, or ``-`` for stdout (the finished bytes are copied to stdout at the end).

    Notes
    -----
    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and the
    target is untouched. Disk-full and permission errors become :class:`RuntimeFailure`.
    """
    target = str(path)
    to_stdout = target == STDIO
    # an existing device or FIFO (-o /dev/null, -o /dev/stdout, a named pipe) is written
    # into, never replaced by a regular file
    special = not to_stdout and _is_special(target)
    streamed = to_stdout or special
    folder = Path(tempfile.gettempdir()) if streamed else (Path(target).parent or Path("."))
    if not streamed and not folder.is_dir():
        raise RuntimeFailure(
            f"{target}: folder {str(folder)!r} does not exist; nothing was written"
        )
    if not streamed and Path(target).is_dir():
        raise RuntimeFailure(f"{target}: is a folder, not a file; nothing was written")
    base = "lsfix-stdout" if streamed else Path(target).name
    with _sigterm_cleans_up():
        yield from _write_through_temp(target, folder, base, suffix, to_stdout, special)


def _write_through_temp(target: str, folder: Path, base: str, suffix: str, to_stdout: bool,
                        special: bool) -> Iterator[Path]:
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{base}.", suffix=suffix, dir=folder)
    except OSError as exc:
        raise RuntimeFailure(_describe_oserror(exc, display_name(target))) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        checkpoint("temp-created")
        yield tmp
        checkpoint("temp-written")
        if to_stdout:
            _copy_to(tmp, sys.stdout.buffer)
        elif special:
            with open(target, "wb") as dst:
                _copy_to(tmp, dst)
        else:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, _target_mode(target))
            with _signals_deferred():
                os.replace(tmp, target)
                committed.append(display_name(target))
            checkpoint("replaced")
            _fsync_dir(folder)
    except BrokenPipeError:
        raise  # the reader went away: the CLI exits quietly, as with text output
    except (OSError, RuntimeError) as exc:
        oserr = _as_oserror(exc)
        if oserr is None:
            raise
        shown = "<stdout>" if to_stdout else display_name(target)
        raise RuntimeFailure(_describe_oserror(oserr, shown)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _target_mode(target: str) -> int:
    """Permissions for the output: the replaced file's, else 0o666 less the umask
    (``mkstemp`` creates 0o600, which would surprise a user whose umask allows more)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _is_special(target: str) -> bool:
    """True for an existing target that is not a regular file or folder (device, FIFO)."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _copy_to(path: Path, out: Any) -> None:
    """Copy a finished file to a stream, looping over short writes of a raw stream."""
    with open(path, "rb") as src:
        while chunk := src.read(1 << 20):
            view = memoryview(chunk)
            while view:
                written = out.write(view)
                view = view[len(view) if written is None else written:]
    out.flush()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` (or stdout for ``-``) atomically."""
    if str(path) == STDIO:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` (or stdout for ``-``) atomically."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)

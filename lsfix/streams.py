"""Streams and files: ``-`` handling, stdin buffering, atomic writes, TTY checks.

Every output lsfix writes goes through :func:`atomic_output`: the data is written to a temporary
file in the target folder, flushed and fsynced, then moved over the target with ``os.replace``.
A killed or failed run leaves the previous file (or nothing) at the target, never a truncated one.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import signal
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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
    """Name used in messages and reports: ``<stdin>``/``<stdout>`` for ``-``, else the path as
    given, with bytes that are not UTF-8 shown as ``\\xNN`` (a file name need not be text)."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text == STDIO:
        return "<stdin>"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def tsv_field(text: str) -> str:
    """One TSV cell: backslash, tab, newline and carriage return written as ``\\\\``,
    ``\\t``, ``\\n``, ``\\r`` (the escapes of PostgreSQL's text format and of Python), so
    a file name holding them cannot break rows or columns."""
    from lsfix.safetext import tsv_field as _field

    return _field(text)


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None``, so that ``json.dumps(...,
    allow_nan=False)`` writes strict JSON (``null``, never ``NaN`` or ``Infinity``)."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return value
    if isinstance(value, np.floating):
        return strict_json(float(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return strict_json(value.tolist())
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value`` (see :func:`strict_json`)."""
    return json.dumps(strict_json(value), allow_nan=False, **kwargs)


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


# --------------------------------------------------------------------------------------------
# where an output goes


@dataclass(frozen=True)
class Target:
    """Where ``-o PATH`` really leads (:func:`resolve_target`).

    ``kind`` is ``"stdout"`` (``-``), ``"fd"`` (an open descriptor: ``/dev/stdout``,
    ``/dev/fd/N``, ``/proc/self/fd/N`` or a symlink to one; the bytes are written into it),
    ``"through"`` (a device, FIFO, socket or any path under ``/dev`` or ``/proc``: opened and
    written into, never replaced) or ``"file"`` (a regular file, existing or new: written to a
    temporary file next to it and renamed over it). ``path`` is the file that is written: for
    a symlink to a regular file, the file the link leads to (the link itself stays).
    """

    kind: str
    path: str
    fd: int = -1


_FD_PATH = re.compile(r"/(?:dev/fd|proc/(?:self|thread-self|\d+)(?:/task/\d+)?/fd)/(\d+)")
_STD_PATHS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def _fd_of(path: str) -> int | None:
    if path in _STD_PATHS:
        return _STD_PATHS[path]
    m = _FD_PATH.fullmatch(path)
    if m is None:
        return None
    pid = re.match(r"/proc/(\d+)/", path)
    if pid is not None and int(pid.group(1)) != os.getpid():
        return None  # another process's descriptor: written through like any /proc path
    return int(m.group(1))


def _lexical(path: str) -> str:
    """Absolute path whose folder is resolved (symlinked folders followed) but whose last
    component is kept, so the last component can be examined with ``lstat``."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(folder), base)


def resolve_target(target: str) -> Target:
    """Classify an output path without following it blindly (see :class:`Target`).

    Raises
    ------
    RuntimeFailure
        The path is a folder, or a symlink loop.
    """
    if target == STDIO:
        if stdout_closed:
            raise RuntimeFailure("cannot write to stdout: it is closed; give -o FILE")
        return Target("stdout", STDIO, 1)
    path = _lexical(target)
    for _ in range(40):
        fd = _fd_of(path)
        if fd is not None:
            if fd == 1 and stdout_closed:
                raise RuntimeFailure(f"{display_name(target)}: cannot write to stdout: it is "
                                     "closed; give -o FILE")
            return Target("fd", path, fd)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if path.startswith(("/dev/", "/proc/")):
                return Target("through", path)
            return Target("file", path)
        except OSError as exc:
            raise RuntimeFailure(_describe_oserror(exc, display_name(target))) from None
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(path)
            path = _lexical(os.path.join(os.path.dirname(path), link))
            continue
        if stat.S_ISDIR(st.st_mode):
            raise RuntimeFailure(f"{display_name(target)}: is a folder, not a file; "
                                 "nothing was written")
        if stat.S_ISREG(st.st_mode) and not path.startswith(("/dev/", "/proc/")):
            return Target("file", path)
        return Target("through", path)
    raise RuntimeFailure(f"{display_name(target)}: too many levels of symbolic links; "
                         "nothing was written")


# --------------------------------------------------------------------------------------------
# inputs of the running command (an output must never replace one)

#: ``(st_dev, st_ino) -> name`` of every input the running command opened.
_inputs: dict[tuple[int, int], str] = {}


def note_input(path: Any, name: str | None = None) -> None:
    """Remember an input of the running command, by device and inode (links followed).

    Only inside :func:`command_outputs` (one CLI command): a long-running program that uses
    the library may read a file and later rewrite it."""
    if not _scope_depth or not isinstance(path, str | os.PathLike) or str(path) == STDIO:
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    _inputs.setdefault((st.st_dev, st.st_ino), name or display_name(path))


def _check_not_input(target: str, where: Target) -> None:
    try:
        st = os.fstat(where.fd) if where.kind in ("fd", "stdout") else os.stat(where.path)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode):
        return
    hit = _inputs.get((st.st_dev, st.st_ino))
    if hit is not None:
        shown = display_name(target)
        same = "" if hit == shown else f" (the same file as input {hit})"
        raise UsageError(f"{shown}: is an input of this command{same}; refusing to overwrite "
                         "it (write to another path; lsfix has no in-place mode)")


def check_planned(inputs: list[str], outputs: list[str], *,
                  folders_exist: Sequence[str] = ()) -> None:
    """Refuse, before any work, an output path that is the same file as an input path
    (device and inode: symlinks and hard links included). The same check runs again when
    each output is written, against every input actually opened.

    ``folders_exist``: output paths whose folder must exist already (exit 1 otherwise, the
    message :func:`atomic_output` gives when the file is written, only before the work): lsfix
    makes no folder the user did not name."""
    for path in folders_exist:
        if not path or path == STDIO:
            continue
        folder = os.path.dirname(path)
        if folder and not os.path.isdir(folder):
            raise RuntimeFailure(f"{display_name(path)}: folder {display_name(folder)!r} does "
                                 "not exist; nothing was written")
    for path in inputs:
        note_input(path)
    for out in outputs:
        if out == STDIO:
            continue
        try:
            where = resolve_target(out)
        except RuntimeFailure:
            continue  # reported when the output is written
        if where.kind != "stdout":
            _check_not_input(out, where)


# --------------------------------------------------------------------------------------------
# one command, one transaction: every output is committed only when the command succeeds


@dataclass
class _Pending:
    tmp: Path
    target: str
    where: Target
    mode: int | None


_scope_depth = 0
_pending: list[_Pending] = []
_stdout_text: list[str] = []
_made_folders: list[Path] = []
_sigterm_saved: Any = None


@contextlib.contextmanager
def command_outputs() -> Iterator[None]:
    """Hold every output of one command until it succeeds (the CLI wraps each command).

    Inside, :func:`atomic_output` and :func:`write_text_atomic` stage their data (temporary
    files, stdout text) and :func:`make_folders` records the folders it creates. When the
    block ends normally (or with :class:`~lsfix.errors.GateFailed` or
    :class:`~lsfix.errors.GateInconclusive`: the run itself worked)
    everything is moved into place, in order; on any other exception, ``KeyboardInterrupt`` or
    SIGTERM included, the temporary files are removed, the folders this command created are
    removed again when empty, and nothing reaches stdout.
    """
    global _scope_depth
    if _scope_depth:
        yield
        return
    _scope_depth = 1
    _inputs.clear()
    _pending.clear()
    _stdout_text.clear()
    _made_folders.clear()
    try:
        yield
    except BaseException as exc:
        from lsfix.errors import GateFailed, GateInconclusive

        if isinstance(exc, GateFailed | GateInconclusive) or (isinstance(exc, SystemExit)
                                           and exc.code in (0, None)):
            _commit_all()
        else:
            _discard_all()
        raise
    else:
        _commit_all()
    finally:
        _discard_all()
        _restore_sigterm()
        _scope_depth = 0
        _inputs.clear()


def make_folders(folder: str | os.PathLike[str]) -> None:
    """``mkdir -p``; inside :func:`command_outputs` the folders made are removed again when
    the command fails (and they are empty)."""
    missing: list[Path] = []
    p = Path(folder)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(f"{display_name(folder)}: cannot create the folder "
                             f"({exc.strerror}); nothing was written") from None
    if _scope_depth:
        _made_folders.extend(missing)  # deepest first


def _commit_all() -> None:
    if _stdout_text:
        text = "".join(_stdout_text)
        _stdout_text.clear()
        _stdout_write(text)
    while _pending:
        item = _pending[0]
        _commit_one(item)
        _pending.pop(0)


def _discard_all() -> None:
    while _pending:
        item = _pending.pop()
        with contextlib.suppress(OSError):
            item.tmp.unlink()
    _stdout_text.clear()
    while _made_folders:
        with contextlib.suppress(OSError):
            _made_folders.pop(0).rmdir()


def _restore_sigterm() -> None:
    global _sigterm_saved
    if _sigterm_saved is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, _sigterm_saved)
        _sigterm_saved = None


def _sigterm_until_scope_ends() -> None:
    """Route SIGTERM to ``KeyboardInterrupt`` until the command's outputs are committed."""
    global _sigterm_saved
    import threading

    if (_sigterm_saved is not None or not sigterm_interrupts_writes
            or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        return
    _sigterm_saved = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


class _ClosedStdout(io.TextIOBase):
    """Stands in for ``sys.stdout`` when lsfix was started with stdout closed (``>&-``)."""

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        raise RuntimeFailure("cannot write to stdout: it is closed; give -o FILE")

    def flush(self) -> None:
        return None

    @property
    def buffer(self) -> Any:
        return self

    def fileno(self) -> int:
        raise RuntimeFailure("cannot write to stdout: it is closed; give -o FILE")


#: True when lsfix was started with descriptor 1 closed (``>&-``).
stdout_closed = False


def guard_closed_stdout() -> None:
    """Started with stdout closed (``>&-``): replace ``sys.stdout`` by a stream whose writes
    give a one-line :class:`RuntimeFailure` (exit 1), and park ``/dev/null`` on descriptors
    0-2 that are closed, so that no input file lsfix opens gets descriptor 1 (where a write
    to ``-o /dev/stdout`` would land in it)."""
    global stdout_closed
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            if fd == 1:
                stdout_closed = True
            with contextlib.suppress(OSError):
                null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
                if null != fd:  # lowest free descriptor: fd itself when closed
                    os.close(null)
    if stdout_closed:
        sys.stdout = _ClosedStdout()


def _stdout_write(text: str) -> None:
    from lsfix.safetext import term

    text = term(text)  # names are data: no control character from a file reaches a terminal
    out = sys.stdout
    if out is None:
        raise RuntimeFailure("cannot write to stdout: it is closed; give -o FILE")
    try:
        out.write(text)
        out.flush()
    except UnicodeEncodeError:
        data = text.encode("utf-8", "backslashreplace")
        buf = getattr(out, "buffer", None)
        if buf is None:
            raise RuntimeFailure("cannot write to stdout: its encoding cannot show this "
                                 "text") from None
        buf.write(data)
        buf.flush()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path; when done it replaces ``path`` (or is streamed to stdout).

    Parameters
    ----------
    path : str or PathLike
        Target file, or ``-`` for stdout (the finished bytes are copied to stdout at the end).

    Notes
    -----
    Where the bytes go is decided by :func:`resolve_target`: a regular file (or a new one) is
    replaced by ``os.replace`` from a temporary file in its folder (a symlink to a regular file
    is followed: the file it leads to is replaced, the link stays); stdout, an open descriptor
    (``/dev/stdout``), a device, a FIFO, a socket or a ``/dev``/``/proc`` path is written
    into. An output that is the same file as an input of the command (device and inode, so
    also through symlinks and hard links) is refused with :class:`UsageError` (exit 2).

    Inside :func:`command_outputs` the finished file is only staged: it is moved into place
    when the whole command succeeds. On any exception (including ``KeyboardInterrupt``) the
    temporary file is removed and the target is untouched. Disk-full and permission errors
    become :class:`RuntimeFailure`.
    """
    target = str(path)
    where = resolve_target(target)
    _check_not_input(target, where)
    if where.kind == "file":
        folder = Path(where.path).parent
        if not folder.is_dir():
            shown = display_name(os.path.dirname(target) or ".")
            raise RuntimeFailure(
                f"{display_name(target)}: folder {shown!r} does not exist; nothing was written")
        base = Path(where.path).name
    else:
        folder = Path(tempfile.gettempdir())
        base = "lsfix-stdout"
    if _scope_depth:
        _sigterm_until_scope_ends()
        yield from _write_through_temp(target, where, folder, base, suffix)
        return
    with _sigterm_cleans_up():
        yield from _write_through_temp(target, where, folder, base, suffix)


#: Longest file name most file systems take (bytes); temporary names are cut to fit.
NAME_MAX = 255


def _temp_prefix(base: str, suffix: str) -> str:
    """``.<base>.`` cut so that ``.<base>.<8 random chars><suffix>`` fits :data:`NAME_MAX`."""
    room = NAME_MAX - 2 - 8 - len(os.fsencode(suffix)) - 2
    raw = os.fsencode(base)
    if len(raw) > room:
        raw = raw[:room]
        base = os.fsdecode(raw)
    return f".{base}."


def _write_through_temp(target: str, where: Target, folder: Path, base: str,
                        suffix: str) -> Iterator[Path]:
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(base, suffix), suffix=suffix,
                                        dir=folder)
    except OSError as exc:
        raise RuntimeFailure(_describe_oserror(exc, display_name(target))) from None
    os.close(fd)
    tmp = Path(tmp_name)
    keep = False
    try:
        checkpoint("temp-created")
        yield tmp
        checkpoint("temp-written")
        if where.kind == "file":
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            mode = _target_mode(where.path)
        else:
            mode = None
        item = _Pending(tmp, target, where, mode)
        if _scope_depth:
            _pending.append(item)
            keep = True
        else:
            _commit_one(item)
    except BrokenPipeError:
        raise  # the reader went away: the CLI exits quietly, as with text output
    except (OSError, RuntimeError) as exc:
        oserr = _as_oserror(exc)
        if oserr is None:
            raise
        shown = "<stdout>" if where.kind == "stdout" else display_name(target)
        raise RuntimeFailure(_describe_oserror(oserr, shown)) from None
    finally:
        if not keep:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _commit_one(item: _Pending) -> None:
    """Move one finished temporary file into place (or copy it into a stream)."""
    where, target, tmp = item.where, item.target, item.tmp
    try:
        _check_not_input(target, where)
        if where.kind == "stdout":
            _copy_to(tmp, sys.stdout.buffer)
        elif where.kind == "fd":
            if where.fd == 1:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
            _copy_to(tmp, _FdWriter(where.fd))
        elif where.kind == "through":
            with open(where.path, "wb") as dst:
                _copy_to(tmp, dst)
        else:
            if item.mode is not None:
                os.chmod(tmp, item.mode)
            with _signals_deferred():
                os.replace(tmp, where.path)
                committed.append(display_name(target))
            checkpoint("replaced")
            _fsync_dir(Path(where.path).parent)
    except BrokenPipeError:
        raise
    except OSError as exc:
        shown = "<stdout>" if where.kind == "stdout" else display_name(target)
        raise RuntimeFailure(_describe_oserror(exc, shown)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class _FdWriter:
    """``write`` into an existing descriptor (``/dev/stdout`` when stdout is a file)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: Any) -> int:
        return os.write(self.fd, data)

    def flush(self) -> None:
        return None


def _target_mode(target: str) -> int:
    """Permissions for the output: the replaced file's, else 0o666 less the umask
    (``mkstemp`` creates 0o600, which would surprise a user whose umask allows more)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


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
    """Write ``text`` to ``path`` (or stdout for ``-``) atomically; inside
    :func:`command_outputs` stdout text is held until the command succeeds. Control
    characters (from names in the data) are written visibly (:func:`lsfix.safetext.term`)."""
    from lsfix.safetext import term

    text = term(text)
    if str(path) == STDIO:
        if _scope_depth:
            _stdout_text.append(text)
            return
        _stdout_write(text)
        return
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` (or stdout for ``-``) atomically."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def open_input(src: str | io.BytesIO, name: str) -> Iterator[IO[bytes]]:
    """An input file the user named, opened for reading in binary at offset 0 and noted as an
    input (:func:`note_input`: no output of this command may replace it); stdin's buffer
    (``src`` an ``io.BytesIO``) is rewound, not closed. A failure to open is one
    :class:`InputError` naming ``name``."""
    if isinstance(src, io.BytesIO):
        src.seek(0)
        yield src
        return
    try:
        fh = open(src, "rb")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", file=name) from None
    note_input(src, name)  # an output of this command may never replace it
    with fh:
        yield fh

"""The one local-only HDF5 opener: every HDF5 file lsfix reads is opened here.

An HDF5 file can make the library read data from somewhere else: an external link
(``/logits -> other.h5:/x``), a virtual dataset (its rows mapped from other files), external
raw storage (the bytes in a named flat file), or a chunk compressed with a filter that
libhdf5 looks for as a *plugin* (a shared library it loads from ``HDF5_PLUGIN_PATH`` or its
default folders, which runs code). lsfix reads none of these:

* :func:`open_local` opens a file read-only and walks **every** link in it once (at most
  :data:`MAX_OBJECTS`): an external link anywhere, a soft link anywhere, a virtual dataset,
  a dataset with external storage, or a dataset compressed with a filter that is not built
  into libhdf5/h5py is refused with :class:`~lsfix.errors.InputError` (exit 3) naming
  ``file:/path``. A file that passes holds only its own data.
* Loading filter plugins is switched off for the whole process when this module is imported
  (``H5PLset_loading_state(0)`` and an empty plugin search path), so a chunk with an unknown
  filter makes libhdf5 fail at once instead of searching plugin folders. Setting the
  environment variable ``LSFIX_HDF5_PLUGINS=1`` leaves plugin loading as libhdf5 configures it
  (the user then trusts every library in those folders; see ``docs/promises.md``).
* :func:`require_stored` checks that a dataset's declared size is backed by data stored in
  the file (every chunk written, contiguous storage allocated), so a 6 KB file cannot declare
  2^40 rows and make lsfix compute over fill values: cost follows the real bytes.

Every lsfix reader (``read_predictions``, ``merge``, ``extract --resume``, ``--fit``,
``--val``, scores files, extract's HDF5 datasets) goes through :func:`open_local`;
``tests/test_architecture.py`` holds that no other module calls ``h5py.File(..., "r")``.
"""

from __future__ import annotations

import ctypes
import os
import re
from typing import Any

import h5py
import numpy as np

from lsfix.readers import untrusted
from lsfix.errors import InputError

#: Environment variable that allows libhdf5 to load filter plugins (value ``1``).
PLUGINS_ENV = "LSFIX_HDF5_PLUGINS"
#: Largest storage chunk lsfix reads (libhdf5 decompresses a chunk whole; lsfix's own files
#: and h5py's automatic chunking use at most 1 MiB).
MAX_CHUNK_BYTES = 64 << 20
#: Links visited per file before it is refused (an lsfix file holds a few dozen).
MAX_OBJECTS = 100_000
# The raw-data chunk cache stays at libhdf5's default (1 MiB): readers align their row blocks
# to the storage chunks instead (each chunk is decompressed once), and a large, warm cache
# makes H5Ocopy (the copy of /logits into an output) 5-40x slower (measured: 0.2 s cold vs
# 8.3 s after a full read with a 64 MiB cache, 10k x 1000 float32 in gzip chunks).

_plugins_state: str | None = None


def plugins_allowed() -> bool:
    """True when the user asked for HDF5 filter plugins (``LSFIX_HDF5_PLUGINS=1``)."""
    return os.environ.get(PLUGINS_ENV, "") == "1"


def _libhdf5() -> Any:
    """The libhdf5 that h5py loaded (found in ``/proc/self/maps``), or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            maps = fh.read()
    except OSError:
        return None
    for path in re.findall(r"(/\S*/libhdf5(?:-[0-9a-f]+)?\.so[.0-9]*)$", maps, re.M):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def disable_plugins() -> str:
    """Switch HDF5 filter plugin loading off for this process (idempotent).

    Returns how it was done: ``"off"`` (loading state 0 and no search path), ``"no-path"``
    (search path emptied; libhdf5 not found for ``H5PLset_loading_state``), or ``"allowed"``
    (``LSFIX_HDF5_PLUGINS=1``).
    """
    global _plugins_state
    if _plugins_state is not None:
        return _plugins_state
    if plugins_allowed():
        _plugins_state = "allowed"
        return _plugins_state
    from h5py import h5pl

    while h5pl.size():
        h5pl.remove(0)
    state = "no-path"
    lib = _libhdf5()
    if lib is not None and hasattr(lib, "H5PLset_loading_state"):
        lib.H5PLset_loading_state.argtypes = [ctypes.c_uint]
        if lib.H5PLset_loading_state(0) >= 0:
            state = "off"
    _plugins_state = state
    return state


disable_plugins()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().split("\n", 1)[0]
    return text if len(text) <= 160 else text[:157] + "..."


def open_local(src: Any, name: str) -> h5py.File:
    """Open ``src`` (a path or a seekable file object) read-only and check it is local.

    Raises
    ------
    InputError
        Not a readable HDF5 file (naming a truncation), or anything that would read outside
        the file (see the module docstring).
    """
    disable_plugins()
    try:
        f = h5py.File(src, "r")
    except (OSError, ValueError) as exc:
        cut = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", str(exc))
        reason = str(exc).split("(")[0].strip() or "unreadable"
        if cut:  # say how much is missing: an interrupted copy or download
            reason = f"only {cut.group(1)} of its {cut.group(2)} bytes are there"
        raise InputError(f"not a readable HDF5 file ({reason}); truncated or corrupt?",
                         file=name) from None
    try:
        check_file(f, name)
    except BaseException:
        f.close()
        raise
    return f


def check_file(f: h5py.File, name: str) -> None:
    """Walk every link of ``f`` once; refuse links and datasets that read outside it."""
    seen = 0
    problem: list[tuple[str, str]] = []

    def visit(raw: bytes, info: Any) -> Any:
        # low level on purpose: names arrive as bytes, so a name that is not UTF-8 is refused
        # here instead of raising inside h5py's callback (which ends as a SystemError)
        nonlocal seen
        seen += 1
        try:
            where = "/" + raw.decode("utf-8")
        except UnicodeDecodeError:
            problem.append(("/" + raw.decode("utf-8", "backslashreplace"),
                            "has a link name that is not UTF-8; lsfix files use UTF-8 names"))
            return True
        if seen > MAX_OBJECTS:
            problem.append((where, f"the file holds more than {MAX_OBJECTS} objects; "
                                   "refusing to walk it"))
            return True
        if info.type == h5py.h5l.TYPE_EXTERNAL:
            target = _link_text(f, raw)
            problem.append((where, f"is an external link to {target}; "
                                   "refusing to read outside the file"))
            return True
        if info.type == h5py.h5l.TYPE_SOFT:
            problem.append((where, f"is a soft link to {_link_text(f, raw)}; lsfix files store "
                                   "their datasets directly"))
            return True
        if info.type != h5py.h5l.TYPE_HARD:
            problem.append((where, f"is a user-defined link (type {int(info.type)}); "
                                   "refusing to follow it"))
            return True
        return None

    try:
        f.id.links.visit(visit, info=True)
    except (OSError, RuntimeError, KeyError, ValueError, SystemError) as exc:
        raise InputError(f"unreadable HDF5 structure ({_reason(exc)}); corrupt file?",
                         file=name) from None
    if problem:
        where, what = problem[0]
        raise InputError(what, file=name, dataset=where)
    found: list[str] = []

    def datasets(path: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found.append("/" + path)

    try:
        f.visititems(datasets)
        for path in found:
            check_dataset(f[path], name, path)
    except InputError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, SystemError) as exc:
        raise InputError(f"unreadable HDF5 structure ({_reason(exc)}); corrupt file?",
                         file=name) from None


def _link_text(f: h5py.File, raw: bytes) -> str:
    """The target of a soft or external link, for a message (never followed)."""
    try:
        val = f.id.links.get_val(raw)
    except (OSError, RuntimeError, KeyError, ValueError, SystemError):
        return "an unreadable target"
    parts = val if isinstance(val, tuple) else (val,)
    text = [p.decode("utf-8", "backslashreplace") if isinstance(p, bytes) else str(p)
            for p in parts]
    return ":".join(text)


def check_dataset(ds: h5py.Dataset, name: str, path: str) -> None:
    """Refuse a virtual dataset, external raw storage and filters that need a plugin."""
    if ds.is_virtual:
        raise InputError("is a virtual dataset; refusing to read data outside the file",
                         file=name, dataset=path)
    if ds.external:
        raise InputError("uses external storage; refusing to read data outside the file",
                         file=name, dataset=path)
    dcpl = ds.id.get_create_plist()
    for i in range(dcpl.get_nfilters()):
        code = int(dcpl.get_filter(i)[0])
        if not h5py.h5z.filter_avail(code):
            hint = ("" if plugins_allowed() else
                    f"; lsfix loads no HDF5 filter plugins unless {PLUGINS_ENV}=1")
            raise InputError(f"is compressed with HDF5 filter {code}, which is not built in"
                             f"{hint}", file=name, dataset=path)


def dcpl_filters(ds: h5py.Dataset) -> int:
    """Number of filters (compression, shuffle, checksums) in a dataset's pipeline."""
    return int(ds.id.get_create_plist().get_nfilters())


def require_stored(ds: h5py.Dataset, name: str, path: str) -> None:
    """Refuse a dataset whose declared shape is not backed by data stored in the file.

    A chunked dataset must have every chunk written; a contiguous one its whole storage
    allocated. Rows that were never written would be read as the fill value: numbers that
    nobody computed, at a cost set by a header instead of by the file's bytes.
    """
    shape = ds.shape
    if shape is None or 0 in shape:
        return
    declared = int(np.prod([int(s) for s in shape], dtype=object)) * int(ds.dtype.itemsize)
    try:
        layout = ds.id.get_create_plist().get_layout()
        if layout == h5py.h5d.CHUNKED:
            chunks = ds.chunks or shape
            expected = 1
            for s, c in zip(shape, chunks, strict=True):
                expected *= -(-int(s) // max(1, int(c)))
            have = int(ds.id.get_num_chunks())
            if have < expected:
                raise InputError(
                    f"declares shape {tuple(shape)} ({declared} bytes) but only {have} of its "
                    f"{expected} storage chunks were ever written; refusing to read fill values",
                    file=name, dataset=path)
            chunk_bytes = int(np.prod([int(c) for c in chunks])) * int(ds.dtype.itemsize)
            if chunk_bytes > MAX_CHUNK_BYTES:
                raise InputError(
                    f"has storage chunks of {chunk_bytes} bytes; lsfix reads chunks of at most "
                    f"{MAX_CHUNK_BYTES >> 20} MiB (each is decompressed whole)", file=name,
                    dataset=path)
            if dcpl_filters(ds):
                untrusted.check_expansion(int(ds.id.get_storage_size()), declared, file=name,
                                          dataset=path)
        elif layout == h5py.h5d.CONTIGUOUS:
            stored = int(ds.id.get_storage_size())
            if stored < declared:
                raise InputError(
                    f"declares shape {tuple(shape)} ({declared} bytes) but only {stored} bytes "
                    "are stored; refusing to read fill values", file=name, dataset=path)
    except InputError:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"unreadable storage layout ({_reason(exc)}); corrupt file?",
                         file=name, dataset=path) from None


__all__ = ["open_local", "check_file", "check_dataset", "require_stored", "disable_plugins",
           "plugins_allowed", "PLUGINS_ENV", "MAX_OBJECTS"]

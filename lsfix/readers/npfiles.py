"""``.npy`` and ``.npz`` inputs: headers parsed with ``numpy.lib.format``, data read only after a
size check, and the choice of logits, labels, ids and class names among named arrays (npz
members, torch dict keys). Dispatched from :mod:`lsfix.readers.foreign`, which documents
every format."""

from __future__ import annotations

import io
import math
import warnings
import zipfile
from collections.abc import Callable, Sequence
from typing import IO, Any

import numpy as np

from lsfix.errors import InputError, LsfixError
from lsfix.readers import untrusted
from lsfix.readers.foreign import (
    _NPY_KINDS,
    _NPY_MAX_HEADER,
    _READ_CHUNK,
    CLASS_NAMES_KEYS,
    LABELS_KEYS,
    LOGITS_KEYS,
    SAMPLE_IDS_KEYS,
    _describe,
)
from lsfix.readers.predictions import Predictions, predictions_from_arrays
from lsfix.safetext import quote as _quote
from lsfix.streams import open_input

# --------------------------------------------------------------------------------------------
# .npy and .npz: headers parsed with numpy.lib.format, data read only after a size check


class _NpyHeader:
    __slots__ = ("shape", "fortran", "dtype")

    def __init__(self, shape: tuple[int, ...], fortran: bool, dtype: np.dtype[Any]) -> None:
        self.shape = shape
        self.fortran = fortran
        self.dtype = dtype


def _npy_header(fp: IO[bytes]) -> _NpyHeader:
    fmt = np.lib.format
    version = fmt.read_magic(fp)
    with warnings.catch_warnings():
        # numpy warns when it needs its Python-2 header fallback; the data is still fine
        warnings.simplefilter("ignore")
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp, max_header_size=_NPY_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fp, max_header_size=_NPY_MAX_HEADER)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    return _NpyHeader(tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype))


def _npy_data(fp: IO[bytes], hdr: _NpyHeader, avail: int, name: str, where: str) -> np.ndarray:
    """Read the data after a parsed header; refuse objects and sizes the file cannot hold."""
    dtype = hdr.dtype
    if dtype.hasobject:
        raise InputError("object arrays are refused (allow_pickle stays off)", file=name,
                         dataset=where)
    if dtype.kind not in _NPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise InputError(f"unsupported dtype {dtype}", file=name, dataset=where)
    if any(s < 0 for s in hdr.shape):
        raise InputError(f"invalid shape {hdr.shape}", file=name, dataset=where)
    count = math.prod(hdr.shape)
    nbytes = count * dtype.itemsize
    if nbytes > avail:
        raise InputError(
            f"truncated: shape {hdr.shape} {dtype} needs {nbytes} bytes of data, "
            f"{max(avail, 0)} present",
            file=name,
            dataset=where,
        )
    if nbytes == 0:
        arr = np.zeros(hdr.shape, dtype=dtype)
    else:
        buf = bytearray(nbytes)
        view = memoryview(buf)
        got = 0
        while got < nbytes:
            n = fp.readinto(view[got : got + _READ_CHUNK])  # type: ignore[attr-defined]
            if not n:
                raise InputError(f"truncated: {got} of {nbytes} bytes of data", file=name,
                                 dataset=where)
            got += n
        arr = np.frombuffer(buf, dtype=dtype, count=count).reshape(
            hdr.shape, order="F" if hdr.fortran else "C")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _read_npy(src: str | io.BytesIO, name: str, ignore_index: int | None) -> Predictions:
    with open_input(src, name) as fp:
        size = fp.seek(0, io.SEEK_END)
        fp.seek(0)
        try:
            hdr = _npy_header(fp)
        except (ValueError, TypeError, SyntaxError, EOFError) as exc:
            raise InputError(f"not a valid .npy header ({_describe(exc)})", file=name) from None
        logits = _npy_data(fp, hdr, size - fp.tell(), name, "")
    pred = predictions_from_arrays(name, logits, dataset_names=("", ""),
                                   ignore_index=ignore_index)
    pred.foreign_format = "npy"
    return pred


def _read_npz(zf: zipfile.ZipFile, members: list[str], name: str,
              ignore_index: int | None) -> Predictions:
    odd = [m for m in members if not m.endswith(".npy")]
    if odd:
        raise InputError(
            f"is a zip archive but neither an .npz (member {_quote(odd[0])} is not *.npy) nor a "
            "torch.save file (no data.pkl)",
            file=name,
        )
    if not members:
        raise InputError("is an .npz with no arrays", file=name)
    headers: dict[str, _NpyHeader] = {}
    for member in members:
        key = member[: -len(".npy")]
        try:
            with zf.open(member) as fp:
                headers[key] = _npy_header(fp)
        except LsfixError:
            raise
        except Exception as exc:  # zlib/zipfile/numpy errors on a corrupt member
            raise InputError(f"unreadable array ({_describe(exc)})", file=name,
                             dataset=f"/{key}") from None

    def load(key: str) -> np.ndarray:
        member = f"{key}.npy"
        try:
            with zf.open(member) as fp:
                hdr = _npy_header(fp)
                info = zf.getinfo(member)
                untrusted.check_expansion(info.compress_size, info.file_size, file=name,
                                          dataset=f"/{key}")
                avail = info.file_size - fp.tell()
                return _npy_data(fp, hdr, avail, name, f"/{key}")
        except LsfixError:
            raise
        except MemoryError:
            raise
        except Exception as exc:
            raise InputError(f"unreadable array ({_describe(exc)})", file=name,
                             dataset=f"/{key}") from None

    meta: dict[str, tuple[str, int]] = {
        k: (h.dtype.kind, len(h.shape)) for k, h in headers.items()}
    return _from_named_arrays(name, "npz", meta, load, what="array", ignore_index=ignore_index)


# --------------------------------------------------------------------------------------------
# shared: choose logits/labels/ids/names among named arrays (npz members, torch dict keys)


def _only(keys: Sequence[str], present: dict[str, Any], name: str, what: str) -> str | None:
    found = [k for k in keys if k in present]
    if len(found) > 1:
        listed = ", ".join(repr(k) for k in keys)
        raise InputError(
            f"has both {_quote(found[0])} and {_quote(found[1])}; keep one ({_plural(what)} "
            f"read from {listed})",
            file=name,
        )
    return found[0] if found else None


def _plural(what: str) -> str:
    """``entry`` -> ``entries``, ``array`` -> ``arrays``."""
    return what[:-1] + "ies" if what.endswith("y") and what[-2:-1] not in "aeiou" else what + "s"


def _from_named_arrays(
    name: str,
    fmt: str,
    meta: dict[str, tuple[str, int]],
    load: Callable[[str], np.ndarray],
    *,
    what: str,
    ignore_index: int | None,
) -> Predictions:
    """Pick the logits, labels, ids and class names by name and validate them like HDF5."""
    logits_key = _only(LOGITS_KEYS, meta, name, f"logits {what}")
    if logits_key is None:
        floats = [k for k, (kind, ndim) in meta.items() if kind == "f" and ndim >= 2]
        if len(floats) != 1:
            listed = ", ".join(repr(k) for k in meta) or "none"
            why = "no floating " if not floats else f"{len(floats)} floating "
            raise InputError(
                f"no 'logits' {what}, and {why}{_plural(what)} with 2+ axes to take instead "
                f"({_plural(what)}: {listed}); name the logits 'logits'",
                file=name,
            )
        logits_key = floats[0]
    labels_key = _only(LABELS_KEYS, meta, name, f"label {what}")
    ids_key = _only(SAMPLE_IDS_KEYS, meta, name, f"sample id {what}")
    names_key = _only(CLASS_NAMES_KEYS, meta, name, f"class name {what}")
    logits = load(logits_key)
    labels = None if labels_key is None else load(labels_key)
    ids = None if ids_key is None else _strings(load(ids_key), name, f"/{ids_key}")
    names = None if names_key is None else _strings(load(names_key), name, f"/{names_key}")
    pred = predictions_from_arrays(
        name, logits, labels=labels, sample_ids=ids, class_names=names,
        dataset_names=(f"/{logits_key}", f"/{labels_key or LABELS_KEYS[0]}"),
        ignore_index=ignore_index,
    )
    pred.foreign_format = fmt
    used = [k for k in (logits_key, labels_key, ids_key, names_key) if k is not None]
    unused = [k for k in meta if k not in used]
    if unused:
        hint = ""
        one_d = [k for k in unused if meta[k][1] == 1 and meta[k][0] in "iu"]
        if fmt == "npz" and labels_key is None and len(one_d) == 1:
            hint = f" (--labels {name}:{one_d[0]} takes labels from {one_d[0]!r})"
        pred.notes.append(
            f"{name}: {what}(s) {', '.join(map(repr, unused))} not used; read "
            + ", ".join(f"{_quote(k)} as {role}" for k, role in zip(
                (logits_key, labels_key, ids_key, names_key),
                ("logits", "labels", "sample ids", "class names"), strict=True) if k) + hint)
    return pred


def _strings(arr: np.ndarray, name: str, where: str) -> list[str]:
    """1-D strings (or integer ids) as ``str``; bytes must be UTF-8."""
    if arr.ndim != 1:
        raise InputError(f"must be 1-D, got shape {arr.shape}", file=name, dataset=where)
    if arr.dtype.kind == "U":
        return [str(s) for s in arr]
    if arr.dtype.kind == "S":
        try:
            return [bytes(s).decode("utf-8") for s in arr]
        except UnicodeDecodeError:
            raise InputError("strings are not valid utf-8", file=name, dataset=where) from None
    if arr.dtype.kind in ("i", "u"):
        return [str(int(s)) for s in arr]
    raise InputError(f"must hold strings (or integer ids), got {arr.dtype}", file=name,
                     dataset=where)



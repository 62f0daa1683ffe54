"""Foreign inputs: arrays and tables users already have, converted to :class:`Predictions`.

:func:`lsfix.readers.entry.read_predictions` hands every input that is not HDF5 to :func:`read_foreign`.
The format is chosen by the first bytes, then by the file extension; stdin and paths without an
extension are sniffed (text is read as a table). Everything is read into memory and validated by
:func:`lsfix.readers.predictions.predictions_from_arrays`, so messages match those of an HDF5 read, with the
array's name in place of the dataset path (``preds.npz:/labels: 2 label(s) not in [0, 10); ...``).
Every problem is an :class:`~lsfix.errors.InputError` (exit 3) naming the file; no other
exception escapes, whatever the bytes.

Formats
-------
``.npy`` (magic ``\\x93NUMPY``)
    One floating array: the logits, ``(N, K)``, ``(N,)``/``(N, 1)`` for a single-logit binary
    classifier, or ``(N, K, *spatial)``. No labels.
``.npz`` (a zip of ``*.npy`` members, as written by ``numpy.savez[_compressed]``)
    ``logits`` (or, when no array has that name, the only floating array with two or more
    axes), labels under ``labels``, ``targets`` or ``y`` (at most one of them), and optional
    ``sample_ids`` (strings or integers) and ``class_names``. Other arrays are not used, and
    the CLI says which in one line (:attr:`Predictions.notes`). Object
    arrays are refused: pickles are never loaded (``allow_pickle`` stays off).
``.pt`` / ``.pth`` (``torch.save``: a zip holding ``data.pkl``, or the legacy pickle format)
    Loaded with ``torch.load(..., map_location="cpu", weights_only=True)``, so a file that
    holds anything but tensors and plain containers is refused, never executed. The content is
    a tensor of logits, a dict with the keys of an ``.npz``, or a ``(logits,)`` /
    ``(logits, labels)`` list or tuple. Needs torch (``pip install 'lsfix[extract]'``). Any
    other pickle is refused without being opened.
``.csv`` / ``.tsv`` (UTF-8 text, comma or tab separated; stdin: tab if the header has one)
    A header line is required; blank lines are skipped; cells may be quoted. Two layouts:

    *logits table*: columns ``logit_0`` .. ``logit_{K-1}`` (any order, none missing), optional
    ``label`` (integer class) and ``sample_id`` (unique, non-empty). One logit column is a
    single-logit binary classifier.

    *score table*: columns ``confidence`` (a number, higher = more confident) and ``correct``
    (``0``/``1`` or ``true``/``false``, any case), optional ``sample_id``. This is what
    ``lsfix curve scores.tsv`` audits when the model is not at hand. It becomes a
    :class:`Predictions` with ``logits=None``, ``scores={"confidence": ...}`` (method
    ``"table"``) and ``foreign_format == "score-table"``, and **its** ``labels`` **hold the
    correctness** (1 = the prediction was right), not classes. Use :func:`table_correct`
    rather than reading ``labels`` when the input may be a score table.

    Any other column (a domain, a data source, ``true_class``...) is read as a **group**: its
    cells as strings, for ``--by COLUMN`` in ``curve``/``compare``/``audit``; the CLI names the
    columns it took that way in one line. A column that looks like the other layout's
    (``label`` in a score table, ``logit_*`` beyond K) is still refused.

    Cells are parsed strictly: an unknown, duplicated or missing column, a ragged row, an empty
    cell, text in a number column, NaN or inf, a label outside ``[0, K)``, a repeated sample id,
    or a header with no data rows is refused with the line and the column
    (``scores.csv: line 7, column 'confidence': 'abc' is not a number``). Column names are
    stripped of surrounding spaces; sample ids are taken verbatim. Tables cost about a
    microsecond per cell (a 10**6-row score table reads in a few seconds): keep large logit
    matrices in ``.npy``/``.npz``.
"""

from __future__ import annotations

import csv
import io
import math
import operator
import pickle
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from lsfix.readers import untrusted
from lsfix.errors import InputError, LsfixError, MissingDependency, RuntimeFailure
from lsfix.safetext import quote as _quote
from lsfix.readers.predictions import Predictions, predictions_from_arrays

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive
#: First 8 bytes of a legacy (non-zip) ``torch.save`` file: pickle protocol 2, then the
#: LONG1 opcode starting torch's magic number 0x1950a86a20f9469cfc6c.
TORCH_LEGACY_HEAD = b"\x80\x02\x8a\x0al\xfc\x9cF"
PICKLE_HEADS = tuple(bytes([0x80, proto]) for proto in range(2, 6))

#: ``Predictions.foreign_format`` values set by this module.
FORMATS = ("npy", "npz", "torch", "logits-table", "score-table")
SCORE_TABLE = "score-table"
LOGITS_TABLE = "logits-table"

LOGITS_KEYS = ("logits",)
LABELS_KEYS = ("labels", "targets", "y")
SAMPLE_IDS_KEYS = ("sample_ids",)
CLASS_NAMES_KEYS = ("class_names",)

TABLE_SCORE_NAME = "confidence"
TABLE_SCORE_METHOD = "table"

_UNRECOGNISED = "unrecognised input format (not HDF5, .npy, .npz, .pt, .csv, .tsv or .txt)"
_EXTRACT_HINT = "pip install 'lsfix[extract]'"
_NPY_MAX_HEADER = 10_000  # numpy's own default limit against hostile headers
_NPY_KINDS = "biufcUS"  # dtypes read; object, void/structured and datetimes are refused
_READ_CHUNK = 1 << 24
_SNIFF_BYTES = 1 << 16
_LOGIT_COLUMN = re.compile(r"logit_(0|[1-9][0-9]*)")
_TRUE_FALSE = {"0": 0, "1": 1, "true": 1, "false": 0, "True": 1, "False": 0, "TRUE": 1,
               "FALSE": 0}

_EXTENSIONS = {
    ".npy": "npy", ".npz": "zip", ".pt": "torch", ".pth": "torch",
    ".csv": "csv", ".tsv": "tsv", ".txt": "txt", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5",
}
_WRONG_MAGIC = {
    "npy": "does not start with the .npy magic bytes; not a .npy file, or corrupt",
    "zip": "is not a zip archive; not an .npz file, or corrupt",
    "torch": "is neither a zip archive nor a legacy torch pickle; not a torch.save file, "
             "or corrupt",
    "hdf5": "does not start with the HDF5 signature; not an HDF5 file, or corrupt",
}
_WHAT = {"npy": ".npy file", "zip": "zip archive (.npz or torch.save)",
         "torch": "torch.save file", "csv": "CSV table", "tsv": "TSV table",
         "txt": "whitespace-separated table"}


def table_correct(pred: Predictions) -> np.ndarray | None:
    """Correctness (bool, shape ``(n,)``) of a score table; ``None`` for any other input.

    A score table carries no logits, so its ``correct`` column stands in for
    ``argmax(logits) == labels``; it is stored in ``pred.labels`` as 0/1.

    >>> import io
    >>> pred = read_foreign(io.BytesIO(b"confidence,correct\\n0.9,1\\n0.4,false\\n"), "t", b"")
    >>> table_correct(pred)
    array([ True, False])
    """
    if pred.foreign_format != SCORE_TABLE or pred.labels is None:
        return None
    return pred.labels.astype(bool)


def read_foreign(src: str | io.BytesIO, name: str, head: bytes, *,
                 ignore_index: int | None = None) -> Predictions:
    """Read a non-HDF5 input (``.npy``, ``.npz``, ``.pt``, ``.csv``/``.tsv``) into memory.

    Parameters
    ----------
    src : str or io.BytesIO
        A file path, or the bytes of stdin.
    name : str
        Display name used in messages (the path, or ``<stdin>``).
    head : bytes
        The first bytes of a file (8 suffice); they choose the format before the extension.
        For an ``io.BytesIO`` they are taken from the buffer itself.

    Returns
    -------
    Predictions
        Validated like an HDF5 read; ``foreign_format`` says which format it came from.

    Raises
    ------
    InputError
        The input is unrecognised, refused or invalid (exit 3); the message names the file and,
        where there is one, the array (``file:/labels``) or the line and column.
    MissingDependency
        A ``torch.save`` file was given and torch is not installed (exit 1).
    """
    if isinstance(src, io.BytesIO):
        suffix = ""
        head = src.getvalue()[:8]
    else:
        suffix = Path(src).suffix.lower()
    kind = _detect(src, name, head, suffix)
    try:
        if kind == "npy":
            return _read_npy(src, name, ignore_index)
        if kind == "zip":
            return _read_zip(src, name, ignore_index)
        if kind == "torch":
            return _read_torch(src, name, ignore_index)
        data = _all_bytes(src, name)
        if kind == "txt":  # np.savetxt: whitespace-separated; a header comes after '# '
            data = _whitespace_to_tabs(data)
        return _read_table(data, name, "\t" if kind in ("tsv", "txt") else ",",
                           hint_other=not isinstance(src, io.BytesIO) and suffix != "",
                           ignore_index=ignore_index)
    except LsfixError:
        raise
    except MemoryError:
        raise RuntimeFailure(f"{name}: not enough memory to load it") from None
    except Exception as exc:  # third-party parsers raise a zoo of types on corrupt bytes
        raise InputError(f"unreadable {_WHAT[kind]} ({_describe(exc)}); truncated or corrupt?",
                         file=name) from None


# --------------------------------------------------------------------------------------------
# dispatch


def _detect(src: str | io.BytesIO, name: str, head: bytes, suffix: str) -> str:
    """Format key: ``npy``, ``zip``, ``torch``, ``csv`` or ``tsv``; refusals raise."""
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGICS):
        return "zip"
    if head.startswith(TORCH_LEGACY_HEAD):
        return "torch"
    if head.startswith(PICKLE_HEADS):
        raise InputError(
            "is a plain pickle, not a torch.save file; lsfix never unpickles arbitrary objects "
            "(save tensors with torch.save or arrays with numpy.savez)",
            file=name,
        )
    by_ext = _EXTENSIONS.get(suffix)
    if by_ext in ("csv", "tsv", "txt"):
        return by_ext
    if by_ext is not None:
        raise InputError(_WRONG_MAGIC[by_ext], file=name)
    if suffix == "":
        sniffed = _sniff_text(_head_bytes(src, name, _SNIFF_BYTES))
        if sniffed is not None:
            return sniffed
    raise InputError(_UNRECOGNISED, file=name)


def _whitespace_to_tabs(data: bytes) -> bytes:
    """``np.savetxt`` text (cells split by runs of blanks; ``# `` before a header line)."""
    out = []
    for line in data.splitlines():
        line = line.strip()
        if line.startswith(b"#"):
            line = line[1:].strip()
        out.append(b"\t".join(line.split()))
    return b"\n".join(out) + b"\n"


def _sniff_text(data: bytes) -> str | None:
    """``tsv``/``csv`` when ``data`` looks like UTF-8 text, else ``None``."""
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(data) < _SNIFF_BYTES or exc.start < len(data) - 3:
            return None  # a real decoding error, not a character cut at the sniff boundary
        text = data[: exc.start].decode("utf-8-sig")
    header = text.split("\n", 1)[0]
    return "tsv" if "\t" in header else "csv"


def _head_bytes(src: str | io.BytesIO, name: str, size: int) -> bytes:
    if isinstance(src, io.BytesIO):
        return src.getvalue()[:size]
    with _open(src, name) as fh:
        return fh.read(size)


def _all_bytes(src: str | io.BytesIO, name: str) -> bytes:
    if isinstance(src, io.BytesIO):
        return src.getvalue()
    with _open(src, name) as fh:
        return fh.read()


@contextmanager
def _open(src: str | io.BytesIO, name: str) -> Iterator[IO[bytes]]:
    """A binary file object at offset 0 (stdin's buffer is rewound, not closed)."""
    if isinstance(src, io.BytesIO):
        src.seek(0)
        yield src
        return
    try:
        fh = open(src, "rb")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", file=name) from None
    from lsfix.streams import note_input

    note_input(src, name)  # an output of this command may never replace it
    with fh:
        yield fh


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().split("\n", 1)[0]
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    with _open(src, name) as fp:
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


def _read_zip(src: str | io.BytesIO, name: str, ignore_index: int | None) -> Predictions:
    with _open(src, name) as fp:
        try:
            zf = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise InputError(f"not a readable zip archive ({_describe(exc)}); truncated or "
                             "corrupt?", file=name) from None
        with zf:
            from lsfix.readers.torchzip import has_pickle

            members = zf.namelist()
            if has_pickle(zf):  # read by lsfix's own reader or refused: never torch.load
                return _from_torch_object(_torch_zip_without_torch(zf, name), name,
                                          ignore_index)
            untrusted.check_zip(zf, file=name)
            return _read_npz(zf, members, name, ignore_index)


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


# --------------------------------------------------------------------------------------------
# torch.save files


def _read_torch(src: str | io.BytesIO, name: str, ignore_index: int | None) -> Predictions:
    try:
        import torch
    except ImportError:
        raise MissingDependency(
            f"{name}: reading a torch.save file needs torch; {_EXTRACT_HINT}"
        ) from None
    if isinstance(src, io.BytesIO):
        src.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(src, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # UnpicklingError, RuntimeError (miniz), EOFError, ...
        text = str(exc)
        if "Weights only load failed" in text:
            raise InputError(
                f"refused by torch.load(weights_only=True): {_weights_only_reason(text)}; "
                "lsfix never unpickles arbitrary objects (save plain tensors, e.g. "
                "torch.save({'logits': logits, 'labels': labels}, path))",
                file=name,
            ) from None
        raise InputError(f"unreadable torch.save file ({_describe(exc)}); truncated or corrupt?",
                         file=name) from None

    return _from_torch_object(obj, name, ignore_index)


def _torch_zip_without_torch(zf: zipfile.ZipFile, name: str) -> Any:
    """The object of a torch.save zip read by :mod:`lsfix.readers.torchzip` (no torch import). A
    feature that reader does not support is refused too: the file never chooses
    ``torch.load`` as its parser (only ``extract --trust-pickle`` hands files to torch)."""
    from lsfix.readers import torchzip

    try:
        return torchzip.load(zf)
    except torchzip.Refused as exc:
        raise InputError(
            f"refused: the pickle in this torch.save file names {exc}, not only tensors and "
            "plain containers; lsfix never unpickles arbitrary objects (save plain tensors, "
            "e.g. torch.save({'logits': logits, 'labels': labels}, path))",
            file=name,
        ) from None
    except torchzip.Unsupported as exc:
        raise InputError(
            f"holds {str(exc)[:80]}, which lsfix's tensor reader does not read (it never hands "
            "a data file to torch.load); save plain dense tensors, e.g. torch.save({'logits': "
            "logits.detach().cpu(), 'labels': labels}, path)", file=name) from None
    except (LsfixError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # pickle, zip, zlib, struct errors of corrupt bytes
        raise InputError(f"unreadable torch.save file ({_describe(exc)}); truncated or corrupt?",
                         file=name) from None


def _from_torch_object(obj: Any, name: str, ignore_index: int | None) -> Predictions:
    """Predictions from what a torch.save file held (tensors as torch or numpy arrays)."""
    if _is_array(obj):
        pred = predictions_from_arrays(name, _to_numpy(obj, name, ""), dataset_names=("", ""),
                                       ignore_index=ignore_index)
        pred.foreign_format = "torch"
        return pred
    if isinstance(obj, dict):
        values = {k: v for k, v in obj.items() if isinstance(k, str)}
        meta = {k: _torch_meta(v) for k, v in values.items()}
        return _from_named_arrays(name, "torch", meta,
                                  lambda k: _to_numpy(values[k], name, f"/{k}"), what="entry",
                                  ignore_index=ignore_index)
    if isinstance(obj, (list, tuple)) and len(obj) in (1, 2):
        logits = _to_numpy(obj[0], name, "[0]")
        labels = _to_numpy(obj[1], name, "[1]") if len(obj) == 2 else None
        pred = predictions_from_arrays(name, logits, labels=labels, dataset_names=("[0]", "[1]"),
                                       ignore_index=ignore_index)
        pred.foreign_format = "torch"
        return pred
    shape = f" of {len(obj)} items" if isinstance(obj, (list, tuple)) else ""
    raise InputError(
        f"holds a {type(obj).__name__}{shape}; expected a tensor of logits, a dict with "
        "'logits' (and 'labels'), or a (logits, labels) pair",
        file=name,
    )


def _weights_only_reason(text: str) -> str:
    """The one informative sentence of torch's multi-paragraph weights-only error."""
    for para in (p.strip() for p in text.split("\n\n")):
        if not para or para.startswith(("Weights only load failed", "Check the documentation")):
            continue
        marker = "WeightsUnpickler error:"
        if marker in para:
            para = para.split(marker, 1)[1].strip()
        line = para.split("\n", 1)[0].strip().rstrip(".")
        return line if len(line) <= 200 else line[:197] + "..."
    return "unsupported content"


def _is_array(value: Any) -> bool:
    """A numpy array, or a torch tensor (checked without importing torch)."""
    from lsfix.readers.torchzip import ViewOverStorage

    if isinstance(value, np.ndarray | ViewOverStorage):
        return True
    return type(value).__module__.startswith("torch") and type(value).__name__ in (
        "Tensor", "Parameter")


def _torch_meta(value: Any) -> tuple[str, int]:
    from lsfix.readers.torchzip import ViewOverStorage

    if isinstance(value, np.ndarray | ViewOverStorage):
        return (value.dtype.kind, value.ndim)
    if _is_array(value):
        return ("f" if value.is_floating_point() else "other", value.dim())
    return ("other", 0)


def _to_numpy(value: Any, name: str, where: str) -> np.ndarray:
    """A tensor, numpy array or list of numbers/strings as a numpy array."""
    from lsfix.readers.torchzip import ViewOverStorage

    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, ViewOverStorage):
        raise InputError(
            f"tensor of shape {value.shape} ({value.claimed} bytes) is a view over only "
            f"{value.stored} stored bytes (zero or overlapping strides); lsfix reads only data "
            "stored in the file", file=name, dataset=where)
    if _is_array(value):
        import torch

        try:
            t = value.detach()
            if t.layout == torch.strided:
                # a view may claim far more elements than its storage holds (stride 0, or
                # overlapping strides): a 1 KB file could expand to terabytes in numpy
                stored = t.untyped_storage().nbytes()
                claimed = t.numel() * t.element_size()
                if claimed > stored:
                    raise InputError(
                        f"tensor of shape {tuple(t.shape)} ({claimed} bytes) is a view over "
                        f"only {stored} stored bytes (zero or overlapping strides); lsfix "
                        "reads only data stored in the file", file=name, dataset=where)
            if t.layout != torch.strided:
                t = t.to_dense()
            if t.is_quantized:
                t = t.dequantize()
            if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32,
                                                         torch.float64):
                t = t.to(torch.float32)  # bfloat16, float8: numpy has no such dtype
            return t.resolve_conj().resolve_neg().cpu().numpy()
        except InputError:
            raise
        except (RuntimeError, TypeError, ValueError) as exc:
            raise InputError(f"tensor cannot be read as an array ({_describe(exc)})",
                             file=name, dataset=where) from None
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool))
                                                for v in value):
        arr = np.asarray(value)
        if arr.dtype.kind in "biufU":
            return arr
    raise InputError(f"holds a {type(value).__name__}, expected a tensor", file=name,
                     dataset=where)


# --------------------------------------------------------------------------------------------
# CSV / TSV tables


class _CellError(Exception):
    """A bad cell at data row ``index`` (``other``: an earlier row it clashes with)."""

    def __init__(self, index: int, message: str, other: int | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
        self.other = other


def _read_table(data: bytes, name: str, delimiter: str, *, hint_other: bool,
                ignore_index: int | None = None) -> Predictions:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})",
                         file=name) from None
    rows, lines = _csv_rows(text, name, delimiter)
    if not rows:
        raise InputError("empty table (no header line)", file=name)

    notes: list[str] = []
    rows, lines, header, class_names = _normalise_table(rows, list(lines), name, notes)
    header_line = lines[0]
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise InputError(f"line {header_line}: duplicate column {_quote(col)}", file=name)
        seen.add(col)
    data_rows, data_lines = rows[1:], lines[1:]

    if TABLE_SCORE_NAME in seen or "correct" in seen:
        layout, required = SCORE_TABLE, [TABLE_SCORE_NAME, "correct"]
        allowed = {TABLE_SCORE_NAME, "correct", "sample_id"}
        expected = "a score table has confidence, correct and optionally sample_id"
    elif any(_LOGIT_COLUMN.fullmatch(c) for c in header):
        idx = sorted(int(c[len("logit_"):]) for c in header if _LOGIT_COLUMN.fullmatch(c))
        if idx[-1] >= len(idx):  # a gap: checked against the real columns before any K-sized
            gap = next(i for i, v in enumerate(idx) if v != i)  # work (logit_9999999 alone)
            raise InputError(f"line {header_line}: missing column 'logit_{gap}' (a logits "
                             f"table has logit_0..logit_{idx[-1]} and optionally label and "
                             "sample_id)", file=name)
        k = idx[-1] + 1
        layout, required = LOGITS_TABLE, [f"logit_{i}" for i in range(k)]
        allowed = {*required, "label", "sample_id"}
        expected = (f"a logits table has logit_0..logit_{k - 1} and optionally label and "
                    "sample_id")
    else:
        other = "," if delimiter == "\t" else "\t"
        hint = ""
        if hint_other and other in rows[0][0]:
            hint = (" (the file looks tab-separated: name it .tsv)" if other == "\t"
                    else " (the file looks comma-separated: name it .csv)")
        cols = ", ".join(repr(c) for c in header)
        text = [j for j, c in enumerate(header) if data_rows and not all(
            j < len(r) and _is_number(r[j]) for r in data_rows[:50])]
        advice = "Rename the columns to those names"
        if len(text) == 1 and len(header) >= 3:
            advice = (f"One numeric column per class is read with a label column: if "
                      f"{_quote(header[text[0]])} holds the labels, rename it to 'label' (or y_true)")
        raise InputError(
            f"line {header_line}: neither a logits table (logit_0..logit_<K-1> or one "
            f"numeric column per class, and label) nor a score table (confidence and correct, "
            f"or confidence, y_true and y_pred); columns: {cols}{hint}. {advice}",
            file=name,
        )
    known = {TABLE_SCORE_NAME, "correct", "sample_id", "label"}
    group_cols = []
    for col in header:
        if col not in allowed:
            if col in known or _LOGIT_COLUMN.fullmatch(col) or col.startswith("logit"):
                raise InputError(f"line {header_line}: unknown column {_quote(col)} ({expected})",
                                 file=name)
            group_cols.append(col)  # any other column: a group (--by COLUMN), said below
    for col in required:
        if col not in seen:
            raise InputError(f"line {header_line}: missing column {_quote(col)} ({expected})",
                             file=name)
    if not data_rows:
        raise InputError(f"no data rows (only the header, line {header_line})", file=name)
    width = len(header)
    if set(map(len, data_rows)) != {width}:
        i = next(i for i, r in enumerate(data_rows) if len(r) != width)
        raise InputError(
            f"line {data_lines[i]}: {len(data_rows[i])} field(s), the header has {width}",
            file=name,
        )

    columns = {col: list(map(operator.itemgetter(j), data_rows)) for j, col in enumerate(header)}
    n_logits = len(required) if layout == LOGITS_TABLE else 0
    parsers: dict[str, Callable[[list[str]], np.ndarray]] = {
        **{col: _group_values for col in group_cols},
        "sample_id": _unique_strings,
        "label": lambda cells: _int_labels(cells, n_logits, ignore_index),
        "correct": _zero_one,
    }
    parsed: dict[str, np.ndarray] = {}
    errors: list[tuple[int, int, str, str]] = []
    for pos, col in enumerate(header):
        try:
            parsed[col] = parsers.get(col, _finite_floats)(columns[col])
        except _CellError as exc:
            message = exc.message
            if exc.other is not None:
                message += f" (first on line {data_lines[exc.other]})"
            errors.append((exc.index, pos, col, message))
    if errors:  # report the earliest line, then the leftmost column
        index, _, col, message = min(errors)
        raise InputError(f"line {data_lines[index]}, column {_quote(col)}: {message}", file=name)

    ids = parsed.get("sample_id")
    groups = {col: parsed[col] for col in group_cols}
    notes = [f"{name}: {line}" for line in notes]  # how the table was read (normalised)
    if group_cols:
        used = [c for c in header if c not in group_cols]
        notes.append(f"{name}: column(s) {', '.join(map(repr, group_cols))} read as groups "
                     f"(--by {group_cols[0]}); used: {', '.join(used)}")
    if layout == SCORE_TABLE:
        conf = parsed[TABLE_SCORE_NAME]
        return Predictions(
            name=name,
            logits=None,
            labels=parsed["correct"],
            correct=np.asarray(parsed["correct"], dtype=bool),
            sample_ids=None if ids is None else ids.astype(object),
            scores={TABLE_SCORE_NAME: conf},
            score_attrs={TABLE_SCORE_NAME: {"method": TABLE_SCORE_METHOD, "params": {}}},
            foreign_format=SCORE_TABLE,
            groups=groups,
            notes=notes,
        )
    logits = np.column_stack([parsed[c] for c in required])
    pred = predictions_from_arrays(
        name, logits, labels=parsed.get("label"),
        sample_ids=None if ids is None else list(ids), class_names=class_names,
        dataset_names=("", ""), ignore_index=ignore_index,
    )
    pred.foreign_format = LOGITS_TABLE
    pred.groups, pred.notes = groups, notes
    return pred


def _group_values(cells: list[str]) -> np.ndarray:
    """A group column: its cells as stripped strings (an empty cell is its own group '')."""
    return np.asarray([c.strip() for c in cells], dtype=object)


#: column names people use, and the name lsfix reads them as (compared case-insensitively)
COLUMN_ALIASES = {
    "label": "label", "labels": "label", "y": "label", "y_true": "label", "target": "label",
    "targets": "label", "true_label": "label", "true": "label", "gt": "label",
    "ground_truth": "label",
    "confidence": TABLE_SCORE_NAME, "conf": TABLE_SCORE_NAME, "y_score": TABLE_SCORE_NAME,
    "y_conf": TABLE_SCORE_NAME,
    "correct": "correct", "is_correct": "correct",
    "y_pred": "y_pred", "pred": "y_pred", "prediction": "y_pred", "predicted": "y_pred",
    "pred_label": "y_pred",
    "sample_id": "sample_id", "sample_ids": "sample_id", "id": "sample_id",
}
_INDEX_HEADERS = ("", "Unnamed: 0", "index")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _normalise_table(rows: list[list[str]], lines: list[int], name: str, notes: list[str]
                     ) -> tuple[list[list[str]], list[int], list[str], list[str] | None]:
    """Tables as people save them, mapped onto lsfix's two layouts.

    * No header, every cell of the first line a number (``np.savetxt``): every column is a
      logit (``logit_0..``); labels then come from ``--labels FILE``.
    * pandas' ``df.to_csv()`` index column (an empty or ``Unnamed: 0`` first header): dropped.
    * Usual key names (:data:`COLUMN_ALIASES`: ``y_true``, ``target``, ``y_score``, ...).
    * ``y_true`` + ``y_pred`` + a confidence: a score table, ``correct = y_true == y_pred``.
    * One numeric column per class, headed by the class names, plus a label column (class
      indices or class names): a logits table whose ``class_names`` are the headers.

    Returns the rows (header first, possibly synthetic), their lines, the header in lsfix's
    names, and the class names (or None).
    """
    if rows and all(_is_number(c) for c in rows[0]):
        width = len(rows[0])
        notes.append(f"no header line: read its {width} column(s) as logits")
        return ([[f"logit_{i}" for i in range(width)], *rows], [lines[0], *lines],
                [f"logit_{i}" for i in range(width)], None)
    header = [c.strip() for c in rows[0]]
    if len(header) > 1 and header[0] in _INDEX_HEADERS:
        rows = [r[1:] if len(r) == len(header) else r for r in rows]
        header = header[1:]
        notes.append("dropped the index column (pandas' to_csv default)")
    canon = [COLUMN_ALIASES.get(c.lower(), c) for c in header]
    if any(_LOGIT_COLUMN.fullmatch(c) for c in canon) or (
            TABLE_SCORE_NAME in canon and "correct" in canon):
        return rows, lines, canon, None
    if TABLE_SCORE_NAME in canon and "label" in canon and "y_pred" in canon:
        t, p = canon.index("label"), canon.index("y_pred")
        out = [[*("confidence" if c == TABLE_SCORE_NAME else c for c in canon
                  if c not in ("label", "y_pred")), "correct"]]
        keep = [j for j, c in enumerate(canon) if c not in ("label", "y_pred")]
        for r in rows[1:]:
            if len(r) != len(header):
                out.append(r)  # ragged: reported by the caller with its line
                continue
            out.append([*(r[j] for j in keep), "1" if r[t].strip() == r[p].strip() else "0"])
        notes.append("correct = (y_true == y_pred)")
        return out, lines, out[0], None
    special = {"label", "sample_id", "y_pred"}
    data = rows[1:]
    cand = [j for j, c in enumerate(canon) if c not in special]
    classes = [j for j in cand if data and all(
        len(r) == len(header) and _is_number(r[j]) for r in data[:50])]
    others = [j for j in cand if j not in classes]  # text columns: groups (--by NAME)
    if len(classes) >= 2 and "label" in canon or len(classes) >= 2 and not others:
        names = [header[j] for j in classes]
        lab = canon.index("label") if "label" in canon else None
        index = {n: str(i) for i, n in enumerate(names)}
        out = [[f"logit_{i}" for i in range(len(classes))]
               + (["label"] if lab is not None else [])
               + (["sample_id"] if "sample_id" in canon else [])
               + [header[j] for j in others]]
        sid = canon.index("sample_id") if "sample_id" in canon else None
        for r in data:
            if len(r) != len(header):
                out.append(r)
                continue
            y = [] if lab is None else [index.get(r[lab].strip(), r[lab].strip())]
            out.append([*(r[j] for j in classes), *y, *([r[sid]] if sid is not None else []),
                        *(r[j] for j in others)])
        notes.append(f"one column per class ({', '.join(names[:3])}"
                     f"{', ...' if len(names) > 3 else ''})"
                     + (" and a label column" if lab is not None else ""))
        return out, lines, out[0], names
    return rows, lines, canon, None


def _csv_rows(text: str, name: str, delimiter: str) -> tuple[list[list[str]], Sequence[int]]:
    """Non-blank rows and the physical line each starts on."""

    def reader() -> Any:
        return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    rd = reader()
    try:
        rows = list(rd)
    except csv.Error as exc:
        raise InputError(f"line {rd.line_num}: {exc}", file=name) from None
    if rd.line_num == len(rows) and [] not in rows:  # the common case: one row per line
        return rows, range(1, len(rows) + 1)
    kept: list[list[str]] = []
    lines: list[int] = []
    prev = 0
    rd = reader()
    for row in rd:  # rows spanning lines (quoted newlines) or blank lines: track each start
        if row:
            kept.append(row)
            lines.append(prev + 1)
        prev = rd.line_num
    return kept, lines


def _bad_cell(cell: str, what: str) -> str:
    return "empty cell" if not cell.strip() else f"{_quote(cell.strip())} is not {what}"


def _finite_floats(cells: list[str]) -> np.ndarray:
    try:
        arr = np.fromiter(map(float, cells), dtype=np.float64, count=len(cells))
    except ValueError:
        for i, cell in enumerate(cells):
            try:
                float(cell)
            except ValueError:
                raise _CellError(i, _bad_cell(cell, "a number")) from None
        raise
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise _CellError(i, f"{_quote(cells[i].strip())} is not finite")
    return arr


def _int_labels(cells: list[str], n_logits: int, ignore: int | None) -> np.ndarray:
    """Labels in ``[0, K)``; 0/1 for one logit column (as in
    :func:`lsfix.readers.predictions.validate_labels`)."""
    k = 2 if n_logits == 1 else n_logits
    try:
        values = list(map(int, cells))
    except ValueError:
        for i, cell in enumerate(cells):
            try:
                int(cell)
            except ValueError:
                raise _CellError(i, _bad_cell(cell, "an integer label")) from None
        raise
    lo, hi = min(values), max(values)
    if (lo < 0 or hi >= k) and any((v < 0 or v >= k) and v != ignore for v in values):
        i = next(i for i, v in enumerate(values) if (v < 0 or v >= k) and v != ignore)
        what = "0 or 1 (single-logit binary classifier)" if n_logits == 1 else f"in [0, {k})"
        raise _CellError(i, f"label {values[i]} is not {what}")
    return np.asarray(values, dtype=np.int64)


def _zero_one(cells: list[str]) -> np.ndarray:
    try:
        return np.fromiter(map(_TRUE_FALSE.__getitem__, cells), dtype=np.int64,
                           count=len(cells))
    except KeyError:
        out = np.empty(len(cells), dtype=np.int64)
        for i, cell in enumerate(cells):
            val = _TRUE_FALSE.get(cell.strip().lower())
            if val is None:
                raise _CellError(i, _bad_cell(cell, "0/1 or true/false")) from None
            out[i] = val
        return out


def _unique_strings(cells: list[str]) -> np.ndarray:
    """Sample ids, verbatim (cells are not stripped); non-empty and unique."""
    ids = cells
    if len(set(ids)) != len(ids) or not all(ids):
        first: dict[str, int] = {}
        for i, sid in enumerate(ids):
            if not sid:
                raise _CellError(i, "empty cell")
            if sid in first:
                raise _CellError(i, f"sample id {_quote(sid)} is repeated", other=first[sid])
            first[sid] = i
    return np.asarray(ids, dtype=object)


__all__ = [
    "FORMATS", "LOGITS_TABLE", "SCORE_TABLE", "read_foreign",
    "table_correct",
]

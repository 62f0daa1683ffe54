"""Foreign inputs: arrays and tables users already have, converted to :class:`Predictions`.

:func:`lsfix.read` hands every input that is not HDF5 to :func:`read_foreign`, which picks the
format and hands it to its reader: :mod:`lsfix.readers.npfiles` (``.npy``/``.npz``),
:mod:`lsfix.readers.ptfiles` (``torch.save``) or :mod:`lsfix.readers.tables` (CSV/TSV/text).
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

import io
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np

from lsfix.errors import InputError, LsfixError, RuntimeFailure
from lsfix.readers import untrusted
from lsfix.readers.predictions import Predictions

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive
#: First 8 bytes of a legacy (non-zip) ``torch.save`` file: pickle protocol 2, then the
#: LONG1 opcode starting torch's magic number 0x1950a86a20f9469cfc6c.
TORCH_LEGACY_HEAD = b"\x80\x02\x8a\x0al\xfc\x9cF"
PICKLE_HEADS = tuple(bytes([0x80, proto]) for proto in range(2, 6))

#: ``Predictions.foreign_format`` values set by this module.
FORMATS = ("npy", "npz", "torch", "logits-table", "score-table")
SCORE_TABLE = "score-table"
#: The column a ``confidence, y_true, y_pred`` table keeps its true labels in, once
#: ``correct`` is made from them (``Predictions.true_labels``: the key that pairs two models'
#: tables; a name no table can carry itself, since ``y_true`` is read as ``label``)
TRUE_LABEL_COLUMN = "y_true"
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
    from lsfix.readers.npfiles import _read_npy
    from lsfix.readers.ptfiles import _read_torch
    from lsfix.readers.tables import _read_table

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




def _read_zip(src: str | io.BytesIO, name: str, ignore_index: int | None) -> Predictions:
    """A zip archive: an ``.npz`` or a ``torch.save`` file (it holds a pickle)."""
    from lsfix.readers.npfiles import _read_npz
    from lsfix.readers.ptfiles import _from_torch_object, _torch_zip_without_torch

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



"""Foreign inputs: arrays and tables users already have, converted to :class:`Predictions`.

:func:`lsfix.read` hands every input that is not HDF5 to
:func:`lsfix.readers.entry.read_foreign`, which picks the format and hands it to its reader:
:mod:`lsfix.readers.npfiles` (``.npy``/``.npz``),
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

import re

import numpy as np

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
    >>> from lsfix.readers.entry import read_foreign
    >>> pred = read_foreign(io.BytesIO(b"confidence,correct\\n0.9,1\\n0.4,false\\n"), "t", b"")
    >>> table_correct(pred)
    array([ True, False])
    """
    if pred.foreign_format != SCORE_TABLE or pred.labels is None:
        return None
    return pred.labels.astype(bool)


def is_number(cell: str) -> bool:
    """A table cell Python reads as a float (``1``, ``-2.5e3``, ``nan``, ``inf``): how the
    table and labels readers tell a header line or a label column from numbers."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().split("\n", 1)[0]
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__





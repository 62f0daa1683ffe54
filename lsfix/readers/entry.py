"""The one way in: :func:`read` turns any input lsfix knows into a finished :class:`Predictions`.

:func:`open_source` opens a named source (a path, ``-`` for stdin, a pipe) and tells HDF5 by its
signature. HDF5 inputs go to :mod:`lsfix.readers.logitsfile` (lsfix logits files) or
:mod:`lsfix.readers.scoresfile` (scores files, by their ``lsfix_schema`` attribute); anything
else is recognised by :func:`read_foreign` (first bytes, then extension; the formats are
described in :mod:`lsfix.readers.foreign`) and read by its format's reader:
:mod:`lsfix.readers.npfiles` (``.npy``, ``.npz``), :mod:`lsfix.readers.ptfiles` (``.pt``) or
:mod:`lsfix.readers.tables` (``.csv``/``.tsv``/``.txt``).
In-memory arrays (numpy, torch tensors, pandas objects) are validated exactly like a file.
:func:`read` then finishes the job every command and notebook needs: labels from another file
(``labels=``), what the numbers are (``input=``: logits, probabilities or log-probabilities,
detected and said in one line when not given), the ignore index, and scores files joined to the
logits they came from (``with_scores=``). Every option is an argument; nothing is read from
module state. This is the only module that knows every reader, so the readers never import one
another.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lsfix.errors import InputError, LsfixError, RuntimeFailure, UsageError
from lsfix.readers import untrusted
from lsfix.readers.foreign import (
    _EXTENSIONS,
    _SNIFF_BYTES,
    _UNRECOGNISED,
    _WHAT,
    _WRONG_MAGIC,
    NPY_MAGIC,
    PICKLE_HEADS,
    TORCH_LEGACY_HEAD,
    ZIP_MAGICS,
    _describe,
)
from lsfix.readers.predictions import LOGITS, Predictions, predictions_from_arrays, validate_labels
from lsfix.streams import STDIO, display_name, note_input, open_input, read_stdin_bytes


def read(
    source: Any,
    *,
    labels: Any = None,
    input: str | None = None,  # noqa: A002  (the CLI option's name: --input)
    ignore_index: int | None = None,
    with_scores: Sequence[Any] = (),
    overwrite_scores: bool = False,
    allow_incomplete: bool = False,
    need_labels: bool | str = False,
    need_logits: bool = False,
    defer_dense_labels: bool = False,
) -> Predictions:
    """Read, validate and finish one input.

    Parameters
    ----------
    source : str, os.PathLike, array-like or Predictions
        A path (``-`` = stdin, read into memory): an lsfix logits or scores file, ``.npy``,
        ``.npz``, ``.pt`` (read without torch, never as code), ``.csv``/``.tsv``/``.txt``; or
        logits in memory, shape ``(N, K)``, ``(N,)`` for a single-logit binary model, or
        ``(N, K, *spatial)`` for dense predictions (numpy, a torch tensor, a pandas
        DataFrame of logits). A :class:`Predictions` is finished with the other arguments.
    labels : str, os.PathLike or array-like, optional
        Labels for this input, from another file (``.npy``, ``.npz`` (``FILE.npz:KEY``),
        ``.txt``, ``FILE.csv:COLUMN``; integers or class names) or an array. An input that
        already holds labels must hold the same ones.
    input : {"logits", "probs", "log-probs"}, optional
        What the numbers are. ``None`` detects probabilities and log-probabilities on the
        first rows and records what was assumed in ``Predictions.warnings``.
    ignore_index : int, optional
        Label value of rows never evaluated (segmentation "void" 255, torch's -100), for
        inputs that do not record one; a recorded one that disagrees is an error.
    with_scores : sequence of str or Predictions
        Scores files (from ``score``/``normalise``) computed from this input's logits, joined
        to it; checked by fingerprint.
    overwrite_scores : bool
        A score in ``with_scores`` replaces a stored one of the same name (else an error).
    allow_incomplete : bool
        Accept an ``extract`` output not yet marked complete.
    need_labels : bool or str
        Raise :class:`~lsfix.errors.InputError` when the input has no labels, before any pass
        over the logits; a string names what needs them (default "this command").
    need_logits : bool
        Raise :class:`~lsfix.errors.InputError` when the input has no logits.
    defer_dense_labels : bool
        A dense HDF5 file's labels stay on disk (read image by image by the bounded path).

    Returns
    -------
    Predictions
        Validated; ``warnings`` holds one-line notes on what lsfix assumed, ``notes`` how a
        foreign input was read.

    Raises
    ------
    InputError
        Anything wrong with the data (exit code 3 on the command line); the message names
        ``file:/dataset`` and shapes.
    UsageError
        Contradictory arguments (exit code 2).

    Examples
    --------
    >>> import numpy as np, lsfix
    >>> pred = lsfix.read(np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), labels=[0, 0, 0])
    >>> pred.n, pred.k, pred.labels.tolist()
    (3, 2, [0, 0, 0])
    """
    from lsfix.readers import kind as input_kind

    kind = input_kind.check_kind(input)
    pred = _read_source(source, allow_incomplete=allow_incomplete, ignore_index=ignore_index,
                        defer_dense_labels=defer_dense_labels)
    try:
        if labels is not None:
            attach_labels(pred, labels, ignore_index=ignore_index)
        for extra in with_scores:
            _join(pred, extra, overwrite=overwrite_scores, ignore_index=ignore_index)
        if need_labels and not _has_labels(pred):
            # before any pass over the logits
            pred.require_labels(need_labels if isinstance(need_labels, str) else "this command")
        said = input_kind.apply(pred, kind)
        if said:
            pred.warnings.append(said)
        if need_logits:
            require_logits(pred)
    except BaseException:
        if pred is not source:  # a file read here; a caller's Predictions stays open
            pred.close()
        raise
    return pred


def _has_labels(pred: Predictions) -> bool:
    return (pred.labels is not None or pred.correct is not None
            or pred.deferred_labels is not None)


def _read_source(source: Any, *, allow_incomplete: bool, ignore_index: int | None,
                 defer_dense_labels: bool) -> Predictions:
    if isinstance(source, Predictions):
        return source
    if isinstance(source, str | os.PathLike):
        path = os.fsdecode(source)
        src, name, head, is_hdf5 = open_source(path)
        if is_hdf5:
            from lsfix.readers import logitsfile, scoresfile

            return logitsfile.read_hdf5(
                src, name, allow_incomplete=allow_incomplete,
                kinds={scoresfile.SCHEMA_NAME: scoresfile.read_scores_file},
                ignore_index=ignore_index, defer_dense_labels=defer_dense_labels)
        return read_foreign(src, name, head, ignore_index=ignore_index)
    if hasattr(source, "to_csv") and hasattr(source, "columns"):  # a pandas DataFrame
        # every float as the 17 significant digits that give it back exactly: a float32 column
        # is read as its values widened, as from .npy, not as their shortest decimal form
        text = source.to_csv(index=False, float_format="%.17g").encode("utf-8")
        return read_foreign(io.BytesIO(text), "<DataFrame>", text[:8],
                                    ignore_index=ignore_index)
    arr = _as_array(source, "<array>")
    if arr.dtype.kind not in "f":
        arr = arr.astype(np.float64) if arr.dtype.kind in "iub" else arr
    pred = predictions_from_arrays("<array>", arr, ignore_index=ignore_index)
    pred.foreign_format = "array"
    return pred


# --------------------------------------------------------------------------------------------
# opening a source and recognising its format

#: The HDF5 format signature (at 0, or after a user block of 512·2^i bytes)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _hdf5_signature_at(fh: Any, size: int) -> bool:
    """HDF5 files start with the signature at 0, or after a user block at 512·2^i."""
    offset = 0
    while offset + 8 <= size:
        fh.seek(offset)
        if fh.read(8) == HDF5_SIGNATURE:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False



def open_source(path: str) -> tuple[Any, str, bytes, bool]:
    """Return (path-or-BytesIO, display name, first bytes, is_hdf5).

    Pipes and other non-regular files (``<(cmd)``, FIFOs) are read into memory once, since
    they cannot be read twice.
    """
    name = display_name(path)
    note_input(path)  # an output of this command may never replace it (lsfix.streams)
    if path == STDIO:
        buf = read_stdin_bytes()
        return buf, name, buf.getvalue()[:8], _hdf5_signature_at(buf, len(buf.getvalue()))
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError("no such file", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", file=name) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a folder, not a file", file=name)
    try:
        with open(p, "rb") as fh:
            if not stat.S_ISREG(st.st_mode):
                data = fh.read()
                if not data:
                    raise InputError("empty input (0 bytes)", file=name)
                buf = io.BytesIO(data)
                return buf, name, data[:8], _hdf5_signature_at(buf, len(data))
            head = fh.read(8)
            if not head:
                raise InputError("empty file (0 bytes)", file=name)
            return path, name, head, _hdf5_signature_at(fh, st.st_size)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", file=name) from None


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
    with open_input(src, name) as fh:
        return fh.read(size)


def _all_bytes(src: str | io.BytesIO, name: str) -> bytes:
    if isinstance(src, io.BytesIO):
        return src.getvalue()
    with open_input(src, name) as fh:
        return fh.read()


def _read_zip(src: str | io.BytesIO, name: str, ignore_index: int | None) -> Predictions:
    """A zip archive: an ``.npz`` or a ``torch.save`` file (it holds a pickle)."""
    from lsfix.readers.npfiles import _read_npz
    from lsfix.readers.ptfiles import _from_torch_object, _torch_zip_without_torch

    with open_input(src, name) as fp:
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


def _as_array(value: Any, name: str) -> np.ndarray:
    """A numpy array of ``value`` (torch tensors through ``.numpy()``, never importing torch)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"not an array ({exc})", file=name) from None
    if arr.dtype == object:
        raise InputError("holds Python objects, not numbers", file=name)
    return arr


def _join(pred: Predictions, extra: Any, *, overwrite: bool, ignore_index: int | None) -> None:
    from lsfix.readers.scoresfile import join_scores

    other = _read_source(extra, allow_incomplete=False, ignore_index=ignore_index,
                         defer_dense_labels=False)
    if pred.logits is None:
        other.close()
        raise UsageError(f"--with joins a scores file to the logits it came from; {pred.name} "
                         "has no logits")
    try:
        join_scores(pred, other, overwrite=overwrite)
    finally:
        if other is not extra:
            other.close()


def attach_labels(pred: Predictions, spec: Any, *, ignore_index: int | None = None) -> None:
    """Give ``pred`` the labels of ``spec`` (a labels file or an array), validated against
    its rows and classes; class names are matched against ``pred.class_names``."""
    from lsfix.readers.labelsfile import ClassNames, class_name_codes, read_labels_file
    from lsfix.safetext import quote

    if pred.logits is None:
        raise UsageError(f"--labels: {pred.name} holds scores and their correctness, not "
                         "logits; labels cannot be added to it")
    spatial = tuple(getattr(pred.logits, "spatial", ()) or ())
    dense_shape = None
    if spatial:
        dense_shape = (pred.logits.shape[0] // int(np.prod(spatial)), *spatial)
    if isinstance(spec, str | os.PathLike):
        raw, name = read_labels_file(os.fsdecode(spec), dense_shape)
    else:
        name = "<labels>"
        raw = _as_array(spec, name)
        if dense_shape is not None and raw.shape == dense_shape:
            raw = raw.reshape(-1)
        if raw.ndim != 1:
            raise InputError(f"labels must be 1-D, shape {raw.shape}", file=name)
        if raw.dtype.kind in "SO":
            raw = raw.astype(str)
        elif raw.dtype.kind == "f":  # labels as pandas and torch often hold them: 3.0
            if not (np.isfinite(raw).all() and (raw == np.round(raw)).all()
                    and np.abs(raw).max(initial=0) < 2.0**63):
                raise InputError("labels must be integers (or class names), got non-integral "
                                 "numbers", file=name)
            raw = raw.astype(np.int64)
    if not isinstance(raw, ClassNames) and raw.dtype.kind == "U":  # names in an array
        vocab, codes = np.unique(raw, return_inverse=True)
        raw = ClassNames(codes.astype(np.int64), [str(v) for v in vocab])
    if isinstance(raw, ClassNames):  # class names
        classes = list(pred.class_names or [])
        if not classes:
            raise InputError(f"holds class names ({quote(raw.first())}, ...) but {pred.name} "
                             "has no class names to match them with; give class indices",
                             file=name)
        raw = class_name_codes(raw, classes, file=name, input_name=pred.name)
    n = pred.logits.shape[0]
    if raw.shape[0] != n:
        raise InputError(f"{raw.shape[0]} labels for {n} rows of {pred.name}", file=name)
    labels, keep = validate_labels(raw, pred.logits.shape[1], name, ignore_index=ignore_index,
                                   binary=bool(getattr(pred.logits, "binary", False)),
                                   dataset="labels")
    if pred.deferred_labels is not None:
        pred.load_labels()
    if pred.labels is not None and not np.array_equal(np.asarray(pred.labels), labels):
        row = int(np.argmax(np.asarray(pred.labels) != labels))
        raise InputError(f"differs from the labels {pred.name} already holds (first at row "
                         f"{row}); drop --labels or fix the file", file=name)
    pred.labels = labels
    if keep is not None:
        pred.keep = keep
    pred.correct = None  # recomputed from the new labels


def require_fit_labels(pred: Predictions, option: str) -> None:
    """A fit input (``--fit``, ``--val``, ``--calibration-fit``) without labels: exit 3 naming
    the file and the option that gives them (``--labels`` is for the command's input only,
    never paired with a fit file)."""
    if pred.labels is None:
        what = "no labels" if pred.foreign_format else "no /labels dataset"
        raise InputError(f"{what}; fitting needs labels (pass {option} FILE; --labels is for "
                         "the input only)", file=pred.name)


def require_logits(pred: Predictions) -> None:
    """Raise :class:`InputError` in the input's own vocabulary when ``pred`` has no logits."""
    from lsfix.readers.scoresfile import SCHEMA_NAME

    if pred.logits is not None:
        return
    if pred.kind == SCHEMA_NAME:
        raise InputError("is a scores file (no /logits); this command needs the logits "
                         "file it was computed from (pass that, and this with --with)",
                         file=pred.name)
    if pred.foreign_format:  # a table of confidences: no "datasets" in its vocabulary
        raise InputError(f"no logits in {pred.name} (a table of confidences); this "
                         "command needs logits")
    raise InputError(f"no {LOGITS} dataset; this command needs logits", file=pred.name)


__all__ = ["HDF5_SIGNATURE", "attach_labels", "open_source", "read", "read_foreign", "require_fit_labels", "require_logits"]

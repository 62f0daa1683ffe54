"""The one way in: :func:`read` turns any input lsfix knows into a finished :class:`Predictions`.

HDF5 inputs go to :mod:`lsfix.readers.logitsfile` (lsfix logits files) or
:mod:`lsfix.readers.scoresfile` (scores files, by their ``lsfix_schema`` attribute); anything
else goes to :mod:`lsfix.readers.foreign` (``.npy``, ``.npz``, ``.pt``, ``.csv``/``.tsv``/``.txt``).
In-memory arrays (numpy, torch tensors, pandas objects) are validated exactly like a file.
:func:`read` then finishes the job every command and notebook needs: labels from another file
(``labels=``), what the numbers are (``input=``: logits, probabilities or log-probabilities,
detected and said in one line when not given), the ignore index, and scores files joined to the
logits they came from (``with_scores=``). Every option is an argument; nothing is read from
module state. This is the only module that knows every reader, so the readers never import one
another.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lsfix.errors import InputError, UsageError
from lsfix.readers.predictions import LOGITS, Predictions, predictions_from_arrays, validate_labels


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
    from lsfix.readers import foreign, logitsfile, scoresfile

    if isinstance(source, Predictions):
        return source
    if isinstance(source, str | os.PathLike):
        path = os.fsdecode(source)
        src, name, head, is_hdf5 = logitsfile.open_source(path)
        if is_hdf5:
            return logitsfile.read_hdf5(
                src, name, allow_incomplete=allow_incomplete,
                kinds={scoresfile.SCHEMA_NAME: scoresfile.read_scores_file},
                ignore_index=ignore_index, defer_dense_labels=defer_dense_labels)
        return foreign.read_foreign(src, name, head, ignore_index=ignore_index)
    if hasattr(source, "to_csv") and hasattr(source, "columns"):  # a pandas DataFrame
        import io

        text = source.to_csv(index=False).encode("utf-8")
        return foreign.read_foreign(io.BytesIO(text), "<DataFrame>", text[:8],
                                    ignore_index=ignore_index)
    arr = _as_array(source, "<array>")
    if arr.dtype.kind not in "f":
        arr = arr.astype(np.float64) if arr.dtype.kind in "iub" else arr
    pred = predictions_from_arrays("<array>", arr, ignore_index=ignore_index)
    pred.foreign_format = "array"
    return pred


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


__all__ = ["attach_labels", "read", "require_fit_labels", "require_logits"]

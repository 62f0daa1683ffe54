"""The in-memory data model: :class:`Predictions`, the one view of every input lsfix reads.

A leaf module (numpy, the standard library, :mod:`lsfix.core` and :mod:`lsfix.errors` only):
the readers of lsfix logits files (:mod:`lsfix.readers.logitsfile`), scores files (:mod:`lsfix.readers.scoresfile`)
and foreign formats (:mod:`lsfix.readers.foreign`) all build a :class:`Predictions` from here, and none
of them imports another. :func:`predictions_from_arrays` and :func:`validate_labels` hold the
checks every reader shares, so an in-memory array is validated exactly as an HDF5 dataset.

The names of the parts (``/logits``, ``/labels``, ...) are the dataset paths of lsfix files;
they also name the parts of foreign inputs in error messages. ``docs/data-model.md`` is the
reference for every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsfix.core.source import ArrayRows
from lsfix.errors import InputError
from lsfix.safetext import quote as _quote

LOGITS = "/logits"
LABELS = "/labels"
SAMPLE_IDS = "/sample_ids"
CLASS_NAMES = "/class_names"
SCORES = "/scores"
#: Boolean mask (N,) of samples used to fit parameters (e.g. p); excluded from evaluation.
FIT_MASK = "/fit_mask"
#: Per-row correctness of a scores file, ``(n,)`` bool.
CORRECT = "/correct"
#: Group values, ``/groups/<NAME>``: one per sample, shape ``(N,)`` (pixels inherit their image's).
GROUPS = "/groups"

LOGIT_DTYPES = (np.float16, np.float32, np.float64)
#: Label values that conventionally mark ignored pixels (segmentation "void" 255, torch's
#: -100, and -1): an out-of-range label made only of one of these gets a --ignore-index hint.
COMMON_IGNORE_VALUES = (255, -100, -1, 65535)


def score_path(name: str) -> str:
    """HDF5 path of the score dataset ``name``."""
    return f"{SCORES}/{name}"


@dataclass
class Predictions:
    """Every input lsfix reads, validated, in memory or backed by an open HDF5 file.

    Attributes
    ----------
    name : str
        Display name of the source (path, or ``<stdin>``).
    logits : ArrayRows or None
        Row source over ``/logits`` (``n`` rows of ``k`` classes after binary/dense expansion);
        ``None`` for a score-only table (``curve scores.tsv``).
    labels : ndarray of integers (the stored dtype), shape (n,) or None
        Labels flattened like the logits rows; ignored pixels of dense tasks are excluded
        from evaluation by ``keep``.
    correct : ndarray of bool, shape (n,) or None
        Per-row correctness (row order of ``scores``). Given by the input for a scores file
        and a confidence/correct table; otherwise ``argmax logits == label``, computed once on
        first use by :func:`lsfix.evaluation.inmemory.correct_of` and kept here.
    fingerprint : dict or None
        Fingerprint of the logits source (:mod:`lsfix.readers.scoresfile`): for a logits file, computed
        on demand; for a scores file, the ``source`` it records. ``None`` when unknown.
    groups : dict of str to ndarray
        Group values for ``--by NAME`` (``/groups/<NAME>``), one per sample (an image's
        pixels share it); empty by default.

    ``docs/data-model.md`` describes every field and which input sets it.
    """

    name: str
    logits: ArrayRows | None
    labels: np.ndarray | None = None
    sample_ids: np.ndarray | None = None
    class_names: list[str] | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    score_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    fit_mask: np.ndarray | None = None
    keep: np.ndarray | None = None  #: rows kept (dense ignore_index), None = all
    #: rows drawn by ``--subsample-pixels`` (:func:`lsfix.evaluation.dense.apply_subsample`), None = no
    #: subsampling; apart from ``keep`` so an undrawn pixel is never counted as ignored
    drawn: np.ndarray | None = None
    raw_logits: Any = None  #: the array-like behind ``logits`` (h5py.Dataset or ndarray)
    logits_attrs: dict[str, Any] = field(default_factory=dict)
    labels_attrs: dict[str, Any] = field(default_factory=dict)
    h5: Any = None  #: open ``h5py.File`` backing the datasets, if any
    foreign_format: str | None = None
    correct: np.ndarray | None = field(default=None, repr=False)
    fingerprint: dict[str, Any] | None = None
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    #: one-line notes on how a foreign input was read (columns taken as groups, arrays not
    #: used); the CLI prints them to stderr
    notes: list[str] = field(default_factory=list)
    #: one-line warnings on what lsfix assumed about the input (probabilities detected, ...);
    #: the CLI prints them when the command succeeds
    warnings: list[str] = field(default_factory=list)
    #: where scores and metrics of this input are computed: a
    #: :class:`lsfix.evaluation.scheduler.Runner` (Dask), or None for this process; set by the
    #: evaluation planner from its ``scheduler`` argument, never by a reader
    runner: Any = field(default=None, repr=False)
    #: schema of an HDF5 input (``lsfix.predictions`` or ``lsfix.scores``), else None
    kind: str | None = None
    #: dense labels left on disk (``labels`` and ``keep`` are then None until
    #: :meth:`load_labels`); set only when read with ``defer_dense_labels=True``
    deferred_labels: Any = field(default=None, repr=False)

    def load_labels(self) -> None:
        """Read deferred labels into ``labels``/``keep`` (validated as a normal read)."""
        if self.deferred_labels is not None:
            self.labels, self.keep = self.deferred_labels.read_all()
            self.deferred_labels = None

    @property
    def n(self) -> int:
        """Number of evaluated rows (samples, or pixels for dense outputs)."""
        if self.logits is not None:
            return self.logits.shape[0]
        return next(iter(self.scores.values())).shape[0]

    @property
    def k(self) -> int | None:
        """Number of classes (2 for a single-logit binary classifier)."""
        return None if self.logits is None else self.logits.shape[1]

    def require_labels(self, what: str) -> np.ndarray:
        """Labels, or an :class:`InputError` saying ``what`` needs them."""
        if self.labels is None:
            if self.foreign_format is not None:  # .npy/.npz/.pt/table: no "datasets"
                # how it was read (arrays not used, columns taken as groups) says why
                read = "".join(f"; {n}" for n in self.notes)
                raise InputError(f"no labels in {self.name} (pass --labels FILE){read}")
            raise InputError(f"no {LABELS} dataset; {what} needs labels (pass --labels FILE)",
                             file=self.name)
        return self.labels

    def close(self) -> None:
        """Close the backing HDF5 file, if any."""
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None

    def __enter__(self) -> Predictions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_unique(ids: np.ndarray, name: str) -> None:
    uniq, counts = np.unique(ids.astype(str), return_counts=True)
    if uniq.shape[0] != ids.shape[0]:
        dup = str(uniq[np.argmax(counts > 1)])
        raise InputError(
            f"{ids.shape[0] - uniq.shape[0]} duplicated sample id(s), e.g. {_quote(dup)}",
            file=name,
            dataset=SAMPLE_IDS,
        )


def validate_labels(
    raw: Any,
    k: int | None,
    name: str,
    *,
    ignore_index: int | None = None,
    binary: bool = False,
    dataset: str = LABELS,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check labels are integers in ``[0, k)`` (0/1 for binary); flatten dense labels.

    Returns
    -------
    labels : ndarray of integers in their stored dtype, shape (n_rows,)
        Ignored rows (``ignore_index``) hold 0 and are excluded from evaluation via ``keep``.
    keep : ndarray of bool or None
        Mask of rows to evaluate when ``ignore_index`` removes pixels, else ``None``.
    """
    arr = np.asarray(raw)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in ("i", "u"):
        raise InputError(f"labels must be integers, got {arr.dtype}", file=name, dataset=dataset)
    raw_flat = arr.reshape(-1)
    if raw_flat.dtype.kind == "u" and raw_flat.dtype.itemsize >= 8 and raw_flat.size:
        # uint64 above 2^63 - 1 is no class index; report its true value (a cast would wrap)
        big = raw_flat > np.uint64(np.iinfo(np.int64).max)
        if ignore_index is not None and ignore_index >= 0:
            big &= raw_flat != np.uint64(ignore_index)
        if big.any():
            first = int(np.argmax(big))
            raise InputError(f"{int(big.sum())} label(s) above 2^63 - 1 (not a class index); "
                             f"first at row {first} = {int(raw_flat[first])}", file=name,
                             dataset=dataset)
    # labels stay in their stored integer dtype (a uint8 segmentation map costs 1 B per pixel,
    # not 8); checks run in that dtype, the int64 copy below exists only to word an error
    if not raw_flat.dtype.isnative:
        raw_flat = raw_flat.astype(raw_flat.dtype.newbyteorder("="))
    flat = raw_flat
    keep = None
    check = flat
    if ignore_index is not None:
        mask = raw_flat != ignore_index  # compared in the stored dtype: no wrap-around
        if not mask.all():
            keep = mask
            check = flat[mask]
            if check.shape[0] == 0:
                raise InputError(f"every label equals ignore_index={ignore_index}", file=name,
                                 dataset=dataset)
    if k is not None and check.shape[0]:
        lo, hi = int(check.min()), int(check.max())
        if lo < 0 or hi >= k:
            flat = flat.astype(np.int64)
            bad = ((flat < 0) | (flat >= k)) if keep is None else (
                keep & ((flat < 0) | (flat >= k)))
            what = "0 or 1 (single-logit binary classifier)" if binary else f"in [0, {k})"
            first = int(flat[np.argmax(bad)])
            hint = ""
            if ignore_index is None and first in COMMON_IGNORE_VALUES and bool(
                    (flat[bad] == first).all()):
                hint = f"; if {first} marks pixels to ignore, pass --ignore-index {first}"
            raise InputError(
                f"{int(bad.sum())} label(s) not {what}; first at row {int(np.argmax(bad))} "
                f"= {first}{hint}",
                file=name,
                dataset=dataset,
            )
    if keep is not None:  # ignored rows: any valid class; never evaluated
        flat = np.where(keep, flat, np.zeros(1, dtype=flat.dtype))
    return flat, keep


def predictions_from_arrays(
    name: str,
    logits: np.ndarray,
    *,
    labels: Any = None,
    sample_ids: Any = None,
    class_names: Any = None,
    provenance: dict[str, Any] | None = None,
    history: list[str] | None = None,
    dataset_names: tuple[str, str] = (LOGITS, LABELS),
    ignore_index: int | None = None,
) -> Predictions:
    """Validate in-memory arrays exactly as :func:`lsfix.read` validates a file; label
    ``ignore_index`` marks rows never evaluated."""
    lpath, ypath = dataset_names
    if logits.dtype.kind != "f":
        raise InputError(f"logits must be floating point, got {logits.dtype}", file=name,
                         dataset=lpath)
    if logits.dtype not in LOGIT_DTYPES:
        logits = logits.astype(np.float64)
    if logits.ndim == 0:
        raise InputError("is a scalar; expected (N, K)", file=name, dataset=lpath)
    if logits.shape[0] == 0:
        raise InputError(f"has zero rows, shape {logits.shape}", file=name, dataset=lpath)
    if logits.ndim >= 2 and logits.shape[1] == 0:
        raise InputError(f"has zero classes, shape {logits.shape}", file=name, dataset=lpath)
    rows = ArrayRows(logits, f"{name}:{lpath}")
    # validate finiteness now: the array is in memory
    bad = ~np.isfinite(logits)
    if bad.any():
        per_row = bad.reshape(bad.shape[0], -1).any(axis=1)
        raise InputError(
            f"{int(bad.sum())} non-finite logit value(s) (NaN or inf); first in row "
            f"{int(np.argmax(per_row))}",
            file=name,
            dataset=lpath,
        )
    lab = None
    keep = None
    ignore = None
    if labels is not None:
        labels_arr = np.asarray(labels)
        expected = (logits.shape[0], *logits.shape[2:])
        if labels_arr.shape != expected:
            raise InputError(f"shape {labels_arr.shape} does not match logits {logits.shape} "
                             f"(expected {expected})", file=name, dataset=ypath)
        ignore = ignore_index
        lab, keep = validate_labels(labels_arr, rows.shape[1], name, binary=rows.binary,
                                    dataset=ypath, ignore_index=ignore)
    ids = None
    if sample_ids is not None:
        if np.ndim(sample_ids) != 1:
            raise InputError(f"must be 1-D, shape {np.shape(sample_ids)}", file=name,
                             dataset=SAMPLE_IDS)
        ids = np.asarray([str(s) for s in sample_ids], dtype=object)
        if ids.shape != (logits.shape[0],):
            raise InputError(f"{ids.shape[0]} sample ids for {logits.shape[0]} rows", file=name,
                             dataset=SAMPLE_IDS)
        check_unique(ids, name)
    names = None
    if class_names is not None:
        if np.ndim(class_names) != 1:
            raise InputError(f"must be 1-D, shape {np.shape(class_names)}", file=name,
                             dataset=CLASS_NAMES)
        names = [str(c) for c in class_names]
        if len(names) != rows.shape[1]:
            raise InputError(f"{len(names)} class names for K={rows.shape[1]}", file=name,
                             dataset=CLASS_NAMES)
    return Predictions(
        name=name, logits=rows, labels=lab, sample_ids=ids, class_names=names,
        provenance=provenance or {}, history=history or [], keep=keep, raw_logits=logits,
        labels_attrs={} if lab is None or ignore is None else {"ignore_index": ignore},
    )


__all__ = [
    "CLASS_NAMES", "CORRECT", "FIT_MASK", "GROUPS", "LABELS", "LOGITS", "LOGIT_DTYPES",
    "SAMPLE_IDS", "SCORES", "Predictions", "check_unique",
    "predictions_from_arrays", "score_path", "validate_labels",
]

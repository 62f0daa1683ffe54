"""The lsfix HDF5 file: every path and attribute name, reading, validation and writing.

Schema ``lsfix.predictions`` version 1::

    /               attrs: lsfix_schema="lsfix.predictions", lsfix_schema_version=1,
                           lsfix_version, lsfix_complete (bool), provenance (JSON object),
                           history (JSON list of command strings)
    /logits         (N, K) or (N, K, *spatial) float16/32/64; (N,) or (N, 1) = binary (0, z)
    /labels         (N,) or (N, *spatial) integer, optional; attr ignore_index (dense)
    /sample_ids     (N,) utf-8 strings, optional, unique
    /class_names    (K,) utf-8 strings, optional
    /scores/<name>  (N,) float64 confidences (higher = more confident); attrs method, params (JSON)

Files are read once and validated once (:func:`read_hdf5`); every error names
``file:/dataset`` and the shapes. Files are written atomically (:func:`write_predictions`).
The in-memory view is :class:`lsfix.readers.predictions.Predictions`; :func:`lsfix.readers.entry.read_input`
picks the reader for any input (this module, :mod:`lsfix.readers.scoresfile`, :mod:`lsfix.readers.foreign`).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lsfix import __version__

from lsfix.readers import h5safe

from lsfix.readers import untrusted
from lsfix.core.source import ArrayRows, chunk_rows_for
from lsfix.errors import InputError, RuntimeFailure
from lsfix.safetext import quote as _quote
from lsfix.streams import (
    atomic_output,
    dumps_json,
)
from lsfix.readers.predictions import (
    CLASS_NAMES,
    FIT_MASK,
    LABELS,
    LOGITS,
    SAMPLE_IDS,
    SCORES,
    Predictions,
    check_unique,
    predictions_from_arrays,
    score_path,
    validate_labels,
)

SCHEMA_NAME = "lsfix.predictions"
SCHEMA_VERSION = 1

ATTR_SCHEMA = "lsfix_schema"
ATTR_VERSION = "lsfix_schema_version"
ATTR_LSFIX_VERSION = "lsfix_version"
ATTR_COMPLETE = "lsfix_complete"
ATTR_PROVENANCE = "provenance"
ATTR_HISTORY = "history"
ATTR_TRANSFORMS = "transforms"
ATTR_IGNORE_INDEX = "ignore_index"
ATTR_METHOD = "method"
ATTR_PARAMS = "params"

STR_DTYPE = h5py.string_dtype("utf-8")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


# --------------------------------------------------------------------------------------------
# reading


def json_attr(attrs: Any, key: str, default: Any = None, name: str | None = None
              ) -> Any:
    """A JSON-valued attribute; ``default`` when absent. Invalid JSON (or JSON nested too deep,
    too large, holding NaN/Infinity: :func:`lsfix.readers.untrusted.loads`) raises
    :class:`InputError` naming ``name`` (the file), or gives ``default`` when ``name`` is None."""
    if key not in attrs:
        return default
    try:
        return untrusted.loads(attrs[key], file=name or "?", key=key)
    except InputError:
        if name is None:
            return default
        raise
    except (OSError, TypeError, ValueError) as exc:  # an attribute libhdf5 cannot decode
        if name is None:
            return default
        raise InputError(f"attribute {key!r} is unreadable ({exc})".split("\n")[0], file=name,
                         dataset="/") from None


def check_local(f: h5py.File, path: str, name: str) -> None:
    """Refuse a dataset that reads outside the file or is not backed by stored data
    (:mod:`lsfix.readers.h5safe`; the whole file's links were checked when it was opened)."""
    obj = f[path]
    if isinstance(obj, h5py.Dataset):
        h5safe.check_dataset(obj, name, path)
        h5safe.require_stored(obj, name, path)


def _h5_reason(exc: BaseException) -> str:
    """First line of an h5py/HDF5 error, e.g. ``Can't synchronously read data (...)``."""
    text = str(exc).strip().split("\n", 1)[0]
    return text if len(text) <= 160 else text[:157] + "..."


def read_all(ds: h5py.Dataset, name: str, path: str) -> Any:
    """``ds[()]``; an HDF5 read failure (corrupt chunk, missing filter plugin, truncated
    data) becomes an :class:`InputError` naming ``file:/dataset``."""
    try:
        return ds[()]
    except (OSError, RuntimeError) as exc:
        raise InputError(f"unreadable data ({_h5_reason(exc)}); corrupt or truncated file?",
                         file=name, dataset=path) from None


class CheckedDataset:
    """Slices of an ``h5py.Dataset`` for :class:`ArrayRows`; a failed read (a corrupt
    compressed chunk is found only when the rows are read, long after validation) raises
    :class:`InputError` naming ``file:/dataset`` instead of a bare ``OSError``."""

    def __init__(self, ds: h5py.Dataset, name: str, path: str) -> None:
        self._ds = ds
        self._name = name
        self._path = path
        self.shape = ds.shape
        self.dtype = ds.dtype
        self.ndim = ds.ndim
        self.chunks = ds.chunks  #: storage chunks: readers align their row blocks to them

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._ds[key]
        except (OSError, RuntimeError) as exc:
            raise InputError(
                f"unreadable data ({_h5_reason(exc)}); corrupt or truncated file?",
                file=self._name, dataset=self._path) from None

    def __len__(self) -> int:
        return int(self.shape[0])

    def read_direct(self, dest: np.ndarray, source_sel: Any = None, dest_sel: Any = None
                    ) -> None:
        """``h5py.Dataset.read_direct`` into a caller's buffer, errors as in :meth:`__getitem__`."""
        try:
            self._ds.read_direct(dest, source_sel, dest_sel)
        except (OSError, RuntimeError) as exc:
            raise InputError(
                f"unreadable data ({_h5_reason(exc)}); corrupt or truncated file?",
                file=self._name, dataset=self._path) from None


def is_logit_dtype(dtype: Any) -> bool:
    """float16/32/64 in either byte order (a big-endian file from another machine is fine)."""
    dt = np.dtype(dtype)
    return dt.kind == "f" and dt.itemsize in (2, 4, 8) and dt.fields is None


def local_dataset(f: h5py.File, path: str, name: str) -> h5py.Dataset | None:
    if path not in f:
        return None
    check_local(f, path, name)
    obj = f[path]
    if not isinstance(obj, h5py.Dataset):
        raise InputError("is a group, expected a dataset", file=name, dataset=path)
    return obj


def read_strings(ds: h5py.Dataset, name: str, path: str, n: int) -> np.ndarray:
    if ds.shape != (n,):
        raise InputError(f"shape {ds.shape} does not match ({n},)", file=name, dataset=path)
    if ds.dtype.kind not in ("S", "O", "U"):
        raise InputError(f"must hold strings, got {ds.dtype}", file=name, dataset=path)
    try:
        vals = ds.asstr()[()] if ds.dtype.kind in ("S", "O") else ds[()]
    except (UnicodeDecodeError, TypeError, ValueError):
        raise InputError("strings are not valid utf-8", file=name, dataset=path) from None
    except (OSError, RuntimeError) as exc:
        raise InputError(f"unreadable data ({_h5_reason(exc)}); corrupt or truncated file?",
                         file=name, dataset=path) from None
    return np.asarray(vals, dtype=object)


#: A reader of another lsfix HDF5 kind: ``(open file, display name, allow_incomplete)``.
KindReader = Callable[[h5py.File, str, bool], Predictions]


def read_hdf5(src: Any, name: str, *, allow_incomplete: bool,
              kinds: Mapping[str, KindReader] | None = None, ignore_index: int | None = None,
              defer_dense_labels: bool = False) -> Predictions:
    """Open (local-only, :func:`lsfix.readers.h5safe.open_local`) and validate an lsfix HDF5 file.

    ``kinds`` maps another schema name (``lsfix.scores``) to its reader, so a caller that
    knows every kind (:mod:`lsfix.readers.entry`) can hand this module the file's first read without
    this module importing the other readers. Any h5py failure becomes an :class:`InputError`.
    ``ignore_index``: the label value of rows never evaluated, for a file that does not record
    one (a recorded one that disagrees is an error). ``defer_dense_labels``: a dense file's
    ``/labels`` stay on disk (:attr:`Predictions.deferred_labels`) for the bounded path.
    """
    f = h5safe.open_local(src, name)
    try:
        reader = (kinds or {}).get(schema_of(f, name))
        if reader is not None:
            return reader(f, name, allow_incomplete, ignore_index=ignore_index)
        return _validate_hdf5(f, name, allow_incomplete=allow_incomplete,
                              ignore_index=ignore_index, defer_dense_labels=defer_dense_labels)
    except InputError:
        f.close()
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
        f.close()
        raise InputError(f"unreadable HDF5 content ({type(exc).__name__}: {exc})"
                         .split("\n")[0], file=name) from None


def schema_of(f: h5py.File, name: str) -> str:
    """The ``lsfix_schema`` attribute of an open file; :class:`InputError` when absent."""
    if ATTR_SCHEMA not in f.attrs:
        raise InputError(f"is not an lsfix file (no {ATTR_SCHEMA} attribute)", file=name)
    return untrusted.text(f.attrs[ATTR_SCHEMA], file=name, key=f"attribute {ATTR_SCHEMA!r}",
                          limit=200)


def check_root(f: h5py.File, name: str, schema_name: str, schema_version: int, *,
               allow_incomplete: bool) -> tuple[dict[str, Any], list[str]]:
    """Check the root attributes of an lsfix file of kind ``schema_name``; return its
    provenance and history."""
    attrs = f.attrs
    schema = schema_of(f, name)
    if schema != schema_name:
        raise InputError(f"schema {_quote(schema)} is not {schema_name!r}", file=name)
    try:
        version = untrusted.integer(attrs.get(ATTR_VERSION, -1), file=name, key=ATTR_VERSION,
                                    lo=-1, hi=2**31)
    except InputError:
        version = -1
    if version < 1:
        raise InputError(f"missing or invalid {ATTR_VERSION} attribute", file=name)
    if version > schema_version:
        raise InputError(
            f"schema version {version} is newer than this lsfix reads ({schema_version}); "
            "upgrade lsfix (pip install -U lsfix)",
            file=name,
        )
    complete = (untrusted.flag(attrs[ATTR_COMPLETE], file=name,
                               key=f"attribute {ATTR_COMPLETE!r}")
                if ATTR_COMPLETE in attrs else True)
    if not allow_incomplete and not complete:
        raise InputError(
            "is incomplete (an interrupted extract); finish it with 'lsfix extract --resume' "
            "or read it anyway with --allow-incomplete",
            file=name,
        )
    provenance = json_attr(attrs, ATTR_PROVENANCE, {}, name)
    history = json_attr(attrs, ATTR_HISTORY, [], name)
    untrusted.expect(provenance, dict, file=name, key=f"attribute {ATTR_PROVENANCE!r}")
    untrusted.expect(history, list, file=name, key=f"attribute {ATTR_HISTORY!r}")
    return provenance, [str(h) for h in history]


def _validate_hdf5(f: h5py.File, name: str, *, allow_incomplete: bool,
                   ignore_index: int | None, defer_dense_labels: bool) -> Predictions:
    provenance, history = check_root(f, name, SCHEMA_NAME, SCHEMA_VERSION,
                                     allow_incomplete=allow_incomplete)

    logits_ds = local_dataset(f, LOGITS, name)
    labels_ds = local_dataset(f, LABELS, name)
    rows: ArrayRows | None = None
    n_items: int | None = None
    spatial: tuple[int, ...] = ()
    if logits_ds is not None:
        if not is_logit_dtype(logits_ds.dtype):
            raise InputError(
                f"dtype {logits_ds.dtype} is not float16/float32/float64",
                file=name,
                dataset=LOGITS,
            )
        shape = logits_ds.shape
        if shape is None or len(shape) == 0:
            raise InputError("is a scalar; expected (N, K)", file=name, dataset=LOGITS)
        if shape[0] == 0:
            raise InputError(f"has zero rows, shape {shape}", file=name, dataset=LOGITS)
        if len(shape) >= 2 and shape[1] == 0:
            raise InputError(f"has zero classes, shape {shape}", file=name, dataset=LOGITS)
        if len(shape) >= 3 and any(s == 0 for s in shape[2:]):
            raise InputError(f"has an empty spatial axis, shape {shape}", file=name,
                             dataset=LOGITS)
        rows = ArrayRows(CheckedDataset(logits_ds, name, LOGITS), f"{name}:{LOGITS}")
        n_items = shape[0]
        spatial = tuple(shape[2:])

    expected = None if rows is None else rows.shape[0]
    scores, score_attrs = read_score_group(f, name, expected, against=LOGITS)
    if rows is None and not scores:
        raise InputError(f"has no {LOGITS} dataset (and no {SCORES})", file=name)
    n_rows = rows.shape[0] if rows is not None else next(iter(scores.values())).shape[0]
    if rows is None:
        n_items = n_rows
    assert n_items is not None
    if n_rows == 0:
        raise InputError("has zero rows", file=name, dataset=SCORES)
    lengths = {v.shape[0] for v in scores.values()}
    if len(lengths) > 1:
        raise InputError(f"score datasets have different lengths {sorted(lengths)}", file=name,
                         dataset=SCORES)

    labels = None
    keep = None
    deferred: DeferredLabels | None = None
    labels_attrs: dict[str, Any] = {}
    k = rows.shape[1] if rows is not None else None
    if labels_ds is not None:
        labels_attrs = dict(labels_ds.attrs)
        expected_shape = (n_items, *spatial)
        if labels_ds.shape != expected_shape:
            raise InputError(
                f"shape {labels_ds.shape} does not match {LOGITS} (expected {expected_shape})",
                file=name,
                dataset=LABELS,
            )
        ignore = labels_attrs.get(ATTR_IGNORE_INDEX)
        if ignore is not None:  # type and range first: inf, NaN, a list or text is exit 3
            ignore = untrusted.integer(ignore, file=name, dataset=LABELS,
                                       key=f"attribute {ATTR_IGNORE_INDEX!r}",
                                       lo=-(2**63), hi=2**64 - 1)
        given = ignore_index
        if given is not None:
            if ignore is not None and int(ignore) != given:
                raise InputError(f"attribute ignore_index={int(ignore)} disagrees with "
                                 f"--ignore-index {given}", file=name, dataset=LABELS)
            ignore = given
            labels_attrs[ATTR_IGNORE_INDEX] = np.int64(given)
        deferred = DeferredLabels(labels_ds, name, k, None if ignore is None else int(ignore),
                                  binary=rows is not None and rows.binary)
        if not (spatial and defer_dense_labels and labels_ds.dtype.kind in "iu"):
            labels, keep = deferred.read_all()
            deferred = None
    sample_ids = None
    sid = local_dataset(f, SAMPLE_IDS, name)
    if sid is not None:
        sample_ids = read_strings(sid, name, SAMPLE_IDS, n_items)
        check_unique(sample_ids, name)
    class_names = None
    cn = local_dataset(f, CLASS_NAMES, name)
    if cn is not None:
        if k is None:
            raise InputError(f"present without {LOGITS}", file=name, dataset=CLASS_NAMES)
        class_names = [str(x) for x in read_strings(cn, name, CLASS_NAMES, k)]
    fit_mask = read_fit_mask(f, name, n_rows)
    groups = read_groups(f, name, n_items)
    return Predictions(
        name=name,
        logits=rows,
        labels=labels,
        sample_ids=sample_ids,
        class_names=class_names,
        scores=scores,
        score_attrs=score_attrs,
        provenance=provenance,
        history=history,
        fit_mask=fit_mask,
        keep=keep,
        raw_logits=logits_ds,
        logits_attrs=dict(logits_ds.attrs) if logits_ds is not None else {},
        labels_attrs=labels_attrs,
        h5=f,
        groups=groups,
        kind=SCHEMA_NAME,
        deferred_labels=deferred,
    )


class DeferredLabels:
    """``/labels`` of a dense file left on disk: validated when read, whole
    (:meth:`read_all`, exactly the normal read) or image by image (:meth:`image`)."""

    def __init__(self, ds: h5py.Dataset, name: str, k: int | None, ignore_index: int | None,
                 *, binary: bool) -> None:
        self._ds = ds
        self._name = name
        self._k = k
        self.ignore_index = ignore_index
        self._binary = binary
        self.dtype = ds.dtype

    def read_all(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(labels, keep)`` as :func:`~lsfix.readers.predictions.validate_labels` gives them."""
        return validate_labels(read_all(self._ds, self._name, LABELS), self._k, self._name,
                               ignore_index=self.ignore_index, binary=self._binary)

    def image(self, item: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Flat labels of image ``item`` in their stored dtype and the mask of its pixels
        that are not ignored (None: all). A label out of range raises the normal read's
        error (the whole dataset is then read to word it)."""
        try:
            raw = np.asarray(self._ds[item]).reshape(-1)
        except (OSError, RuntimeError) as exc:
            raise InputError(f"unreadable data ({_h5_reason(exc)}); corrupt or truncated file?",
                             file=self._name, dataset=LABELS) from None
        if not raw.dtype.isnative:
            raw = raw.astype(raw.dtype.newbyteorder("="))
        keep = None
        check = raw
        if self.ignore_index is not None:
            mask = raw != self.ignore_index  # compared in the stored dtype
            if not mask.all():
                keep, check = mask, raw[mask]
        if self._k is not None and check.shape[0]:
            if int(check.min()) < 0 or int(check.max()) >= self._k:
                self.read_all()  # raises the error of a normal read, counted over the file
                raise InputError(f"label(s) out of range in image {item}", file=self._name,
                                 dataset=LABELS)  # pragma: no cover - read_all raised
        return raw, keep


def read_score_group(f: h5py.File, name: str, expected: int | None, *, against: str
                     ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """``/scores/<name>`` datasets (float64, no NaN, ``expected`` rows when given, all of one
    length) and their ``method``/``params`` attributes; ``against`` names what fixes the
    length in messages."""
    scores: dict[str, np.ndarray] = {}
    score_attrs: dict[str, dict[str, Any]] = {}
    if SCORES not in f:
        return scores, score_attrs
    check_local(f, SCORES, name)
    grp = f[SCORES]
    if not isinstance(grp, h5py.Group):
        raise InputError("must be a group", file=name, dataset=SCORES)
    for key in grp:
        path = score_path(key)
        ds = local_dataset(f, path, name)
        assert ds is not None
        if ds.ndim != 1 or ds.dtype.kind != "f":
            raise InputError(f"must be a 1-D float array, got {ds.dtype} {ds.shape}",
                             file=name, dataset=path)
        if expected is not None and ds.shape[0] != expected:
            raise InputError(f"has {ds.shape[0]} rows; {against} has {expected}", file=name,
                             dataset=path)
        vals = np.asarray(read_all(ds, name, path), dtype=np.float64)
        bad = np.isnan(vals)
        if bad.any():
            raise InputError(f"{int(bad.sum())} NaN confidence(s); first at row "
                             f"{int(np.argmax(bad))}", file=name, dataset=path)
        scores[key] = vals
        score_attrs[key] = {
            ATTR_METHOD: untrusted.text(ds.attrs.get(ATTR_METHOD, key), file=name,
                                        dataset=path, key=f"attribute {ATTR_METHOD!r}"),
            ATTR_PARAMS: untrusted.expect(
                json_attr(ds.attrs, ATTR_PARAMS, {}, f"{name}:{path}"), dict, file=name,
                dataset=path, key=f"attribute {ATTR_PARAMS!r}"),
        }
    return scores, score_attrs


def read_fit_mask(f: h5py.File, name: str, n_rows: int) -> np.ndarray | None:
    """``/fit_mask`` as a bool ``(n_rows,)`` array, or ``None`` when absent."""
    fm = local_dataset(f, FIT_MASK, name)
    if fm is None:
        return None
    if fm.shape != (n_rows,) or fm.dtype.kind not in ("b", "u", "i"):
        raise InputError(f"must be a ({n_rows},) boolean mask, got {fm.dtype} {fm.shape}",
                         file=name, dataset=FIT_MASK)
    return np.asarray(read_all(fm, name, FIT_MASK), dtype=bool)


def read_groups(f: h5py.File, name: str, n_items: int) -> dict[str, np.ndarray]:
    """``/groups/<NAME>``: one value per sample, integers or utf-8 strings (``--by NAME``)."""
    if "/groups" not in f:
        return {}
    check_local(f, "/groups", name)
    if not isinstance(f["/groups"], h5py.Group):
        raise InputError("is a dataset, expected a group of per-sample datasets", file=name,
                         dataset="/groups")
    out: dict[str, np.ndarray] = {}
    for key in sorted(f["/groups"].keys()):
        path = f"/groups/{key}"
        ds = local_dataset(f, path, name)
        assert ds is not None
        if ds.dtype.kind in ("S", "O", "U"):
            out[key] = read_strings(ds, name, path, n_items)
        elif ds.dtype.kind in ("i", "u", "b") and ds.shape == (n_items,):
            out[key] = np.asarray(read_all(ds, name, path))
        else:
            raise InputError(f"must hold ({n_items},) integers or strings, got {ds.dtype} "
                             f"{ds.shape}", file=name, dataset=path)
    return out


# --------------------------------------------------------------------------------------------
# writing


def command_line() -> str:
    """The current command line, for ``history`` (program name normalised to ``lsfix``)."""
    args = sys.argv[1:]
    return shlex.join(["lsfix", *args])


def root_attrs(provenance: dict[str, Any], history: list[str], *, complete: bool = True,
               schema: tuple[str, int] = (SCHEMA_NAME, SCHEMA_VERSION)) -> dict[str, Any]:
    """Root attributes of an lsfix file of kind ``schema`` (name, version); no timestamps:
    same inputs give the same bytes."""
    return {
        ATTR_SCHEMA: schema[0],
        ATTR_VERSION: np.int64(schema[1]),
        ATTR_LSFIX_VERSION: __version__,
        ATTR_COMPLETE: np.bool_(complete),
        ATTR_PROVENANCE: dumps_json(provenance, sort_keys=True),
        ATTR_HISTORY: dumps_json(history),
    }


def set_root_attrs(f: h5py.File, provenance: dict[str, Any], history: list[str], *,
                   complete: bool = True,
                   schema: tuple[str, int] = (SCHEMA_NAME, SCHEMA_VERSION)) -> None:
    """Write the schema, version, provenance and history attributes on ``f``."""
    for key, val in root_attrs(provenance, history, complete=complete, schema=schema).items():
        f.attrs[key] = val


def write_strings(f: h5py.File, path: str, values: Any) -> None:
    f.create_dataset(path, data=np.asarray([str(v) for v in values], dtype=object),
                     dtype=STR_DTYPE, track_times=False)


def write_predictions(
    path: str,
    pred: Predictions,
    *,
    new_scores: dict[str, tuple[np.ndarray, str, dict[str, Any]]] | None = None,
    overwrite: bool = False,
    history_entry: str | None = None,
    fit_mask: np.ndarray | None = None,
) -> None:
    """Write ``pred`` plus ``new_scores`` to ``path`` (``-`` = stdout), atomically.

    The logits, labels, ids and class names are copied as read (HDF5 sources are copied
    dataset-to-dataset without decoding); existing scores are kept. ``new_scores`` maps a name
    to ``(values, method, params)``; replacing an existing name needs ``overwrite=True``.
    """
    if pred.foreign_format == "score-table":
        raise InputError("a confidence/correct table has no logits or labels to store; "
                         "use it with 'curve' or 'compare'", file=pred.name)
    new_scores = new_scores or {}
    clash = sorted(set(new_scores) & set(pred.scores))
    if clash and not overwrite:
        from lsfix.errors import UsageError

        raise UsageError(
            f"{pred.name}: {score_path(clash[0])} already exists; pass --overwrite to replace it"
        )
    history = [*pred.history, history_entry or command_line()]
    with atomic_output(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as out:
            set_root_attrs(out, pred.provenance, history)
            _copy_core(pred, out)
            if fit_mask is not None or pred.fit_mask is not None:
                mask = fit_mask if fit_mask is not None else pred.fit_mask
                out.create_dataset(FIT_MASK, data=np.asarray(mask, dtype=bool), track_times=False)
            grp = out.create_group(SCORES, track_order=True)
            merged = {k: (v, pred.score_attrs.get(k, {}).get(ATTR_METHOD, k),
                          pred.score_attrs.get(k, {}).get(ATTR_PARAMS, {}))
                      for k, v in pred.scores.items()}
            merged.update(new_scores)
            for key, (vals, method, params) in merged.items():
                ds = grp.create_dataset(key, data=np.asarray(vals, dtype=np.float64),
                                        track_times=False)
                ds.attrs[ATTR_METHOD] = method
                ds.attrs[ATTR_PARAMS] = dumps_json(params, sort_keys=True)


def _copy_core(pred: Predictions, out: h5py.File) -> None:
    if pred.h5 is not None:
        for path in (LOGITS, LABELS, SAMPLE_IDS, CLASS_NAMES):
            if path in pred.h5:
                pred.h5.copy(pred.h5[path], out, name=path.lstrip("/"))
        write_groups(pred, out)  # as read (and joined with --with): kept for --by NAME
        return
    if pred.raw_logits is not None:
        write_array_chunked(out, LOGITS, pred.raw_logits)
        for key, val in pred.logits_attrs.items():
            out[LOGITS].attrs[key] = val
    if pred.labels is not None:
        out.create_dataset(LABELS, data=pred.labels, track_times=False)
    if pred.sample_ids is not None:
        write_strings(out, SAMPLE_IDS, pred.sample_ids)
    if pred.class_names is not None:
        write_strings(out, CLASS_NAMES, pred.class_names)
    write_groups(pred, out)


def write_groups(pred: Predictions, out: h5py.File) -> None:
    """``/groups/<NAME>`` as read (one value per sample), carried forward for ``--by NAME``."""
    for key, values in sorted(pred.groups.items()):
        if np.asarray(values).dtype.kind in ("i", "u", "b"):
            out.create_dataset(f"/groups/{key}", data=np.asarray(values), track_times=False)
        else:
            write_strings(out, f"/groups/{key}", [str(v) for v in values])


def write_array_chunked(out: h5py.File, path: str, data: Any) -> None:
    """Copy an array-like into a new dataset in bounded row chunks."""
    shape = tuple(data.shape)
    ds = out.create_dataset(path, shape=shape, dtype=data.dtype, track_times=False)
    k = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    step = chunk_rows_for(k)
    for start in range(0, shape[0], step):
        ds[start : start + step] = np.asarray(data[start : start + step])


def new_file(
    path: str,
    logits: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    sample_ids: Any = None,
    class_names: Any = None,
    provenance: dict[str, Any] | None = None,
    history: list[str] | None = None,
    ignore_index: int | None = None,
) -> None:
    """Write a fresh lsfix file from in-memory arrays (validated like a read).

    Dense labels keep their shape ``(N, *spatial)`` and dtype, with ``ignore_index`` as the
    attribute the reader uses to leave those pixels out.
    """
    logits = np.asarray(logits)
    pred = predictions_from_arrays(
        str(path), logits, labels=labels, sample_ids=sample_ids, class_names=class_names,
        provenance=provenance or {}, history=history or [], ignore_index=ignore_index,
    )
    with atomic_output(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as out:
            set_root_attrs(out, pred.provenance, pred.history)
            raw_labels, pred.labels = pred.labels, None
            _copy_core(pred, out)
            if raw_labels is not None:  # as given: the reader checks (N, *spatial)
                ds = out.create_dataset(LABELS, data=np.asarray(labels), track_times=False)
                if ignore_index is not None:
                    ds.attrs[ATTR_IGNORE_INDEX] = np.int64(ignore_index)


def read_bytes_of(path: str) -> bytes:
    """Bytes of a file (for tests and byte-identity checks)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise RuntimeFailure(f"{path}: cannot read ({exc.strerror})") from None


__all__ = [
    "SCHEMA_NAME", "SCHEMA_VERSION", "Predictions", "read_hdf5",
    "write_predictions", "new_file", "predictions_from_arrays", "validate_labels",
    "set_root_attrs", "root_attrs", "score_path",
]

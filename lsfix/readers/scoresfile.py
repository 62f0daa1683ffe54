"""The scores file: what ``score`` and ``normalise`` add to a logits file, without the logits.

Schema ``lsfix.scores`` version 1 (``docs/data-model.md``)::

    /               attrs: lsfix_schema="lsfix.scores", lsfix_schema_version=1, lsfix_version,
                           lsfix_complete, provenance (JSON), history (JSON list),
                           source (JSON: the fingerprint of the logits it came from)
    /scores/<name>  (n,) float64 confidences; attrs method, params (JSON)
    /correct        (n,) bool, argmax logits == label (when the source has labels)
    /labels         as stored in the source (same dtype and shape), attr ignore_index
    /sample_ids     (N,) utf-8, when the source has them
    /class_names    (K,) utf-8, when the source has them
    /fit_mask       (n,) bool, rows used to fit parameters
    /groups/<NAME>  (N,) one value per sample (``--by NAME``), as in the logits file

A scores file is never paired with logits or labels of another source: the **fingerprint**
(:func:`fingerprint`) of the logits it was computed from is stored in ``source`` and checked
wherever files are combined (:func:`check_same_source`, :func:`check_same_samples`).

This module builds on the HDF5 helpers of :mod:`lsfix.readers.logitsfile` (root attributes, local-only
datasets) and never imports :mod:`lsfix.readers.foreign`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import h5py
import numpy as np

from lsfix.readers import untrusted
from lsfix.errors import InputError, UsageError
from lsfix.safetext import quote as _quote
from lsfix.streams import atomic_output, dumps_json
from lsfix.readers.predictions import (
    CLASS_NAMES,
    CORRECT,
    FIT_MASK,
    LABELS,
    SAMPLE_IDS,
    SCORES,
    Predictions,
    check_unique,
    validate_labels,
)
from lsfix.readers.logitsfile import (
    ATTR_IGNORE_INDEX,
    ATTR_METHOD,
    ATTR_PARAMS,
    check_root,
    command_line,
    json_attr,
    local_dataset,
    read_all,
    read_fit_mask,
    read_groups,
    read_score_group,
    read_strings,
    set_root_attrs,
    write_groups,
    write_strings,
)

SCHEMA_NAME = "lsfix.scores"
SCHEMA_VERSION = 1
#: Root attribute holding the JSON fingerprint of the source logits.
ATTR_SOURCE = "source"

#: Version of the fingerprint recipe (a new recipe never equals an old one).
FINGERPRINT_VERSION = 1
#: Logit items sampled by the fingerprint, spread evenly from the first to the last.
FINGERPRINT_SAMPLES = 8
#: Elements read per sampled item (at most).
FINGERPRINT_ELEMENTS = 4096
#: Labels are hashed this many at a time (bounded memory whatever N is).
_HASH_ROWS = 1 << 20


# --------------------------------------------------------------------------------------------
# fingerprints


def _sha256_array(arr: Any, h: Any) -> None:
    h.update(np.ascontiguousarray(arr).tobytes())


def _labels_sha256(pred: Predictions) -> str | None:
    """SHA-256 of the labels as little-endian int64, ignored rows as -1 (any stored dtype
    gives the same hash for the same values)."""
    if pred.labels is None:
        return None
    h = hashlib.sha256()
    n = pred.labels.shape[0]
    for start in range(0, n, _HASH_ROWS):
        part = pred.labels[start : start + _HASH_ROWS].astype("<i8")
        if pred.keep is not None:
            part[~pred.keep[start : start + _HASH_ROWS]] = -1
        _sha256_array(part, h)
    return h.hexdigest()


def _ids_sha256(ids: np.ndarray | None) -> str | None:
    if ids is None:
        return None
    h = hashlib.sha256()
    for s in ids:
        b = str(s).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _sample_slices(shape: tuple[int, ...]) -> list[tuple[Any, ...]]:
    """Index tuples of the sampled logit blocks: items spread evenly over the first axis, a
    bounded block of each (the middle of every spatial axis, the start of the last)."""
    n = shape[0]
    items = sorted({(j * (n - 1)) // max(1, FINGERPRINT_SAMPLES - 1)
                    for j in range(FINGERPRINT_SAMPLES)})
    out: list[tuple[Any, ...]] = []
    for i in items:
        if len(shape) == 1:
            out.append((slice(i, i + 1),))
        elif len(shape) == 2:
            out.append((slice(i, i + 1), slice(0, min(shape[1], FINGERPRINT_ELEMENTS))))
        else:
            mid = tuple(slice(s // 2, s // 2 + 1) for s in shape[2:-1])
            last = slice(0, min(shape[-1], 64))
            out.append((slice(i, i + 1), slice(0, min(shape[1], 64)), *mid, last))
    return out


def _logits_sha256(raw: Any, name: str) -> str:
    h = hashlib.sha256()
    dt = np.dtype(raw.dtype)
    canon = dt.newbyteorder("<")
    for idx in _sample_slices(tuple(int(s) for s in raw.shape)):
        try:
            block = np.asarray(raw[idx])
        except (OSError, RuntimeError) as exc:
            raise InputError(f"unreadable data ({str(exc).splitlines()[0][:120]}); corrupt or "
                             "truncated file?", file=name, dataset="/logits") from None
        h.update(repr([(s.start, s.stop) for s in idx]).encode())
        _sha256_array(block.astype(canon, copy=False), h)
    return h.hexdigest()


def fingerprint(pred: Predictions) -> dict[str, Any]:
    """The fingerprint of ``pred``'s logits source (computed once, kept in
    ``pred.fingerprint``; a scores file carries the one of its source).

    Cheap whatever the size: shape and dtype of the logits, SHA-256 of the labels and of the
    sample ids, and SHA-256 of :data:`FINGERPRINT_SAMPLES` small logit blocks read at fixed
    positions (so two extracts of one model on one dataset match only if those blocks are
    bit-identical).
    """
    if pred.fingerprint is not None:
        return pred.fingerprint
    raw = pred.raw_logits
    if raw is None:
        raise InputError("has no logits to fingerprint", file=pred.name)
    dt = np.dtype(raw.dtype)
    fp = {
        "version": FINGERPRINT_VERSION,
        "shape": [int(s) for s in raw.shape],
        "dtype": f"{dt.kind}{dt.itemsize}",
        "labels_sha256": _labels_sha256(pred),
        "sample_ids_sha256": _ids_sha256(pred.sample_ids),
        "logits_sha256": _logits_sha256(raw, pred.name),
    }
    pred.fingerprint = fp
    return fp


def _describe_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    for key, what in (("version", "fingerprint recipe"), ("shape", "logits shape"),
                      ("dtype", "logits dtype"), ("labels_sha256", "labels"),
                      ("sample_ids_sha256", "sample ids"), ("logits_sha256", "logit values")):
        if a.get(key) != b.get(key):
            if key in ("shape", "dtype"):
                return f"{what} {a.get(key)} vs {b.get(key)}"
            return f"{what} differ"
    return "fingerprints differ"


def check_same_source(scores: Predictions, logits: Predictions) -> None:
    """Raise :class:`InputError` unless the scores file ``scores`` was computed from the
    logits of ``logits`` (equal fingerprints)."""
    want = scores.fingerprint
    if want is None:
        raise InputError("records no source fingerprint; cannot check it belongs to "
                         f"{logits.name}", file=scores.name)
    have = fingerprint(logits)
    if want != have:
        raise InputError(f"was not computed from {logits.name} "
                         f"({_describe_difference(want, have)})", file=scores.name)


def check_same_samples(a: Predictions, b: Predictions, why: str) -> None:
    """Raise :class:`InputError` unless ``a`` and ``b`` hold the same samples in the same
    order: same row count, equal labels (where both have them), equal sample ids (where both
    have them). ``why`` says what needs the pairing."""
    if a.n != b.n:
        raise InputError(f"cannot pair {a.name} and {b.name} for {why}: {a.n} vs {b.n} rows",
                         file=b.name)
    if a.sample_ids is not None and b.sample_ids is not None:
        ia, ib = a.sample_ids.astype(str), b.sample_ids.astype(str)
        if not np.array_equal(ia, ib):
            i = int(np.argmax(ia != ib))
            raise InputError(f"cannot pair {a.name} and {b.name} for {why}: sample ids differ "
                             f"at row {i} ({_quote(ia[i])} vs {_quote(ib[i])})", file=b.name)
    if a.labels is not None and b.labels is not None:
        ka = np.ones(a.n, bool) if a.keep is None else a.keep
        kb = np.ones(b.n, bool) if b.keep is None else b.keep
        diff = (ka != kb) | (ka & (a.labels != b.labels))
        if diff.any():
            i = int(np.argmax(diff))
            raise InputError(f"cannot pair {a.name} and {b.name} for {why}: labels differ "
                             f"at row {i}", file=b.name)


# --------------------------------------------------------------------------------------------
# reading


def read_scores_file(f: h5py.File, name: str, allow_incomplete: bool, *,
                     ignore_index: int | None = None) -> Predictions:
    """Validate an open ``lsfix.scores`` file (:func:`lsfix.readers.logitsfile.read_hdf5` calls this
    for files of this kind)."""
    provenance, history = check_root(f, name, SCHEMA_NAME, SCHEMA_VERSION,
                                     allow_incomplete=allow_incomplete)
    source = json_attr(f.attrs, ATTR_SOURCE, None, name)
    if not isinstance(source, dict) or not isinstance(source.get("shape"), list) or not all(
            type(s) is int and s > 0 for s in source["shape"]) or not 1 <= len(
            source["shape"]) <= 8:
        raise InputError(f"attribute {ATTR_SOURCE!r} is not a fingerprint with a shape",
                         file=name, dataset="/")
    shape = tuple(int(s) for s in source["shape"])
    rows = 1  # exact Python integers with an early exit: int64 products wrap (2**63)
    for s in (shape[0], *shape[2:]):
        rows *= s
        if rows > 1 << 48:
            raise InputError(f"attribute {ATTR_SOURCE!r}: the shape {list(shape)[:8]} "
                             "describes more than 2**48 rows", file=name, dataset="/")
    binary = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
    k = 2 if binary else shape[1]
    n_items = shape[0]
    n = rows
    if "/logits" in f:
        raise InputError("a scores file must not hold /logits", file=name, dataset="/logits")
    scores, score_attrs = read_score_group(f, name, n, against=f"the source {list(shape)}")
    correct = None
    cds = local_dataset(f, CORRECT, name)
    if cds is not None:
        if cds.shape != (n,) or cds.dtype.kind not in ("b", "u", "i"):
            raise InputError(f"must be a ({n},) boolean array, got {cds.dtype} {cds.shape}",
                             file=name, dataset=CORRECT)
        raw = read_all(cds, name, CORRECT)
        if raw.dtype.kind != "b" and ((raw != 0) & (raw != 1)).any():
            raise InputError("must hold 0/1 values", file=name, dataset=CORRECT)
        correct = np.asarray(raw, dtype=bool)
    labels = keep = None
    labels_attrs: dict[str, Any] = {}
    lds = local_dataset(f, LABELS, name)
    if lds is not None:
        labels_attrs = dict(lds.attrs)
        expected = (n_items, *shape[2:])
        if lds.shape != expected:
            raise InputError(f"shape {lds.shape} does not match the source (expected "
                             f"{expected})", file=name, dataset=LABELS)
        ignore = labels_attrs.get(ATTR_IGNORE_INDEX)
        if ignore is not None:  # type and range first (trust): inf, NaN, text is exit 3
            ignore = untrusted.integer(ignore, file=name, dataset=LABELS,
                                       key=f"attribute {ATTR_IGNORE_INDEX!r}",
                                       lo=-(2**63), hi=2**64 - 1)
        given = ignore_index
        if given is not None and ignore is not None and int(ignore) != given:
            raise InputError(f"attribute ignore_index={int(ignore)} disagrees with "
                             f"--ignore-index {given}", file=name, dataset=LABELS)
        ignore = given if ignore is None else ignore
        labels, keep = validate_labels(read_all(lds, name, LABELS), k, name,
                                       ignore_index=None if ignore is None else int(ignore),
                                       binary=binary)
    if not scores:
        raise InputError(f"has no {SCORES} datasets", file=name)
    sample_ids = None
    sid = local_dataset(f, SAMPLE_IDS, name)
    if sid is not None:
        sample_ids = read_strings(sid, name, SAMPLE_IDS, n_items)
        check_unique(sample_ids, name)
    class_names = None
    cn = local_dataset(f, CLASS_NAMES, name)
    if cn is not None:
        class_names = [str(x) for x in read_strings(cn, name, CLASS_NAMES, k)]
    groups = read_groups(f, name, n_items)
    return Predictions(
        name=name,
        logits=None,
        labels=labels,
        sample_ids=sample_ids,
        class_names=class_names,
        scores=scores,
        score_attrs=score_attrs,
        provenance=provenance,
        history=history,
        fit_mask=read_fit_mask(f, name, n),
        keep=keep,
        labels_attrs=labels_attrs,
        h5=f,
        correct=correct,
        fingerprint=source,
        groups=groups,
        kind=SCHEMA_NAME,
    )


# --------------------------------------------------------------------------------------------
# writing


def write_scores_file(
    path: str,
    pred: Predictions,
    *,
    new_scores: dict[str, tuple[np.ndarray, str, dict[str, Any]]],
    correct: np.ndarray | None,
    fit_mask: np.ndarray | None = None,
    history_entry: str | None = None,
) -> None:
    """Write a scores file for the logits of ``pred`` (``-`` = stdout), atomically.

    It holds ``pred``'s stored scores (those read from the file, or joined from an earlier
    scores file) plus ``new_scores`` (name -> ``(values, method, params)``; a name given here
    replaces a stored one: the caller checks ``--overwrite``), ``correct`` for every row, the
    labels in their stored dtype, ids, class names, groups, the fit mask, and the source
    fingerprint. Never the logits.
    """
    source = fingerprint(pred)
    history = [*pred.history, history_entry or command_line()]
    mask = fit_mask if fit_mask is not None else pred.fit_mask
    merged = {k: (v, pred.score_attrs.get(k, {}).get(ATTR_METHOD, k),
                  pred.score_attrs.get(k, {}).get(ATTR_PARAMS, {}))
              for k, v in pred.scores.items()}
    merged.update(new_scores)
    with atomic_output(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as out:
            set_root_attrs(out, pred.provenance, history, schema=(SCHEMA_NAME, SCHEMA_VERSION))
            out.attrs[ATTR_SOURCE] = dumps_json(source, sort_keys=True)
            grp = out.create_group(SCORES, track_order=True)
            for key, (vals, method, params) in merged.items():
                ds = grp.create_dataset(key, data=np.asarray(vals, dtype=np.float64),
                                        track_times=False)
                ds.attrs[ATTR_METHOD] = method
                ds.attrs[ATTR_PARAMS] = dumps_json(params, sort_keys=True)
            if correct is not None:
                out.create_dataset(CORRECT, data=np.asarray(correct, dtype=bool),
                                   track_times=False)
            _write_labels(pred, out)
            if pred.sample_ids is not None:
                write_strings(out, SAMPLE_IDS, pred.sample_ids)
            if pred.class_names is not None:
                write_strings(out, CLASS_NAMES, pred.class_names)
            if mask is not None:
                out.create_dataset(FIT_MASK, data=np.asarray(mask, dtype=bool),
                                   track_times=False)
            write_groups(pred, out)


def _write_labels(pred: Predictions, out: h5py.File) -> None:
    """Labels as the source stores them: an HDF5 ``/labels`` is copied dataset to dataset
    (dtype, shape and ``ignore_index`` kept); in-memory labels are written as read."""
    if pred.labels is None:
        return
    src = pred.h5
    ignore = pred.labels_attrs.get(ATTR_IGNORE_INDEX)  # the file's, or --ignore-index
    if src is not None and LABELS in src:
        src.copy(src[LABELS], out, name=LABELS.lstrip("/"))
        if ignore is not None:
            out[LABELS].attrs[ATTR_IGNORE_INDEX] = np.int64(int(ignore))
        return
    labels = pred.labels
    if pred.keep is not None:
        fill = -1 if ignore is None else int(ignore)
        labels = np.where(pred.keep, labels, fill)
    ds = out.create_dataset(LABELS, data=labels, track_times=False)
    if pred.keep is not None:
        ds.attrs[ATTR_IGNORE_INDEX] = np.int64(-1 if ignore is None else int(ignore))



def _same_score(a: Predictions, b: Predictions, name: str) -> bool:
    """Both hold score ``name`` with the same values (bit for bit) and the same attributes."""
    va, vb = np.asarray(a.scores[name]), np.asarray(b.scores[name])
    return (va.shape == vb.shape and np.array_equal(va, vb, equal_nan=True)
            and a.score_attrs.get(name) == b.score_attrs.get(name))


def join_scores(pred: Predictions, extra: Predictions, *, overwrite: bool = False) -> None:
    """Add the scores of ``extra`` (a scores file computed from ``pred``'s logits) to
    ``pred``, in place: scores, correctness, fit mask, groups and history.

    Raises :class:`InputError` when ``extra`` was computed from other logits (fingerprints
    differ) or its fit mask disagrees with ``pred``'s; :class:`UsageError` when both hold a
    score of one name and ``overwrite`` is not set.
    """
    if extra.kind != SCHEMA_NAME:
        raise UsageError(f"--with takes a scores file (written by 'lsfix score' or 'lsfix "
                         f"normalise'); {extra.name} is not one")
    if pred.logits is None:
        raise UsageError(f"--with joins a scores file to the logits it came from; {pred.name} "
                         "has no logits")
    check_same_source(extra, pred)
    # the same score in both (a scores file carries its input's stored scores) is no clash
    clash = sorted(k for k in set(extra.scores) & set(pred.scores)
                   if not _same_score(pred, extra, k))
    if clash and not overwrite:
        raise UsageError(f"{pred.name} and {extra.name} both hold /scores/{clash[0]}; pass "
                         "--overwrite to keep the one from --with")
    pred.scores.update(extra.scores)
    pred.score_attrs.update(extra.score_attrs)
    if extra.fit_mask is not None:
        if pred.fit_mask is not None and not np.array_equal(pred.fit_mask, extra.fit_mask):
            raise InputError(f"its /fit_mask differs from the one in {pred.name}",
                             file=extra.name, dataset=FIT_MASK)
        pred.fit_mask = extra.fit_mask
    if extra.correct is not None and pred.correct is None:
        pred.correct = extra.correct  # same logits and labels: the same correctness
    pred.groups.update(extra.groups)
    if len(extra.history) > len(pred.history):
        pred.history = list(extra.history)


__all__ = [
    "ATTR_SOURCE", "SCHEMA_NAME", "SCHEMA_VERSION", "check_same_samples", "check_same_source",
    "fingerprint", "join_scores", "read_scores_file", "write_scores_file",
]

"""Chunked, resumable writing of an ``extract`` output, and merging of per-rank shards.

This module needs h5py and numpy only (no torch), so ``lsfix merge`` works on a machine
without the ``extract`` extra.

An extract output is an lsfix file (:mod:`lsfix.readers.logitsfile`) written *in place* while the model
runs. Its datasets are resizable and chunked; every batch is appended and, at most every
``sync_every`` seconds, *committed*::

    1. flush the appended data                       (data on disk first)
    2. root attr lsfix_rows_done = rows appended     (the commit record)
    3. flush again

A run killed at any point leaves a file whose first ``lsfix_rows_done`` rows are whole; rows
past that may be half written and are cut off by ``--resume`` before it continues. The root
attr ``lsfix_complete`` stays ``False`` until every row is committed, the final provenance is
written and flushed; only then is it set to ``True`` and flushed again, so a reader never
takes a partly written file for a complete one (:func:`lsfix.readers.entry.read_predictions` refuses
an incomplete file unless asked).

Attributes this module adds (all on ``/``):

``lsfix_rows_done``   int64, rows committed so far
``lsfix_rows_total``  int64, rows this file will hold when complete
``lsfix_extract_job`` JSON, what determines the logits (model and weights hash, dataset,
                      transforms, AMP, dtype, shard range); ``--resume`` refuses a different job
``lsfix_segments``    JSON list, one entry per run that wrote rows (rows, device, wall time)
``lsfix_shard``       JSON ``{"rank", "world", "start", "stop", "total"}`` on torchrun shards
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lsfix.readers import h5safe

from lsfix.readers import untrusted
from lsfix.errors import InputError, RuntimeFailure, UsageError
from lsfix.streams import atomic_output, checkpoint, note_input
from lsfix.readers.logitsfile import (
    ATTR_COMPLETE,
    ATTR_HISTORY,
    ATTR_IGNORE_INDEX,
    ATTR_PROVENANCE,
    ATTR_SCHEMA,
    ATTR_TRANSFORMS,
    CLASS_NAMES,
    HDF5_SIGNATURE,
    LABELS,
    LOGITS,
    SAMPLE_IDS,
    SCHEMA_NAME,
    STR_DTYPE,
    json_attr,
    set_root_attrs,
)

ATTR_ROWS_DONE = "lsfix_rows_done"
ATTR_ROWS_TOTAL = "lsfix_rows_total"
ATTR_JOB = "lsfix_extract_job"
ATTR_SEGMENTS = "lsfix_segments"
ATTR_SHARD = "lsfix_shard"

#: Target bytes per HDF5 chunk of /logits (and rows per chunk for the 1-D datasets).
CHUNK_BYTES = 1 << 20


def shard_path(output: str | os.PathLike[str], rank: int, world: int) -> Path:
    """Path of rank ``rank``'s shard of ``output``: ``out.h5`` -> ``out.rank0-of-2.h5``."""
    out = Path(output)
    suffix = out.suffix or ".h5"
    return out.with_name(f"{out.stem}.rank{rank}-of-{world}{suffix}")


def _fsync(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError), open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _rows_per_chunk(row_bytes: int) -> int:
    return int(max(1, min(65536, CHUNK_BYTES // max(1, row_bytes))))


def item_chunks(item_shape: tuple[int, ...], itemsize: int, rows: int) -> tuple[int, ...]:
    """Storage chunks of ``/logits``: ``rows`` whole items, or, for a dense item larger than
    :data:`CHUNK_BYTES` (a 19 × 1024 × 2048 float32 image is 159 MB, above what readers take:
    ``h5safe.MAX_CHUNK_BYTES``), one item cut along its first spatial axis into slabs of
    about ``CHUNK_BYTES`` holding every class of their pixels. An image is then read whole,
    in its own layout, from whole chunks (``curve``'s dense path reads image by image)."""
    row_bytes = int(np.prod(item_shape)) * itemsize
    if len(item_shape) < 2 or row_bytes <= CHUNK_BYTES:
        return (rows, *item_shape)
    per_slab = int(np.prod(item_shape[2:])) * item_shape[0] * itemsize  # one spatial row
    slab = int(max(1, min(item_shape[1], CHUNK_BYTES // max(1, per_slab))))
    return (1, item_shape[0], slab, *item_shape[2:])


@dataclass
class FileState:
    """What an existing output file says about itself (for ``--resume`` and messages)."""

    path: str
    is_lsfix: bool
    complete: bool
    rows_done: int
    rows_total: int | None
    job: dict[str, Any] | None
    shard: dict[str, Any] | None


def inspect_output(path: str | os.PathLike[str], *, strict: bool = False
                   ) -> FileState | None:
    """Describe ``path`` if it exists (``None`` if not); never raises for a foreign file
    unless ``strict`` (then a file that is not a sound lsfix file raises :class:`InputError`)."""
    p = Path(path)
    if not p.exists():
        return None
    if p.is_dir():
        raise UsageError(f"{path}: is a folder; -o needs a file path")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise RuntimeFailure(f"{path}: cannot read ({exc.strerror})") from None
    if not head.startswith(HDF5_SIGNATURE):
        return FileState(str(path), False, False, 0, None, None, None)
    try:
        return read_state(str(path))
    except InputError:
        if strict:
            raise
        return FileState(str(path), False, False, 0, None, None, None)


#: Largest row count an extract file may record (2^48: far above any dataset).
MAX_ROWS = 1 << 48


def read_state(path: str) -> FileState:
    """:class:`FileState` of an lsfix file, opened local-only (:mod:`lsfix.readers.h5safe`); every
    attribute checked for type and range (:class:`InputError` naming the file and the key)."""
    name = str(path)
    with h5safe.open_local(path, name) as f:
        attrs = f.attrs
        if ATTR_SCHEMA not in attrs:
            return FileState(name, False, False, 0, None, None, None)
        schema = untrusted.text(attrs[ATTR_SCHEMA], file=name, key=f"attribute {ATTR_SCHEMA!r}",
                                limit=200)
        complete = (untrusted.flag(attrs[ATTR_COMPLETE], file=name,
                                   key=f"attribute {ATTR_COMPLETE!r}")
                    if ATTR_COMPLETE in attrs else True)
        done = untrusted.integer(attrs.get(ATTR_ROWS_DONE, 0), file=name,
                                 key=f"attribute {ATTR_ROWS_DONE!r}", lo=0, hi=MAX_ROWS)
        total = attrs.get(ATTR_ROWS_TOTAL)
        if total is not None:
            total = untrusted.integer(total, file=name, key=f"attribute {ATTR_ROWS_TOTAL!r}",
                                      lo=0, hi=MAX_ROWS)
            if done > total:
                raise InputError(f"attribute {ATTR_ROWS_DONE!r} = {done} is above "
                                 f"{ATTR_ROWS_TOTAL!r} = {total}", file=name, dataset="/")
        job = json_attr(attrs, ATTR_JOB, None, name)
        if job is not None:
            untrusted.expect(job, dict, file=name, key=f"attribute {ATTR_JOB!r}")
        shard = json_attr(attrs, ATTR_SHARD, None, name)
        if shard is not None:
            shard = _check_shard(shard, name)
        return FileState(name, schema == SCHEMA_NAME, complete, done, total, job, shard)


def _check_shard(shard: Any, name: str) -> dict[str, Any]:
    """The ``lsfix_shard`` record, every field an integer in range."""
    key = f"attribute {ATTR_SHARD!r}"
    untrusted.expect(shard, dict, file=name, key=key)
    out = dict(shard)
    for field_ in ("rank", "world", "start", "stop", "total"):
        if field_ not in shard:
            raise InputError(f"{key} has no {field_!r}", file=name, dataset="/")
        out[field_] = untrusted.integer(shard[field_], file=name, key=f"{key} {field_!r}",
                                        lo=0, hi=MAX_ROWS)
    if not 1 <= out["world"] <= 1 << 20 or out["rank"] >= out["world"]:
        raise InputError(f"{key}: rank {out['rank']} of world {out['world']} is impossible",
                         file=name, dataset="/")
    if not out["start"] <= out["stop"] <= out["total"]:
        raise InputError(f"{key}: rows {out['start']}..{out['stop']} do not lie in "
                         f"0..{out['total']}", file=name, dataset="/")
    return out


def describe_job_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Name the first job fields that differ (for a refused ``--resume``)."""
    keys = sorted(set(old) | set(new))
    diffs = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if a != b:
            sa = json.dumps(a, sort_keys=True)
            sb = json.dumps(b, sort_keys=True)
            if len(sa) > 60:
                sa = sa[:57] + "..."
            if len(sb) > 60:
                sb = sb[:57] + "..."
            diffs.append(f"{key}: file has {sa}, this run has {sb}")
    return "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else "")


#: The datasets that grow by one row per sample.
ROW_DATASETS = (LOGITS, LABELS, SAMPLE_IDS)


def _cut_to(f: h5py.File, rows: int) -> None:
    """Shorten every row dataset longer than ``rows`` (rows after the last commit)."""
    for name in ROW_DATASETS:
        if name in f and f[name].shape[0] > rows:
            f[name].resize(rows, axis=0)


class ChunkedWriter:
    """Append-only writer of an extract output, committed in place; see the module docstring.

    Use :meth:`create` for a new file and :meth:`resume` to continue one.
    """

    def __init__(self, f: h5py.File, path: str, *, rows_done: int, rows_total: int,
                 sync_every: float = 1.0) -> None:
        self.f = f
        self.path = path
        self.rows_done = rows_done  #: rows committed (durable)
        self.rows_written = rows_done  #: rows appended (committed or not)
        self.rows_total = rows_total
        self.sync_every = float(sync_every)
        self._last_commit = time.monotonic()
        self._segment: dict[str, Any] | None = None
        self._segment_t0 = 0.0
        self._offset = 0

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(cls, path: str | os.PathLike[str], *, job: dict[str, Any], rows_total: int,
               provenance: dict[str, Any], history: list[str],
               shard: dict[str, Any] | None = None, sync_every: float = 1.0) -> ChunkedWriter:
        """Create (truncate) ``path`` as an empty, incomplete extract output."""
        try:
            f = h5py.File(path, "w", track_order=True)
        except OSError as exc:
            raise RuntimeFailure(f"{path}: cannot create ({exc})") from None
        set_root_attrs(f, provenance, history, complete=False)
        f.attrs[ATTR_ROWS_DONE] = np.int64(0)
        f.attrs[ATTR_ROWS_TOTAL] = np.int64(rows_total)
        f.attrs[ATTR_JOB] = json.dumps(job, sort_keys=True)
        f.attrs[ATTR_SEGMENTS] = json.dumps([])
        if shard is not None:
            f.attrs[ATTR_SHARD] = json.dumps(shard, sort_keys=True)
        f.flush()
        return cls(f, str(path), rows_done=0, rows_total=rows_total, sync_every=sync_every)

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, job: dict[str, Any], rows_total: int,
               expected_ids: Any = None, sync_every: float = 1.0) -> ChunkedWriter:
        """Open an interrupted output, check it is the same job, cut uncommitted rows.

        Parameters
        ----------
        expected_ids : callable, optional
            ``expected_ids(indices) -> list[str]``: the dataset's sample ids for local row
            indices, used to check the first and last committed rows are the ones expected.
        """
        name = str(path)
        read_state(name)  # local-only (no links, plugins) and sound attributes, or InputError
        try:
            f = h5py.File(path, "r+")
        except OSError as exc:
            raise InputError(
                f"cannot reopen to resume ({str(exc).split('(')[0].strip()}); the file may have "
                "been damaged while being written; start over with --overwrite",
                file=name,
            ) from None
        try:
            old_job = json_attr(f.attrs, ATTR_JOB)
            if old_job is None:
                raise UsageError(f"{name}: was not written by lsfix extract (no {ATTR_JOB} "
                                 "attribute); cannot resume it")
            if old_job != job:
                raise UsageError(
                    f"{name}: cannot resume: it was started for a different job "
                    f"({describe_job_difference(old_job, job)}); use --overwrite to start over"
                )
            done = untrusted.integer(f.attrs.get(ATTR_ROWS_DONE, 0), file=name,
                                     key=f"attribute {ATTR_ROWS_DONE!r}", lo=0, hi=MAX_ROWS)
            total = untrusted.integer(f.attrs.get(ATTR_ROWS_TOTAL, rows_total), file=name,
                                      key=f"attribute {ATTR_ROWS_TOTAL!r}", lo=0, hi=MAX_ROWS)
            if total != rows_total:
                raise UsageError(f"{name}: cannot resume: file expects {total} rows, this run "
                                 f"has {rows_total}")
            for path_ in ROW_DATASETS:
                if path_ in f:
                    if f[path_].shape[0] < done:
                        raise InputError(
                            f"has {f[path_].shape[0]} rows but {done} were committed; damaged "
                            "file, start over with --overwrite", file=name, dataset=path_)
                elif done > 0 and path_ == LOGITS:
                    raise InputError(f"{done} rows committed but no {LOGITS}; damaged file",
                                     file=name)
            _cut_to(f, done)  # drop rows written after the last commit
            if done > 0 and expected_ids is not None and SAMPLE_IDS in f:
                ids = f[SAMPLE_IDS]
                got = [ids.asstr()[0], ids.asstr()[done - 1]]
                want = list(expected_ids(np.array([0, done - 1])))
                if got != want:
                    raise UsageError(
                        f"{name}: cannot resume: its rows do not match the dataset (row 0 is "
                        f"{got[0]!r}, dataset has {want[0]!r}; row {done - 1} is {got[1]!r}, "
                        f"dataset has {want[1]!r}); use --overwrite to start over"
                    )
            f.flush()
        except BaseException:
            f.close()
            raise
        return cls(f, name, rows_done=done, rows_total=rows_total, sync_every=sync_every)

    # ---------------------------------------------------------------- writing
    @property
    def has_logits(self) -> bool:
        return LOGITS in self.f

    def logits_shape(self) -> tuple[int, ...] | None:
        return tuple(self.f[LOGITS].shape) if LOGITS in self.f else None

    def init_datasets(self, item_shape: tuple[int, ...], dtype: np.dtype, *,
                      label_shape: tuple[int, ...] | None, transforms: dict[str, Any],
                      class_names: Sequence[str] | None, ignore_index: int | None,
                      n_classes: int | None = None) -> None:
        """Create the resizable datasets once the first batch tells the logits' shape.
        ``/labels`` gets :func:`label_dtype` of ``n_classes`` and ``ignore_index`` (int64
        when ``n_classes`` is not given)."""
        f = self.f
        if LOGITS in f:
            have = tuple(f[LOGITS].shape[1:])
            if have != tuple(item_shape):
                raise RuntimeFailure(
                    f"{self.path}:{LOGITS}: rows have shape {have} but the model now gives "
                    f"{tuple(item_shape)}")
            return
        dtype = np.dtype(dtype)
        row_bytes = int(np.prod(item_shape)) * dtype.itemsize
        # never larger than the file will be: a chunk is allocated whole on disk
        cap = max(1, self.rows_total)
        chunk_rows = min(cap, _rows_per_chunk(row_bytes))
        ds = f.create_dataset(LOGITS, shape=(0, *item_shape), maxshape=(None, *item_shape),
                              dtype=dtype, chunks=item_chunks(item_shape, dtype.itemsize,
                                                              chunk_rows), track_times=False)
        ds.attrs[ATTR_TRANSFORMS] = json.dumps(transforms, sort_keys=True)
        if label_shape is not None:
            ldtype = (np.dtype(np.int64) if n_classes is None
                      else label_dtype(n_classes, ignore_index))
            lrow = int(np.prod(label_shape)) * ldtype.itemsize
            lab = f.create_dataset(LABELS, shape=(0, *label_shape),
                                   maxshape=(None, *label_shape), dtype=ldtype,
                                   chunks=(min(cap, _rows_per_chunk(lrow)), *label_shape),
                                   track_times=False)
            if ignore_index is not None:
                lab.attrs[ATTR_IGNORE_INDEX] = np.int64(ignore_index)
        f.create_dataset(SAMPLE_IDS, shape=(0,), maxshape=(None,), dtype=STR_DTYPE,
                         chunks=(min(cap, 4096),), track_times=False)
        if class_names is not None:
            f.create_dataset(CLASS_NAMES, data=np.asarray([str(c) for c in class_names],
                                                          dtype=object),
                             dtype=STR_DTYPE, track_times=False)
        f.flush()

    def append(self, logits: np.ndarray, labels: np.ndarray | None, ids: Sequence[str]) -> None:
        """Append one batch; commit if ``sync_every`` seconds passed since the last commit."""
        n = logits.shape[0]
        start = self.rows_written
        stop = start + n
        if stop > self.rows_total:
            raise RuntimeFailure(f"{self.path}: more rows ({stop}) than expected "
                                 f"({self.rows_total})")
        f = self.f
        ds = f[LOGITS]
        ds.resize(stop, axis=0)
        ds[start:stop] = logits
        if labels is not None and LABELS in f:
            lab = f[LABELS]
            _check_fits(labels, lab.dtype, self.path)
            lab.resize(stop, axis=0)
            lab[start:stop] = labels
        sid = f[SAMPLE_IDS]
        sid.resize(stop, axis=0)
        sid[start:stop] = np.asarray(list(ids), dtype=object)
        self.rows_written = stop
        if time.monotonic() - self._last_commit >= self.sync_every:
            self.commit()

    def commit(self) -> None:
        """Make every appended row durable: flush data, then record the row count, flush."""
        if self.rows_written == self.rows_done:
            return
        self.f.flush()
        self._write_segment()
        self.f.attrs[ATTR_ROWS_DONE] = np.int64(self.rows_written)
        self.f.flush()
        self.rows_done = self.rows_written
        self._last_commit = time.monotonic()
        checkpoint("extract-commit")  # a test hook: see lsfix.streams.checkpoint

    def begin_segment(self, segment: dict[str, Any], *, offset: int = 0,
                      t0: float | None = None) -> None:
        """Open this run's entry in ``lsfix_segments``; each commit updates its rows and time.

        A run that is killed keeps the entry as of its last commit.
        """
        self._offset = int(offset)
        self._segment = dict(segment)
        self._segment["rows"] = [self._offset + self.rows_done, self._offset + self.rows_done]
        self._segment_t0 = time.perf_counter() if t0 is None else t0
        segs = json_attr(self.f.attrs, ATTR_SEGMENTS, []) or []
        segs.append(self._segment)
        self.f.attrs[ATTR_SEGMENTS] = json.dumps(segs, sort_keys=True)

    def update_segment(self, **fields: Any) -> list[dict[str, Any]]:
        """Add fields to this run's segment entry; returns all entries."""
        if self._segment is not None:
            self._segment.update(fields)
        return self._write_segment()

    def _write_segment(self) -> list[dict[str, Any]]:
        segs = json_attr(self.f.attrs, ATTR_SEGMENTS, []) or []
        if self._segment is None:
            return segs
        self._segment["rows"] = [self._segment["rows"][0], self._offset + self.rows_written]
        self._segment["wall_time_s"] = round(time.perf_counter() - self._segment_t0, 3)
        if segs:
            segs[-1] = self._segment
        else:
            segs = [self._segment]
        self.f.attrs[ATTR_SEGMENTS] = json.dumps(segs, sort_keys=True)
        return segs

    def segments(self) -> list[dict[str, Any]]:
        return list(json_attr(self.f.attrs, ATTR_SEGMENTS, []) or [])

    def history(self) -> list[str]:
        hist = json_attr(self.f.attrs, ATTR_HISTORY, []) or []
        return [str(h) for h in hist] if isinstance(hist, list) else [str(hist)]

    def finish(self, provenance: dict[str, Any], history: list[str]) -> None:
        """Commit, write final provenance, then (and only then) mark the file complete."""
        self.commit()
        if self.rows_done != self.rows_total:
            raise RuntimeFailure(f"{self.path}: {self.rows_done} of {self.rows_total} rows "
                                 "written; not marking it complete")
        if LOGITS not in self.f:
            raise RuntimeFailure(f"{self.path}: no rows were written")
        set_root_attrs(self.f, provenance, history, complete=False)
        self.f.flush()
        _fsync(self.path)
        self.f.attrs[ATTR_COMPLETE] = np.bool_(True)
        self.f.flush()
        self.close()
        _fsync(self.path)

    def close(self) -> None:
        """Commit what was appended, drop the rows of a half-appended batch, and close (used on
        interruption too: a signal can land between an ``append``'s resize and its row count,
        and the file then ends exactly at its committed rows, as ``resume`` would cut it)."""
        if self.f.id.valid:
            with contextlib.suppress(Exception):
                self.commit()
                self._drop_uncommitted()
            self.f.close()

    def _drop_uncommitted(self) -> None:
        _cut_to(self.f, self.rows_done)
        self.f.flush()


# -------------------------------------------------------------------------------------------
# merging shards


def _read_shard_meta(path: str) -> dict[str, Any]:
    note_input(path)  # the merged output may never replace a shard
    st = inspect_output(path, strict=True)
    if st is None:
        raise InputError("no such file", file=path)
    if not st.is_lsfix:
        raise InputError("is not an lsfix file", file=path)
    if st.shard is None:
        raise InputError(f"is not an extract shard (no {ATTR_SHARD} attribute)", file=path)
    if not st.complete:
        raise InputError(
            f"is incomplete ({st.rows_done} of {st.rows_total} rows); finish it with "
            "'lsfix extract --resume' under torchrun first",
            file=path,
        )
    return {"path": path, "shard": st.shard, "job": st.job, "rows": st.rows_done}


def merge_shards(shards: Sequence[str | os.PathLike[str]], output: str,
                 *, history_entry: str | None = None) -> dict[str, Any]:
    """Join complete per-rank shards into one lsfix file, in dataset order, atomically.

    The shards must come from one job (same model, weights, dataset, transforms) and cover
    rows ``0 .. total`` exactly once. The result is a plain copy (no virtual datasets: lsfix
    readers refuse data stored outside the file).

    ``history_entry``: the line added to the file's ``history`` (default: this process's
    command line; ``""`` adds none).

    Returns
    -------
    dict
        ``{"rows": n, "shards": k, "output": output}``.
    """
    if not shards:
        raise UsageError("no shards given")
    metas = [_read_shard_meta(str(p)) for p in shards]
    metas.sort(key=lambda m: int(m["shard"]["start"]))
    first = metas[0]
    world = int(first["shard"]["world"])
    total = int(first["shard"]["total"])

    def _job_wo_shard(job: dict[str, Any] | None) -> dict[str, Any]:
        return {k: v for k, v in (job or {}).items() if k != "shard"}

    for m in metas[1:]:
        if _job_wo_shard(m["job"]) != _job_wo_shard(first["job"]):
            diff = describe_job_difference(_job_wo_shard(first["job"]), _job_wo_shard(m["job"]))
            raise InputError(f"comes from a different job than {first['path']} ({diff})",
                             file=m["path"])
        if int(m["shard"]["world"]) != world or int(m["shard"]["total"]) != total:
            raise InputError(f"is shard of world {m['shard']['world']} / {m['shard']['total']} "
                             f"rows; {first['path']} is of world {world} / {total} rows",
                             file=m["path"])
    pos = 0
    for m in metas:
        start, stop = int(m["shard"]["start"]), int(m["shard"]["stop"])
        if start != pos:
            what = ("overlaps the previous shard" if start < pos
                    else f"leaves rows {pos}..{start - 1} missing")
            raise InputError(f"starts at row {start}; {what}", file=m["path"])
        if m["rows"] != stop - start:
            raise InputError(f"holds {m['rows']} rows, expected {stop - start}", file=m["path"])
        pos = stop
    if pos != total:
        raise InputError(f"shards cover rows 0..{pos - 1} of {total}; rows {pos}..{total - 1} "
                         f"are missing (give all {world} shards)")

    files: list[h5py.File] = []
    try:
        for m in metas:  # local-only: a shard's /logits may not come from another file
            files.append(h5safe.open_local(m["path"], m["path"]))
        f0 = files[0]
        name0 = metas[0]["path"]
        prov = untrusted.expect(json_attr(f0.attrs, ATTR_PROVENANCE, {}, name0), dict,
                                file=name0, key=f"attribute {ATTR_PROVENANCE!r}")
        hist = untrusted.expect(json_attr(f0.attrs, ATTR_HISTORY, [], name0), list,
                                file=name0, key=f"attribute {ATTR_HISTORY!r}")
        ranks = []
        for m, f in zip(metas, files, strict=True):
            p = untrusted.expect(json_attr(f.attrs, ATTR_PROVENANCE, {}, m["path"]), dict,
                                 file=m["path"], key=f"attribute {ATTR_PROVENANCE!r}")
            ranks.append({
                "rank": int(m["shard"]["rank"]), "rows": [int(m["shard"]["start"]),
                                                          int(m["shard"]["stop"])],
                "device": p.get("device"), "wall_time_s": p.get("wall_time_s"),
            })
        prov = {k: v for k, v in prov.items() if k not in ("shard",)}
        prov["world_size"] = world
        prov["ranks"] = ranks
        walls = [r["wall_time_s"] for r in ranks if isinstance(r["wall_time_s"], int | float)]
        if walls:
            prov["wall_time_s"] = max(walls)
        prov["rows"] = total
        history = [str(h) for h in hist] if isinstance(hist, list) else [str(hist)]
        if history_entry is None:
            from lsfix.readers.logitsfile import command_line

            history_entry = command_line()
        if history_entry:
            history.append(history_entry)
        with atomic_output(output, suffix=".h5") as tmp:
            with h5py.File(tmp, "w", track_order=True) as out:
                set_root_attrs(out, prov, history, complete=False)
                for path_ in (LOGITS, LABELS, SAMPLE_IDS):
                    if path_ not in f0:
                        continue
                    src0 = f0[path_]
                    shape = (total, *src0.shape[1:])
                    row_bytes = int(np.prod(src0.shape[1:], dtype=np.int64)) * src0.dtype.itemsize
                    chunk_rows = min(total, _rows_per_chunk(row_bytes))
                    ds = out.create_dataset(path_, shape=shape, dtype=src0.dtype,
                                            chunks=(chunk_rows, *src0.shape[1:]),
                                            track_times=False)
                    for key, val in src0.attrs.items():
                        ds.attrs[key] = val
                    at = 0
                    for f in files:
                        if path_ not in f:
                            raise InputError(f"missing while {metas[0]['path']} has it",
                                             file=f.filename, dataset=path_)
                        src = f[path_]
                        if tuple(src.shape[1:]) != tuple(src0.shape[1:]):
                            raise InputError(f"rows have shape {src.shape[1:]}, "
                                             f"expected {src0.shape[1:]}", file=f.filename,
                                             dataset=path_)
                        n = src.shape[0]
                        h5safe.require_stored(src, f.filename, path_)
                        want = int(metas[files.index(f)]["shard"]["stop"]) - int(
                            metas[files.index(f)]["shard"]["start"])
                        if n != want:
                            raise InputError(f"has {n} rows; its shard record says {want}",
                                             file=f.filename, dataset=path_)
                        step = max(1, chunk_rows)
                        for s in range(0, n, step):
                            e = min(n, s + step)
                            ds[at + s: at + e] = src[s:e]
                        at += n
                if CLASS_NAMES in f0:
                    f0.copy(f0[CLASS_NAMES], out, name=CLASS_NAMES.lstrip("/"))
                out.flush()
                out.attrs[ATTR_COMPLETE] = np.bool_(True)
    finally:
        for f in files:
            f.close()
    return {"rows": total, "shards": len(metas), "output": output}


def label_dtype(n_classes: int, ignore_index: int | None) -> np.dtype[Any]:
    """The smallest integer dtype holding the labels ``0 .. n_classes - 1`` and
    ``ignore_index`` (uint8 for Cityscapes: 19 classes, 255 ignored; int8 for -100 with up to
    128 classes; uint16 for 1,000 classes)."""
    lo, hi = 0, max(1, int(n_classes) - 1)
    if ignore_index is not None:
        lo, hi = min(lo, int(ignore_index)), max(hi, int(ignore_index))
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _check_fits(labels: np.ndarray, dtype: np.dtype[Any], path: Any) -> None:
    """A label that the dataset's dtype cannot hold is refused (never wrapped)."""
    a = np.asarray(labels)
    if a.size == 0 or a.dtype == dtype:
        return
    info = np.iinfo(dtype)
    lo, hi = int(a.min()), int(a.max())
    if lo < info.min or hi > info.max:
        raise RuntimeFailure(f"{path}: label {lo if lo < info.min else hi} does not fit the "
                             f"file's {dtype} /labels")

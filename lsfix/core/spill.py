"""Tie blocks from bounded memory: sorted runs spilled to a temporary folder, merged exactly.

Every metric of :mod:`lsfix.core.metrics` is a function of the tie blocks of a score: the
distinct confidences, most confident first, with the number of samples and of wrong
predictions at each (:class:`~lsfix.core.metrics.Blocks`). Those totals are integers, so they
can be built from pieces in any order and merged exactly. :class:`SpilledBlocks` takes
``(confidence, correct)`` pairs in pieces, keeps at most ``run_rows`` of them in memory, reduces
each full run to its own tie blocks and writes them to a temporary folder (raw files: value
float64, size and errors uint32, 16 bytes per block; a run never holds more than ``run_rows``
samples). The runs are merged window by window (at most ``window`` entries per run in memory):

* :meth:`SpilledBlocks.blocks` gives the merged blocks as one in-memory :class:`Blocks`
  (24 bytes per distinct confidence);
* :meth:`SpilledBlocks.block_file` writes them to a :class:`BlockFile` (size and errors,
  uint32 up to 2^32 samples, else int64: 8 or 16 bytes per block) that
  :func:`lsfix.core.metrics.metrics_from_blocks` reads back a window at a time: memory
  bounded by the windows whatever the number of distinct values;
  :meth:`SpilledBlocks.block_source` does the same, or keeps the blocks in memory when no run
  was ever spilled (fewer than ``run_rows`` pairs).

Either result equals ``tie_blocks`` of all the pairs at once (same values, sizes and error
counts), so every metric computed from it is bit-for-bit the same.

**Fan-in.** At most :data:`FAN_IN` runs are merged at once: with more, groups of
``FAN_IN`` consecutive runs are first merged into one longer run each (their files deleted as
soon as the group is merged), level after level, until at most ``FAN_IN`` remain; the last
merge writes the result. The merge windows share :data:`MERGE_BYTES` among the runs of one
merge, so memory is bounded whatever the number of runs (500 or 5,000), and no file is held
open across reads (each read opens and closes its file), so the open-file limit never binds.
Merging is exact at every level (integer totals per distinct value), so any fan-in gives the
same blocks.

**Temporary folder.** :func:`run_folder` makes ``lsfix-runs-<pid>-<random>`` in the folder
given (``--tmpdir``, else ``TMPDIR``, else the system default: :func:`temp_root`) and first
removes every ``lsfix-runs-<pid>-*`` folder there whose process no longer exists (a run killed
by SIGKILL cannot clean up after itself; the next run does). The folder must be local to this
machine (a process id is only meaningful here).

Disk: at most ``16 B × (blocks of the runs) + 8 B × (merged blocks)`` at once (16 B above
2^32 samples) (plus one
group's merged run while a level is merged: at most as many blocks as its inputs), in that
folder; removed by :meth:`SpilledBlocks.close`. :func:`check_space` refuses to start when the
folder's free space is below an estimate (:data:`DISK_BYTES_PER_ROW` per row).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lsfix.core.blockmetrics import ArrayBlocks
from lsfix.core.metrics import Blocks, tie_blocks
from lsfix.errors import RuntimeFailure

#: Default pairs per run (sorting a run takes about 50 bytes per pair).
RUN_ROWS = 1 << 21
#: Default budget, in bytes, of one merge step: the windows of all runs together, at
#: :data:`MERGE_BYTES_PER_ENTRY` (an entry read, sorted and reduced takes about 100 bytes).
MERGE_BYTES = 1 << 26
MERGE_BYTES_PER_ENTRY = 100
#: Runs merged at once (more are merged in groups of this many first, level by level).
FAN_IN = 64
#: Temporary disk per row of a score (upper bound): 16 B per distinct confidence in the runs
#: plus 8 B in the merged block file (16 B above 2^32 rows), when every confidence is
#: distinct.
DISK_BYTES_PER_ROW = 24
#: Name prefix of a run folder; the owner's process id follows.
FOLDER_PREFIX = "lsfix-runs-"
_OWNED = re.compile(r"^lsfix-runs-(\d+)-[A-Za-z0-9_]+$")


class _Run:
    """One spilled run: blocks in descending confidence in three raw files (value float64;
    size and errors uint32 when the sizes fit, else int64)."""

    def __init__(self, stem: Path, b: Blocks | None = None) -> None:
        self.stem = stem
        self.length = 0
        self.samples = 0  # a block's size is at most this
        self.count_dtype: np.dtype[Any] = np.dtype(np.uint32)
        if b is not None:
            self.samples = int(b.size.sum())
            self._write(b.value, b.size, b.errors, "wb")

    def _write(self, value: np.ndarray, size: np.ndarray, errors: np.ndarray, mode: str
               ) -> None:
        with open(f"{self.stem}.value", mode) as fv, open(f"{self.stem}.size", mode) as fs, \
                open(f"{self.stem}.errors", mode) as fe:
            value.astype(np.float64).tofile(fv)
            size.astype(self.count_dtype).tofile(fs)
            errors.astype(self.count_dtype).tofile(fe)
        self.length += int(size.shape[0])

    @classmethod
    def merged_from(cls, stem: Path, runs: list[_Run], window: int) -> _Run:
        """A run holding the merge of ``runs`` (their blocks summed per distinct value)."""
        out = cls(stem)
        out.samples = sum(r.samples for r in runs)
        out.count_dtype = np.dtype(np.uint32 if out.samples <= np.iinfo(np.uint32).max
                                   else np.int64)
        mode = "wb"
        for v, m, f in _merge(runs, window):
            out._write(v, m, f, mode)
            mode = "ab"
        if mode == "wb":  # nothing: still make the files
            out._write(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64), mode)
        return out

    def read(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        count = hi - lo
        size = self.count_dtype.itemsize
        return (np.fromfile(f"{self.stem}.value", np.float64, count, offset=8 * lo),
                np.fromfile(f"{self.stem}.size", self.count_dtype, count, offset=size * lo),
                np.fromfile(f"{self.stem}.errors", self.count_dtype, count, offset=size * lo))

    def delete(self) -> None:
        for part in ("value", "size", "errors"):
            Path(f"{self.stem}.{part}").unlink(missing_ok=True)


class BlockFile:
    """Merged tie blocks on disk (descending confidence): a block source for
    :mod:`lsfix.core.blockmetrics` that reads ``window`` blocks at a time. Sizes and errors
    are stored as ``count_dtype`` (uint32 when the total number of samples fits, 8 bytes per
    block; else int64) and handed out as int64."""

    def __init__(self, stem: Path, window: int = 1 << 20,
                 count_dtype: Any = np.int64) -> None:
        self.stem = stem
        self.window = int(window)
        self.length = 0
        self.count_dtype = np.dtype(count_dtype)
        self._files = [open(f"{stem}.size", "wb"), open(f"{stem}.errors", "wb")]

    def _append(self, size: np.ndarray, errors: np.ndarray) -> None:
        size.astype(self.count_dtype).tofile(self._files[0])
        errors.astype(self.count_dtype).tofile(self._files[1])
        self.length += int(size.shape[0])

    def _finish(self) -> None:
        for f in self._files:
            f.close()

    def windows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(size, errors)`` int64 of ``window`` consecutive blocks at a time."""
        with open(f"{self.stem}.size", "rb") as fs, open(f"{self.stem}.errors", "rb") as fe:
            for _ in range(0, self.length, self.window):
                yield (np.fromfile(fs, self.count_dtype, self.window).astype(np.int64),
                       np.fromfile(fe, self.count_dtype, self.window).astype(np.int64))


class SpilledBlocks:
    """Accumulate ``(confidence, correct)`` pieces; :meth:`blocks` or :meth:`block_file`
    gives their tie blocks.

    Parameters
    ----------
    run_rows : int
        Pairs held in memory before a run is sorted, reduced and written to disk.
    window : int, optional
        Entries read from each run at a time while merging (default: :data:`MERGE_BYTES`
        shared by the runs, at least 1,024 each).
    folder : str or Path, optional
        Where the temporary run folder is made (default: :func:`temp_root`).
    fan_in : int, optional
        Runs merged at once (default :data:`FAN_IN`, at least 2).
    """

    def __init__(self, run_rows: int = RUN_ROWS, window: int | None = None,
                 folder: str | Path | None = None, fan_in: int = FAN_IN) -> None:
        if run_rows < 1 or (window is not None and window < 1) or fan_in < 2:
            raise ValueError("run_rows and window must be >= 1, fan_in >= 2")
        self.run_rows = int(run_rows)
        self.window = None if window is None else int(window)
        self.fan_in = int(fan_in)
        self._dir = run_folder(folder)
        self._conf: list[np.ndarray] = []
        self._corr: list[np.ndarray] = []
        self._held = 0
        self.n = 0
        self.runs: list[_Run] = []

    def add(self, confidence: Any, correct: Any) -> None:
        """Add a piece of pairs (copied; NaN is refused by the block builder)."""
        c = np.asarray(confidence, dtype=np.float64).reshape(-1)
        y = np.asarray(correct, dtype=bool).reshape(-1)
        if c.shape != y.shape:
            raise ValueError(f"confidence {c.shape} and correct {y.shape} differ in length")
        self.n += int(c.shape[0])
        while c.shape[0]:
            take = min(c.shape[0], self.run_rows - self._held)
            self._conf.append(c[:take].copy())
            self._corr.append(y[:take].copy())
            self._held += take
            c, y = c[take:], y[take:]
            if self._held >= self.run_rows:
                self._spill()

    def _spill(self) -> None:
        if not self._held:
            return
        conf = self._conf[0] if len(self._conf) == 1 else np.concatenate(self._conf)
        corr = self._corr[0] if len(self._corr) == 1 else np.concatenate(self._corr)
        self._conf, self._corr, self._held = [], [], 0
        b = tie_blocks(conf, corr)
        del conf, corr
        self.runs.append(_Run(self._dir / f"run{len(self.runs):06d}", b))

    def _window(self, runs: int) -> int:
        return self.window or max(1024, MERGE_BYTES // (MERGE_BYTES_PER_ENTRY * runs))

    def _merged(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        self._spill()
        if not self.runs:
            raise ValueError("no pairs were added")
        level = 0
        while len(self.runs) > self.fan_in:  # merge groups of fan_in runs, level by level
            level += 1
            merged = []
            for g in range(0, len(self.runs), self.fan_in):
                group = self.runs[g : g + self.fan_in]
                if len(group) == 1:
                    merged.append(group[0])
                    continue
                stem = self._dir / f"level{level:02d}-{g // self.fan_in:06d}"
                merged.append(_Run.merged_from(stem, group, self._window(len(group))))
                for run in group:
                    run.delete()
            self.runs = merged
        yield from _merge(self.runs, self._window(len(self.runs)))

    def blocks(self) -> Blocks:
        """The tie blocks of every pair added (descending confidence), in memory."""
        parts = list(self._merged())
        return Blocks(size=np.concatenate([p[1] for p in parts]).astype(np.int64),
                      errors=np.concatenate([p[2] for p in parts]).astype(np.int64),
                      value=np.concatenate([p[0] for p in parts]).astype(np.float64))

    def block_source(self) -> Any:
        """The tie blocks as a block source for :mod:`lsfix.core.blockmetrics`: when every
        pair is still in memory (fewer than ``run_rows``), their blocks in memory
        (:class:`~lsfix.core.blockmetrics.ArrayBlocks`, no disk); else :meth:`block_file`."""
        if not self.runs and self._held:
            conf = np.concatenate(self._conf)
            corr = np.concatenate(self._corr)
            self._conf, self._corr, self._held = [], [], 0
            b = tie_blocks(conf, corr)
            return ArrayBlocks(b.size, b.errors)
        return self.block_file()

    def block_file(self) -> BlockFile:
        """The tie blocks of every pair added, written to a :class:`BlockFile` in the
        temporary folder (the runs are deleted once merged)."""
        out = BlockFile(self._dir / "merged", count_dtype=np.uint32
                        if self.n <= np.iinfo(np.uint32).max else np.int64)
        try:
            for _, size, errors in self._merged():
                out._append(size, errors)
        finally:
            out._finish()
        for run in self.runs:
            run.delete()
        return out

    def close(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SpilledBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def temp_root(folder: str | Path | None = None) -> Path:
    """The folder temporary runs go in: ``folder`` (``--tmpdir``) if given, else ``TMPDIR``,
    else the system default (:func:`tempfile.gettempdir`)."""
    if folder is not None and str(folder) != "":
        return Path(folder)
    env = os.environ.get("TMPDIR")
    return Path(env) if env else Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep its folder
    return True


def remove_stale(root: str | Path) -> list[Path]:
    """Remove the ``lsfix-runs-<pid>-*`` folders in ``root`` whose process is gone (left by
    a run that was killed); returns them. Other names are never touched."""
    gone = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return gone
    for e in entries:
        m = _OWNED.match(e.name)
        if m is None or not e.is_dir(follow_symlinks=False):
            continue
        if int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            shutil.rmtree(e.path, ignore_errors=True)
            gone.append(Path(e.path))
    return gone


def run_folder(folder: str | Path | None = None) -> Path:
    """A new run folder ``lsfix-runs-<pid>-<random>`` in :func:`temp_root` (``folder``),
    after :func:`remove_stale` there."""
    root = temp_root(folder)
    if not root.is_dir():
        raise RuntimeFailure(f"temporary folder {str(root)[:200]!r} does not exist or is not "
                             "a folder (--tmpdir / TMPDIR)")
    remove_stale(root)
    try:
        return Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=root))
    except OSError as exc:
        raise RuntimeFailure(f"cannot make a temporary folder in {str(root)[:200]!r}: "
                             f"{exc.strerror or exc}") from None


def check_space(folder: str | Path | None, needed: int, what: str) -> None:
    """Refuse (:class:`RuntimeFailure`, one line) when :func:`temp_root` ``(folder)`` has less
    than ``needed`` bytes free; ``what`` says where the estimate comes from."""
    root = temp_root(folder)
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return  # no such folder: run_folder says so
    if free < needed:
        raise RuntimeFailure(
            f"not enough temporary disk in {str(root)[:200]}: needs up to {_gb(needed)} "
            f"({what}), {_gb(free)} free; give a folder with more room by --tmpdir DIR or "
            "TMPDIR")


def _gb(b: int) -> str:
    return f"{b / 1e9:.1f} GB" if b >= 1e8 else f"{b / 1e6:.1f} MB"


def _merge(runs: list[_Run], window: int
           ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Merge runs of descending, distinct values into blocks, ``window`` entries per run at a
    time: values at or above the largest "last value read" of the unfinished runs can no
    longer appear in any run, so they are final. Yields ``(value, size, errors)`` pieces."""
    pos = [0] * len(runs)
    # the entries read but not yet merged, per run
    buf: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
        (np.empty(0), np.empty(0, np.uint32), np.empty(0, np.uint32)) for _ in runs]
    while True:
        for i, r in enumerate(runs):  # top up every buffer to one window
            have = buf[i][0].shape[0]
            if have < window and pos[i] < r.length:
                hi = min(r.length, pos[i] + window - have)
                v, m, f = r.read(pos[i], hi)
                pos[i] = hi
                buf[i] = tuple(np.concatenate([a, b]) if have else b  # type: ignore[assignment]
                               for a, b in zip(buf[i], (v, m, f), strict=True))
        live = [i for i in range(len(runs)) if buf[i][0].shape[0]]
        if not live:
            return
        unfinished = [i for i in live if pos[i] < runs[i].length]
        bound = max((buf[i][0][-1] for i in unfinished), default=-np.inf)
        vs, ms, fs = [], [], []
        for i in live:
            v, m, f = buf[i]
            take = int(np.searchsorted(-v, -bound, side="right"))  # entries with v >= bound
            vs.append(v[:take])
            ms.append(m[:take])
            fs.append(f[:take])
            buf[i] = (v[take:], m[take:], f[take:])
        v = np.concatenate(vs)
        if not v.shape[0]:
            continue
        order = np.argsort(-v, kind="stable")
        v = v[order]
        m = np.concatenate(ms).astype(np.int64)[order]
        f = np.concatenate(fs).astype(np.int64)[order]
        new = np.empty(v.shape[0], dtype=bool)
        new[0] = True
        np.not_equal(v[1:], v[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        yield v[starts], np.add.reduceat(m, starts), np.add.reduceat(f, starts)


__all__ = ["BlockFile", "SpilledBlocks", "check_space", "remove_stale", "run_folder",
           "temp_root"]

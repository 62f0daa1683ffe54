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
  int64, 16 bytes per block) that :func:`lsfix.core.metrics.metrics_from_blocks` reads back a
  window at a time: memory bounded by the windows whatever the number of distinct values;
  :meth:`SpilledBlocks.block_source` does the same, or keeps the blocks in memory when no run
  was ever spilled (fewer than ``run_rows`` pairs).

Either result equals ``tie_blocks`` of all the pairs at once (same values, sizes and error
counts), so every metric computed from it is bit-for-bit the same.

Disk: at most ``16 B × (blocks of the runs) + 16 B × (merged blocks)`` at once, in the folder
given (the system temporary folder by default); removed by :meth:`SpilledBlocks.close`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lsfix.core.blockmetrics import ArrayBlocks
from lsfix.core.metrics import Blocks, tie_blocks

#: Default pairs per run (sorting a run takes about 50 bytes per pair).
RUN_ROWS = 1 << 21
#: Default budget, in bytes, of one merge step: the windows of all runs together, at
#: :data:`MERGE_BYTES_PER_ENTRY` (an entry read, sorted and reduced takes about 100 bytes).
MERGE_BYTES = 1 << 26
MERGE_BYTES_PER_ENTRY = 100


class _Run:
    """One spilled run: blocks in descending confidence in three raw files."""

    def __init__(self, stem: Path, b: Blocks) -> None:
        self.stem = stem
        self.length = int(b.size.shape[0])
        b.value.astype(np.float64).tofile(f"{stem}.value")
        b.size.astype(np.uint32).tofile(f"{stem}.size")
        b.errors.astype(np.uint32).tofile(f"{stem}.errors")

    def read(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        count = hi - lo
        return (np.fromfile(f"{self.stem}.value", np.float64, count, offset=8 * lo),
                np.fromfile(f"{self.stem}.size", np.uint32, count, offset=4 * lo),
                np.fromfile(f"{self.stem}.errors", np.uint32, count, offset=4 * lo))


class BlockFile:
    """Merged tie blocks on disk (descending confidence): a block source for
    :mod:`lsfix.core.blockmetrics` that reads ``window`` blocks at a time."""

    def __init__(self, stem: Path, window: int = 1 << 20) -> None:
        self.stem = stem
        self.window = int(window)
        self.length = 0
        self._files = [open(f"{stem}.size", "wb"), open(f"{stem}.errors", "wb")]

    def _append(self, size: np.ndarray, errors: np.ndarray) -> None:
        size.astype(np.int64).tofile(self._files[0])
        errors.astype(np.int64).tofile(self._files[1])
        self.length += int(size.shape[0])

    def _finish(self) -> None:
        for f in self._files:
            f.close()

    def windows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(size, errors)`` int64 of ``window`` consecutive blocks at a time."""
        with open(f"{self.stem}.size", "rb") as fs, open(f"{self.stem}.errors", "rb") as fe:
            for _ in range(0, self.length, self.window):
                yield (np.fromfile(fs, np.int64, self.window),
                       np.fromfile(fe, np.int64, self.window))


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
        Where the temporary run folder is made (default: the system temporary folder).
    """

    def __init__(self, run_rows: int = RUN_ROWS, window: int | None = None,
                 folder: str | Path | None = None) -> None:
        if run_rows < 1 or (window is not None and window < 1):
            raise ValueError("run_rows and window must be >= 1")
        self.run_rows = int(run_rows)
        self.window = None if window is None else int(window)
        self._dir = Path(tempfile.mkdtemp(prefix="lsfix-runs-", dir=folder))
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

    def _merged(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        self._spill()
        if not self.runs:
            raise ValueError("no pairs were added")
        window = self.window or max(1024, MERGE_BYTES // (MERGE_BYTES_PER_ENTRY
                                                          * len(self.runs)))
        yield from _merge(self.runs, window)

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
        out = BlockFile(self._dir / "merged")
        try:
            for _, size, errors in self._merged():
                out._append(size, errors)
        finally:
            out._finish()
        for run in self.runs:
            for part in ("value", "size", "errors"):
                Path(f"{run.stem}.{part}").unlink(missing_ok=True)
        return out

    def close(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SpilledBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


__all__ = ["BlockFile", "SpilledBlocks"]

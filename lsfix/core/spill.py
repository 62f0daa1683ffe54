"""Tie blocks from bounded memory: sorted runs spilled to a temporary folder, merged exactly.

Every metric of :mod:`lsfix.core.metrics` is a function of the tie blocks of a score: the
distinct confidences, most confident first, with the number of samples and of wrong
predictions at each (:class:`~lsfix.core.metrics.Blocks`). Those totals are integers, so they
can be built from pieces in any order and merged exactly. :class:`SpilledBlocks` takes
``(confidence, correct)`` pairs in pieces, keeps at most ``run_rows`` of them in memory, reduces
each full run to its own tie blocks and writes them to a temporary folder; :meth:`blocks`
merges the runs window by window (at most ``window`` entries per run in memory) into the
blocks of all the pairs. The result equals ``tie_blocks`` of all the pairs at once (same
values, sizes and error counts), so every metric computed from it is bit-for-bit the same.

The merged blocks are one entry per distinct confidence (24 bytes each); pairs themselves are
never all in memory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lsfix.core.metrics import Blocks, tie_blocks


class SpilledBlocks:
    """Accumulate ``(confidence, correct)`` pieces; :meth:`blocks` gives their tie blocks.

    Parameters
    ----------
    run_rows : int
        Pairs held in memory before a run is sorted, reduced and written to disk.
    window : int
        Entries read from each run at a time while merging.
    folder : str or Path, optional
        Where the temporary run folder is made (default: the system temporary folder).
    """

    def __init__(self, run_rows: int = 1 << 22, window: int = 1 << 16,
                 folder: str | Path | None = None) -> None:
        if run_rows < 1 or window < 1:
            raise ValueError("run_rows and window must be >= 1")
        self.run_rows = int(run_rows)
        self.window = int(window)
        self._dir = Path(tempfile.mkdtemp(prefix="lsfix-runs-", dir=folder))
        self._conf: list[np.ndarray] = []
        self._corr: list[np.ndarray] = []
        self._held = 0
        self.runs: list[Path] = []

    def add(self, confidence: Any, correct: Any) -> None:
        """Add a piece of pairs (copied; NaN is refused by the block builder)."""
        c = np.asarray(confidence, dtype=np.float64).reshape(-1)
        y = np.asarray(correct, dtype=bool).reshape(-1)
        if c.shape != y.shape:
            raise ValueError(f"confidence {c.shape} and correct {y.shape} differ in length")
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
        b = tie_blocks(np.concatenate(self._conf), np.concatenate(self._corr))
        path = self._dir / f"run{len(self.runs):06d}.npz"
        np.savez(path, value=b.value, size=b.size, errors=b.errors)
        self.runs.append(path)
        self._conf, self._corr, self._held = [], [], 0

    def blocks(self) -> Blocks:
        """The tie blocks of every pair added (descending confidence)."""
        self._spill()
        if not self.runs:
            raise ValueError("no pairs were added")
        files = [np.load(p) for p in self.runs]
        try:
            runs = [(f["value"], f["size"], f["errors"]) for f in files]
            return _merge(runs, self.window)
        finally:
            for f in files:
                f.close()

    def close(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SpilledBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _merge(runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], window: int) -> Blocks:
    """Merge runs of descending, distinct values into blocks, ``window`` entries per run at a
    time: values at or above the largest "last value read" of the unfinished runs can no
    longer appear in any run, so they are final."""
    pos = [0] * len(runs)
    out_v: list[np.ndarray] = []
    out_m: list[np.ndarray] = []
    out_f: list[np.ndarray] = []
    while True:
        live = [i for i, r in enumerate(runs) if pos[i] < r[0].shape[0]]
        if not live:
            break
        ends = {i: min(runs[i][0].shape[0], pos[i] + window) for i in live}
        unfinished = [i for i in live if ends[i] < runs[i][0].shape[0]]
        bound = max((runs[i][0][ends[i] - 1] for i in unfinished), default=-np.inf)
        vs, ms, fs = [], [], []
        for i in live:
            v = runs[i][0][pos[i] : ends[i]]
            take = int(np.searchsorted(-v, -bound, side="right"))  # entries with v >= bound
            vs.append(v[:take])
            ms.append(runs[i][1][pos[i] : pos[i] + take])
            fs.append(runs[i][2][pos[i] : pos[i] + take])
            pos[i] += take
        v = np.concatenate(vs)
        if not v.shape[0]:
            continue
        order = np.argsort(-v, kind="stable")
        v, m, f = v[order], np.concatenate(ms)[order], np.concatenate(fs)[order]
        new = np.empty(v.shape[0], dtype=bool)
        new[0] = True
        np.not_equal(v[1:], v[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        out_v.append(v[starts])
        out_m.append(np.add.reduceat(m, starts))
        out_f.append(np.add.reduceat(f, starts))
    return Blocks(size=np.concatenate(out_m).astype(np.int64),
                  errors=np.concatenate(out_f).astype(np.int64),
                  value=np.concatenate(out_v).astype(np.float64))


__all__ = ["SpilledBlocks"]

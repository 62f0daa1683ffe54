"""Exact tie blocks from partitions: the numeric half of a sample sort.

Every metric of :mod:`lsfix.core.metrics` depends on the data only through the tie blocks
``(value, size, errors)`` in descending confidence order (:class:`~lsfix.core.metrics.Blocks`).
Those can be built in pieces and merged without losing a bit:

1. **Splitters.** A few confidence values ``s_1 < … < s_{P-1}`` (quantiles of a sample, any
   values will do) cut the real line into ``P`` value ranges; range ``j`` holds the values
   ``c`` with ``s_j <= c < s_{j+1}`` (``numpy.searchsorted(splitters, c, "right") == j``).
   Equal values always land in one range, so a tie block never straddles two ranges.
2. **Map.** Each row partition (any split of the rows) builds its own blocks and cuts them
   by range (:func:`split_blocks`).
3. **Reduce.** Per range, the partial blocks of every row partition are merged: equal
   values are summed (:func:`merge_blocks`). This gives exactly the blocks of that range.
4. The ranges' blocks concatenated from the highest range down (:func:`concat_blocks`) are
   the global blocks: the same values, sizes and error counts, in the same order, as
   :func:`~lsfix.core.metrics.tie_blocks` on all rows at once. Sizes and errors are integer
   sums, so the result does not depend on the partition, and every metric computed from it
   (:func:`~lsfix.core.metrics.metrics_from_blocks`) is bit-identical to the one-process path.

The only liberty is the sign of a zero: ``-0.0`` and ``0.0`` share a block and the block's
``value`` may be either (no metric reads the value, only the order).

:func:`partitioned_blocks` runs the four steps in one process; :mod:`lsfix.evaluation.scheduler` runs
steps 2 and 3 as Dask tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lsfix.core.metrics import Blocks, _as_inputs, _blocks
from lsfix.errors import UsageError

#: Values sampled per wanted range to place the splitters.
SAMPLE_PER_RANGE = 64


def empty_blocks() -> Blocks:
    """Blocks of no samples."""
    return Blocks(size=np.zeros(0, dtype=np.int64), errors=np.zeros(0, dtype=np.int64),
                  value=np.zeros(0, dtype=np.float64))


def choose_splitters(sample: Any, ranges: int) -> np.ndarray:
    """At most ``ranges - 1`` distinct, ascending splitters from a sample of confidences.

    Parameters
    ----------
    sample : array_like of float, shape (m,)
        Confidences (any subset; NaN-free). Only where the cuts fall depends on it, never
        the merged result.
    ranges : int
        Wanted number of value ranges (>= 1).

    Returns
    -------
    ndarray of float64, shape (r,), ``r <= ranges - 1``
    """
    if ranges < 1:
        raise UsageError(f"ranges must be >= 1, got {ranges}")
    s = np.sort(np.asarray(sample, dtype=np.float64).reshape(-1))
    if ranges == 1 or s.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    pos = (np.arange(1, ranges) * s.shape[0]) // ranges
    cuts = np.unique(s[pos])
    return cuts + 0.0  # -0.0 -> 0.0: one zero splitter


def strided_sample(values: np.ndarray, size: int) -> np.ndarray:
    """About ``size`` evenly spaced values of ``values`` (deterministic, no RNG)."""
    n = values.shape[0]
    step = max(1, n // max(1, size))
    return np.asarray(values[::step], dtype=np.float64)


def range_of(values: np.ndarray, splitters: np.ndarray) -> np.ndarray:
    """Range index of each value: ``searchsorted(splitters, values, "right")``."""
    return np.searchsorted(splitters, values, side="right")


def split_blocks(b: Blocks, splitters: np.ndarray) -> list[Blocks]:
    """Cut blocks (descending values) into ``len(splitters) + 1`` value ranges, lowest
    range first; every piece stays in descending order."""
    n_ranges = splitters.shape[0] + 1
    asc = b.value[::-1]
    # ascending positions where each range starts; range j = [lo_j, hi_j) in ascending order
    edges = np.searchsorted(asc, splitters, side="left")
    bounds = np.concatenate(([0], edges, [asc.shape[0]]))
    nb = b.value.shape[0]
    out = []
    for j in range(n_ranges):
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        # ascending [lo, hi) is descending [nb - hi, nb - lo)
        sl = slice(nb - hi, nb - lo)
        out.append(Blocks(size=b.size[sl], errors=b.errors[sl], value=b.value[sl]))
    return out


def merge_blocks(parts: Sequence[Blocks]) -> Blocks:
    """Merge partial blocks of the same samples' value range (any split of the rows):
    equal values are one block whose size and errors are the sums. Descending order."""
    parts = [p for p in parts if p.value.shape[0]]
    if not parts:
        return empty_blocks()
    if len(parts) == 1:
        return parts[0]
    v = np.concatenate([p.value for p in parts])
    m = np.concatenate([p.size for p in parts])
    f = np.concatenate([p.errors for p in parts])
    uniq, inv = np.unique(v, return_inverse=True)  # ascending; -0.0 == 0.0 share an entry
    size = np.zeros(uniq.shape[0], dtype=np.int64)
    errors = np.zeros(uniq.shape[0], dtype=np.int64)
    np.add.at(size, inv, m)
    np.add.at(errors, inv, f)
    return Blocks(size=size[::-1].copy(), errors=errors[::-1].copy(),
                  value=uniq[::-1].copy())


def concat_blocks(ranges: Sequence[Blocks]) -> Blocks:
    """Blocks of consecutive value ranges, **highest range first**, as one :class:`Blocks`."""
    ranges = [r for r in ranges if r.value.shape[0]]
    if not ranges:
        return empty_blocks()
    return Blocks(size=np.concatenate([r.size for r in ranges]).astype(np.int64, copy=False),
                  errors=np.concatenate([r.errors for r in ranges]).astype(np.int64, copy=False),
                  value=np.concatenate([r.value for r in ranges]).astype(np.float64, copy=False))


def partial_blocks(confidence: np.ndarray, correct: np.ndarray, splitters: np.ndarray
                   ) -> list[Blocks]:
    """Map step: one row partition's blocks cut into value ranges (lowest range first)."""
    if confidence.shape[0] == 0:
        return [empty_blocks() for _ in range(splitters.shape[0] + 1)]
    c = np.asarray(confidence, dtype=np.float64)
    return split_blocks(_blocks(c, np.asarray(correct, dtype=bool)), splitters)


def partitioned_blocks(confidence: Any, correct: Any, *, bounds: Sequence[int],
                       ranges: int) -> Blocks:
    """The whole sample sort in one process: rows cut at ``bounds`` (ascending row indices
    strictly inside ``(0, n)``), values cut into ``ranges`` ranges. Equals
    :func:`~lsfix.core.metrics.tie_blocks` (see module docstring)."""
    c, y = _as_inputs(confidence, correct)
    n = c.shape[0]
    cuts = [0, *[int(x) for x in bounds], n]
    splitters = choose_splitters(strided_sample(c, SAMPLE_PER_RANGE * ranges), ranges)
    mapped = [partial_blocks(c[a:b], y[a:b], splitters) for a, b in zip(cuts, cuts[1:],
                                                                        strict=False)]
    merged = [merge_blocks([m[j] for m in mapped]) for j in range(splitters.shape[0] + 1)]
    return concat_blocks(merged[::-1])

"""Every metric from tie-block totals, window by window: memory bounded by a window, not n.

The metrics of :mod:`lsfix.core.metrics` depend on the data only through the tie blocks
``(m_b, f_b)`` (samples and wrong predictions per distinct confidence, most confident first).
This module computes all of them from a **block source**, anything with ``windows()`` that
yields ``(size, errors)`` int64 arrays of consecutive blocks in descending confidence
(:class:`ArrayBlocks` over in-memory arrays, :class:`lsfix.core.spill.BlockFile` on disk), in a
few forward passes that hold at most one window of blocks and one :data:`LEAF` of samples:

1. totals: ``n``, errors, block count, tied samples;
2. block level: AUROC (integer counts), FPR@95TPR (both readings), fd-shifts' trapezoid;
3. sample level: ``Σ_k r_k`` and ``Σ_k E_k`` (``E_k`` tie-expected, ``r_k = E_k/k``), ``E_1``,
   ``E_k`` at the risk@coverage ``k`` s, and the candidates for coverage@risk;
4. only for a coverage@risk whose boundary is within the tolerance: the exact rational check.

**Bit for bit.** The per-sample values are made by the same float64 operations, element by
element, as the whole-array expressions they replace (``E_{N+j} = F + j·(f/m)`` with ``j`` a
float64 difference of counts), and every sum of ``n`` (or ``B − 1``) float64 terms is numpy's
own pairwise summation tree, replayed: numpy sums a contiguous float64 array of length ``L``
by splitting it at ``L/2`` rounded down to a multiple of 8 until ``L ≤ 128`` (then 8 running
sums); :func:`pairwise_sum` splits the same way down to :data:`LEAF` terms and hands each leaf
to ``np.add.reduce``, which finishes the same tree. The result is the float numpy returns for
the whole array at once, so the in-memory and the out-of-core paths print the same digits
(``tests/core/test_blockmetrics.py`` checks ``np.sum`` against the replay).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

#: Terms per leaf of the replayed summation tree (any value >= 128 gives the same sums).
LEAF = 1 << 16
#: Blocks per window of an in-memory source.
WINDOW = 1 << 20


class BlockSource(Protocol):
    """Tie blocks in descending confidence, as ``(size, errors)`` int64 windows."""

    def windows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


class ArrayBlocks:
    """A block source over in-memory ``size``/``errors`` arrays (descending confidence)."""

    def __init__(self, size: Any, errors: Any, window: int = WINDOW) -> None:
        self.size = np.asarray(size, dtype=np.int64)
        self.errors = np.asarray(errors, dtype=np.int64)
        self.window = int(window)

    def windows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, self.size.shape[0], self.window):
            yield self.size[i : i + self.window], self.errors[i : i + self.window]


def as_source(blocks: Any) -> BlockSource:
    """A block source: ``blocks`` itself when it has ``windows()``, else one over its
    ``size`` and ``errors`` arrays (a :class:`~lsfix.core.metrics.Blocks`)."""
    if hasattr(blocks, "windows"):
        return blocks  # type: ignore[no-any-return]
    return ArrayBlocks(blocks.size, blocks.errors)


# --------------------------------------------------------------------------------------------
# numpy's pairwise summation, replayed over pieces


def pairwise_sum(take: Callable[[int], Any], n: int, parts: int = 1) -> Any:
    """``np.sum`` of ``n`` float64 terms delivered in order by ``take(L)`` (the next ``L``
    terms as an array, or a tuple of ``parts`` arrays summed side by side), bit-identical to
    ``np.sum`` of the whole array. Returns a float (a tuple of floats when ``parts > 1``)."""
    def rec(length: int) -> tuple[float, ...]:
        if length <= LEAF:
            got = take(length)
            arrays = got if parts > 1 else (got,)
            return tuple(float(np.add.reduce(a)) for a in arrays)
        half = length // 2
        half -= half % 8
        left = rec(half)
        right = rec(length - half)
        return tuple(a + b for a, b in zip(left, right, strict=True))

    out = rec(n) if n > 0 else (0.0,) * parts
    return out if parts > 1 else out[0]


# --------------------------------------------------------------------------------------------
# cursors: blocks and samples in order


class _BlockCursor:
    """Pulls consecutive blocks from a source with their running totals (exact int64)."""

    def __init__(self, source: BlockSource) -> None:
        self._it = source.windows()
        self._size = np.empty(0, np.int64)
        self._err = np.empty(0, np.int64)
        self._pos = 0
        self.k = 0  # samples before the next block
        self.f = 0  # errors before the next block

    def _fill(self) -> bool:
        while self._pos >= self._size.shape[0]:
            try:
                s, e = next(self._it)
            except StopIteration:
                return False
            self._size = np.asarray(s, dtype=np.int64)
            self._err = np.asarray(e, dtype=np.int64)
            self._pos = 0
        return True

    def take(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The next ``count`` blocks (fewer at the end): size, errors, and the samples and
        errors before each block."""
        sizes, errs = [], []
        left = count
        while left > 0 and self._fill():
            stop = min(self._size.shape[0], self._pos + left)
            sizes.append(self._size[self._pos : stop])
            errs.append(self._err[self._pos : stop])
            left -= stop - self._pos
            self._pos = stop
        s = sizes[0] if len(sizes) == 1 else (np.concatenate(sizes) if sizes else
                                              np.empty(0, np.int64))
        e = errs[0] if len(errs) == 1 else (np.concatenate(errs) if errs else
                                            np.empty(0, np.int64))
        k_before = np.cumsum(s) - s + self.k
        f_before = np.cumsum(e) - e + self.f
        if s.shape[0]:
            self.k = int(k_before[-1] + s[-1])
            self.f = int(f_before[-1] + e[-1])
        return s, e, k_before, f_before


class SampleStream:
    """The tie-expected ``E_k`` (``k = 1..n``) in consecutive pieces, from a block source.

    ``E_{N+j} = F + j·(f/m)`` inside a block of ``m`` samples with ``f`` errors after ``N``
    samples with ``F`` errors, computed as ``float(F) + (float(k) − float(N))·(f/m)`` exactly as
    :func:`lsfix.core.metrics.curve_from_blocks` does for the whole array (and ``E_k = F + f``
    when no block holds two samples: ``ties=False``).
    """

    def __init__(self, source: BlockSource, ties: bool) -> None:
        self._blocks = _BlockCursor(source)
        self._ties = ties
        self.k = 0  # samples delivered
        # the current piece of blocks: size, errors, start k, errors before, and the offset
        # (samples of the first block already delivered)
        self._cur: tuple[np.ndarray, ...] | None = None
        self._used = 0

    def _load(self) -> bool:
        s, e, kb, fb = self._blocks.take(max(1, LEAF // 4))
        if not s.shape[0]:
            return False
        self._cur = (s, e, kb, fb)
        self._used = 0
        return True

    def take(self, length: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """``E_k`` for the next ``length`` samples and the blocks they fall in
        ``(size, errors, k before, errors before, samples of each block in this piece)``."""
        parts: list[tuple[np.ndarray, ...]] = []
        left = length
        while left > 0:
            if self._cur is None or self._used >= int(self._cur[0].sum()):
                if not self._load():
                    raise ValueError("the block source holds fewer samples than asked for")
            assert self._cur is not None
            s, e, kb, fb = self._cur
            # samples left in each block of the current piece
            first_k = int(kb[0]) + self._used  # samples delivered before this part
            end = kb + s
            lo = int(np.searchsorted(end, first_k, side="right"))
            hi_k = first_k + left
            hi = int(np.searchsorted(end, hi_k, side="left"))
            hi = min(hi, s.shape[0] - 1)
            sel = slice(lo, hi + 1)
            counts = np.minimum(end[sel], hi_k) - np.maximum(kb[sel], first_k)
            got = int(counts.sum())
            parts.append((s[sel], e[sel], kb[sel], fb[sel], counts))
            self._used += got
            left -= got
            if self._used >= int(s.sum()):
                self._cur = None
        s, e, kb, fb, counts = (np.concatenate(x) if len(parts) > 1 else x[0]
                                for x in zip(*parts, strict=True))
        start = self.k
        self.k += length
        if not self._ties:
            return (fb + e).astype(np.float64), (s, e, kb, fb, counts)
        f_prev = np.repeat(fb.astype(np.float64), counts)
        slope = np.repeat(e / s, counts)
        k = np.arange(start + 1, start + length + 1, dtype=np.float64)
        j = k - np.repeat(kb.astype(np.float64), counts)
        return f_prev + j * slope, (s, e, kb, fb, counts)

    def skip(self, length: int) -> None:
        """Advance ``length`` samples without computing them."""
        while length > 0:
            step = min(length, LEAF)
            self.take(step)
            length -= step


# --------------------------------------------------------------------------------------------
# the summary of one score


@dataclass
class Summary:
    """Convention-independent totals of one score's tie blocks (every metric is a formula
    of these; :func:`lsfix.core.metrics.metrics_from_summary`)."""

    n: int
    n_errors: int
    n_blocks: int
    n_tied: int
    sum_risk: float = math.nan  #: Σ_k r_k (numpy's pairwise order)
    sum_errors: float = math.nan  #: Σ_k E_k
    e1: float = math.nan  #: E_1
    fd_area: float = math.nan  #: fd-shifts' trapezoid over block ends
    auroc: float = math.nan
    fpr: float = math.nan
    fpr_fd: float = math.nan
    errors_at: dict[int, float] = field(default_factory=dict)  #: k -> E_k (risk@coverage)
    risk_points: dict[float, tuple[int, float]] = field(default_factory=dict)


def totals(source: BlockSource) -> tuple[int, int, int, int]:
    """``(n, errors, blocks, tied samples)`` of a block source (pass 1)."""
    n = n_err = n_blocks = tied = 0
    for s, e in source.windows():
        s = np.asarray(s, dtype=np.int64)
        n += int(s.sum())
        n_err += int(np.asarray(e, dtype=np.int64).sum())
        n_blocks += int(s.shape[0])
        tied += int(s[s > 1].sum())
    return n, n_err, n_blocks, tied


def summarize(source: BlockSource, *, coverage_ks: tuple[int, ...] = (),
              risk_targets: tuple[tuple[float, Fraction], ...] = ()) -> Summary:
    """Every total the metrics need (passes 1-4 of the module docstring).

    ``coverage_ks``: the ``k`` of each risk@coverage (``E_k`` is kept); ``risk_targets``:
    ``(float target, exact target)`` of each coverage@risk (the largest ``k`` with
    ``E_k/k ≤ target`` and ``r_k`` there are kept).
    """
    n, n_err, n_blocks, tied = totals(source)
    if n == 0:
        raise ValueError("no samples in the block source")
    sm = Summary(n=n, n_errors=n_err, n_blocks=n_blocks, n_tied=tied)
    _block_pass(source, sm)
    _sample_pass(source, sm, coverage_ks, risk_targets)
    return sm


def _block_pass(source: BlockSource, sm: Summary) -> None:
    """AUROC, both FPR@95TPR readings and fd-shifts' trapezoid, one pass over the blocks."""
    n, n_w = sm.n, sm.n_errors
    n_c = n - n_w
    cur = _BlockCursor(source)
    need_tp = -(-95 * n_c // 100)
    acc: dict[str, Any] = {"num2": 0, "fpr": None, "fd": None}
    carry: dict[str, Any] = {}

    def side(s: np.ndarray, e: np.ndarray, kb: np.ndarray, fb: np.ndarray) -> None:
        """AUROC and FPR counts of the pulled blocks (exact integers)."""
        if not s.shape[0] or n_w == 0 or n_c == 0:
            return
        right = s - e
        f_cum = fb + e
        acc["num2"] += 2 * int(np.dot(right, n_w - f_cum)) + int(np.dot(right, e))
        tp = (kb + s) - f_cum
        if acc["fpr"] is None:
            hit = np.flatnonzero(tp >= need_tp)
            if hit.shape[0]:
                acc["fpr"] = int(f_cum[hit[0]])
        # fd-shifts: block i is kept when its step differs from block i+1's (or it is the first
        # or the last); decided when block i+1 is known, so the last pulled block waits
        if acc["fd"] is None:
            if "fd" in carry:
                p = carry["fd"]
                right = np.concatenate([p[0], right])
                e2 = np.concatenate([p[1], e])
                tp = np.concatenate([p[2], tp])
                fc = np.concatenate([p[3], f_cum])
                idx0 = p[4]
            else:
                e2, fc, idx0 = e, f_cum, 0
            keep = np.ones(right.shape[0] - 1, dtype=bool)
            if right.shape[0] > 1:
                keep = (right[1:] != right[:-1]) | (e2[1:] != e2[:-1])
                if idx0 == 0:
                    keep[0] = True
            ok = keep & (10000 * tp[:-1] >= 9495 * n_c)
            if ok.any():
                acc["fd"] = int(fc[int(np.argmax(ok))])
            else:
                carry["fd"] = (right[-1:], e2[-1:], tp[-1:], fc[-1:], idx0 + right.shape[0] - 1)

    def pull(count: int) -> tuple[np.ndarray, np.ndarray]:
        s, e, kb, fb = cur.take(count)
        side(s, e, kb, fb)
        ends = kb + s
        return ends / n, (fb + e) / ends  # coverage and risk at each block end

    cov0, r0 = pull(1)
    prev = {"cov": cov0, "r": r0}

    def terms(length: int) -> np.ndarray:
        cov, r = pull(length)
        pc = np.concatenate([prev["cov"], cov[:-1]])
        pr = np.concatenate([prev["r"], r[:-1]])
        prev["cov"], prev["r"] = cov[-1:], r[-1:]
        return (cov - pc) * (r + pr) * 0.5

    area = cov0[0] * r0[0]
    if sm.n_blocks > 1:
        area += pairwise_sum(terms, sm.n_blocks - 1)
    sm.fd_area = float(area)
    if n_w and n_c:
        if acc["fd"] is None:  # the last block is always kept (and has TP = n_c)
            acc["fd"] = int(carry["fd"][3][0])
        sm.auroc = float(acc["num2"] / (2 * n_c * n_w))
        sm.fpr = int(acc["fpr"]) / n_w  # type: ignore[arg-type]
        sm.fpr_fd = int(acc["fd"]) / n_w  # type: ignore[arg-type]


def _sample_pass(source: BlockSource, sm: Summary, coverage_ks: tuple[int, ...],
                 risk_targets: tuple[tuple[float, Fraction], ...]) -> None:
    """``Σ r_k``, ``Σ E_k``, ``E_1``, ``E_k`` at ``coverage_ks`` and coverage@risk."""
    n = sm.n
    ties = sm.n_blocks != n
    stream = SampleStream(source, ties)
    wanted = sorted(set(coverage_ks))
    # per risk target: the last k with r_k <= t + tol, the last with r_k < t - tol (and r_k)
    state = [{"t": float(t), "tol": 1e-9 * max(1.0, float(t)), "last": 0, "sure": 0,
              "r_sure": math.nan} for t, _ in risk_targets]

    def leaf(length: int) -> tuple[np.ndarray, np.ndarray]:
        start = stream.k
        e, _ = stream.take(length)
        if start == 0:
            sm.e1 = float(e[0])
        r = e / np.arange(start + 1, start + length + 1, dtype=np.float64)
        while wanted and wanted[0] <= start + length:
            kk = wanted.pop(0)
            sm.errors_at[kk] = float(e[kk - 1 - start])
        for st in state:
            below = np.flatnonzero(r <= st["t"] + st["tol"])
            if below.shape[0]:
                st["last"] = start + int(below[-1]) + 1
            sure = np.flatnonzero(r < st["t"] - st["tol"])
            if sure.shape[0]:
                st["sure"] = start + int(sure[-1]) + 1
                st["r_sure"] = float(r[sure[-1]])
        return r, e

    sm.sum_risk, sm.sum_errors = pairwise_sum(leaf, n, parts=2)
    for (t, rho), st in zip(risk_targets, state, strict=True):
        sm.risk_points[t] = _risk_point(source, sm, ties, st, rho)


def _risk_point(source: BlockSource, sm: Summary, ties: bool, st: dict[str, Any],
                rho: Fraction) -> tuple[int, float]:
    """``(k, r_k)`` of one coverage@risk: the last surely-below ``k``, or a later ``k``
    within the tolerance whose exact ``E_k/k ≤ ρ`` (the largest such)."""
    best, r_best = int(st["sure"]), float(st["r_sure"])
    last = int(st["last"])
    if last <= best:
        return best, r_best
    stream = SampleStream(source, ties)
    stream.skip(best)
    pos = best
    found: tuple[int, float] | None = None
    while pos < last:
        length = min(LEAF, last - pos)
        e, (s, err, kb, fb, counts) = stream.take(length)
        r = e / np.arange(pos + 1, pos + length + 1, dtype=np.float64)
        near = np.flatnonzero(np.abs(r - st["t"]) <= st["tol"])
        piece_end = np.cumsum(counts)
        for idx in near[::-1]:
            kk = pos + int(idx) + 1
            bi = int(np.searchsorted(piece_end, int(idx), side="right"))
            m, f_prev, n_prev = int(s[bi]), int(fb[bi]), int(kb[bi])
            exact = Fraction(f_prev * m + (kk - n_prev) * int(err[bi]), m)
            if exact <= rho * kk:
                found = (kk, float(r[idx]))
                break
        pos += length
    return found if found is not None else (best, r_best)


def oracle_tail_sum(n_ok: int, n_err: int) -> float:
    """``Σ_{j=1..n_err} j/(n_ok + j)`` (the ideal ranking's risks after its correct samples),
    in numpy's pairwise order, piece by piece."""
    pos = [0]

    def take(length: int) -> np.ndarray:
        j = np.arange(pos[0] + 1, pos[0] + length + 1, dtype=np.float64)
        pos[0] += length
        return j / (n_ok + j)

    return float(pairwise_sum(take, n_err))


def expected_errors(source: BlockSource, n: int, ties: bool) -> np.ndarray:
    """``E_k`` for ``k = 1..n`` as one array (the per-sample curve; ``n`` floats)."""
    return SampleStream(source, ties).take(n)[0] if n else np.empty(0)


def errors_at(source: BlockSource, n: int, ties: bool, ks: np.ndarray) -> np.ndarray:
    """``E_k`` at the ascending ``ks`` (1-based) in one pass, memory bounded by a leaf."""
    stream = SampleStream(source, ties)
    out = np.empty(ks.shape[0], dtype=np.float64)
    done = 0
    while done < ks.shape[0]:
        length = min(LEAF, n - stream.k)
        start = stream.k
        e, _ = stream.take(length)
        hi = int(np.searchsorted(ks, start + length, side="right"))
        out[done:hi] = e[ks[done:hi] - 1 - start]
        done = hi
    return out


__all__ = ["ArrayBlocks", "BlockSource", "SampleStream", "Summary", "as_source",
           "errors_at", "expected_errors", "oracle_tail_sum", "pairwise_sum", "summarize",
           "totals"]

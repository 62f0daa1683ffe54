"""One pass over the logits for MaxLogit-pNorm tuning: every ``p``'s score and MSP per row.

:func:`lsfix.core.scores.tune_pnorm` needs, for every row, the pNorm score of each ``p`` in the
grid, the log-MSP and whether the argmax is right. This module computes them in **one** read of
the logits, on cache-sized sub-blocks of rows with buffers allocated once (:class:`TuneScratch`),
and gives **bit-identical** numbers to ``_pnorm_many`` and ``msp`` in :mod:`lsfix.core.scores`:
every floating-point operation that produces a value is the same operation on the same operands
in the same order. What changed is only which operations are shared or fused:

* ``max_k (z_k − μ)`` is ``fl(max_k z_k − μ)`` (rounding is monotone), so the row's maximum and
  minimum centred logits come from the argmax/argmin of the stored values, not from extra passes.
* ``2·Σ_k max(x_k, 0)`` (the ``p = 1`` norm) is summed as ``Σ_k (x_k + |x_k|)``: each term is
  exactly twice ``max(x_k, 0)`` and the pairwise sum of doubled terms is exactly twice the sum
  (scaling by 2 is exact and commutes with rounding short of overflow).
* The eight sums ``Σ a^p`` for ``p = 2..9`` are one ``einsum`` call over strided views of the
  stored powers ``a, a², …, a⁵`` (the same pairs, the same inner loop as eight calls).
* Per-row finishing (``/ ‖·‖_p``, ``−log1p``) runs once over all rows at the end.

:func:`tune_rows` is a pure function of (a block of rows, its argmax/max/min, one
:class:`TuneScratch`) writing per-row results into caller-owned slices, so blocks can be
processed by worker threads, each with its own scratch (numpy releases the GIL in its loops).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

#: Values per piece (rows x K): 512 KiB per float64 plane; six planes of a piece stay in L2/L3.
#: (Measured flat from 2^14 to 2^18 at K = 1000: the pass is compute-bound, bench/README.md.)
SUB_ELEMENTS = 1 << 16



def scale_rows(a: np.ndarray, m: np.ndarray) -> None:
    """``a[i] *= 1 / m[i]`` in place (``m > 0``); rows whose ``1 / m`` overflows (``m``
    subnormal, below ~5.6e-309) are divided by ``m`` instead, so they are scaled too rather
    than turned into inf (the multiplication stays for every other row: same bits as before)."""
    with np.errstate(over="ignore"):
        inv = 1.0 / m
    huge = np.isinf(inv)
    if huge.any():
        a[huge] = a[huge] / m[huge, None]
        inv[huge] = 1.0
    a *= inv[:, None]


@dataclass
class TunePlan:
    """What one tuning pass computes, derived from the p grid.

    Attributes
    ----------
    int_ps : tuple of int
        Integer ``p`` in 2..9 whose ``Σ a^p`` come from products of stored powers.
    other_ps : tuple of float
        Other ``p ≥ 2`` or non-integer ``p > 0`` (``Σ a^p`` from ``np.power``).
    need_pos : bool
        Whether ``p = 1`` is asked (``Σ (x + |x|)`` per row).
    planes : int
        Powers ``a^1..a^planes`` stored (``⌈max int_p / 2⌉``, at least 1).
    """

    int_ps: tuple[int, ...]
    other_ps: tuple[float, ...]
    need_pos: bool
    planes: int

    @classmethod
    def for_grid(cls, ps: Sequence[float]) -> TunePlan:
        int_ps = tuple(sorted({int(p) for p in ps if float(p).is_integer() and 2 <= p <= 9}))
        other = tuple(sorted({float(p) for p in ps if float(p) not in (0.0, 1.0)
                              and not (float(p).is_integer() and 2 <= p <= 9)}))
        need = max(int_ps) if int_ps else 0
        return cls(int_ps, other, any(float(p) == 1 for p in ps), max(1, -(-need // 2)))

    @property
    def groups(self) -> int:
        """``G`` when the integer p are exactly ``2..2G+1`` (one einsum over strided views
        covers every sum), else 0."""
        g = len(self.int_ps) // 2
        return g if g and self.int_ps == tuple(range(2, 2 * g + 2)) else 0

    @property
    def n_sums(self) -> int:
        return len(self.int_ps) + len(self.other_ps)


class TuneScratch:
    """Buffers of one worker (allocated once): a float64 block, the power planes, and the
    per-row argmax, max and min of the stored block."""

    def __init__(self, rows: int, k: int, plan: TunePlan, piece_rows: int | None = None
                 ) -> None:
        """``rows``: rows of the float64 planes (what :func:`tune_rows` takes at once);
        ``piece_rows``: rows of a stored-dtype piece (default ``rows``)."""
        self.rows, self.k, self.plan = rows, k, plan
        self.piece_rows = max(rows, piece_rows or rows)
        self.z = np.empty((rows, k))
        self.pw = np.empty((max(2, plan.planes), rows, k))  # plane 1 doubles as exp scratch
        self.ix = np.arange(self.piece_rows)
        self.arg = np.empty(self.piece_rows, dtype=np.intp)
        self.arg_low = np.empty(self.piece_rows, dtype=np.intp)
        self.zmax = np.empty(self.piece_rows)
        self.zmin = np.empty(self.piece_rows)
        self._views: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._taken: np.ndarray | None = None

    def taken(self, dtype: np.dtype) -> np.ndarray:  # type: ignore[type-arg]
        """A ``(piece_rows, K)`` buffer of ``dtype`` for the selected rows of a piece."""
        if self._taken is None or self._taken.dtype != dtype:
            self._taken = np.empty((self.piece_rows, self.k), dtype=dtype)
        return self._taken

    def extremes(self, z: np.ndarray) -> bool:
        """Fill ``arg`` (first argmax), ``zmax`` and ``zmin`` for the rows of ``z`` (stored
        dtype); False when a value is not finite (a NaN or +inf is its row's argmax, -inf its
        argmin), and nothing else is to be trusted then."""
        r = z.shape[0]
        a, b, ix = self.arg[:r], self.arg_low[:r], self.ix[:r]
        np.argmax(z, axis=1, out=a)
        self.zmax[:r] = z[ix, a]
        np.argmin(z, axis=1, out=b)
        self.zmin[:r] = z[ix, b]
        return bool(np.isfinite(self.zmax[:r]).all() and np.isfinite(self.zmin[:r]).all())

    def stacked_views(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Views ``(a^(p//2), a^(p − p//2))`` for ``p = 2..2G+1`` as two ``(G, 2, r, K)``
        arrays: ``p = 2 + 2i + j`` reads powers ``i + 1`` and ``i + j + 1``."""
        v = self._views.get(r)
        if v is None:
            g = self.plan.groups
            pw = self.pw[:, :r]
            s_plane, s_row, s_col = pw.strides
            first = as_strided(pw[0], (g, 2, r, self.k), (s_plane, 0, s_row, s_col),
                               writeable=False)
            second = as_strided(pw[0], (g, 2, r, self.k), (s_plane, s_plane, s_row, s_col),
                                writeable=False)
            v = self._views[r] = (first, second)
        return v


@dataclass
class TuneRows:
    """Per-row results of a tuning pass (caller-owned; :func:`tune_rows` fills slices).

    ``top`` = ``max_k x_k`` (``x = z − mean z``), ``m`` = ``max_k |x_k|``, ``pos2`` =
    ``Σ_k (x_k + |x_k|)``, ``sums[i]`` = ``Σ_k (|x_k|/m)^p`` for the plan's i-th sum, ``rest`` =
    MSP's ``S``, ``flat`` = every logit of the row equal.
    """

    top: np.ndarray
    m: np.ndarray
    pos2: np.ndarray
    sums: np.ndarray
    rest: np.ndarray
    flat: np.ndarray

    @classmethod
    def empty(cls, n: int, plan: TunePlan) -> TuneRows:
        return cls(np.empty(n), np.empty(n), np.empty(n), np.empty((plan.n_sums, n)),
                   np.empty(n), np.zeros(n, dtype=bool))

    def part(self, start: int, stop: int) -> TuneRows:
        return TuneRows(self.top[start:stop], self.m[start:stop], self.pos2[start:stop],
                        self.sums[:, start:stop], self.rest[start:stop], self.flat[start:stop])


def tune_rows(z: np.ndarray, arg: np.ndarray, zmax: np.ndarray, zmin: np.ndarray,
              scratch: TuneScratch, out: TuneRows) -> None:
    """Fill ``out`` (r rows) from the logit block ``z`` (r, K), any float dtype.

    ``arg`` is ``argmax z`` per row (first on ties), ``zmax``/``zmin`` the row's largest and
    smallest logit as float64; every value finite. Only ``scratch`` and ``out`` are written.
    """
    r, k = z.shape
    plan = scratch.plan
    zf = scratch.z[:r]
    pw = scratch.pw[:, :r]
    np.copyto(zf, z)  # exact (float16/32 -> float64)
    # MSP: S = sum_k exp(z_k - z_max) without the first maximum (as scores._Chunk)
    w = pw[1]
    np.subtract(zf, zmax[:, None], out=w)
    np.exp(w, out=w)
    w[scratch.ix[:r], arg] = 0.0
    np.add.reduce(w, axis=1, out=out.rest)
    # centred logits x = z - mean z (mean = pairwise sum / K, as ndarray.mean)
    mu = np.add.reduce(zf, axis=1)
    mu /= k
    np.subtract(zf, mu[:, None], out=zf)
    top = np.subtract(zmax, mu, out=out.top)  # = max_k x_k (rounding is monotone)
    low = zmin - mu  # = min_k x_k
    flat = np.equal(top, low, out=out.flat)
    if flat.any():  # placeholders (no 0/0); the finishing step sets those rows to 0
        zf[flat] = 1.0
        top[flat] = low[flat] = 1.0
    m = np.maximum(top, -low, out=out.m)
    a = pw[0]
    np.abs(zf, out=a)
    if plan.need_pos:
        np.add(zf, a, out=zf)  # x + |x| = 2 max(x, 0) exactly
        np.add.reduce(zf, axis=1, out=out.pos2)
    scale_rows(a, m)  # |x| / max|x| in [0, 1] (as scores._pnorm_many)
    for q in range(2, plan.planes + 1):  # a^q = a^(q//2) * a^(q - q//2), as scores._power_sums
        np.multiply(pw[q // 2 - 1], pw[q - q // 2 - 1], out=pw[q - 1])
    n_int = len(plan.int_ps)
    if plan.groups:
        first, second = scratch.stacked_views(r)
        dest = out.sums[:n_int].view()
        dest.shape = (plan.groups, 2, r)  # a view, never a copy (this raises if it cannot be)
        np.einsum("abij,abij->abi", first, second, out=dest)
    else:
        for i, p in enumerate(plan.int_ps):
            np.einsum("ij,ij->i", pw[p // 2 - 1], pw[p - p // 2 - 1], out=out.sums[i])
    for i, pf in enumerate(plan.other_ps):
        out.sums[n_int + i] = np.power(a, pf).sum(axis=1)


def finish_one(rows: TuneRows, p: float, plan: TunePlan, k: int,
               out: np.ndarray | None = None) -> np.ndarray:
    """The pNorm score of one ``p`` for every row of a pass (the formulas of
    ``scores._pnorm_many``), into ``out`` when given."""
    pf = float(p)
    res = np.empty(rows.top.shape[0]) if out is None else out
    if pf == 0:
        res[...] = rows.top
    elif k == 2:  # two classes: every p >= 1 is exactly 2^(-1/p) (see scores._pnorm_many)
        res[...] = 2.0 ** (-1.0 / pf)
    elif pf == 1:
        np.divide(rows.top, rows.pos2, out=res)
    else:
        j = (plan.int_ps.index(int(pf)) if pf.is_integer() and int(pf) in plan.int_ps
             else len(plan.int_ps) + plan.other_ps.index(pf))
        np.power(rows.sums[j], 1.0 / pf, out=res)
        np.divide(rows.top / rows.m, res, out=res)
    if rows.flat.any():
        res[rows.flat] = 0.0
    return res


def finish_msp(rows: TuneRows) -> np.ndarray:
    """log-MSP of every row of a pass: ``−log1p(S)`` (as ``scores._msp``)."""
    msp = np.log1p(rows.rest)
    np.negative(msp, out=msp)
    return msp


def finish(rows: TuneRows, ps: Sequence[float], plan: TunePlan, k: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """pNorm scores ``(len(ps), n)`` and log-MSP ``(n,)`` from a pass's per-row results."""
    out = np.empty((len(ps), rows.top.shape[0]))
    for i, p in enumerate(ps):
        finish_one(rows, p, plan, k, out=out[i])
    return out, finish_msp(rows)

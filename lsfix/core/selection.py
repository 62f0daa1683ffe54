"""Choosing among scores without fooling yourself: simultaneous bootstrap bounds on ΔAURC.

Picking the score with the lowest AURC on a fit set, then asking whether it beats a baseline
on **the same** rows, is biased: the winner of several noisy contests looks better than it
is. This module answers "is any candidate really better than the baseline, and which?" with
**simultaneous** intervals, so the answer holds for whichever candidate is picked
(:func:`select_better`).

Definition. ``S`` candidate scores and a baseline score on the same ``n`` rows with
correctness ``y``. For candidate ``s``, ``Δ_s = AURC(s) − AURC(baseline)`` (lower is better).
``B`` bootstrap replicates draw the rows with replacement (the same draw for every score:
paired); ``Δ*_{s,b}`` is the difference on replicate ``b`` and ``σ_s`` its standard deviation
over the replicates. With ``c`` the ``level`` quantile of ``max_s (Δ_s − Δ*_{s,b}) / σ_s``
(over the candidates with ``σ_s > 0``), the **upper bounds**

    ``U_s = Δ_s + c·σ_s``   for every ``s`` at once

hold together (every true ``Δ_s ≤ U_s``) with probability ≈ ``level``: a one-sided max-t
bootstrap band (Romano & Wolf 2005, its first step). The question is one-sided (leave the
baseline only for a better score), so the bound is too. A candidate is **significantly
better** when ``U_s < 0``; the selection takes, among those, the one with the lowest ``Δ_s``
(ties: the first), and keeps the baseline when there is none. Because the bounds hold for
all candidates at once, they hold for the one picked: the choice needs no re-doing inside
each replicate, and when no candidate is truly better a switch happens with probability at
most about ``1 − level``. ``L_s = Δ_s − c'·σ_s``, with ``c'`` the ``level`` quantile of
``max_s (Δ*_{s,b} − Δ_s) / σ_s``, is the matching simultaneous lower bound (shown, not used:
``[L_s, U_s]`` together is a two-sided band of level ``2·level − 1``). A candidate with
``σ_s = 0`` (the same ranking as the baseline in every replicate) gets ``[Δ_s, Δ_s]``.

**Stability**: the share of replicates in which the plain rule "lowest AURC among baseline and
candidates" picks the final choice: how reproducible the choice is under resampling.

Replicate AURCs come from tie-block totals (as :mod:`lsfix.core.bootstrap`), computed for many
replicates at once (:func:`replicate_aurcs`): ``Σ_k E_k/k`` over each tie block in closed form
with harmonic numbers, equal to :func:`lsfix.core.metrics.aurc` on the replicate to ~1e-12
relative (tested); ``fd-shifts`` goes through the exact block metrics per replicate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core.bootstrap import _check, _replicate_counts
from lsfix.core.metrics import (
    _as_inputs,
    _blocks,
    _check_convention,
    aurc,
    blocks_from_counts,
    metrics_from_blocks,
)
from lsfix.errors import InputError

#: Replicates evaluated together (bounds memory to about ``16·n`` float64 per score).
REPLICATE_CHUNK = 16


@dataclass(frozen=True)
class Candidate:
    """One candidate's difference to the baseline.

    ``delta`` = AURC(candidate) − AURC(baseline) on the full rows; ``high`` its simultaneous
    upper bound (what decides), ``low`` the simultaneous lower bound; ``sd`` the bootstrap
    standard deviation of the difference.
    """

    name: str
    aurc: float
    delta: float
    low: float
    high: float
    sd: float

    @property
    def better(self) -> bool:
        """The simultaneous upper bound is below 0."""
        return self.high < 0


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select_better`.

    Attributes
    ----------
    choice : str or None
        The chosen candidate, ``None`` when the baseline is kept.
    point_choice : str or None
        What the plain "lowest AURC" rule picks (``None``: the baseline); the choice
        without the significance test.
    baseline_aurc : float
    candidates : tuple of Candidate
        Every candidate, in input order.
    critical : float
        ``c``, the upper bounds' multiplier (NaN when no candidate varies).
    level, n_boot, seed : as given
    stability : float
        Share of replicates whose plain rule picks ``choice`` (the baseline when None).
    picks : dict
        How often each option (``None`` for the baseline) won a replicate's plain rule.
    """

    choice: str | None
    point_choice: str | None
    baseline: str
    baseline_aurc: float
    candidates: tuple[Candidate, ...]
    critical: float
    level: float
    n_boot: int
    seed: int
    n: int
    n_errors: int
    stability: float
    picks: dict[str | None, int]

    def candidate(self, name: str) -> Candidate:
        return next(c for c in self.candidates if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {
            "method": "simultaneous paired bootstrap (one-sided max-t upper bounds)",
            "baseline": self.baseline, "baseline_aurc": num(self.baseline_aurc),
            "choice": self.choice, "point_choice": self.point_choice,
            "level": self.level, "n_boot": self.n_boot, "seed": self.seed, "n": self.n,
            "n_errors": self.n_errors, "critical": num(self.critical),
            "stability": num(self.stability),
            "picks": [{"option": k, "count": v} for k, v in self.picks.items()],
            "candidates": [{"name": c.name, "aurc": num(c.aurc), "delta": num(c.delta),
                            "low": num(c.low), "high": num(c.high), "sd": num(c.sd),
                            "better": c.better} for c in self.candidates],
        }


class _BlockIndex:
    """Rows grouped into the tie blocks of one score (descending confidence)."""

    def __init__(self, c: np.ndarray, y: np.ndarray) -> None:
        b = _blocks(c, y)
        asc = b.value[::-1]
        nb = asc.shape[0]
        self.block_id = (nb - 1 - np.searchsorted(asc, c, side="left")).astype(np.intp)
        self.order = np.argsort(self.block_id, kind="stable")
        self.starts = np.concatenate(([0], np.cumsum(b.size)[:-1])).astype(np.intp)
        self.nb = nb
        self.value = b.value


def _harmonic(n: int) -> np.ndarray:
    """``H[k] = Σ_{i ≤ k} 1/i`` for ``k = 0..n`` (``H[0] = 0``)."""
    h = np.empty(n + 1)
    h[0] = 0.0
    np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.float64), out=h[1:])
    return h


def replicate_aurcs(confidence: Any, correct: Any, counts: np.ndarray, *,
                    convention: str = "lsfix", _index: _BlockIndex | None = None,
                    _h: np.ndarray | None = None) -> np.ndarray:
    """AURC of one score on each of ``r`` weighted replicates.

    Parameters
    ----------
    confidence, correct : array_like, shape (n,)
    counts : ndarray, shape (r, n)
        How often each row is drawn in each replicate (non-negative integers; every
        replicate draws ``n`` rows in all, as a bootstrap does, or any positive total).
    convention : str

    Returns
    -------
    ndarray, shape (r,)
        ``aurc`` of the replicate (the rows repeated by their counts), in ``convention``.

    Examples
    --------
    >>> c = np.array([.9, .8, .7, .6]); y = np.array([1, 0, 1, 0], bool)
    >>> w = np.array([[1, 1, 1, 1], [2, 0, 1, 1]], dtype=float)
    >>> np.round(replicate_aurcs(c, y, w), 12).tolist() == [
    ...     round(aurc(c, y), 12), round(aurc(np.repeat(c, [2, 0, 1, 1]),
    ...                                       np.repeat(y, [2, 0, 1, 1])), 12)]
    True
    """
    _check_convention(convention)
    if _index is None:
        c, y = _as_inputs(confidence, correct)
    else:  # internal: checked by the caller
        c, y = confidence, correct
    w = np.asarray(counts, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != c.shape[0]:
        raise InputError(f"counts must have shape (r, {c.shape[0]}), got {w.shape}")
    idx = _index or _BlockIndex(c, y)
    if convention == "fd-shifts":
        out = np.empty(w.shape[0])
        for i in range(w.shape[0]):
            m = np.bincount(idx.block_id, weights=w[i], minlength=idx.nb)
            f = np.bincount(idx.block_id[~y], weights=w[i][~y], minlength=idx.nb)
            b = blocks_from_counts(np.rint(m), np.rint(f), idx.value)
            out[i] = metrics_from_blocks(b, convention=convention).aurc if b.size.shape[0] \
                else math.nan
        return out
    ws = w[:, idx.order]
    wrong = (~y)[idx.order]
    if idx.nb == c.shape[0]:  # no ties: every row its own block
        m = ws
        f = ws * wrong
    else:
        m = np.add.reduceat(ws, idx.starts, axis=1)
        f = np.add.reduceat(ws * wrong, idx.starts, axis=1)
    n = m.sum(axis=1)
    cum_m = np.cumsum(m, axis=1)
    k1 = cum_m.astype(np.int64)  # exact: sums of small integers in float64
    k0 = k1 - m.astype(np.int64)  # rows before the block
    f_before = np.cumsum(f, axis=1)
    f_before -= f
    h = _h if _h is not None and _h.shape[0] > int(k1[:, -1].max(initial=0)) else _harmonic(
        int(k1[:, -1].max(initial=0)))
    dh = h[k1]
    dh -= h[k0]  # Σ_{j=1..m} 1/(K+j)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = f / m
    rate[m == 0] = 0.0
    # Σ_j (F + j·f/m)/(K + j) = F·ΔH + (f/m)·(m − K·ΔH)
    k0dh = k0 * dh
    np.subtract(m, k0dh, out=k0dh)
    k0dh *= rate
    f_before *= dh
    f_before += k0dh
    total = f_before.sum(axis=1)
    g = total / n
    if convention == "lsfix":
        return g
    q = f.sum(axis=1) / n
    if convention == "xia":
        return g - q / (2 * n)
    # torch-uncertainty: r_1 = E_1 = the error rate of the first non-empty block
    first = np.argmax(m > 0, axis=1)
    e1 = rate[np.arange(rate.shape[0]), first]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, (g - (e1 + q) / (2 * n)) / (1 - 1 / n), math.nan)


def select_better(
    candidates: Sequence[tuple[str, Any]],
    baseline: tuple[str, Any],
    correct: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    convention: str = "lsfix",
) -> Selection:
    """Keep the baseline score unless a candidate's AURC is lower beyond bootstrap noise,
    judged on simultaneous intervals (module docstring).

    Parameters
    ----------
    candidates : sequence of (name, confidence array of shape (n,))
    baseline : (name, confidence array of shape (n,))
    correct : array_like of bool, shape (n,)
    n_boot, seed, level, convention : the bootstrap's replicates, seed, the bounds' level
        (one-sided, simultaneous) and the AURC convention.

    Returns
    -------
    Selection
    """
    _check(n_boot, level)
    _check_convention(convention)
    if not candidates:
        raise InputError("no candidate scores to select from")
    base_name, base_conf = baseline
    cb, y = _as_inputs(base_conf, correct)
    n = cb.shape[0]
    confs = []
    for name, conf in candidates:
        c, _ = _as_inputs(conf, y)
        confs.append((str(name), c))
    names = [nm for nm, _ in confs]
    base_a = aurc(cb, y, convention)
    full = np.array([aurc(c, y, convention) for _, c in confs])
    delta = full - base_a
    h = _harmonic(n)
    indexes = [_BlockIndex(cb, y)] + [_BlockIndex(c, y) for _, c in confs]
    all_conf = [cb] + [c for _, c in confs]
    reps = np.full((len(all_conf), n_boot), np.nan)
    chunk: list[np.ndarray] = []
    at = 0

    def flush() -> None:
        nonlocal at
        if not chunk:
            return
        w = np.stack(chunk)
        for j, (c, ix) in enumerate(zip(all_conf, indexes, strict=True)):
            reps[j, at : at + w.shape[0]] = replicate_aurcs(c, y, w, convention=convention,
                                                            _index=ix, _h=h)
        at += w.shape[0]
        chunk.clear()

    for counts in _replicate_counts(n, None, n_boot, seed):
        assert counts is not None  # rows are drawn: never empty
        chunk.append(counts)
        if len(chunk) == REPLICATE_CHUNK:
            flush()
    flush()
    d_rep = reps[1:] - reps[0]  # (S, B)
    sd = d_rep.std(axis=1, ddof=1) if n_boot > 1 else np.zeros(len(confs))
    varies = sd > 0
    crit = crit_low = math.nan
    if varies.any():
        t = (d_rep[varies] - delta[varies, None]) / sd[varies, None]
        crit = float(np.quantile((-t).max(axis=0), level))
        crit_low = float(np.quantile(t.max(axis=0), level))
    up = np.where(varies, (0.0 if math.isnan(crit) else crit) * sd, 0.0)
    down = np.where(varies, (0.0 if math.isnan(crit_low) else crit_low) * sd, 0.0)
    cands = tuple(Candidate(nm, float(a), float(d), float(d - lo), float(d + hi), float(s))
                  for nm, a, d, lo, hi, s in zip(names, full, delta, down, up, sd, strict=True))
    better = [i for i, cd in enumerate(cands) if cd.better]
    choice = names[min(better, key=lambda i: (delta[i], i))] if better else None
    point = names[int(np.argmin(full))] if full.min() < base_a else None
    # the plain rule in every replicate (the baseline wins ties, as tune_pnorm's fallback)
    best_c = np.argmin(reps[1:], axis=0)
    won = reps[1:][best_c, np.arange(n_boot)] < reps[0]
    picks: dict[str | None, int] = {None: int((~won).sum())}
    for i, nm in enumerate(names):
        k = int((won & (best_c == i)).sum())
        if k:
            picks[nm] = k
    stability = picks.get(choice, 0) / n_boot
    return Selection(choice=choice, point_choice=point, baseline=str(base_name),
                     baseline_aurc=float(base_a), candidates=cands, critical=crit,
                     level=level, n_boot=n_boot, seed=seed, n=n,
                     n_errors=int(n - y.sum()), stability=float(stability), picks=picks)

"""A confidence threshold with a risk guarantee: SGR (Geifman & El-Yaniv, NeurIPS 2017).

Given labelled rows (confidence ``c_i``, correctness) drawn i.i.d. from the population a model
will meet, a target risk ``r*`` and a confidence ``1 − δ``, *selection with guaranteed risk*
chooses the threshold ``θ`` (accept a row when ``c ≥ θ``) with the largest coverage it can
certify: with probability at least ``1 − δ`` over the draw of the rows, the population's
selective risk ``P(wrong | c ≥ θ)`` is at most the reported ``bound ≤ r*``.

``binomial_upper_bound(e, m, δ)``
    The one-sided exact (Clopper-Pearson) upper confidence bound of a binomial proportion:
    the largest ``b`` with ``P(Bin(m, b) ≤ e) ≥ δ`` (SGR's ``B*(r̂, δ, S)``). Computed by
    bisection on ``b`` to float64 resolution; the upper end of the final bracket is widened
    by a relative ``1e-9`` (:data:`SAFETY`) so that rounding in the tail can never return a
    value below the exact root (tested against exact rational arithmetic); the binomial tail
    is the regularised incomplete beta
    ``P(Bin(m, b) ≤ e) = I_{1−b}(m − e, e + 1)``, evaluated by its continued fraction. ``e = m``
    gives 1; ``m = 0`` gives 1 (nothing is certified about an empty set).
``sgr(confidence, correct, risk=r*, delta=δ)``
    Algorithm 1 of the paper: ``k = ⌈log₂ m⌉`` tests, each at level ``δ / k``, placed by a
    binary search over the sorted confidences (the threshold of a test is the confidence of
    the row at the search's middle index; every row tied with it is accepted too). A test
    *certifies* its threshold when its bound is ``≤ r*``. The paper returns the last tested
    threshold; lsfix returns the **certified tested threshold of largest coverage** (any
    tested threshold is covered by the same union bound over the ``k`` tests), or, when no
    test certifies, rejects everything (threshold ``+inf``, coverage 0).
``sgr_select(candidates, correct, ...)``
    SGR for each of ``G`` candidate scores (e.g. MaxLogit-pNorm for every ``p`` of a grid,
    tuned on the same rows) at level ``δ / G`` each, and the candidate with the largest
    certified coverage: a union bound over the candidates keeps the guarantee at ``1 − δ``
    for the chosen one.

The binary search places its tests at data-dependent order statistics; the paper's union
bound over the ``k`` tests treats them as fixed. ``bench/mc_threshold.py`` measures the
realised violation rate by Monte Carlo against a population whose risk at every threshold is
known (see ``docs/threshold.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core.metrics import _as_inputs
from lsfix.core.special import betainc
from lsfix.errors import InputError, UsageError

#: Relative widening of every binomial bound (see :func:`binomial_upper_bound`).
SAFETY = 1e-9


def binomial_cdf(e: int, m: int, b: float) -> float:
    """``P(Bin(m, b) ≤ e)``."""
    if e < 0:
        return 0.0
    if e >= m:
        return 1.0
    if b <= 0.0:
        return 1.0
    if b >= 1.0:
        return 0.0
    return betainc(float(m - e), float(e + 1), 1.0 - b)


def _check_delta(delta: float) -> float:
    d = float(delta)
    if not (0.0 < d < 1.0):
        raise UsageError(f"delta must be in (0, 1), got {delta!r}")
    return d


def binomial_upper_bound(errors: int, m: int, delta: float) -> float:
    """Largest ``b`` with ``P(Bin(m, b) ≤ errors) ≥ delta`` (one-sided Clopper-Pearson).

    Examples
    --------
    >>> round(binomial_upper_bound(0, 100, 0.05), 10)   # 1 - 0.05 ** (1/100)
    0.0295130496
    """
    d = _check_delta(delta)
    e, n = int(errors), int(m)
    if n < 0 or not 0 <= e <= max(n, 0):
        raise UsageError(f"need 0 <= errors <= m, got errors={errors}, m={m}")
    if n == 0 or e == n:
        return 1.0
    lo, hi = 0.0, 1.0  # cdf(0) = 1 >= d, cdf(1) = 0 < d
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            # widened by a relative 1e-9: the tail's own rounding (~1e-13 relative, more for
            # m near 1e6 through lgamma) can never put the bound below the exact root
            return min(1.0, hi * (1.0 + SAFETY))
        if binomial_cdf(e, n, mid) >= d:
            lo = mid
        else:
            hi = mid


@dataclass(frozen=True)
class SGRTest:
    """One test of the binary search: accept ``c ≥ threshold``."""

    threshold: float
    n_accepted: int
    n_errors: int
    bound: float
    certified: bool


@dataclass(frozen=True)
class SGRResult:
    """A certified threshold (or a reject-everything result when none was certified).

    Attributes
    ----------
    threshold : float
        Accept a row when its confidence is ``≥ threshold``; ``+inf`` when nothing was
        certified (reject everything).
    coverage : float
        Fraction of the fit rows accepted at ``threshold`` (the certified coverage).
    risk : float
        Empirical selective risk of the accepted fit rows (NaN when none).
    bound : float
        Upper bound (at level ``delta_per_test``) on the population's selective risk at
        ``threshold``: ``≤ target_risk`` when ``certified``; 1 when nothing was certified.
    certified : bool
        False when no test certified a threshold (everything is rejected).
    """

    threshold: float
    coverage: float
    n: int
    n_accepted: int
    n_errors: int
    risk: float
    bound: float
    certified: bool
    target_risk: float
    delta: float
    delta_per_test: float
    tests: tuple[SGRTest, ...]


def _inputs(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    """Confidences (float64, finite) and correctness (bool), checked as every metric checks
    them (:func:`lsfix.core.metrics._as_inputs`)."""
    c, y = _as_inputs(confidence, correct)
    if not np.isfinite(c).all():
        raise InputError("confidences must be finite")
    return c, y


def n_tests(m: int) -> int:
    """``⌈log₂ m⌉`` (at least 1): how many tests SGR splits ``δ`` over."""
    return max(1, math.ceil(math.log2(m))) if m > 1 else 1


def sgr(confidence: Any, correct: Any, *, risk: float, delta: float) -> SGRResult:
    """SGR: the largest-coverage threshold certified to have selective risk ``≤ risk`` with
    probability ``≥ 1 − delta`` (see the module).

    Parameters
    ----------
    confidence : array-like, shape (m,)
        Higher = more confident (any monotone scale; the threshold is on this scale).
    correct : array-like of bool, shape (m,)
    risk : float
        Target selective risk ``r*`` in ``[0, 1)``.
    delta : float
        Allowed probability of failure, in ``(0, 1)``.
    """
    r = float(risk)
    if not (0.0 <= r < 1.0):
        raise UsageError(f"risk must be in [0, 1), got {risk!r}")
    d = _check_delta(delta)
    c, y = _inputs(confidence, correct)
    m = c.shape[0]
    k = n_tests(m)
    dk = d / k
    if m == 0:
        return SGRResult(math.inf, 0.0, 0, 0, 0, math.nan, 1.0, False, r, d, dk, ())
    order = np.argsort(c, kind="stable")
    cs = c[order]
    wrong_suffix = np.concatenate((np.cumsum((~y[order])[::-1])[::-1], [0]))
    tests: list[SGRTest] = []
    best: SGRTest | None = None
    lo, hi = 0, m - 1
    while len(tests) < k and lo <= hi:
        mid = (lo + hi) // 2
        theta = float(cs[mid])
        first = int(np.searchsorted(cs, theta, side="left"))  # ties with theta are accepted
        acc = m - first
        err = int(wrong_suffix[first])
        b = binomial_upper_bound(err, acc, dk)
        ok = b <= r
        t = SGRTest(theta, acc, err, b, ok)
        tests.append(t)
        if ok:
            if best is None or t.n_accepted > best.n_accepted:
                best = t
            hi = first - 1  # try more coverage: a lower threshold
        else:
            # a higher threshold: past the whole tie block (every index in it is one threshold)
            lo = int(np.searchsorted(cs, theta, side="right"))
    if best is None:
        return SGRResult(math.inf, 0.0, m, 0, 0, math.nan, 1.0, False, r, d, dk, tuple(tests))
    return SGRResult(best.threshold, best.n_accepted / m, m, best.n_accepted, best.n_errors,
                     best.n_errors / best.n_accepted, best.bound, True, r, d, dk, tuple(tests))


@dataclass(frozen=True)
class SGRSelection:
    """:func:`sgr_select`'s answer: the chosen candidate and every candidate's result."""

    chosen: str | None
    result: SGRResult
    results: tuple[tuple[str, SGRResult], ...]
    delta: float
    delta_per_candidate: float


def sgr_select(candidates: Mapping[str, Any] | Sequence[tuple[str, Any]], correct: Any, *,
               risk: float, delta: float) -> SGRSelection:
    """SGR on each of ``G`` candidate scores at ``delta / G`` (a union bound), and the one
    with the largest certified coverage (ties: the first in order). ``chosen`` is None when
    no candidate certifies anything; ``result`` is then the first candidate's (reject all)."""
    d = _check_delta(delta)
    items = list(candidates.items()) if isinstance(candidates, Mapping) else list(candidates)
    if not items:
        raise UsageError("no candidate scores")
    g = len(items)
    results = tuple((name, sgr(conf, correct, risk=risk, delta=d / g)) for name, conf in items)
    best_name: str | None = None
    best = results[0][1]
    for name, res in results:
        if res.certified and (best_name is None or res.n_accepted > best.n_accepted):
            best_name, best = name, res
    return SGRSelection(best_name, best, results, d, d / g)

"""Selective-classification metrics on the tie-expected risk-coverage curve.

Notation (``docs/metrics.md`` has the long form and worked examples): ``n`` samples with
confidence ``c_i`` (higher = more confident) and error indicator ``e_i``; ``q`` = overall error
rate. Sort by confidence, most confident first; ``E_k`` = errors among the top ``k``.

**Ties.** Samples with equal confidence form a *block* whose internal order is arbitrary; lsfix
uses the expected ``E_k`` over all orderings of the block, which rises linearly across it: for a
block of ``m`` samples holding ``f`` errors after ``N`` samples holding ``F`` errors,
``E_{N+j} = F + j f / m`` (``j = 1..m``). Every metric here is therefore invariant to input
order, and depends on the data only through the per-block totals ``(m_b, f_b)`` in confidence
order (:class:`Blocks`). No stable argsort is needed: a plain sort of the confidences plus a
sorted copy of the wrong samples' confidences gives the blocks.

**Conventions** (``convention=``), each computed on the tie-expected curve, ``r_k = E_k / k``:

``lsfix`` (default)
    ``G = (1/n) Σ_{k=1..n} r_k`` — mean selective risk over all ``n`` coverage levels.
``xia``
    Trapezoid over coverage ``k/n``, ``k = 0..n``, with ``r_0 = 0`` (Xia et al. and Cattelan &
    Silva's code): ``G − q/(2n)``. Printed ×100 as "%AURC" in the paper.
``fd-shifts``
    One point per tie block at its end ``(N_b/n, F_b/N_b)``, the first block's risk held flat
    back to coverage 0, trapezoid. Without ties: ``G + (r_1 − q)/(2n)``.
``torch-uncertainty``
    Trapezoid over ``k = 1..n`` divided by the covered width ``1 − 1/n``:
    ``(G − (r_1 + q)/(2n)) / (1 − 1/n)``; undefined for ``n = 1``.

**Oracle AURC**: the same convention applied to the best possible confidence, ``c = 1`` for
correct and ``0`` for wrong samples ("all correct before all wrong"), so **E-AURC = AURC −
oracle ≥ 0** (rounding below 1e-15 is clipped to 0) — except under ``fd-shifts``, whose oracle
is fd-shifts' own analytic one, ``q + (1 − q)·ln(1 − q + ε)`` (ε = float64 machine epsilon, as
fd-shifts writes it); that oracle lies above what a finite ranking can reach, so fd-shifts'
E-AURC may be negative for a near-ideal ranking, and lsfix reports it unclipped.
**NAURC** = E-AURC / (q − oracle) in every convention: 0 is the ideal ranking, 1 a constant
score (except under ``xia``, whose reference ``q`` is Cattelan & Silva's ``N_AURC`` denominator
while a constant score's ``xia`` AURC is ``q − q/(2n)``); undefined when ``q ∈ {0, 1}``.

**AUGRC** (Traub et al. 2024): generalised risk ``E_k/n`` at coverage ``k/n``, trapezoid from
``(0, 0)``: ``(1/n) Σ_k E_k/n − q/(2n)``. Identity:
``AUGRC = (1 − AUROC_f)·acc·(1 − acc) + ½(1 − acc)²``. Under ``torch-uncertainty`` it is that
library's form, the trapezoid over ``k = 1..n`` divided by the covered width like its AURC:
``(AUGRC − E_1/(2n²)) / (1 − 1/n)`` (undefined for ``n = 1``).

**AUROC_f** = P(c of a correct sample > c of a wrong one) + ½ P(equal), computed exactly from
integer block counts. **FPR@95TPR**: positive = correct, thresholds at distinct confidences
(``c ≥ t`` accepted; a tie block cannot be split), the lowest FPR among thresholds with
TPR ≥ 0.95 (compared in integers: ``100·TP ≥ 95·n_correct``). Under ``fd-shifts`` it is
fd-shifts' reading: the lowest FPR among the ROC points scikit-learn's ``roc_curve`` keeps
(a point between two equal steps is dropped) with TPR ≥ 0.9495 (``10000·TP ≥ 9495·n_correct``).
Both undefined when all samples are correct or all wrong.

**risk@coverage c** (``0 < c ≤ 1``): ``k = ⌈c·n⌉`` computed exactly from the decimal ``c`` as
written (``repr``), risk ``E_k/k``; the achieved coverage ``k/n`` is reported.
**coverage@risk ρ**: the largest ``k/n`` with ``E_k/k ≤ ρ`` (compared exactly in rationals at the
boundary); ``0`` (risk undefined) when no ``k`` qualifies.

All arithmetic is float64 (integer counts in int64); every function validates its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from lsfix.core.blockmetrics import (
    Summary,
    as_source,
    expected_errors,
    oracle_tail_sum,
    summarize,
    totals,
)
from lsfix.errors import InputError, UsageError

Convention = Literal["lsfix", "xia", "fd-shifts", "torch-uncertainty"]
CONVENTIONS: tuple[str, ...] = ("lsfix", "xia", "fd-shifts", "torch-uncertainty")


# --------------------------------------------------------------------------------------------
# input handling and tie blocks


def _as_inputs(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidence)
    y = np.asarray(correct)
    if c.ndim != 1:
        raise InputError(f"confidence must be 1-D, got shape {c.shape}")
    if y.shape != c.shape:
        raise InputError(f"correct has shape {y.shape}, confidence has shape {c.shape}")
    if c.shape[0] == 0:
        raise InputError("no samples (n = 0)")
    if c.dtype.kind not in "fiub":
        raise InputError(f"confidence must be numeric, got {c.dtype}")
    c = c.astype(np.float64, copy=False)
    if y.dtype.kind == "b":
        pass
    elif y.dtype.kind in "iuf":
        if not np.isin(y, (0, 1)).all():
            raise InputError("correct must hold only 0/1 (or booleans)")
        y = y.astype(bool)
    else:
        raise InputError(f"correct must be boolean, got {y.dtype}")
    nan = np.isnan(c)
    if nan.any():
        raise InputError(
            f"{int(nan.sum())} NaN confidence value(s); first at index {int(np.argmax(nan))}"
        )
    return c, y


@dataclass(frozen=True)
class Blocks:
    """Tie blocks in descending confidence order.

    Attributes
    ----------
    size : ndarray of int64, shape (B,)
        Samples per block ``m_b`` (>= 1).
    errors : ndarray of int64, shape (B,)
        Wrong predictions per block ``f_b``.
    value : ndarray of float64, shape (B,)
        The confidence shared by the block (descending).
    """

    size: np.ndarray
    errors: np.ndarray
    value: np.ndarray

    @property
    def n(self) -> int:
        return int(self.size.sum())

    @property
    def n_errors(self) -> int:
        return int(self.errors.sum())

    @property
    def n_tied(self) -> int:
        """Samples that share their confidence with at least one other sample."""
        s = self.size
        return int(s[s > 1].sum())


def tie_blocks(confidence: Any, correct: Any) -> Blocks:
    """Group samples into tie blocks of equal confidence, most confident first.

    Parameters
    ----------
    confidence : array_like of float, shape (n,)
        Higher = more confident. NaN is refused; ``-0.0 == 0.0`` share a block.
    correct : array_like of bool, shape (n,)

    Returns
    -------
    Blocks

    Examples
    --------
    >>> b = tie_blocks([0.5, 0.5, 0.5, 0.2], [True, False, True, False])
    >>> b.size.tolist(), b.errors.tolist()
    ([3, 1], [1, 1])
    """
    c, y = _as_inputs(confidence, correct)
    return _blocks(c, y)


def _blocks(c: np.ndarray, y: np.ndarray) -> Blocks:
    s = np.sort(c)  # ascending, plain (unstable) sort: block totals do not need an order
    n = s.shape[0]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    if new.all():  # no ties: every sample is its own block
        values = s
        sizes = np.ones(n, dtype=np.int64)
    else:
        starts = np.flatnonzero(new)
        values = s[starts]
        sizes = np.empty(starts.shape[0], dtype=np.int64)
        np.subtract(starts[1:], starts[:-1], out=sizes[:-1])
        sizes[-1] = n - starts[-1]
    del new
    # each wrong sample's block: its value is in `values`, so a left search finds it exactly
    wrong_block = np.searchsorted(values, np.sort(c[~y]), side="left")
    errors = np.bincount(wrong_block, minlength=values.shape[0]).astype(np.int64, copy=False)
    return Blocks(size=sizes[::-1], errors=errors[::-1], value=values[::-1])


def blocks_from_counts(size: Any, errors: Any, value: Any | None = None) -> Blocks:
    """Blocks from per-block totals (descending confidence); empty blocks are dropped."""
    m = np.asarray(size, dtype=np.int64)
    f = np.asarray(errors, dtype=np.int64)
    keep = m > 0
    v = np.arange(m.shape[0], 0, -1, dtype=np.float64) if value is None else np.asarray(value)
    return Blocks(size=m[keep], errors=f[keep], value=v[keep].astype(np.float64))


# --------------------------------------------------------------------------------------------
# the tie-expected curve


@dataclass(frozen=True)
class RCCurve:
    """Tie-expected risk-coverage curve, ``k = 1..n``.

    Attributes
    ----------
    coverage : ndarray of float64, shape (n,)
        ``k / n``.
    risk : ndarray of float64, shape (n,)
        Selective risk ``E_k / k`` (tie-expected).
    errors : ndarray of float64, shape (n,)
        ``E_k`` (tie-expected; fractional inside tie blocks).
    block_end : ndarray of int64, shape (B,)
        ``k`` at the end of each tie block (where every convention agrees on the curve).
    """

    coverage: np.ndarray
    risk: np.ndarray
    errors: np.ndarray
    block_end: np.ndarray


def _expected_errors(b: Blocks) -> np.ndarray:
    """``E_k`` for ``k = 1..n`` (float64), linear inside each tie block
    (:class:`lsfix.core.blockmetrics.SampleStream`)."""
    n = b.n
    return expected_errors(as_source(b), n, b.size.shape[0] != n)


def rc_curve(confidence: Any, correct: Any) -> RCCurve:
    """The tie-expected risk-coverage curve (see module docstring for the tie rule).

    Examples
    --------
    >>> rc_curve([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]).risk.tolist()
    [0.0, 0.0, 0.3333333333333333, 0.5]
    """
    return curve_from_blocks(tie_blocks(confidence, correct))


def curve_from_blocks(b: Blocks) -> RCCurve:
    """:class:`RCCurve` from tie blocks."""
    n = b.n
    e = _expected_errors(b)
    k = np.arange(1, n + 1, dtype=np.float64)
    return RCCurve(coverage=k / n, risk=e / k, errors=e, block_end=np.cumsum(b.size))


# --------------------------------------------------------------------------------------------
# AURC conventions


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise UsageError(
            f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}"
        )


def _aurc_from(sm: Summary, convention: str) -> float:
    """AURC in ``convention`` from the block totals of one score."""
    n = sm.n
    q = float(sm.n_errors) / n
    if convention == "fd-shifts":
        # flat from coverage 0 to the first block end, then trapezoids between block ends
        return sm.fd_area
    g = sm.sum_risk / n
    if convention == "lsfix":
        return g
    if convention == "xia":
        return g - q / (2 * n)
    if convention == "torch-uncertainty":
        if n == 1:
            return math.nan
        return (g - (sm.e1 + q) / (2 * n)) / (1 - 1 / n)  # r_1 = E_1 / 1
    raise AssertionError(convention)


def _oracle_aurc(n: int, n_err: int, convention: str) -> float:
    """AURC of the ideal confidence (1 correct / 0 wrong), computed on the wrong tail only.

    Under ``fd-shifts``: fd-shifts' analytic oracle ``q + (1 − q)·ln(1 − q + ε)``.
    """
    n_ok = n - n_err
    q = n_err / n
    if convention == "fd-shifts":
        return q + (1.0 - q) * math.log(1.0 - q + _EPS)
    g = oracle_tail_sum(n_ok, n_err) / n  # r_k = j / (n_ok + j) for k = n_ok + j; 0 before
    if convention == "lsfix":
        return g
    if convention == "xia":
        return g - q / (2 * n)
    if n == 1:
        return math.nan
    r1 = 1.0 if n_ok == 0 else 0.0
    return (g - (r1 + q) / (2 * n)) / (1 - 1 / n)


_EPS = float(np.finfo(np.float64).eps)


def aurc(confidence: Any, correct: Any, convention: Convention = "lsfix") -> float:
    """Area under the tie-expected risk-coverage curve, in the named convention.

    Parameters
    ----------
    confidence : array_like of float, shape (n,)
    correct : array_like of bool, shape (n,)
    convention : {"lsfix", "xia", "fd-shifts", "torch-uncertainty"}

    Returns
    -------
    float
        In [0, 1]; NaN for ``torch-uncertainty`` with ``n = 1``.

    Examples
    --------
    >>> round(aurc([.9, .8, .7, .6, .8], [1, 1, 0, 0, 1]), 12)
    0.13
    >>> round(aurc([.9, .8, .7, .6, .8], [1, 1, 0, 0, 1], "xia"), 12)
    0.09
    """
    _check_convention(convention)
    return _aurc_from(summarize(as_source(tie_blocks(confidence, correct))), convention)


# --------------------------------------------------------------------------------------------
# the full metric set


@dataclass(frozen=True)
class CoveragePoint:
    """risk@coverage: the requested ``target`` coverage, ``k = ⌈target·n⌉``, achieved
    ``coverage = k/n`` and tie-expected ``risk = E_k/k``."""

    target: float
    k: int
    coverage: float
    risk: float


@dataclass(frozen=True)
class RiskPoint:
    """coverage@risk: the requested ``target`` risk, the largest ``k`` with ``E_k/k ≤ target``,
    ``coverage = k/n`` (0 when none) and the risk there (NaN when ``k = 0``)."""

    target: float
    k: int
    coverage: float
    risk: float


@dataclass(frozen=True)
class Metrics:
    """Every selective-classification metric of one confidence score (see module docstring).

    Undefined values are NaN and listed in ``undefined`` as ``(name, reason)``.
    """

    n: int
    n_errors: int
    accuracy: float
    error_rate: float
    n_tied: int
    convention: str
    aurc: float
    oracle_aurc: float
    eaurc: float
    naurc: float
    augrc: float
    auroc: float
    fpr_at_95tpr: float
    risk_at_coverage: tuple[CoveragePoint, ...] = ()
    coverage_at_risk: tuple[RiskPoint, ...] = ()
    undefined: tuple[tuple[str, str], ...] = field(default=())
    #: values of the metrics added with :func:`register_metric`, ``(name, value)``
    extra: tuple[tuple[str, float], ...] = field(default=())

    def reason(self, name: str) -> str | None:
        """Why metric ``name`` is undefined, or ``None`` when it is defined."""
        return dict(self.undefined).get(name)

    def value(self, name: str) -> float:
        """Metric ``name``: a field, or a metric added with :func:`register_metric`."""
        extra = dict(self.extra)
        if name in extra:
            return extra[name]
        if name in METRIC_FIELDS:
            return float(getattr(self, name))
        raise UsageError(f"unknown metric {name!r}; choose one of "
                         f"{', '.join((*METRIC_FIELDS, *METRICS))}")


#: The built-in metrics of :class:`Metrics` that are one number of a score (rates except
#: ``naurc``), in the order reports list them.
METRIC_FIELDS: tuple[str, ...] = (
    "aurc", "oracle_aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr", "accuracy",
)


@dataclass(frozen=True)
class MetricDef:
    """A metric added with :func:`register_metric`."""

    name: str
    compute: Callable[[Any, str], float]
    label: str
    rate: bool
    summary: str


#: Metrics added to every evaluation, in registration order (none are built in: the
#: built-in ones are :data:`METRIC_FIELDS`).
METRICS: dict[str, MetricDef] = {}


def register_metric(name: str, *, label: str, summary: str, rate: bool = True
                    ) -> Callable[[Callable[[Any, str], float]], Callable[[Any, str], float]]:
    """Add a metric computed from the streaming totals of the tie blocks: ``fn(summary,
    convention) -> float`` where ``summary`` is a :class:`lsfix.core.blockmetrics.Summary`
    (``n``, ``n_errors``, ``sum_errors``, ``errors_at``, ``auroc``, ...; the same totals the
    in-memory, bounded and Dask paths merge exactly). From here it reaches every evaluation,
    JSON, tables, the bootstrap, the paired bootstrap and ``--fail-if``. ``rate``: a fraction
    (×100 under ``--percent``); ``label``: its column heading; NaN means undefined.
    """
    if not name.isidentifier() or name in METRICS or name in METRIC_FIELDS:
        raise ValueError(f"metric name {name!r} is taken or not an identifier")

    def deco(fn: Callable[[Any, str], float]) -> Callable[[Any, str], float]:
        METRICS[name] = MetricDef(name, fn, label, rate, " ".join(summary.split()))
        return fn

    return deco


def _exact_fraction(x: float, what: str) -> Fraction:
    if not math.isfinite(x):
        raise UsageError(f"{what} must be a finite number, got {x!r}")
    return Fraction(repr(float(x)))


def coverage_k(target: float, n: int) -> int:
    """``⌈target·n⌉`` computed exactly from the decimal ``target`` (``0 < target ≤ 1``)."""
    t = _exact_fraction(target, "coverage")
    if not (0 < t <= 1):
        raise UsageError(f"coverage must be in (0, 1], got {target!r}")
    return max(1, math.ceil(t * n))


def evaluate(
    confidence: Any,
    correct: Any,
    *,
    convention: Convention = "lsfix",
    coverages: tuple[float, ...] | list[float] = (),
    risks: tuple[float, ...] | list[float] = (),
) -> Metrics:
    """Compute every selective-classification metric for one confidence score.

    Parameters
    ----------
    confidence : array_like of float, shape (n,)
        Higher = more confident. Ties are resolved by expectation (module docstring).
    correct : array_like of bool, shape (n,)
        Whether each prediction is right.
    convention : {"lsfix", "xia", "fd-shifts", "torch-uncertainty"}
        AURC convention for ``aurc``, ``oracle_aurc``, ``eaurc`` and ``naurc``.
    coverages, risks : sequence of float
        Targets for risk@coverage and coverage@risk.

    Returns
    -------
    Metrics

    Examples
    --------
    >>> m = evaluate([.5, .5, .5, .2], [1, 0, 1, 0])
    >>> round(m.aurc, 12), round(m.augrc, 12), m.auroc, m.n_tied
    (0.375, 0.1875, 0.75, 3)
    """
    _check_convention(convention)
    c, y = _as_inputs(confidence, correct)
    b = _blocks(c, y)
    del c, y
    return metrics_from_summary(_summary(b, coverages, risks), convention, coverages, risks)


def evaluate_conventions(
    confidence: Any,
    correct: Any,
    *,
    conventions: tuple[str, ...] | list[str] = CONVENTIONS,
    coverages: tuple[float, ...] | list[float] = (),
    risks: tuple[float, ...] | list[float] = (),
) -> dict[str, Metrics]:
    """:func:`evaluate` in several conventions at once, sorting and summarising once.

    Returns
    -------
    dict
        Convention name -> :class:`Metrics` (identical to separate :func:`evaluate` calls).
    """
    for cv in conventions:
        _check_convention(cv)
    c, y = _as_inputs(confidence, correct)
    b = _blocks(c, y)
    del c, y
    sm = _summary(b, coverages, risks)
    return {cv: metrics_from_summary(sm, cv, coverages, risks) for cv in conventions}


def _summary(blocks: Any, coverages: Any, risks: Any) -> Summary:
    """The block totals of ``blocks`` (a :class:`Blocks` or any block source) that the
    metrics at these coverages and risks need (:func:`lsfix.core.blockmetrics.summarize`)."""
    src = as_source(blocks)
    n = totals(src)[0] if not isinstance(blocks, Blocks) else blocks.n
    ks = tuple(coverage_k(float(t), n) for t in coverages)
    targets = []
    for t in risks:
        rho = _exact_fraction(t, "risk")
        if rho < 0:
            raise UsageError(f"risk must be >= 0, got {t!r}")
        targets.append((float(t), rho))
    return summarize(src, coverage_ks=ks, risk_targets=tuple(targets))


def metrics_from_blocks(
    b: Any,
    *,
    convention: str = "lsfix",
    coverages: tuple[float, ...] | list[float] = (),
    risks: tuple[float, ...] | list[float] = (),
) -> Metrics:
    """:func:`evaluate` on precomputed tie blocks: a :class:`Blocks`, or any block source
    (``windows()`` of ``(size, errors)``, e.g. :class:`lsfix.core.spill.BlockFile` on disk),
    in memory bounded by a window of blocks (:mod:`lsfix.core.blockmetrics`)."""
    _check_convention(convention)
    return metrics_from_summary(_summary(b, coverages, risks), convention, coverages, risks)


def metrics_from_summary(
    sm: Summary,
    convention: str,
    coverages: tuple[float, ...] | list[float] = (),
    risks: tuple[float, ...] | list[float] = (),
) -> Metrics:
    """:class:`Metrics` in ``convention`` from a :class:`~lsfix.core.blockmetrics.Summary`
    made for these ``coverages`` and ``risks``."""
    _check_convention(convention)
    n = sm.n
    n_err = sm.n_errors
    q = n_err / n
    undefined: list[tuple[str, str]] = []

    value = _aurc_from(sm, convention)
    oracle = _oracle_aurc(n, n_err, convention)
    if math.isnan(value):
        why = f"the {convention} convention needs n >= 2"
        eaurc = naurc = math.nan
        undefined += [("aurc", why), ("oracle_aurc", why), ("eaurc", why), ("naurc", why)]
    else:
        # fd-shifts' analytic oracle may exceed an achievable AURC: its E-AURC stays signed
        eaurc = value - oracle if convention == "fd-shifts" else max(0.0, value - oracle)
        if n_err in (0, n):
            naurc = math.nan
            undefined.append(("naurc", "all predictions correct" if n_err == 0
                              else "all predictions wrong"))
        else:
            naurc = eaurc / (q - oracle)
    augrc = sm.sum_errors / (n * n) - q / (2 * n)
    if convention == "torch-uncertainty":
        if n == 1:
            augrc = math.nan
            undefined.append(("augrc", "the torch-uncertainty convention needs n >= 2"))
        else:
            augrc = (augrc - sm.e1 / (2 * n * n)) / (1 - 1 / n)
    auroc, fpr = sm.auroc, (sm.fpr_fd if convention == "fd-shifts" else sm.fpr)
    if math.isnan(auroc):
        why = "all predictions correct" if n_err == 0 else "all predictions wrong"
        undefined += [("auroc", why), ("fpr_at_95tpr", why)]

    cov_pts = []
    for t in coverages:
        kk = coverage_k(float(t), n)
        cov_pts.append(CoveragePoint(target=float(t), k=kk, coverage=kk / n,
                                     risk=sm.errors_at[kk] / kk))
    risk_pts = []
    for t in risks:
        best, r_best = sm.risk_points[float(t)]
        if best == 0:
            risk_pts.append(RiskPoint(target=float(t), k=0, coverage=0.0, risk=math.nan))
        else:
            risk_pts.append(RiskPoint(target=float(t), k=best, coverage=best / n, risk=r_best))
    return Metrics(
        n=n,
        n_errors=n_err,
        accuracy=1.0 - q,
        error_rate=q,
        n_tied=sm.n_tied,
        convention=convention,
        aurc=value,
        oracle_aurc=oracle,
        eaurc=eaurc,
        naurc=naurc,
        augrc=augrc,
        auroc=auroc,
        fpr_at_95tpr=fpr,
        risk_at_coverage=tuple(cov_pts),
        coverage_at_risk=tuple(risk_pts),
        undefined=tuple(undefined),
        extra=tuple((name, float(d.compute(sm, convention))) for name, d in METRICS.items()),
    )

"""Bootstrap percentile intervals for every metric, single and paired.

A replicate resamples the ``n`` samples with replacement (``rng.integers(0, n, n)`` from
``numpy.random.default_rng(seed)``). Because every metric depends only on per-tie-block totals,
a replicate is evaluated from bincounts of the resampled samples' block ids — no re-sorting.
The interval is the ``(1 − level)/2`` and ``(1 + level)/2`` percentiles (numpy's default
linear interpolation) of the replicates where the metric is defined; ``n_valid`` says how many
that was (e.g. AUROC is undefined in a replicate holding only correct samples).

Paired: two scores on the **same** samples (two models, or two scores of one model) are
resampled with the same indices; the statistic is the difference ``B − A``. The two-sided
bootstrap p-value is ``min(1, 2·(min(#(d ≤ 0), #(d ≥ 0)) + 1) / (n_valid + 1))`` over the
valid replicates ``d`` (the +1 keeps it above 0: the smallest reportable value is
``2 / (n_valid + 1)``).

Cluster (image-level) bootstrap, single and paired: with one cluster id per row (the image of
each pixel of a dense file) a replicate draws the clusters instead of the rows and counts
every row of a drawn cluster as often as its cluster was drawn; paired, both scores get the
same drawn clusters. One loop (``_replicate_counts``) draws for all of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core.metrics import (
    METRIC_FIELDS,
    METRICS,
    Blocks,
    _as_inputs,
    _blocks,
    _check_convention,
    blocks_from_counts,
    metrics_from_blocks,
)
from lsfix.errors import InputError, UsageError

#: Metrics that get an interval.
BOOTSTRAP_METRICS: tuple[str, ...] = METRIC_FIELDS


def bootstrap_metrics() -> tuple[str, ...]:
    """The built-in metrics and those added with :func:`lsfix.core.metrics.register_metric`."""
    return (*METRIC_FIELDS, *METRICS)


@dataclass(frozen=True)
class Interval:
    """Percentile bootstrap interval of one metric.

    ``estimate`` is the metric on the full data; ``low``/``high`` are NaN when fewer than two
    replicates were valid.
    """

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int
    n_valid: int


@dataclass(frozen=True)
class PairedDifference:
    """Paired bootstrap of ``metric(B) − metric(A)`` on the same samples."""

    metric: str
    estimate: float
    low: float
    high: float
    p_value: float
    level: float
    n_boot: int
    n_valid: int


def _check(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise UsageError(f"bootstrap replicates must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise UsageError(f"confidence level must be in (0, 1), got {level}")


class _Resampler:
    """Per-sample block ids so a replicate's blocks are two bincounts."""

    def __init__(self, c: np.ndarray, y: np.ndarray) -> None:
        self.blocks: Blocks = _blocks(c, y)
        asc = self.blocks.value[::-1]
        nb = asc.shape[0]
        self.block_id = (nb - 1 - np.searchsorted(asc, c, side="left")).astype(np.intp)
        self.wrong = ~y
        self.nb = nb

    def replicate(self, counts: np.ndarray) -> Blocks:
        m = np.bincount(self.block_id, weights=counts, minlength=self.nb)
        f = np.bincount(self.block_id[self.wrong], weights=counts[self.wrong], minlength=self.nb)
        return blocks_from_counts(np.rint(m), np.rint(f), self.blocks.value)


def _percentiles(vals: np.ndarray, level: float) -> tuple[float, float, int]:
    ok = vals[~np.isnan(vals)]
    if ok.shape[0] < 2:
        return math.nan, math.nan, int(ok.shape[0])
    lo, hi = np.percentile(ok, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi), int(ok.shape[0])


def bootstrap_ci(
    confidence: Any,
    correct: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    convention: str = "lsfix",
    metrics: tuple[str, ...] | None = None,
    coverages: tuple[float, ...] = (),
    risks: tuple[float, ...] = (),
) -> dict[str, Interval]:
    """Percentile bootstrap intervals for ``metrics`` of one score.

    ``coverages``/``risks`` add intervals for risk@coverage (key ``risk@C``, the selective
    risk at coverage C) and coverage@risk (key ``coverage@R``), keyed as in the tables; a
    replicate where a point is undefined (nothing accepted) is left out of its percentiles.

    Returns
    -------
    dict
        Metric name -> :class:`Interval`.
    """
    _check(n_boot, level)
    _check_convention(convention)
    c, y = _as_inputs(confidence, correct)
    return _resampled_intervals(c, y, None, n_boot=n_boot, seed=seed, level=level,
                                convention=convention, metrics=metrics, coverages=coverages,
                                risks=risks)


def _replicate_counts(n: int, clusters: np.ndarray | None, n_boot: int, seed: int
                      ) -> Iterator[np.ndarray | None]:
    """The one resampling loop of this module: per replicate, how often each of the ``n``
    rows was drawn (float64), or ``None`` when only empty clusters were drawn.

    ``clusters=None`` draws rows (``rng.integers(0, n, n)``); cluster ids ``0..G-1`` per row
    draw clusters (``rng.integers(0, G, G)``, ``G`` = largest id + 1) and count every row as
    often as its cluster. Single, cluster and paired bootstraps all use it, so a paired
    replicate applies the same draw to both scores."""
    n_draw = n if clusters is None else (int(clusters.max()) + 1 if clusters.shape[0] else 0)
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        drawn = np.bincount(rng.integers(0, n_draw, n_draw), minlength=n_draw)
        counts = (drawn if clusters is None else drawn[clusters]).astype(np.float64)
        yield counts if counts.any() else None


def _check_clusters(clusters: Any, n: int) -> np.ndarray:
    """Cluster ids as ``intp``: non-negative integers, one per row."""
    g = np.asarray(clusters)
    if g.shape != (n,) or g.dtype.kind not in "iu" or (g.shape[0] and int(g.min()) < 0):
        raise InputError(f"clusters must be non-negative integers of shape ({n},), got "
                         f"{g.dtype} {g.shape}")
    return g.astype(np.intp, copy=False)


def _resampled_intervals(c: np.ndarray, y: np.ndarray, clusters: np.ndarray | None, *,
                         n_boot: int, seed: int, level: float, convention: str,
                         metrics: tuple[str, ...] | None, coverages: tuple[float, ...],
                         risks: tuple[float, ...]) -> dict[str, Interval]:
    """The percentile bootstrap of :func:`bootstrap_ci` (``clusters=None``: rows are drawn)
    and :func:`cluster_bootstrap_ci` (cluster ids ``0..G-1`` per row: clusters are drawn,
    each row counted as often as its cluster). Both draw ``rng.integers(0, G, G)`` per
    replicate, so ``clusters = arange(n)`` gives exactly the row bootstrap."""
    metrics = bootstrap_metrics() if metrics is None else tuple(metrics)
    rs = _Resampler(c, y)
    kw = {"convention": convention, "coverages": tuple(coverages), "risks": tuple(risks)}
    full = metrics_from_blocks(rs.blocks, **kw)
    names = [*metrics, *(f"risk@{v:g}" for v in coverages),
             *(f"coverage@{v:g}" for v in risks)]
    reps = np.full((len(names), n_boot), np.nan)
    for i, counts in enumerate(_replicate_counts(c.shape[0], clusters, n_boot, seed)):
        if counts is None:  # only empty clusters drawn: undefined, left out
            continue
        reps[:, i] = _values(metrics_from_blocks(rs.replicate(counts), **kw), metrics)
    out = {}
    for j, (name, est) in enumerate(zip(names, _values(full, metrics), strict=True)):
        lo, hi, valid = _percentiles(reps[j], level)
        out[name] = Interval(float(est), lo, hi, level, n_boot, valid)
    return out


def _values(m: Any, metrics: tuple[str, ...]) -> list[float]:
    """``metrics`` of ``m``, then its risk@coverage risks and coverage@risk coverages."""
    def num(x: Any) -> float:
        return math.nan if x is None else float(x)

    return [*(float(m.value(name)) for name in metrics),
            *(num(p.risk) for p in m.risk_at_coverage),
            *(num(p.coverage) for p in m.coverage_at_risk)]


def paired_bootstrap(
    conf_a: Any,
    correct_a: Any,
    conf_b: Any,
    correct_b: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    metric: str = "aurc",
    convention: str = "lsfix",
    clusters: Any = None,
) -> PairedDifference:
    """Paired bootstrap of ``metric(B) − metric(A)``, resampling samples jointly.

    Both inputs must describe the same ``n`` samples in the same order. ``clusters`` (one id
    in ``0..G-1`` per row, e.g. the image of each pixel) makes it a paired **cluster**
    bootstrap: a replicate draws ``G`` clusters with replacement and both scores get the same
    drawn clusters (:func:`cluster_bootstrap_ci`'s draws); with ``clusters = arange(n)`` it is
    exactly the row version. A replicate that draws only empty clusters is left out.
    """
    _check(n_boot, level)
    _check_convention(convention)
    if metric not in bootstrap_metrics():
        raise UsageError(f"unknown metric {metric!r}; choose one of "
                         f"{', '.join(bootstrap_metrics())}")
    ca, ya = _as_inputs(conf_a, correct_a)
    cb, yb = _as_inputs(conf_b, correct_b)
    if ca.shape != cb.shape:
        raise InputError(f"paired inputs differ in length: {ca.shape[0]} vs {cb.shape[0]}")
    ra, rb = _Resampler(ca, ya), _Resampler(cb, yb)
    est = (metrics_from_blocks(rb.blocks, convention=convention).value(metric)
           - metrics_from_blocks(ra.blocks, convention=convention).value(metric))
    g = None if clusters is None else _check_clusters(clusters, ca.shape[0])
    diffs = np.full(n_boot, np.nan)
    for i, counts in enumerate(_replicate_counts(ca.shape[0], g, n_boot, seed)):
        if counts is None:  # only empty clusters drawn: undefined, left out
            continue
        ma = metrics_from_blocks(ra.replicate(counts), convention=convention)
        mb = metrics_from_blocks(rb.replicate(counts), convention=convention)
        diffs[i] = mb.value(metric) - ma.value(metric)
    lo, hi, valid = _percentiles(diffs, level)
    ok = diffs[~np.isnan(diffs)]
    if ok.shape[0]:
        tail = min(int(np.sum(ok <= 0)), int(np.sum(ok >= 0)))
        p = min(1.0, 2.0 * (tail + 1) / (ok.shape[0] + 1))
    else:
        p = math.nan
    return PairedDifference(metric, float(est), lo, hi, p, level, n_boot, valid)


def cluster_bootstrap_ci(
    confidence: Any,
    correct: Any,
    clusters: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    convention: str = "lsfix",
    metrics: tuple[str, ...] | None = None,
    coverages: tuple[float, ...] = (),
    risks: tuple[float, ...] = (),
) -> dict[str, Interval]:
    """Cluster (image-level) bootstrap: like :func:`bootstrap_ci`, but a replicate resamples
    the ``G`` clusters with replacement (``rng.integers(0, G, G)``) and takes every row of a
    drawn cluster as often as the cluster was drawn. For dense predictions the clusters are
    images: pixels of one image are not independent, so resampling pixels gives intervals
    that are too narrow.

    Parameters
    ----------
    clusters : array_like of int, shape (n,)
        Cluster id of each row, in ``0..G-1`` (``G`` = largest id + 1; an id without rows is
        still a cluster that can be drawn, contributing nothing). With ``clusters = arange(n)``
        this is exactly :func:`bootstrap_ci` (the same draws, the same numbers).

    Returns
    -------
    dict
        Metric name -> :class:`Interval`; a replicate that draws only empty clusters is
        undefined for every metric (not counted in ``n_valid``).
    """
    _check(n_boot, level)
    _check_convention(convention)
    c, y = _as_inputs(confidence, correct)
    g = _check_clusters(clusters, c.shape[0])
    return _resampled_intervals(c, y, g, n_boot=n_boot, seed=seed,
                                level=level, convention=convention, metrics=metrics,
                                coverages=coverages, risks=risks)

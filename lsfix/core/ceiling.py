"""Effective label smoothing from the logits alone: the logit-gap ceiling.

Under label smoothing with smoothing ``α`` and ``K`` classes the training target of a sample
of class ``y`` is ``q_y = 1 − α + α/K`` and ``q_j = α/K`` for every ``j ≠ y``. Cross-entropy
against ``q`` is minimised over the logits exactly when ``softmax(z) = q``, i.e. when the gap
between the target logit and *every* other logit is the same constant::

    c(α, K) = log(q_y / q_j) = log(1 + K (1 − α) / α)

(4.51 for α = 0.1, K = 10; 3.71 for α = 0.2). Plain cross-entropy (α = 0) has no finite
optimum: its gaps grow without a ceiling. Binary single-logit models trained with BCE label
smoothing (targets ``y (1 − α) + α/2``) have the ceiling ``|z| = log((1 − α/2) / (α/2))``,
which is ``c(α, 2)``: lsfix reads a single logit ``z`` as the two logits ``(0, z)``, whose gap
is ``|z|``, so one formula covers both. The inverse is ``α(c, K) = K / (expm1(c) + K)``.

The estimator (:func:`estimate_label_smoothing`) takes each row's gap between its largest
logit and the mean of its other logits (:func:`logit_gaps`), summarises the gaps by their
median ``ĉ`` — over the correctly classified rows when correctness is known (``correct=``,
what ``lsfix audit`` does), else over all rows, from the logits alone — and reports
``α̂ = α(ĉ, K)`` with a percentile bootstrap interval. How
sharply the gaps concentrate — the evidence that a ceiling exists at all — is the *spread*
``(q90 − q50) / q50`` of the gaps: scale-free, so logits divided by a temperature keep their
spread (and move their ceiling by ``1/T``). A ceiling is reported when the spread is below
:data:`SPREAD_THRESHOLD`. The choice of statistic, gap and threshold was made by measurement
on the Fashion-MNIST α sweep; ``docs/ls-detection.md`` has the derivation, the measurements
and where the estimator fails (temperature-scaled logits, heavy weight decay, large K).

Bootstrap replicates resample the rows with replacement. To keep their cost independent of
the number of rows, the gaps are binned once on a fine grid (:data:`N_BINS` bins up to a
little above the largest gap) and each replicate is a multinomial draw of the bin counts —
the same distribution as resampling rows, up to the bin width (reported as
``bin_width``). The point estimates are exact (computed on the unbinned gaps).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lsfix.core.source import as_rows, iter_chunks
from lsfix.errors import InputError, UsageError

#: Gap definitions: ``mean`` = largest logit − mean of the other K − 1 logits; ``next`` =
#: largest − second largest.
GAPS = ("mean", "next")
#: Summaries of the gaps that estimate the ceiling (``median`` is the default, chosen by
#: measurement; ``mode`` is the peak of a Gaussian-smoothed histogram).
STATISTICS = ("median", "mode")
#: A ceiling is reported when the spread (q90 − q50)/q50 of the gaps is below this.
SPREAD_THRESHOLD = 0.25
#: Fewer rows than this: no verdict.
MIN_ROWS = 100
#: Bins of the bootstrap grid.
N_BINS = 4096


def ceiling_from_alpha(alpha: float, k: int) -> float:
    """Optimal logit gap ``log(1 + K (1 − α) / α)`` under label smoothing ``α``, ``K`` classes.

    ``inf`` for ``α = 0`` (cross-entropy has no ceiling); ``0`` for ``α = 1`` (uniform
    targets; PyTorch's ``label_smoothing`` convention, ``q = (1 − α)·onehot + α/K``).
    ``K = 2`` is also the binary single-logit (BCE) case.

    >>> round(ceiling_from_alpha(0.1, 10), 4), round(ceiling_from_alpha(0.6, 2), 4)
    (4.5109, 0.8473)
    """
    a, k = _check_alpha(alpha, k)
    if a == 0.0:
        return math.inf
    return math.log1p(k * (1.0 - a) / a)


def alpha_from_ceiling(ceiling: float, k: int) -> float:
    """Inverse of :func:`ceiling_from_alpha`: ``α = K / (expm1(c) + K)``; ``0`` for ``c = inf``.

    Gaps ``c ≤ 0`` map to ``α = 1`` (uniform targets).

    >>> round(alpha_from_ceiling(ceiling_from_alpha(0.2, 10), 10), 12)
    0.2
    """
    k = _check_k(k)
    c = float(ceiling)
    if math.isnan(c):
        return math.nan
    if c <= 0.0:
        return 1.0
    if c > 700.0:  # expm1 overflows; α is below 1e-300
        return 0.0
    return k / (math.expm1(c) + k)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or int(k) != k or int(k) < 2:
        raise UsageError(f"number of classes K must be an integer >= 2, got {k!r}")
    return int(k)


def _check_alpha(alpha: float, k: int) -> tuple[float, int]:
    k = _check_k(k)
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise UsageError(f"label smoothing α must be in [0, 1], got {alpha!r}")
    return a, k


def logit_gaps(logits: Any, *, to: str = "mean", chunk_rows: int | None = None) -> np.ndarray:
    """Per-row gap between the largest logit and the others, float64, shape ``(n,)``.

    Parameters
    ----------
    logits : array-like or row source, shape (n, K) with K >= 2, or (n,) / (n, 1)
        A single logit ``z`` is read as ``(0, z)``, so its gap is ``|z|``.
    to : {"mean", "next"}
        ``mean``: largest − mean of the other ``K − 1`` logits (``≥ 0``); ``next``: largest −
        second largest.

    >>> logit_gaps(np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0]])).tolist()
    [2.5, 0.0]
    >>> logit_gaps(np.array([-2.0, 0.5])).tolist()
    [2.0, 0.5]
    """
    if to not in GAPS:
        raise UsageError(f"gap {to!r}: choose from {', '.join(GAPS)}")
    src = as_rows(logits)
    n, k = src.shape
    if k < 2:
        raise InputError(f"logit gaps need at least 2 classes, got K = {k}")
    out = np.empty(n, dtype=np.float64)
    for start, z in iter_chunks(src, chunk_rows):
        stop = start + z.shape[0]
        top = z.max(axis=1)
        if to == "mean":
            # mean of the others = (sum − max) / (K − 1); clamp rounding below 0
            gap = top - (z.sum(axis=1) - top) / (k - 1)
            out[start:stop] = np.maximum(gap, 0.0)
        else:
            two = np.partition(z, k - 2, axis=1)[:, k - 2]
            out[start:stop] = top - two
    return out


@dataclass(frozen=True)
class LabelSmoothingEstimate:
    """What the logit gaps say about label smoothing (:func:`estimate_label_smoothing`).

    Attributes
    ----------
    verdict : str
        ``ceiling`` (the gaps pile up: consistent with label smoothing ``alpha``),
        ``no_ceiling`` (they spread out: no sign of label smoothing) or ``undetermined``
        (too few rows, or no gap above 0; ``reason`` says which).
    k : int
        Classes (2 for a single-logit binary model).
    binary : bool
        The logits were one per row (BCE form).
    n : int
        Rows used.
    ceiling, ceiling_low, ceiling_high : float
        ``ĉ`` (the median gap, or the statistic named) and its bootstrap interval.
    alpha, alpha_low, alpha_high : float
        ``α̂ = alpha_from_ceiling(ĉ, K)`` and the interval mapped through the same
        (decreasing) function.
    spread, spread_low, spread_high : float
        ``(q90 − q50) / q50`` of the gaps, and its bootstrap interval.
    spread_threshold : float
        The spread below which a ceiling is reported.
    statistic, gap : str
        How ``ĉ`` was computed.
    rows_used : str
        ``correct`` (correctly classified rows only) or ``all``.
    level, n_boot, seed : float, int, int
        Bootstrap settings (``n_boot = 0``: no intervals, NaN bounds).
    bin_width : float
        Resolution of the bootstrap grid (interval bounds are exact to about this).
    quantiles : dict
        ``q10``, ``q50``, ``q90``, ``q99`` of the gaps.
    reason : str
        Why the verdict is ``undetermined`` (empty otherwise).
    """

    verdict: str
    k: int
    binary: bool
    n: int
    ceiling: float
    ceiling_low: float
    ceiling_high: float
    alpha: float
    alpha_low: float
    alpha_high: float
    spread: float
    spread_low: float
    spread_high: float
    spread_threshold: float
    statistic: str
    gap: str
    rows_used: str
    level: float
    n_boot: int
    seed: int
    bin_width: float
    quantiles: dict[str, float]
    reason: str = ""

    @property
    def has_ceiling(self) -> bool:
        return self.verdict == "ceiling"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and inf become ``None``)."""
        return {key: _plain(v) for key, v in asdict(self).items()}


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _spread(q50: float, q90: float) -> float:
    return (q90 - q50) / q50 if q50 > 0 else math.nan


def _smoothed_mode(counts: np.ndarray, centers: np.ndarray, sigma_bins: float) -> np.ndarray:
    """Peak of each row of ``counts`` (shape (r, bins)) after Gaussian smoothing."""
    bins = counts.shape[-1]
    half = max(1, int(math.ceil(4 * sigma_bins)))
    size = 1 << int(math.ceil(math.log2(bins + 2 * half + 1)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    kern = np.exp(-0.5 * (x / max(sigma_bins, 1e-12)) ** 2)
    kpad = np.zeros(size)
    kpad[: kern.size] = kern
    kf = np.fft.rfft(kpad)
    sm = np.fft.irfft(np.fft.rfft(counts, n=size, axis=-1) * kf, n=size, axis=-1)
    sm = sm[..., half : half + bins]
    return centers[np.argmax(sm, axis=-1)]


def _binned_quantile(counts: np.ndarray, edges: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of each row of binned ``counts`` (linear inside a bin)."""
    cum = np.cumsum(counts, axis=-1)
    total = cum[..., -1:]
    target = q * total
    idx = np.minimum((cum < target).sum(axis=-1), counts.shape[-1] - 1)
    below = np.take_along_axis(cum, idx[..., None], -1)[..., 0] - np.take_along_axis(
        counts, idx[..., None], -1)[..., 0]
    inbin = np.take_along_axis(counts, idx[..., None], -1)[..., 0]
    frac = np.where(inbin > 0, (target[..., 0] - below) / np.where(inbin > 0, inbin, 1), 0.5)
    width = edges[1] - edges[0]
    return edges[idx] + np.clip(frac, 0.0, 1.0) * width


def _silverman(g: np.ndarray) -> float:
    sd = float(g.std())
    q75, q25 = np.percentile(g, [75, 25])
    s = min(sd, float(q75 - q25) / 1.34) or sd
    return 0.9 * s * g.shape[0] ** -0.2


def estimate_label_smoothing(
    logits: Any,
    *,
    rows: np.ndarray | None = None,
    correct: np.ndarray | None = None,
    statistic: str = "median",
    gap: str = "mean",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    spread_threshold: float = SPREAD_THRESHOLD,
    chunk_rows: int | None = None,
) -> LabelSmoothingEstimate:
    """Estimate the effective label smoothing ``α`` from logits alone (module docstring).

    Parameters
    ----------
    logits : array-like or row source, shape (n, K), or (n,) / (n, 1) for one logit
    rows : ndarray of bool, shape (n,), optional
        Rows to use (e.g. rows with a label that is not ignored); default all.
    correct : ndarray of bool, shape (n,), optional
        Per-row correctness (``argmax == label``). When given, only correctly classified rows
        are used: wrong predictions sit far below the ceiling and drag the median down (on
        the Fashion-MNIST sweep this halves the bias of α̂; ``docs/ls-detection.md``).
    statistic : {"median", "mode"}
        Summary of the gaps that estimates the ceiling.
    gap : {"mean", "next"}
        Gap definition (:func:`logit_gaps`).
    n_boot : int
        Bootstrap replicates (0: no intervals).
    level : float
        Interval level.
    seed : int
        Seed of ``numpy.random.default_rng`` for the replicates.
    spread_threshold : float
        Spread below which a ceiling is reported.

    Returns
    -------
    LabelSmoothingEstimate
    """
    if statistic not in STATISTICS:
        raise UsageError(f"statistic {statistic!r}: choose from {', '.join(STATISTICS)}")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 0:
        raise UsageError(f"bootstrap replicates must be an integer >= 0, got {n_boot!r}")
    if not 0.0 < float(level) < 1.0:
        raise UsageError(f"confidence level must be in (0, 1), got {level!r}")
    if not float(spread_threshold) > 0.0:
        raise UsageError(f"spread threshold must be > 0, got {spread_threshold!r}")
    src = as_rows(logits)
    n_all, k = src.shape
    binary = bool(getattr(src, "binary", False))
    g = logit_gaps(src, to=gap, chunk_rows=chunk_rows)
    keep = None
    for what, m in (("rows", rows), ("correct", correct)):
        if m is None:
            continue
        arr = np.asarray(m)
        if arr.dtype != np.bool_ or arr.shape != (n_all,):
            raise InputError(f"{what} must be a boolean mask of shape ({n_all},), got "
                             f"{arr.dtype} {arr.shape}")
        keep = arr if keep is None else keep & arr
    if keep is not None:
        g = g[keep]
    n = int(g.shape[0])
    nan = math.nan
    base: dict[str, Any] = {
        "k": int(k), "binary": binary, "n": n, "statistic": statistic, "gap": gap,
        "rows_used": "all" if correct is None else "correct",
        "level": float(level), "n_boot": int(n_boot), "seed": int(seed),
        "spread_threshold": float(spread_threshold),
    }
    empty: dict[str, Any] = {"ceiling": nan, "ceiling_low": nan, "ceiling_high": nan, "alpha": nan,
                             "alpha_low": nan, "alpha_high": nan, "spread": nan,
                             "spread_low": nan, "spread_high": nan, "bin_width": nan,
                             "quantiles": {}}
    if n < MIN_ROWS:
        return LabelSmoothingEstimate(verdict="undetermined", **base, **empty,
                                      reason=f"{n} rows: at least {MIN_ROWS} are needed")
    q10, q50, q90, q99 = (float(v) for v in np.percentile(g, [10, 50, 90, 99]))
    quantiles = {"q10": q10, "q50": q50, "q90": q90, "q99": q99}
    top = float(g.max())
    if not q50 > 0.0:
        return LabelSmoothingEstimate(
            verdict="undetermined", **base, **{**empty, "quantiles": quantiles},
            reason="the median gap is 0 (at least half the rows have tied logits)")

    # the bootstrap grid: N_BINS bins over [0, top] (top > 0 here)
    width = top / N_BINS * (1 + 1e-9)
    edges = np.arange(N_BINS + 1, dtype=np.float64) * width
    idx = np.minimum((g / width).astype(np.intp), N_BINS - 1)
    counts = np.bincount(idx, minlength=N_BINS).astype(np.float64)
    centers = edges[:-1] + width / 2
    sigma_bins = _silverman(g) / width

    if statistic == "median":
        c_hat = q50
    else:
        c_hat = float(_smoothed_mode(counts[None, :], centers, sigma_bins)[0])
    spread = _spread(q50, q90)

    c_lo = c_hi = s_lo = s_hi = nan
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        p = counts / counts.sum()
        cs, ss = [], []
        for start in range(0, n_boot, 128):
            size = min(128, n_boot - start)
            reps = rng.multinomial(n, p, size=size).astype(np.float64)
            b50 = _binned_quantile(reps, edges, 0.5)
            b90 = _binned_quantile(reps, edges, 0.9)
            ss.append((b90 - b50) / np.where(b50 > 0, b50, nan))
            cs.append(b50 if statistic == "median" else
                      _smoothed_mode(reps, centers, sigma_bins))
        call, sall = np.concatenate(cs), np.concatenate(ss)
        lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
        c_lo, c_hi = (float(v) for v in np.percentile(call, [lo_q, hi_q]))
        sok = sall[~np.isnan(sall)]
        if sok.size >= 2:
            s_lo, s_hi = (float(v) for v in np.percentile(sok, [lo_q, hi_q]))
    verdict = "ceiling" if spread < spread_threshold else "no_ceiling"
    return LabelSmoothingEstimate(
        verdict=verdict, **base, ceiling=c_hat, ceiling_low=c_lo, ceiling_high=c_hi,
        alpha=alpha_from_ceiling(c_hat, k),
        alpha_low=alpha_from_ceiling(c_hi, k) if not math.isnan(c_hi) else nan,
        alpha_high=alpha_from_ceiling(c_lo, k) if not math.isnan(c_lo) else nan,
        spread=spread, spread_low=s_lo, spread_high=s_hi, bin_width=width,
        quantiles=quantiles)

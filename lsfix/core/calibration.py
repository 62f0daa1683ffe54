"""Calibration of the probabilities the logits imply: ECE, equal-mass ECE, MCE, NLL, Brier.

Every number is computed in float64 from logits ``z`` of shape ``(n, K)`` and integer labels
``y`` (``(n,)``), after an optional temperature ``T``: ``π = softmax(z / T)``. With the
predicted class ``ŷ = argmax_k z_k`` (first index on exact ties, as everywhere in lsfix), the
confidence is ``c = max_k π_k = 1 / Σ_k exp(z_k/T − z_(1)/T)`` and a row is correct when
``ŷ = y``.

``ece`` (expected calibration error, equal-width bins, L1)
    ``Σ_b (n_b / n) · |acc_b − conf_b|`` over ``B`` bins (15 by default). The bins are those of
    torchmetrics' ``MulticlassCalibrationError(n_bins=B, norm="l1")``: edges ``e_j = j / B``
    (the float64 nearest to ``j / B``), a confidence goes to bin ``j`` with
    ``e_j ≤ c < e_{j+1}`` (a confidence exactly on an edge goes to the bin above it), and
    ``c = 1.0`` exactly goes to a bin of its own (torchmetrics allocates ``B + 1`` slots and
    ``bucketize(right=True) − 1`` sends 1.0 to the last one). torchmetrics itself casts the
    confidences to float32 and takes float32 ``linspace`` edges, which are not always the
    float32 nearest to ``j / B`` (for ``B = 15``, its edge 3/15 is 0.20000002): a confidence
    within float32 rounding of an edge can land in the other bin there. lsfix uses the exact
    edges ``j / B`` in float64 (``numpy.linspace`` would give 0.6000000000000001 for 3/5).
    ``acc_b`` and ``conf_b`` are the bin's mean correctness and
    mean confidence.
``ece_mass`` (equal-mass ECE)
    The same sum over ``B`` bins whose edges are the sample quantiles of the confidences
    (``numpy.quantile``, linear interpolation, at ``linspace(0, 1, B + 1)``) with the first
    edge set to 0 and the last to 1, as netcal's ``ECE(bins=B, equal_intervals=False)``: bins
    are ``[e_j, e_{j+1})``, the last one closed; tied confidences always share a bin (so a bin
    may hold more or fewer than ``n / B`` rows, or none).
``mce`` (maximum calibration error)
    ``max_b |acc_b − conf_b|`` over the non-empty equal-width bins of ``ece``
    (torchmetrics' ``norm="max"``).
``nll``
    Mean ``−log π_y = logsumexp(z/T) − z_y/T``, computed without forming ``π``.
``brier`` (multiclass)
    Mean ``Σ_k (π_k − [k = y])²``, computed as ``Σ_{k≠y} π_k² + (1 − π_y)²`` with
    ``1 − π_y = Σ_{k≠y} exp(z_k/T − z_(1)/T) / Σ_k exp(...)`` (no cancellation when
    ``π_y ≈ 1``). It lies in ``[0, 2]``.

Bootstrap intervals (:func:`calibration_bootstrap`) resample rows with the draws of
:mod:`lsfix.core.bootstrap` (same seed, same rows drawn) and recompute every metric,
equal-mass bin edges included, on each replicate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core.bootstrap import Interval, _percentiles, _replicate_counts
from lsfix.core.source import as_rows, iter_chunks
from lsfix.errors import InputError, UsageError

#: Default number of bins (torchmetrics' and the literature's 15).
N_BINS = 15
#: Most bins accepted (each bin costs a bincount slot; more than this is never meaningful).
MAX_BINS = 10_000
#: The calibration metrics, in the order reports show them.
CALIBRATION_METRICS: tuple[str, ...] = ("accuracy", "ece", "ece_mass", "mce", "nll", "brier")


@dataclass(frozen=True)
class CalibrationRows:
    """Per-row quantities every calibration metric is a function of.

    Attributes
    ----------
    confidence : ndarray, shape (n,)
        ``max_k π_k`` (float64, in ``(0, 1]``).
    correct : ndarray of bool, shape (n,)
    nll : ndarray, shape (n,)
        ``−log π_y``.
    brier : ndarray, shape (n,)
        ``Σ_k (π_k − [k = y])²``.
    temperature : float
    """

    confidence: np.ndarray
    correct: np.ndarray
    nll: np.ndarray
    brier: np.ndarray
    temperature: float = 1.0

    @property
    def n(self) -> int:
        return int(self.confidence.shape[0])

    def take(self, idx: np.ndarray) -> CalibrationRows:
        """The rows ``idx`` (a resample)."""
        return CalibrationRows(self.confidence[idx], self.correct[idx], self.nll[idx],
                               self.brier[idx], self.temperature)


def _check_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer):
        raise UsageError(f"n_bins must be an integer, got {n_bins!r}")
    if not 1 <= int(n_bins) <= MAX_BINS:
        raise UsageError(f"n_bins must be in [1, {MAX_BINS}], got {n_bins}")
    return int(n_bins)


def _check_temperature(t: float) -> float:
    tf = float(t)
    if not (math.isfinite(tf) and tf > 0):
        raise UsageError(f"temperature must be a finite number > 0, got {t!r}")
    return tf


def calibration_rows(logits: Any, labels: Any, *, temperature: float = 1.0,
                     chunk_rows: int | None = None) -> CalibrationRows:
    """Per-row confidence, correctness, NLL and Brier of ``softmax(logits / temperature)``.

    Parameters
    ----------
    logits : array-like, shape (n, K), K >= 2
        Float logits (an ndarray, an ``h5py.Dataset`` or a row source), read in float64
        chunks.
    labels : array-like of int, shape (n,)
        Class indices in ``[0, K)``.
    temperature : float
        ``T > 0``; ``1`` is the model's own probabilities.

    Examples
    --------
    >>> r = calibration_rows([[2.0, 0.0], [0.0, 1.0]], [0, 0])
    >>> r.correct.tolist()
    [True, False]
    """
    t = _check_temperature(temperature)
    src = as_rows(logits)
    if len(src.shape) != 2 or src.shape[1] < 2:
        raise InputError(f"calibration needs logits of shape (n, K) with K >= 2, got "
                         f"{tuple(src.shape)}")
    n, k = src.shape
    y = np.asarray(labels)
    if y.shape != (n,):
        raise InputError(f"labels shape {y.shape} does not match logits rows ({n},)")
    if n and (y.dtype.kind not in "iu" or int(y.min()) < 0 or int(y.max()) >= k):
        raise InputError(f"labels must be integers in [0, {k}) for calibration")
    y = y.astype(np.intp, copy=False)
    conf = np.empty(n)
    correct = np.empty(n, dtype=bool)
    nll = np.empty(n)
    brier = np.empty(n)
    for start, z in iter_chunks(src, chunk_rows):
        z = np.asarray(z, dtype=np.float64)
        if not np.isfinite(z).all():
            bad = start + int(np.argmin(np.isfinite(z).all(axis=1)))
            raise InputError(f"non-finite logit value(s) (NaN or inf); first in row {bad}")
        r = z.shape[0]
        rows = np.arange(r)
        yy = y[start : start + r]
        zt = z / t
        top = np.argmax(z, axis=1)  # the predicted class, first index on ties (of z, not z/T)
        s = zt - zt[rows, top][:, None]
        ex = np.exp(s)
        total = ex.sum(axis=1)
        conf[start : start + r] = 1.0 / total
        correct[start : start + r] = top == yy
        nll[start : start + r] = np.log(total) - s[rows, yy]
        ex[rows, yy] = 0.0  # from here on: the classes other than y
        p_other = ex / total[:, None]
        one_minus_py = p_other.sum(axis=1)
        brier[start : start + r] = (np.einsum("ij,ij->i", p_other, p_other)
                                    + one_minus_py * one_minus_py)
    return CalibrationRows(conf, correct, nll, brier, t)


@dataclass(frozen=True)
class ReliabilityBins:
    """Binned confidences: what a reliability diagram draws.

    ``edges`` has ``B + 1`` entries; ``count``, ``accuracy`` and ``confidence`` have one entry
    per bin (``accuracy``/``confidence`` NaN in an empty bin). For equal-width bins a last,
    extra entry holds the rows whose confidence is exactly 1.0 (torchmetrics' convention), so
    those arrays have ``B + 1`` entries there.
    """

    edges: np.ndarray
    count: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray
    equal_mass: bool

    def gaps(self) -> np.ndarray:
        """``|acc_b − conf_b|`` of the non-empty bins."""
        ok = self.count > 0
        return np.abs(self.accuracy[ok] - self.confidence[ok])


def _inputs(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct)
    if c.ndim != 1 or y.shape != c.shape:
        raise InputError(f"confidence and correct must be 1-D of one length, got {c.shape} "
                         f"and {y.shape}")
    if y.dtype != np.bool_:
        if not np.isin(y, (0, 1)).all():
            raise InputError("correct must be boolean or 0/1")
        y = y.astype(bool)
    if c.shape[0] and not (np.isfinite(c).all() and c.min() >= 0.0 and c.max() <= 1.0):
        raise InputError("confidences must be probabilities in [0, 1]")
    return c, y


def reliability_bins(confidence: Any, correct: Any, n_bins: int = N_BINS, *,
                     equal_mass: bool = False) -> ReliabilityBins:
    """The bins of :func:`ece` (``equal_mass=False``) or of the equal-mass ECE.

    Examples
    --------
    >>> b = reliability_bins([0.1, 0.2, 1.0], [False, True, True], 5)
    >>> b.count.tolist()   # 0.2 lies on an edge: the bin above it; 1.0: its own slot
    [1, 1, 0, 0, 0, 1]
    """
    nb = _check_bins(n_bins)
    c, y = _inputs(confidence, correct)
    if equal_mass:
        if c.shape[0] == 0:
            edges = np.linspace(0.0, 1.0, nb + 1)
        else:
            edges = np.quantile(c, np.linspace(0.0, 1.0, nb + 1))
            edges[0], edges[-1] = 0.0, 1.0
        idx = np.searchsorted(edges, c, side="right") - 1
        idx = np.minimum(idx, nb - 1)  # c == 1.0: the last (closed) bin
        slots = nb
    else:
        edges = np.arange(nb + 1, dtype=np.float64) / nb  # exactly rounded j / B
        idx = np.searchsorted(edges, c, side="right") - 1  # c == 1.0 -> slot nb (its own)
        slots = nb + 1
    count = np.bincount(idx, minlength=slots)
    acc_sum = np.bincount(idx, weights=y.astype(np.float64), minlength=slots)
    conf_sum = np.bincount(idx, weights=c, minlength=slots)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(count > 0, acc_sum / np.maximum(count, 1), np.nan)
        cmean = np.where(count > 0, conf_sum / np.maximum(count, 1), np.nan)
    return ReliabilityBins(edges, count.astype(np.int64), acc, cmean, equal_mass)


def _weighted_gap_sum(b: ReliabilityBins, n: int) -> float:
    if n == 0:
        return math.nan
    ok = b.count > 0
    return float(np.sum(b.count[ok] * np.abs(b.accuracy[ok] - b.confidence[ok])) / n)


def ece(confidence: Any, correct: Any, n_bins: int = N_BINS) -> float:
    """Expected calibration error, equal-width bins, L1 (torchmetrics' binning; see module).

    NaN for no rows.

    Examples
    --------
    >>> round(ece([0.9, 0.9, 0.6, 0.6], [True, False, True, True], 10), 12)
    0.4
    """
    c, y = _inputs(confidence, correct)
    return _weighted_gap_sum(reliability_bins(c, y, n_bins), c.shape[0])


def ece_equal_mass(confidence: Any, correct: Any, n_bins: int = N_BINS) -> float:
    """Equal-mass ECE: the L1 gap over bins with edges at the sample quantiles (see module)."""
    c, y = _inputs(confidence, correct)
    return _weighted_gap_sum(reliability_bins(c, y, n_bins, equal_mass=True), c.shape[0])


def mce(confidence: Any, correct: Any, n_bins: int = N_BINS) -> float:
    """Maximum calibration error over the non-empty equal-width bins (NaN for no rows)."""
    c, y = _inputs(confidence, correct)
    g = reliability_bins(c, y, n_bins).gaps()
    return float(g.max()) if g.shape[0] else math.nan


@dataclass(frozen=True)
class Calibration:
    """Calibration metrics of one set of probabilities (see the module for definitions)."""

    n: int
    n_bins: int
    temperature: float
    accuracy: float
    mean_confidence: float
    ece: float
    ece_mass: float
    mce: float
    nll: float
    brier: float

    def as_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {"n": self.n, "n_bins": self.n_bins, "temperature": self.temperature,
                "accuracy": num(self.accuracy), "mean_confidence": num(self.mean_confidence),
                "ece": num(self.ece), "ece_mass": num(self.ece_mass), "mce": num(self.mce),
                "nll": num(self.nll), "brier": num(self.brier)}


def calibration_metrics(rows: CalibrationRows, n_bins: int = N_BINS) -> Calibration:
    """Every calibration metric of ``rows`` (:func:`calibration_rows`)."""
    nb = _check_bins(n_bins)
    n = rows.n
    c, y = rows.confidence, rows.correct
    if n == 0:
        nan = math.nan
        return Calibration(0, nb, rows.temperature, nan, nan, nan, nan, nan, nan, nan)
    width = reliability_bins(c, y, nb)
    gaps = width.gaps()
    return Calibration(
        n=n, n_bins=nb, temperature=rows.temperature,
        accuracy=float(np.count_nonzero(y)) / n,
        mean_confidence=float(np.mean(c)),
        ece=_weighted_gap_sum(width, n),
        ece_mass=_weighted_gap_sum(reliability_bins(c, y, nb, equal_mass=True), n),
        mce=float(gaps.max()),
        nll=float(np.mean(rows.nll)),
        brier=float(np.mean(rows.brier)),
    )


class _Weighted:
    """Every metric of :data:`CALIBRATION_METRICS` for row weights (how often a bootstrap
    replicate drew each row) without materialising the resample: equal-width bins are fixed
    per row; equal-mass edges are the quantiles of the weighted sample, read off the sorted
    confidences and the cumulative weights (numpy's linear interpolation on the expanded
    sample, exactly)."""

    def __init__(self, rows: CalibrationRows, n_bins: int) -> None:
        self.nb = n_bins
        self.c = rows.confidence
        self.y = rows.correct.astype(np.float64)
        self.nll, self.brier = rows.nll, rows.brier
        edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
        self.width_idx = np.searchsorted(edges, self.c, side="right") - 1
        self.order = np.argsort(self.c, kind="stable")
        self.sorted_c = self.c[self.order]

    def _gap_sum(self, idx: np.ndarray, w: np.ndarray, slots: int, total: float
                 ) -> tuple[float, float]:
        cnt = np.bincount(idx, weights=w, minlength=slots)
        acc = np.bincount(idx, weights=w * self.y, minlength=slots)
        conf = np.bincount(idx, weights=w * self.c, minlength=slots)
        ok = cnt > 0
        gaps = np.abs(acc[ok] / cnt[ok] - conf[ok] / cnt[ok])
        return float(np.sum(cnt[ok] * gaps) / total), float(gaps.max())

    def values(self, w: np.ndarray) -> list[float]:
        total = float(w.sum())
        ece_v, mce_v = self._gap_sum(self.width_idx, w, self.nb + 1, total)
        # equal-mass edges: quantile q of the expanded sorted sample of size N
        cum = np.cumsum(w[self.order])
        size = int(round(total))
        h = (size - 1) * np.linspace(0.0, 1.0, self.nb + 1)
        lo_i = np.floor(h).astype(np.int64)
        hi_i = np.minimum(lo_i + 1, size - 1)
        lo_v = self.sorted_c[np.searchsorted(cum, lo_i, side="right")]
        hi_v = self.sorted_c[np.searchsorted(cum, hi_i, side="right")]
        edges = lo_v + (h - lo_i) * (hi_v - lo_v)
        edges[0], edges[-1] = 0.0, 1.0
        mass_idx = np.minimum(np.searchsorted(edges, self.c, side="right") - 1, self.nb - 1)
        mass_v, _ = self._gap_sum(mass_idx, w, self.nb, total)
        return [float(np.dot(w, self.y) / total), ece_v, mass_v, mce_v,
                float(np.dot(w, self.nll) / total), float(np.dot(w, self.brier) / total)]


def calibration_bootstrap(rows: CalibrationRows, n_bins: int = N_BINS, *, n_boot: int = 1000,
                          seed: int = 0, level: float = 0.95) -> dict[str, Interval]:
    """Percentile bootstrap intervals of every metric of :data:`CALIBRATION_METRICS`.

    A replicate draws ``n`` rows with replacement exactly as :func:`lsfix.core.bootstrap_ci`
    does with the same ``seed`` and recomputes the metrics (equal-mass edges included) on
    them, from the draw counts (:class:`_Weighted`: O(n) per replicate, no copy of the rows).
    """
    if n_boot < 1:
        raise UsageError(f"bootstrap replicates must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise UsageError(f"confidence level must be in (0, 1), got {level}")
    nb = _check_bins(n_bins)
    full = calibration_metrics(rows, nb)
    reps = np.full((len(CALIBRATION_METRICS), n_boot), np.nan)
    if rows.n:
        weighted = _Weighted(rows, nb)
        for i, counts in enumerate(_replicate_counts(rows.n, None, n_boot, seed)):
            if counts is None:
                continue
            reps[:, i] = weighted.values(counts)
    out = {}
    for j, k in enumerate(CALIBRATION_METRICS):
        lo, hi, valid = _percentiles(reps[j], level)
        out[k] = Interval(float(getattr(full, k)), lo, hi, level, n_boot, valid)
    return out

"""Bootstrap replicates of every metric of one score, kept (not reduced to an interval).

:func:`metric_replicates` draws exactly as :func:`lsfix.core.bootstrap.bootstrap_ci` does
(``rng.integers(0, n, n)`` per replicate from ``default_rng(seed)``; the same block
bookkeeping), and returns each metric's value on every replicate. Two scores of the same ``n``
rows called with the same ``seed`` get the **same** draws, so differences of their replicates
are a paired bootstrap (:func:`lsfix.core.bootstrap.paired_bootstrap` for any metric, and for
relative changes); different seeds give independent draws (an unpaired bootstrap of two
different sample sets). The ``compare`` gate judges its rules on these (``lsfix.evaluation.gate``).
AURC alone (not ``fd-shifts``) is computed for many replicates at once
(:func:`lsfix.core.selection.replicate_aurcs`), equal to the per-replicate block metrics to
~1e-13 relative (``tests/core/test_replicates.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsfix.core.bootstrap import (
    _check,
    _replicate_counts,
    _Resampler,
    _values,
    bootstrap_metrics,
)
from lsfix.core.metrics import _as_inputs, _check_convention, metrics_from_blocks


def metric_replicates(
    confidence: Any,
    correct: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    convention: str = "lsfix",
    metrics: tuple[str, ...] | None = None,
    coverages: tuple[float, ...] = (),
    risks: tuple[float, ...] = (),
) -> dict[str, np.ndarray]:
    """Every metric on every bootstrap replicate.

    ``metrics``: the metrics to keep (default: every metric with an interval,
    :func:`lsfix.core.bootstrap.bootstrap_metrics`).

    Returns
    -------
    dict
        Metric name (``metrics``, then ``risk@C`` for each coverage and ``coverage@R`` for
        each risk, keyed as in the tables) -> ``(n_boot,)`` float64 array; NaN where the
        metric is undefined on that replicate.

    Examples
    --------
    >>> r = metric_replicates([.9, .8, .7, .6], [1, 0, 1, 0], n_boot=5, metrics=("aurc",))
    >>> r["aurc"].shape
    (5,)
    """
    _check(n_boot, 0.5)
    _check_convention(convention)
    c, y = _as_inputs(confidence, correct)
    metrics = bootstrap_metrics() if metrics is None else tuple(metrics)
    if metrics == ("aurc",) and not coverages and not risks \
            and convention != "fd-shifts":
        return {"aurc": _aurc_only(c, y, n_boot, seed, convention)}
    rs = _Resampler(c, y)
    kw = {"convention": convention, "coverages": tuple(coverages), "risks": tuple(risks)}
    names = [*metrics, *(f"risk@{v:g}" for v in coverages), *(f"coverage@{v:g}" for v in risks)]
    reps = np.full((len(names), n_boot), np.nan)
    for i, counts in enumerate(_replicate_counts(c.shape[0], None, n_boot, seed)):
        assert counts is not None  # rows are drawn: never empty
        reps[:, i] = _values(metrics_from_blocks(rs.replicate(counts), **kw), metrics)
    return {name: reps[j] for j, name in enumerate(names)}


def _aurc_only(c: np.ndarray, y: np.ndarray, n_boot: int, seed: int, convention: str
               ) -> np.ndarray:
    """AURC on every replicate, many replicates at once (:func:`lsfix.core.selection.
    replicate_aurcs`, the same draws): equal to the block metrics to ~1e-13 relative."""
    from lsfix.core.selection import REPLICATE_CHUNK, _BlockIndex, _harmonic, replicate_aurcs

    idx, h = _BlockIndex(c, y), _harmonic(c.shape[0])
    out = np.empty(n_boot)
    chunk: list[np.ndarray] = []
    at = 0
    for counts in _replicate_counts(c.shape[0], None, n_boot, seed):
        assert counts is not None
        chunk.append(counts)
        if len(chunk) == REPLICATE_CHUNK or at + len(chunk) == n_boot:
            w = np.stack(chunk)
            out[at : at + w.shape[0]] = replicate_aurcs(c, y, w, convention=convention,
                                                        _index=idx, _h=h)
            at += w.shape[0]
            chunk.clear()
    return out

"""Models trained over several seeds: mean ± sd per model, and a paired test across seeds.

``compare --model NAME=FILES`` groups files into models (FILES: comma-separated paths or
shell-style globs, expanded by lsfix and sorted, so ``'CE=ce_s*.h5'`` lists the seeds in name
order). For each model, score and metric, :func:`summarise` gives the mean and the sample
standard deviation (``ddof = 1``) over the model's files, as the paper's tables report them.

The paired test compares each model with the first (the baseline) seed by seed: the ``i``-th
file of a model is paired with the ``i``-th file of the baseline (so give the seeds in the
same order; with globs, name them alike). With ``d_i`` the per-seed differences (model −
baseline) over ``S`` pairs: mean ``d̄``, sd ``s``, ``t = d̄ / (s/√S)`` on ``S − 1`` degrees of
freedom, the two-sided p-value ``P(|T| ≥ |t|)``, and the ``level`` interval
``d̄ ± t_{(1+level)/2, S−1} · s/√S`` (Student's paired t-test). It needs ``S ≥ 2`` pairs; with
``s = 0`` the t statistic is undefined (reported as null). With few seeds the test has little
power: three seeds cannot give p below about 0.05 unless the differences barely vary.

The Student t distribution is computed here (no SciPy): the CDF through the regularised
incomplete beta function (continued fraction, Lentz's method, relative accuracy ~1e-14) and
the quantile by bisection on it.
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from typing import Any

from lsfix.core.special import betainc
from lsfix.errors import UsageError

#: Metrics summarised over seeds.
SEED_METRICS = ("accuracy", "aurc", "eaurc", "augrc", "auroc")


def parse_model(text: str) -> tuple[str, list[str]]:
    """``NAME=PATH[,PATH...]`` (paths may be globs) -> (name, sorted paths)."""
    name, eq, rest = text.partition("=")
    name = name.strip()
    if not eq or not name or not rest.strip():
        raise UsageError(f"--model {text!r}: expected NAME=FILES, e.g. 'CE=ce_s*.h5' or "
                         "CE=ce_s0.h5,ce_s1.h5")
    paths: list[str] = []
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        if glob.has_magic(part):
            got = sorted(glob.glob(part))
            if not got:
                raise UsageError(f"--model {name}: no file matches {part!r}")
            paths += got
        else:
            paths.append(part)
    if len(set(paths)) != len(paths):
        raise UsageError(f"--model {name}: a file is listed twice")
    return name, paths


# --------------------------------------------------------------------------------------------
# Student's t


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail ``P(|T| ≥ |t|)`` of Student's t with ``df`` degrees of freedom.

    >>> round(t_sf2(1.0, 1), 12) == round(0.5, 12)
    True
    """
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (``0 < q < 1``), by bisection on :func:`t_sf2`."""
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    if q == 0.5:
        return 0.0
    tail = 2 * (1 - q) if q > 0.5 else 2 * q  # two-sided tail of |t|
    lo, hi = 0.0, 1.0
    while t_sf2(hi, df) > tail:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_sf2(mid, df) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    x = 0.5 * (lo + hi)
    return x if q > 0.5 else -x


# --------------------------------------------------------------------------------------------
# summaries


@dataclass(frozen=True)
class SeedSummary:
    model: str
    score: str
    metric: str
    n: int
    mean: float
    sd: float
    values: tuple[float, ...]


@dataclass(frozen=True)
class SeedPaired:
    model: str
    baseline: str
    score: str
    metric: str
    n_pairs: int
    mean: float
    sd: float
    t: float | None
    p_value: float | None
    low: float | None
    high: float | None
    level: float


def _mean_sd(v: list[float]) -> tuple[float, float]:
    m = math.fsum(v) / len(v)
    sd = math.sqrt(math.fsum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else \
        math.nan
    return m, sd


def paired_t(diffs: list[float], level: float = 0.95) -> tuple[float, float, float | None,
                                                               float | None, float | None,
                                                               float | None]:
    """(mean, sd, t, p, low, high) of Student's paired t-test on ``diffs`` (module
    docstring); t, p and the interval are None when undefined (``S < 2`` or ``sd = 0``)."""
    m, sd = _mean_sd(diffs)
    s = len(diffs)
    if s < 2 or not sd > 0:
        return m, sd, None, None, None, None
    se = sd / math.sqrt(s)
    t = m / se
    half = t_quantile((1 + level) / 2, s - 1) * se
    return m, sd, t, t_sf2(t, s - 1), m - half, m + half


def summarise(models: list[tuple[str, list[dict[str, Any]]]], *, level: float = 0.95,
              metrics: tuple[str, ...] = SEED_METRICS
              ) -> tuple[list[SeedSummary], list[SeedPaired]]:
    """Mean ± sd per (model, score, metric) and the paired test of every model against the
    first. ``models``: (name, one row per file in seed order; a row is the flat result row
    of one score of one file, with ``score`` and the metrics)."""
    summaries: list[SeedSummary] = []
    paired: list[SeedPaired] = []
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    order: list[tuple[str, str]] = []
    for name, rows in models:
        for r in rows:
            key = (name, r["score"])
            if key not in by:
                by[key] = []
                order.append(key)
            by[key].append(r)
    base_name = models[0][0]
    for name, score in order:
        rows = by[(name, score)]
        for metric in metrics:
            vals = [r.get(metric) for r in rows]
            ok = [float(v) for v in vals if v is not None and v == v]
            if not ok:
                continue
            m, sd = _mean_sd(ok)
            summaries.append(SeedSummary(name, score, metric, len(ok), m, sd, tuple(ok)))
            base = by.get((base_name, score))
            if name == base_name or base is None or len(base) != len(rows):
                continue
            diffs = []
            for r, b in zip(rows, base, strict=True):
                v, w = r.get(metric), b.get(metric)
                if v is None or w is None or v != v or w != w:
                    continue
                diffs.append(float(v) - float(w))
            if not diffs:
                continue
            mean, sdd, t, p, lo, hi = paired_t(diffs, level)
            paired.append(SeedPaired(name, base_name, score, metric, len(diffs), mean, sdd, t,
                                     p, lo, hi, level))
    return summaries, paired

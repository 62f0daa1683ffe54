"""Slow, independent references for every number in docs/metrics.md.

Nothing here imports lsfix. Everything is plain Python loops; the selective-classification
metrics are exact (``fractions.Fraction``), the scores are per-row float64 with ``math.fsum``.

Two references for the tie-expected error counts ``E_k``:

* :func:`expected_errors_by_permutation` — the *definition*: enumerate every ordering of the
  samples inside each tie block (``itertools.permutations``), count errors among the top k for
  each ordering and average. Only for small n (the number of orderings is the product of the
  block-size factorials).
* :func:`expected_errors_by_formula` — closed form per k: inside a block of size m holding w
  errors that starts after s samples, ``E_k = E_s + (k - s) * w / m``.

All metric references take the list ``E = [E_0, E_1, ..., E_n]`` (``E_0 = 0``) plus the block
structure, so either E reference can feed them. ``None`` stands for "undefined".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

CONVENTIONS = ("lsfix", "xia", "fd-shifts", "torch-uncertainty")

Frac = Fraction


# --------------------------------------------------------------------------------------------
# ordering and ties
# --------------------------------------------------------------------------------------------
def _as_lists(
    confidence: Sequence[float], correct: Sequence[bool]
) -> tuple[list[float], list[bool]]:
    conf = [float(c) for c in confidence]
    corr = [bool(b) for b in correct]
    if len(conf) != len(corr):
        raise ValueError("confidence and correct differ in length")
    return conf, corr


def blocks(confidence: Sequence[float], correct: Sequence[bool]) -> list[tuple[float, int, int]]:
    """Tie blocks in order of decreasing confidence: ``(value, size, errors)``."""
    conf, corr = _as_lists(confidence, correct)
    values: list[float] = []
    for c in conf:
        if not any(c == v for v in values):
            values.append(c)
    # selection sort, descending, with plain loops
    ordered: list[float] = []
    remaining = list(values)
    while remaining:
        best = remaining[0]
        for v in remaining:
            if v > best:
                best = v
        ordered.append(best)
        remaining = [v for v in remaining if v != best]
    out = []
    for v in ordered:
        size = 0
        errors = 0
        for c, ok in zip(conf, corr, strict=True):
            if c == v:
                size += 1
                if not ok:
                    errors += 1
        out.append((v, size, errors))
    return out


def n_tied(confidence: Sequence[float]) -> int:
    """Samples sharing their confidence with at least one other sample."""
    conf = [float(c) for c in confidence]
    count = 0
    for i, c in enumerate(conf):
        for j, d in enumerate(conf):
            if i != j and c == d:
                count += 1
                break
    return count


def expected_errors_by_permutation(
    confidence: Sequence[float], correct: Sequence[bool]
) -> list[Fraction]:
    """``[E_0, ..., E_n]`` averaged over every ordering of every tie block (the definition)."""
    conf, corr = _as_lists(confidence, correct)
    n = len(conf)
    per_block: list[list[bool]] = []  # the correctness flags of each block, in block order
    for v, _, _ in blocks(conf, corr):
        per_block.append([ok for c, ok in zip(conf, corr, strict=True) if c == v])
    n_orderings = 1
    for flags in per_block:
        n_orderings *= math.factorial(len(flags))
    if n_orderings > 50_000:
        raise ValueError(f"{n_orderings} orderings: too many to enumerate")
    totals = [0] * (n + 1)
    count = 0
    block_orders = [list(itertools.permutations(flags)) for flags in per_block]
    for combo in itertools.product(*block_orders):
        sequence = [ok for block in combo for ok in block]
        errors = 0
        for k in range(1, n + 1):
            if not sequence[k - 1]:
                errors += 1
            totals[k] += errors
        count += 1
    return [Fraction(t, count) for t in totals]


def expected_errors_by_formula(
    confidence: Sequence[float], correct: Sequence[bool]
) -> list[Fraction]:
    """``[E_0, ..., E_n]``: E rises linearly across each tie block."""
    E = [Fraction(0)]
    start_errors = Fraction(0)
    for _, size, errors in blocks(confidence, correct):
        for j in range(1, size + 1):
            E.append(start_errors + Fraction(j * errors, size))
        start_errors += errors
    return E


def expected_errors(confidence: Sequence[float], correct: Sequence[bool]) -> list[Fraction]:
    """Permutation enumeration where affordable (n <= 6), else the closed form."""
    if len(confidence) <= 6:
        return expected_errors_by_permutation(confidence, correct)
    return expected_errors_by_formula(confidence, correct)


def risks(E: Sequence[Fraction]) -> list[Fraction]:
    """``[r_1, ..., r_n]`` with ``r_k = E_k / k``."""
    return [Fraction(E[k]) / k for k in range(1, len(E))]


def block_ends(confidence: Sequence[float], correct: Sequence[bool]) -> list[int]:
    """Cumulative sample count at the end of each tie block (``k`` of the block's last sample)."""
    ends = []
    k = 0
    for _, size, _ in blocks(confidence, correct):
        k += size
        ends.append(k)
    return ends


# --------------------------------------------------------------------------------------------
# AURC in each convention, by literal definition
# --------------------------------------------------------------------------------------------
def trapezoid(points: Sequence[tuple[Fraction, Fraction]]) -> Fraction:
    """Area under the polyline through ``points`` (x increasing), summed segment by segment."""
    area = Fraction(0)
    for i in range(1, len(points)):
        x0, y0 = points[i - 1]
        x1, y1 = points[i]
        area += (x1 - x0) * (y0 + y1) / 2
    return area


def aurc_from_curve(E: Sequence[Fraction], ends: Sequence[int], convention: str) -> Fraction | None:
    """AURC of the tie-expected curve ``E`` (block ends ``ends``) in ``convention``."""
    n = len(E) - 1
    r = risks(E)
    if convention == "lsfix":
        total = Fraction(0)
        for k in range(1, n + 1):
            total += r[k - 1]
        return total / n
    if convention == "xia":
        points = [(Fraction(0), Fraction(0))]
        for k in range(1, n + 1):
            points.append((Fraction(k, n), r[k - 1]))
        return trapezoid(points)
    if convention == "fd-shifts":
        points = [(Fraction(0), r[ends[0] - 1])]
        for k in ends:
            points.append((Fraction(k, n), r[k - 1]))
        return trapezoid(points)
    if convention == "torch-uncertainty":
        if n < 2:
            return None
        points = [(Fraction(k, n), r[k - 1]) for k in range(1, n + 1)]
        return trapezoid(points) / (1 - Fraction(1, n))
    raise ValueError(convention)


def aurc(
    confidence: Sequence[float], correct: Sequence[bool], convention: str = "lsfix"
) -> Fraction | None:
    E = expected_errors(confidence, correct)
    return aurc_from_curve(E, block_ends(confidence, correct), convention)


def oracle_aurc(correct: Sequence[bool], convention: str = "lsfix") -> Fraction | float | None:
    """The convention applied to the ideal confidence: 1 for correct, 0 for wrong (two blocks).

    ``fd-shifts`` uses its own analytic oracle ``q + (1 - q) ln(1 - q + eps)`` (a float).
    """
    if convention == "fd-shifts":
        q = float(error_rate(correct))
        return q + (1.0 - q) * math.log(1.0 - q + 2.0 ** -52)
    return oracle_aurc_two_blocks(correct, convention)


def oracle_aurc_two_blocks(correct: Sequence[bool], convention: str = "lsfix") -> Fraction | None:
    """The convention's AURC of the ideal confidence (two tie blocks), in every convention."""
    ideal = [1.0 if ok else 0.0 for ok in correct]
    E = expected_errors_by_formula(ideal, correct)
    return aurc_from_curve(E, block_ends(ideal, correct), convention)


def oracle_aurc_distinct(correct: Sequence[bool], convention: str = "lsfix") -> Fraction | None:
    """The convention applied to "all correct before all wrong", every confidence distinct."""
    n = len(correct)
    ranked = sorted(correct, key=lambda ok: not ok)  # correct first
    conf = [float(n - i) for i in range(n)]
    E = expected_errors_by_formula(conf, ranked)
    return aurc_from_curve(E, block_ends(conf, ranked), convention)


def constant_aurc(correct: Sequence[bool], convention: str = "lsfix") -> Fraction | None:
    """The convention applied to a constant confidence (one block)."""
    conf = [0.0] * len(correct)
    E = expected_errors_by_formula(conf, correct)
    return aurc_from_curve(E, block_ends(conf, correct), convention)


def error_rate(correct: Sequence[bool]) -> Fraction:
    return Fraction(sum(1 for ok in correct if not ok), len(correct))


# --------------------------------------------------------------------------------------------
# AUGRC, AUROC, FPR@95TPR
# --------------------------------------------------------------------------------------------
def augrc_from_curve(E: Sequence[Fraction]) -> Fraction:
    """Trapezoid of the generalised risk ``E_k / n`` over coverage ``k/n``, from (0, 0)."""
    n = len(E) - 1
    points = [(Fraction(k, n), Fraction(E[k]) / n) for k in range(0, n + 1)]
    return trapezoid(points)


def augrc(confidence: Sequence[float], correct: Sequence[bool]) -> Fraction:
    return augrc_from_curve(expected_errors(confidence, correct))


def augrc_torch_uncertainty(E: Sequence[Fraction]) -> Fraction | None:
    """torch-uncertainty's AUGRC: trapezoid of ``E_k / n`` over ``k = 1..n`` (no (0, 0) point),
    divided by the covered width ``1 - 1/n``; undefined for n = 1."""
    n = len(E) - 1
    if n < 2:
        return None
    points = [(Fraction(k, n), Fraction(E[k]) / n) for k in range(1, n + 1)]
    return trapezoid(points) / (1 - Fraction(1, n))


def auroc(confidence: Sequence[float], correct: Sequence[bool]) -> Fraction | None:
    """P(c_correct > c_wrong) + 1/2 P(equal), by a double loop over (correct, wrong) pairs."""
    conf, corr = _as_lists(confidence, correct)
    pos = [c for c, ok in zip(conf, corr, strict=True) if ok]
    neg = [c for c, ok in zip(conf, corr, strict=True) if not ok]
    if not pos or not neg:
        return None
    score = Fraction(0)
    for a in pos:
        for b in neg:
            if a > b:
                score += 1
            elif a == b:
                score += Fraction(1, 2)
    return score / (len(pos) * len(neg))


def fpr_at_95tpr(confidence: Sequence[float], correct: Sequence[bool]) -> Fraction | None:
    """Lowest FPR over thresholds t (distinct confidences, accept c >= t) with TPR >= 0.95."""
    conf, corr = _as_lists(confidence, correct)
    n_pos = sum(1 for ok in corr if ok)
    n_neg = len(corr) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    best: Fraction | None = None
    for t in set(conf):
        tp = sum(1 for c, ok in zip(conf, corr, strict=True) if ok and c >= t)
        fp = sum(1 for c, ok in zip(conf, corr, strict=True) if not ok and c >= t)
        if Fraction(tp, n_pos) >= Fraction(95, 100):
            fpr = Fraction(fp, n_neg)
            if best is None or fpr < best:
                best = fpr
    assert best is not None  # the lowest confidence accepts everything: TPR = 1
    return best


def fpr_at_95tpr_fd_shifts(confidence: Sequence[float], correct: Sequence[bool]) -> Fraction | None:
    """fd-shifts: ROC points at every distinct threshold (descending), scikit-learn's thinning
    (drop a point whose incoming and outgoing steps are equal), then the lowest FPR among kept
    points with TPR >= 0.9495."""
    conf, corr = _as_lists(confidence, correct)
    n_pos = sum(1 for ok in corr if ok)
    n_neg = len(corr) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    points = []
    for t in sorted(set(conf), reverse=True):
        tp = sum(1 for c, ok in zip(conf, corr, strict=True) if ok and c >= t)
        fp = sum(1 for c, ok in zip(conf, corr, strict=True) if not ok and c >= t)
        points.append((tp, fp))
    kept = []
    for i, (tp, fp) in enumerate(points):
        if 0 < i < len(points) - 1:
            step_in = (tp - points[i - 1][0], fp - points[i - 1][1])
            step_out = (points[i + 1][0] - tp, points[i + 1][1] - fp)
            if step_in == step_out:
                continue
        kept.append((tp, fp))
    fprs = [Fraction(fp, n_neg) for tp, fp in kept if Fraction(tp, n_pos) >= Fraction(9495, 10000)]
    return min(fprs)


# --------------------------------------------------------------------------------------------
# operating points
# --------------------------------------------------------------------------------------------
def exact_decimal(x: float | str | Fraction) -> Fraction:
    """The decimal as written: ``0.7`` means 7/10, not the nearest binary double."""
    if isinstance(x, Fraction):
        return x
    return Fraction(repr(x) if isinstance(x, float) else str(x))


def risk_at_coverage(E: Sequence[Fraction], target: float) -> tuple[int, Fraction, Fraction | None]:
    """``(k, coverage, risk)`` with ``k = ceil(target * n)`` computed exactly."""
    n = len(E) - 1
    k = math.ceil(exact_decimal(target) * n)
    k = max(0, min(n, k))
    if k == 0:
        return 0, Fraction(0), None
    return k, Fraction(k, n), Fraction(E[k]) / k


def coverage_at_risk(E: Sequence[Fraction], target: float) -> tuple[int, Fraction, Fraction | None]:
    """``(k, coverage, risk)``: the largest k with ``E_k / k <= target`` (exact); k = 0 if none."""
    n = len(E) - 1
    rho = exact_decimal(target)
    best = 0
    for k in range(1, n + 1):
        if Fraction(E[k]) / k <= rho:
            best = k
    if best == 0:
        return 0, Fraction(0), None
    return best, Fraction(best, n), Fraction(E[best]) / best


# --------------------------------------------------------------------------------------------
# everything at once
# --------------------------------------------------------------------------------------------
def metrics(
    confidence: Sequence[float],
    correct: Sequence[bool],
    convention: str = "lsfix",
    coverages: Sequence[float] = (),
    risk_targets: Sequence[float] = (),
    *,
    use_permutations: bool | None = None,
) -> dict[str, object]:
    """Every number of ``evaluate`` as exact Fractions (``None`` = undefined)."""
    conf, corr = _as_lists(confidence, correct)
    n = len(conf)
    if use_permutations is None:
        use_permutations = n <= 6
    E = (
        expected_errors_by_permutation(conf, corr)
        if use_permutations
        else expected_errors_by_formula(conf, corr)
    )
    ends = block_ends(conf, corr)
    q = error_rate(corr)
    a = aurc_from_curve(E, ends, convention)
    o = oracle_aurc(corr, convention)
    e = None if a is None or o is None else a - o
    # NAURC: E-AURC over (q - oracle) in every convention (Cattelan & Silva's denominator)
    na = None if e is None or q in (0, 1) else e / (q - o)
    if convention == "torch-uncertainty":
        g = augrc_torch_uncertainty(E)
    else:
        g = augrc_from_curve(E)
    fpr = (fpr_at_95tpr_fd_shifts(conf, corr) if convention == "fd-shifts"
           else fpr_at_95tpr(conf, corr))
    return {
        "n": n,
        "n_errors": sum(1 for ok in corr if not ok),
        "accuracy": 1 - q,
        "error_rate": q,
        "n_tied": n_tied(conf),
        "E": E,
        "coverage": [Fraction(k, n) for k in range(1, n + 1)],
        "risk": risks(E),
        "aurc": a,
        "oracle_aurc": o,
        "eaurc": e,
        "naurc": na,
        "augrc": g,
        "auroc": auroc(conf, corr),
        "fpr_at_95tpr": fpr,
        "risk_at_coverage": [(c, *risk_at_coverage(E, c)) for c in coverages],
        "coverage_at_risk": [(r, *coverage_at_risk(E, r)) for r in risk_targets],
    }


# --------------------------------------------------------------------------------------------
# scores, one row at a time, float64
# --------------------------------------------------------------------------------------------
def _row(z: Sequence[float]) -> list[float]:
    row = [float(v) for v in z]
    if len(row) == 1:  # a binary classifier's one logit z is the two logits (0, z)
        row = [0.0, row[0]]
    return row


def _argmax(row: Sequence[float]) -> int:
    best = 0
    for i, v in enumerate(row):
        if v > row[best]:
            best = i
    return best


def log_softmax_row(z: Sequence[float]) -> list[float]:
    row = _row(z)
    m = max(row)
    # log S with S = sum exp(z - m) >= 1: log1p of the part beyond the max keeps tiny masses
    i = _argmax(row)
    rest = math.fsum(math.exp(v - m) for j, v in enumerate(row) if j != i)
    log_s = math.log1p(rest)
    return [v - m - log_s for v in row]


def softmax_row(z: Sequence[float]) -> list[float]:
    return [math.exp(v) for v in log_softmax_row(z)]


def msp_row(z: Sequence[float]) -> float:
    """log-MSP = z_max - logsumexp z = -log1p(sum_{k != argmax} exp(z_k - z_max))."""
    row = _row(z)
    m = max(row)
    i = _argmax(row)
    return -math.log1p(math.fsum(math.exp(v - m) for j, v in enumerate(row) if j != i))


def max_logit_row(z: Sequence[float]) -> float:
    return max(_row(z))


def logit_margin_row(z: Sequence[float]) -> float:
    row = sorted(_row(z), reverse=True)
    return row[0] - row[1]


def softmax_margin_row(z: Sequence[float]) -> float:
    p = sorted(softmax_row(z), reverse=True)
    return p[0] - p[1]


def neg_entropy_row(z: Sequence[float]) -> float:
    logp = log_softmax_row(z)
    terms = []
    for lp in logp:
        p = math.exp(lp)
        terms.append(0.0 if p == 0.0 else p * lp)
    return math.fsum(terms)


def gini_row(z: Sequence[float]) -> float:
    return math.fsum(p * p for p in softmax_row(z))


def energy_row(z: Sequence[float], temperature: float = 1.0) -> float:
    row = [v / temperature for v in _row(z)]
    m = max(row)
    return temperature * (m + math.log(math.fsum(math.exp(v - m) for v in row)))


def pnorm_row(z: Sequence[float], p: int) -> float:
    row = _row(z)
    # exact centring: x_k = z_k - mean(z) in rationals, then rounded once (constant rows -> 0)
    mu = sum((Fraction(v) for v in row), Fraction(0)) / len(row)
    x = [float(Fraction(v) - mu) for v in row]
    top = max(x)
    if p == 0:
        return top
    scale = max(abs(v) for v in x)
    if scale == 0.0:
        return 0.0
    norm = scale * math.fsum((abs(v) / scale) ** p for v in x) ** (1.0 / p)
    return top / norm


def msp_ts_row(z: Sequence[float], temperature: float) -> float:
    return msp_row([v / temperature for v in _row(z)])


def predictions(logits: Sequence[Sequence[float]]) -> list[int]:
    """argmax, first index on exact ties; one-logit rows read as (0, z)."""
    return [_argmax(_row(z)) for z in logits]


def nll(logits: Sequence[Sequence[float]], labels: Sequence[int], temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under softmax(z / T)."""
    total = []
    for z, y in zip(logits, labels, strict=True):
        total.append(-log_softmax_row([v / temperature for v in _row(z)])[int(y)])
    return math.fsum(total) / len(total)

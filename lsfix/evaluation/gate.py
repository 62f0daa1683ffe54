"""The ``compare --fail-if`` gate: rules, and their verdicts on bootstrap intervals.

A rule is ``METRIC OP VALUE`` (:func:`parse_rule`); a signed VALUE is a change from the
baseline (absolute, or relative with ``%``), an unsigned one a bound on every row.

Two ways to judge a rule on a row (``mode``):

``interval`` (the default)
    The rule's subject (the metric, or its change from the baseline) gets a bootstrap
    percentile interval at ``level`` (two-sided, 95 % by default): paired (the same
    replicates for both files) when the row and the baseline hold the same samples,
    independent draws otherwise. The rule **fails** when the whole interval breaches it,
    **passes** when none of it does, and is **inconclusive** otherwise; then
    :func:`samples_to_decide` estimates how many samples would decide it (the interval's
    half-width on the threshold's side shrinks like ``1/sqrt(n)``). A row whose subject is
    undefined passes, as before. With no true breach, a rule fails with probability at most
    about ``(1 − level)/2`` (``bench/gate_simulation.py``; docs/metrics.md, "The gate").
``point``
    The point estimate alone: fail when it breaches (lsfix 0.1's gate).

Exit codes: 4 when a rule fails, else 5 (:attr:`lsfix.errors.ExitCode.GATE_INCONCLUSIVE`)
when one is inconclusive, else 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsfix.errors import UsageError

if TYPE_CHECKING:  # numpy is imported where it is used: `compare --help` stays numpy-free
    import numpy as np

_RULE = re.compile(r"^\s*([a-z0-9_@.]+)\s*(>=|<=|>|<)\s*([+-]?)\s*([0-9.eE+-]+)\s*(%?)\s*$")
#: The VALUE of a rule: a plain unsigned decimal (``-1``, ``1e``, ``.`` and ``1.2.3`` are not)
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
GATE_MODES = ("interval", "point")
#: Verdicts of one rule on one row.
FAIL, PASS, INCONCLUSIVE = "fail", "pass", "inconclusive"


def _holds(op: str, x: float, t: float) -> bool:
    return {">": x > t, ">=": x >= t, "<": x < t, "<=": x <= t}[op]


@dataclass(frozen=True)
class Rule:
    """A gate rule: ``metric op value``; ``delta`` when signed (a change from the
    baseline), ``percent`` when relative."""

    text: str
    metric: str
    op: str
    value: float
    delta: bool
    percent: bool

    def subject(self, value: float | None, baseline: float | None) -> tuple[float | None, str]:
        """What the rule compares with its VALUE (the metric or its change), and how to
        show it; ``None`` with the reason when it is undefined."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None, "undefined"
        if not self.delta:
            return value, f"{value:.6g}"
        if baseline is None or (isinstance(baseline, float) and math.isnan(baseline)):
            return None, "baseline undefined"
        diff = value - baseline
        if self.percent:
            if baseline == 0:
                return None, "baseline is 0 (relative change undefined)"
            diff = 100.0 * diff / abs(baseline)
        unit = "%" if self.percent else ""
        return diff, f"{value:.6g} vs baseline {baseline:.6g} (change {diff:+.6g}{unit})"

    def breached(self, value: float | None, baseline: float | None) -> tuple[bool, str]:
        """The point rule: (breached, how the value reads)."""
        subject, shown = self.subject(value, baseline)
        if subject is None:
            return False, shown
        return _holds(self.op, subject, self.value), shown

    def replicate_subject(self, rep: np.ndarray, base_rep: np.ndarray | None) -> np.ndarray:
        """The subject on every bootstrap replicate (NaN where undefined)."""
        import numpy as np

        if not self.delta:
            return rep
        assert base_rep is not None
        diff = rep - base_rep
        if self.percent:
            with np.errstate(divide="ignore", invalid="ignore"):
                diff = np.where(base_rep != 0, 100.0 * diff / np.abs(base_rep), np.nan)
        return diff


def parse_rule(text: str) -> Rule:
    m = _RULE.match(text)
    if not m:
        raise UsageError(f"--fail-if {text!r}: expected METRIC OP VALUE, e.g. 'aurc>+0.002'")
    metric, op, sign, num, pct = m.groups()
    try:
        if not _NUMBER.fullmatch(num):  # float() would take '-1' after a sign: 'aurc>--1'
            raise ValueError
        val = float(num)
    except ValueError:
        raise UsageError(f"--fail-if {text!r}: {num!r} is not a number") from None
    if not math.isfinite(val):
        raise UsageError(f"--fail-if {text!r}: value must be finite")
    if pct and not sign:
        raise UsageError(f"--fail-if {text!r}: a % threshold is relative to the baseline; "
                         "give a sign, e.g. 'auroc<-1%'")
    val = -val if sign == "-" else val
    return Rule(text=text.strip(), metric=metric, op=op, value=val, delta=bool(sign),
                percent=bool(pct))


def judge_interval(op: str, threshold: float, low: float, high: float) -> str:
    """FAIL when every value of ``[low, high]`` breaches ``x OP threshold``, PASS when none
    does, INCONCLUSIVE otherwise (a NaN bound: inconclusive).

    >>> judge_interval(">", 0.0, 0.1, 0.2), judge_interval(">", 0.0, -0.2, 0.0)
    ('fail', 'pass')
    >>> judge_interval(">=", 0.0, -0.2, 0.0), judge_interval("<", 0.0, -0.2, 0.1)
    ('inconclusive', 'inconclusive')
    """
    if math.isnan(low) or math.isnan(high):
        return INCONCLUSIVE
    if op in (">", ">="):
        if _holds(op, low, threshold):
            return FAIL
        return PASS if not _holds(op, high, threshold) else INCONCLUSIVE
    if _holds(op, high, threshold):
        return FAIL
    return PASS if not _holds(op, low, threshold) else INCONCLUSIVE


def samples_to_decide(estimate: float, low: float, high: float, threshold: float, n: int
                      ) -> int | None:
    """About how many samples would make the interval exclude ``threshold``, if the estimate
    stayed where it is and the interval shrank like ``1/sqrt(n)``: the half-width on the
    threshold's side, ``w``, must fall below ``|estimate − threshold|``, so
    ``n' = ⌈n · (w / |estimate − threshold|)²⌉``. ``None`` when the estimate sits on the
    threshold (no sample size decides it).

    >>> samples_to_decide(0.5, 0.0, 1.0, 0.25, 100)
    400
    """
    gap = abs(estimate - threshold)
    w = (estimate - low) if estimate > threshold else (high - estimate)
    if gap == 0 or not math.isfinite(w) or not math.isfinite(gap):
        return None
    return int(math.ceil(n * (w / gap) ** 2 - 1e-9))


@dataclass(frozen=True)
class Check:
    """One rule on one row."""

    rule: Rule
    file: str
    score: str
    verdict: str
    estimate: float | None
    low: float | None
    high: float | None
    shown: str
    mode: str
    n: int
    n_needed: int | None = None
    paired: bool | None = None

    def line(self) -> str:
        """How the check reads on stderr and in reports."""
        if self.mode == "point" or self.low is None or self.high is None:
            return f"{self.rule.metric} {self.shown}"
        unit = "%" if self.rule.percent else ""
        what = "change" if self.rule.delta else self.rule.metric
        iv = f"{what} interval [{self.low:+.6g}{unit}, {self.high:+.6g}{unit}]"
        if self.paired is False:
            iv += " (unpaired)"
        out = f"{self.rule.metric} {self.shown}; {iv}"
        if self.verdict == INCONCLUSIVE:
            out += (f"; about {self.n_needed:,} samples (now {self.n:,}) would decide it"
                    if self.n_needed is not None else
                    "; the estimate sits on the threshold: no sample size decides it")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.text, "file": self.file, "score": self.score,
                "verdict": self.verdict, "mode": self.mode, "estimate": self.estimate,
                "low": self.low, "high": self.high, "n": self.n, "n_needed": self.n_needed,
                "paired": self.paired, "shown": self.line()}


def _pct(reps: np.ndarray, level: float) -> tuple[float, float]:
    import numpy as np

    ok = reps[~np.isnan(reps)]
    if ok.shape[0] < 2:
        return math.nan, math.nan
    lo, hi = np.percentile(ok, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def check_rule(rule: Rule, *, file: str, score: str, value: float | None,
               baseline: float | None, mode: str, n: int, level: float = 0.95,
               rep: np.ndarray | None = None, base_rep: np.ndarray | None = None,
               paired: bool | None = None) -> Check:
    """Judge ``rule`` on one row (``value``, its baseline's, and with ``mode="interval"``
    their bootstrap replicates ``rep``/``base_rep``)."""
    subject, shown = rule.subject(value, baseline)
    if subject is None:
        return Check(rule, file, score, PASS, None, None, None, shown, mode, n)
    if mode == "point":
        v = FAIL if _holds(rule.op, subject, rule.value) else PASS
        return Check(rule, file, score, v, subject, None, None, shown, mode, n)
    assert rep is not None
    lo, hi = _pct(rule.replicate_subject(rep, base_rep), level)
    verdict = judge_interval(rule.op, rule.value, lo, hi)
    need = (samples_to_decide(subject, lo, hi, rule.value, n)
            if verdict == INCONCLUSIVE and not math.isnan(lo) else None)
    return Check(rule, file, score, verdict, subject, lo, hi, shown, mode, n, need,
                 paired if rule.delta else None)


def outcome(checks: list[Check]) -> str:
    """``failed``, ``inconclusive`` or ``passed`` for a list of checks."""
    if any(c.verdict == FAIL for c in checks):
        return "failed"
    if any(c.verdict == INCONCLUSIVE for c in checks):
        return "inconclusive"
    return "passed"

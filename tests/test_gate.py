"""lsfix.evaluation.gate: verdicts on intervals, the sample size that would decide, rule
subjects."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsfix.evaluation.gate import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    check_rule,
    judge_interval,
    outcome,
    parse_rule,
    samples_to_decide,
)


def _plain_verdict(op: str, t: float, lo: float, hi: float) -> str:
    """Reference: breach at a point x is ``x OP t``; fail when both ends breach (the set of
    breaching values is a half-line, so both ends breaching means all of [lo, hi] does),
    pass when neither does and no value between them does."""
    def breach(x: float) -> bool:
        return eval(f"{x!r} {op} {t!r}")  # noqa: S307  (the four operators, written plainly)
    grid = np.linspace(lo, hi, 101) if hi > lo else np.array([lo])
    hits = [breach(float(x)) for x in grid]
    if all(hits):
        return FAIL
    if not any(hits):
        return PASS
    return INCONCLUSIVE


@given(st.sampled_from([">", ">=", "<", "<="]), st.integers(-3, 3), st.integers(-3, 3),
       st.integers(0, 4))
def test_judge_interval_against_a_plain_reference(op: str, t: int, lo: int, width: int
                                                  ) -> None:
    assert judge_interval(op, float(t), float(lo), float(lo + width)) == \
        _plain_verdict(op, float(t), float(lo), float(lo + width))


@pytest.mark.parametrize(("op", "want"), [(">", PASS), (">=", FAIL), ("<", PASS),
                                          ("<=", FAIL)])
def test_a_point_interval_on_the_threshold(op: str, want: str) -> None:
    assert judge_interval(op, 0.5, 0.5, 0.5) == want


def test_nan_bounds_are_inconclusive() -> None:
    assert judge_interval(">", 0.0, math.nan, 1.0) == INCONCLUSIVE


def test_samples_to_decide() -> None:
    # half-width 0.5 on the threshold's side, gap 0.25: n (0.5/0.25)^2 = 4n
    assert samples_to_decide(0.5, 0.0, 1.0, 0.25, 100) == 400
    assert samples_to_decide(0.5, 0.0, 1.0, 0.75, 100) == 400  # the other side
    assert samples_to_decide(0.5, 0.0, 1.0, 0.5, 100) is None  # on the threshold


def test_relative_subject_per_replicate() -> None:
    rule = parse_rule("aurc>+10%")
    rep = np.array([1.1, 1.0, 2.0])
    base = np.array([1.0, 0.0, 1.0])
    got = rule.replicate_subject(rep, base)
    assert got[0] == pytest.approx(10.0) and math.isnan(got[1]) and got[2] == 100.0
    assert rule.subject(1.1, 1.0)[0] == pytest.approx(10.0)
    assert rule.subject(1.1, 0.0) == (None, "baseline is 0 (relative change undefined)")


def test_check_rule_interval_and_outcome() -> None:
    rule = parse_rule("aurc>+0.01")
    base = np.zeros(100)
    c = check_rule(rule, file="b", score="s", value=0.05, baseline=0.0, mode="interval", n=50,
                   rep=np.linspace(0.02, 0.08, 100), base_rep=base, paired=True)
    assert c.verdict == FAIL and c.low > 0.01
    c2 = check_rule(rule, file="b", score="s", value=0.02, baseline=0.0, mode="interval", n=50,
                    rep=np.linspace(-0.01, 0.05, 100), base_rep=base, paired=True)
    assert c2.verdict == INCONCLUSIVE and c2.n_needed is not None
    assert "would decide it" in c2.line()
    assert outcome([c]) == "failed" and outcome([c2]) == "inconclusive"
    assert outcome([]) == "passed"
    und = check_rule(rule, file="b", score="s", value=None, baseline=0.0, mode="interval", n=5)
    assert und.verdict == PASS and und.shown == "undefined"

"""lsfix.core.selection: replicate AURCs against a plain reference, and the selection test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import aurc
from lsfix.core.bootstrap import _replicate_counts
from lsfix.core.metrics import CONVENTIONS
from lsfix.core.selection import replicate_aurcs, select_better


def _plain_aurc(c: np.ndarray, y: np.ndarray, convention: str) -> float:
    """The slow reference: the replicate written out (rows repeated), then lsfix.aurc, which
    is itself tested against the risk-coverage definitions."""
    return aurc(c, y, convention)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("ties", [False, True])
def test_replicate_aurcs_equal_the_repeated_rows(convention: str, ties: bool) -> None:
    rng = np.random.default_rng(3)
    n = 400
    c = rng.random(n)
    if ties:
        c = np.round(c, 1)
    y = rng.random(n) < 0.7
    w = np.stack([x for x in _replicate_counts(n, None, 7, 1) if x is not None])
    got = replicate_aurcs(c, y, w, convention=convention)
    for i in range(w.shape[0]):
        k = w[i].astype(int)
        want = _plain_aurc(np.repeat(c, k), np.repeat(y, k), convention)
        assert got[i] == pytest.approx(want, rel=1e-12, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.integers(0, 3)), min_size=1,
                max_size=30),
       st.sampled_from(["lsfix", "xia", "torch-uncertainty"]))
def test_replicate_aurcs_any_weights(rows: list[tuple[int, bool, int]], convention: str
                                     ) -> None:
    c = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[1] for r in rows])
    k = np.array([r[2] for r in rows])
    if k.sum() == 0:
        k[0] = 1
    got = replicate_aurcs(c, y, k[None, :].astype(float), convention=convention)[0]
    want = _plain_aurc(np.repeat(c, k), np.repeat(y, k), convention)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def _data(n: int, gain: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.85
    base = 1.0 * y + rng.standard_normal(n)
    better = (1.0 + gain) * y + rng.standard_normal(n)
    return base, better, y


def test_a_clearly_better_score_is_chosen_with_its_bounds() -> None:
    base, better, y = _data(3000, 1.5, 0)
    sel = select_better([("noise", base + 0.01), ("better", better)], ("msp", base), y,
                        n_boot=300, seed=1)
    assert sel.choice == "better" == sel.point_choice
    c = sel.candidate("better")
    assert c.delta == pytest.approx(aurc(better, y) - aurc(base, y), rel=0, abs=0)
    assert c.low <= c.delta <= c.high < 0 and c.better
    assert sel.stability == sel.picks["better"] / 300 and sel.stability > 0.9
    assert sum(sel.picks.values()) == 300


def test_no_true_gain_keeps_the_baseline_most_of_the_time() -> None:
    # exchangeable candidates: a switch is a false one; at 95 % it happens rarely
    switches = 0
    for seed in range(30):
        base, other, y = _data(400, 0.0, seed)
        rng = np.random.default_rng(100 + seed)
        cands = [(f"c{i}", 1.0 * y + rng.standard_normal(400)) for i in range(5)]
        sel = select_better(cands, ("msp", base), y, n_boot=200, seed=seed)
        switches += sel.choice is not None
    assert switches <= 4  # expected about 1.5 of 30 (5 %); the point rule switches ~25


def test_a_copy_of_the_baseline_is_never_better() -> None:
    base, _, y = _data(500, 0.0, 2)
    sel = select_better([("same", base.copy())], ("msp", base), y, n_boot=50)
    c = sel.candidate("same")
    assert (c.delta, c.low, c.high, c.sd) == (0.0, 0.0, 0.0, 0.0)
    assert sel.choice is None and sel.point_choice is None and math.isnan(sel.critical)
    assert sel.stability == 1.0 and sel.picks == {None: 50}


def test_selection_is_reproducible_and_serialisable() -> None:
    base, better, y = _data(800, 0.5, 4)
    a = select_better([("b", better)], ("msp", base), y, n_boot=100, seed=7)
    b = select_better([("b", better)], ("msp", base), y, n_boot=100, seed=7)
    assert a.to_dict() == b.to_dict()
    d = a.to_dict()
    assert d["candidates"][0]["name"] == "b" and d["level"] == 0.95 and d["n"] == 800

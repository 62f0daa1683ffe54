"""Block-only metrics (lsfix.core.blockmetrics): every metric from tie-block totals read a
window at a time equals, bit for bit, the whole-array numpy formulas it replaces, and the
slow exact reference within float rounding.

``np_whole_array`` below is an independent, deliberately naive rewrite of the whole-array
expressions (every per-sample array materialised, summed with one ``np.sum``), so a change in
the windowed code that moved a single rounding would fail here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import CONVENTIONS, evaluate, metrics_from_blocks, tie_blocks
from lsfix.core import blockmetrics as bm
from lsfix.core.spill import SpilledBlocks

from . import reference as R
from ._compare import assert_metrics_match

COVS = (0.1, 0.5, 0.8, 1.0)
RISKS = (0.0, 0.05, 0.2, 0.5, 1.0)


def np_whole_array(conf: np.ndarray, correct: np.ndarray, convention: str) -> dict[str, float]:
    """AURC, AUGRC, oracle and AUROC from full per-sample arrays (the pre-window formulas)."""
    order = np.argsort(-conf, kind="stable")
    c, y = conf[order], correct[order]
    n = c.shape[0]
    new = np.ones(n, dtype=bool)
    new[1:] = c[1:] != c[:-1]
    starts = np.flatnonzero(new)
    size = np.diff(np.append(starts, n))
    errors = np.add.reduceat((~y).astype(np.int64), starts)
    ends = np.cumsum(size)
    f_cum = np.cumsum(errors)
    if size.shape[0] == n:
        e = f_cum.astype(np.float64)
    else:
        k = np.arange(1, n + 1, dtype=np.float64)
        j = k - np.repeat((ends - size).astype(np.float64), size)
        e = (np.repeat((f_cum - errors).astype(np.float64), size)
             + j * np.repeat(errors / size, size))
    risk = e / np.arange(1, n + 1, dtype=np.float64)
    n_err = int(errors.sum())
    q = n_err / n
    g = float(np.sum(risk)) / n
    out = {}
    if convention == "fd-shifts":
        cov = ends / n
        r_end = f_cum / ends
        area = cov[0] * r_end[0]
        if size.shape[0] > 1:
            area += float(np.sum(np.diff(cov) * (r_end[1:] + r_end[:-1]) * 0.5))
        out["aurc"] = float(area)
    elif convention == "lsfix":
        out["aurc"] = g
    elif convention == "xia":
        out["aurc"] = g - q / (2 * n)
    else:
        out["aurc"] = math.nan if n == 1 else (g - (float(risk[0]) + q) / (2 * n)) / (1 - 1 / n)
    augrc = float(np.sum(e)) / (n * n) - q / (2 * n)
    if convention == "torch-uncertainty":
        augrc = math.nan if n == 1 else (augrc - float(e[0]) / (2 * n * n)) / (1 - 1 / n)
    out["augrc"] = augrc
    if convention != "fd-shifts":
        jj = np.arange(1, n_err + 1, dtype=np.float64)
        go = float(np.sum(jj / ((n - n_err) + jj))) / n
        if convention == "lsfix":
            out["oracle_aurc"] = go
        elif convention == "xia":
            out["oracle_aurc"] = go - q / (2 * n)
        elif n > 1:
            r1 = 1.0 if n_err == n else 0.0
            out["oracle_aurc"] = (go - (r1 + q) / (2 * n)) / (1 - 1 / n)
    out["risks"] = risk  # type: ignore[assignment]
    out["e"] = e  # type: ignore[assignment]
    return out


def _same(a: float, b: float) -> bool:
    return repr(float(a)) == repr(float(b))


@pytest.fixture
def tiny_leaf(monkeypatch):
    """Leaves of 128 terms (the smallest the replay allows): many leaves on small inputs."""
    monkeypatch.setattr(bm, "LEAF", 128)


def _data(seed: int, n: int, distinct: int, p_wrong: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.integers(0, distinct, n) / 3.0 if distinct else rng.random(n)
    return conf, rng.random(n) >= p_wrong


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), distinct=st.sampled_from([0, 1, 2, 5, 40, 1000]),
       p_wrong=st.sampled_from([0.0, 0.05, 0.5, 1.0]), window=st.integers(1, 50),
       seed=st.integers(0, 2**32 - 1))
def test_windowed_blocks_equal_whole_array_formulas(n, distinct, p_wrong, window, seed):
    old = bm.LEAF
    bm.LEAF = 128
    try:
        conf, correct = _data(seed, n, distinct, p_wrong)
        b = tie_blocks(conf, correct)
        src = bm.ArrayBlocks(b.size, b.errors, window=window)
        for cv in CONVENTIONS:
            m = metrics_from_blocks(src, convention=cv, coverages=COVS, risks=RISKS)
            want = np_whole_array(conf, correct, cv)
            assert _same(m.aurc, want["aurc"]), cv
            assert _same(m.augrc, want["augrc"]), cv
            if "oracle_aurc" in want:
                assert _same(m.oracle_aurc, want["oracle_aurc"]), cv
            for p in m.risk_at_coverage:
                assert _same(p.risk, want["e"][p.k - 1] / p.k)
            for p in m.coverage_at_risk:
                if p.k:
                    assert _same(p.risk, want["risks"][p.k - 1])
            # and the in-memory entry point gives the same object
            assert repr(m) == repr(evaluate(conf, correct, convention=cv, coverages=COVS,
                                            risks=RISKS))
    finally:
        bm.LEAF = old


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), distinct=st.integers(1, 8), seed=st.integers(0, 2**32 - 1),
       window=st.integers(1, 7))
def test_windowed_blocks_match_exact_reference(n, distinct, seed, window):
    conf, correct = _data(seed, n, distinct, 0.3)
    b = tie_blocks(conf, correct)
    src = bm.ArrayBlocks(b.size, b.errors, window=window)
    for cv in CONVENTIONS:
        m = metrics_from_blocks(src, convention=cv, coverages=(0.5, 0.9), risks=(0.1, 0.4))
        assert_metrics_match(m, conf, correct, cv, (0.5, 0.9), (0.1, 0.4))


def test_coverage_at_risk_exactly_at_an_achieved_risk(tiny_leaf):
    """Targets equal to achieved risks go through the exact rational check at leaf seams."""
    conf, correct = _data(3, 2000, 30, 0.2)
    e = np_whole_array(conf, correct, "lsfix")["risks"]
    targets = tuple(sorted({float(x) for x in e[::97]}))
    b = tie_blocks(conf, correct)
    got = metrics_from_blocks(bm.ArrayBlocks(b.size, b.errors, window=3), risks=targets)
    exact_e = R.expected_errors(conf.tolist(), correct.tolist())
    for p in got.coverage_at_risk:
        assert p.k == R.coverage_at_risk(exact_e, p.target)[0], p.target


@pytest.mark.parametrize("n", [1, 7, 8, 127, 128, 129, 1000, 65537, 300_001])
def test_pairwise_replay_equals_np_sum(n, tiny_leaf):
    x = np.random.default_rng(n).random(n) * np.exp(np.random.default_rng(1).normal(size=n) * 8)
    pos = [0]

    def take(length):
        out = x[pos[0] : pos[0] + length]
        pos[0] += length
        return out

    assert repr(bm.pairwise_sum(take, n)) == repr(float(np.sum(x)))
    assert pos[0] == n


def test_block_file_from_spilled_runs_equals_in_memory(tmp_path, tiny_leaf):
    conf, correct = _data(5, 20_000, 700, 0.25)
    conf[:3000] = np.linspace(0, 1, 3000)  # distinct values too
    with SpilledBlocks(run_rows=1500, window=64, folder=tmp_path) as sb:
        for part in np.array_split(np.arange(conf.shape[0]), 7):
            sb.add(conf[part], correct[part])
        bf = sb.block_file()
        bf.window = 97
        assert len(sb.runs) == 14
        for cv in CONVENTIONS:
            kw = {"convention": cv, "coverages": COVS, "risks": RISKS}
            assert repr(metrics_from_blocks(bf, **kw)) == repr(evaluate(conf, correct, **kw))
    assert not any(tmp_path.iterdir())


def test_block_source_in_memory_below_one_run(tmp_path):
    conf, correct = _data(9, 500, 40, 0.3)
    with SpilledBlocks(run_rows=1000, folder=tmp_path) as sb:
        sb.add(conf, correct)
        src = sb.block_source()
        assert isinstance(src, bm.ArrayBlocks) and not sb.runs  # nothing written
        assert repr(metrics_from_blocks(src, coverages=COVS, risks=RISKS)) == repr(
            evaluate(conf, correct, coverages=COVS, risks=RISKS))
    with SpilledBlocks(run_rows=100, folder=tmp_path) as sb:
        sb.add(conf, correct)
        src = sb.block_source()
        assert not isinstance(src, bm.ArrayBlocks) and len(sb.runs) == 5
        assert repr(metrics_from_blocks(src, coverages=COVS, risks=RISKS)) == repr(
            evaluate(conf, correct, coverages=COVS, risks=RISKS))

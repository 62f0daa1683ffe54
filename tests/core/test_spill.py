"""Tie blocks from spilled sorted runs equal the in-memory ones: every metric bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import CONVENTIONS, evaluate, metrics_from_blocks, tie_blocks
from lsfix.core.spill import SpilledBlocks


def _same_metrics(blocks, conf, correct):
    for cv in CONVENTIONS:
        kw = {"convention": cv, "coverages": (0.5, 0.9), "risks": (0.05, 0.2)}
        a = dataclasses.asdict(metrics_from_blocks(blocks, **kw))
        b = dataclasses.asdict(evaluate(conf, correct, **kw))
        assert repr(a) == repr(b), cv  # repr: NaN == NaN, and bit-identical floats


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 400), distinct=st.integers(1, 50), run_rows=st.integers(1, 64),
       window=st.integers(1, 16), pieces=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_spilled_blocks_equal_in_memory(n, distinct, run_rows, window, pieces, seed):
    rng = np.random.default_rng(seed)
    conf = rng.integers(0, distinct, n) / 7.0  # heavy ties
    correct = rng.random(n) < 0.7
    with SpilledBlocks(run_rows=run_rows, window=window) as sb:
        for part in np.array_split(np.arange(n), pieces):
            sb.add(conf[part], correct[part])
        got = sb.blocks()
    want = tie_blocks(conf, correct)
    np.testing.assert_array_equal(got.value, want.value)
    np.testing.assert_array_equal(got.size, want.size)
    np.testing.assert_array_equal(got.errors, want.errors)
    _same_metrics(got, conf, correct)


def test_many_runs_no_ties_and_saturated_values():
    rng = np.random.default_rng(0)
    conf = np.concatenate([rng.normal(size=5000), np.zeros(300), np.full(200, -1e-300)])
    correct = rng.random(conf.shape[0]) < 0.8
    with SpilledBlocks(run_rows=333, window=17) as sb:
        sb.add(conf, correct)
        assert len(sb.runs) == 16
        got = sb.blocks()
    _same_metrics(got, conf, correct)


def test_the_folder_is_removed(tmp_path):
    sb = SpilledBlocks(run_rows=2, folder=tmp_path)
    sb.add([0.1, 0.2, 0.3], [True, False, True])
    assert any(tmp_path.iterdir())
    sb.close()
    assert not any(tmp_path.iterdir())


def test_nothing_added_is_an_error():
    with SpilledBlocks() as sb, pytest.raises(ValueError):
        sb.blocks()

"""The sample sort of :mod:`lsfix.core.partition` gives exactly the one-process tie blocks,
so every metric in every convention is bit-identical (compared by ``repr``: NaN == NaN)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import CONVENTIONS, evaluate, metrics_from_blocks, tie_blocks
from lsfix.core.metrics import Blocks
from lsfix.core.partition import (
    choose_splitters,
    concat_blocks,
    merge_blocks,
    partial_blocks,
    partitioned_blocks,
    split_blocks,
)


def _same_blocks(a: Blocks, b: Blocks) -> None:
    assert a.size.dtype == b.size.dtype == np.int64
    assert a.errors.dtype == b.errors.dtype == np.int64
    assert a.size.tolist() == b.size.tolist()
    assert a.errors.tolist() == b.errors.tolist()
    assert a.value.tolist() == b.value.tolist()  # -0.0 == 0.0: the block's zero may differ


def _slow_blocks(c: list[float], y: list[bool]) -> list[tuple[float, int, int]]:
    """Reference: a dictionary of value -> (size, errors), read in descending order."""
    d: dict[float, list[int]] = {}
    for v, ok in zip(c, y, strict=True):
        e = d.setdefault(v + 0.0, [0, 0])
        e[0] += 1
        e[1] += int(not ok)
    return [(v, m, f) for v, (m, f) in sorted(d.items(), reverse=True)]


values = st.lists(st.sampled_from([-1.0, -0.0, 0.0, 0.25, 0.5, 0.5, 1.0, 2.0, 1e300, -np.inf,
                                   np.inf]) | st.floats(-3, 3, allow_nan=False),
                  min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(c=values, data=st.data())
def test_partitioned_blocks_equal_one_process(c: list[float], data: st.DataObject) -> None:
    n = len(c)
    y = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    bounds = sorted(set(data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=6))))
    bounds = [b for b in bounds if 0 < b < n]
    ranges = data.draw(st.integers(1, 9))
    got = partitioned_blocks(c, y, bounds=bounds, ranges=ranges)
    want = tie_blocks(c, y)
    _same_blocks(got, want)
    ref = _slow_blocks(c, y)
    assert [(m, f) for _, m, f in ref] == list(zip(got.size.tolist(), got.errors.tolist(),
                                                   strict=True))
    for cv in CONVENTIONS:
        kw = {"coverages": (0.1, 0.5, 1.0), "risks": (0.0, 0.2, 0.5)}
        assert repr(metrics_from_blocks(got, convention=cv, **kw)) == repr(
            evaluate(c, y, convention=cv, **kw))


def test_every_row_split_and_every_splitter_set_agree() -> None:
    rng = np.random.default_rng(3)
    c = rng.integers(0, 7, 200).astype(float) / 7  # heavy ties
    y = rng.random(200) < 0.7
    want = tie_blocks(c, y)
    for bounds in ([], [1], [199], [50, 51, 52], list(range(10, 200, 10))):
        for ranges in (1, 2, 3, 7, 50):
            _same_blocks(partitioned_blocks(c, y, bounds=bounds, ranges=ranges), want)


def test_a_tie_block_never_straddles_two_ranges() -> None:
    b = tie_blocks([3.0, 2.0, 2.0, 1.0, 0.0, -0.0], [1, 0, 1, 1, 0, 1])
    pieces = split_blocks(b, np.array([0.0, 2.0]))
    assert [p.value.tolist() for p in pieces] == [[], [1.0, 0.0], [3.0, 2.0]]
    assert pieces[1].size.tolist() == [1, 2] and pieces[1].errors.tolist() == [0, 1]


def test_merge_sums_equal_values_and_keeps_descending_order() -> None:
    a = tie_blocks([0.5, 0.5, 0.2], [1, 0, 1])
    b = tie_blocks([0.9, 0.5, 0.1], [0, 0, 1])
    m = merge_blocks([a, b])
    assert m.value.tolist() == [0.9, 0.5, 0.2, 0.1]
    assert m.size.tolist() == [1, 3, 1, 1] and m.errors.tolist() == [1, 2, 0, 0]
    assert concat_blocks([]).n == 0 and merge_blocks([]).n == 0


@pytest.mark.parametrize("ranges", [1, 2, 5])
def test_splitters_are_distinct_ascending_and_at_most_ranges_minus_one(ranges: int) -> None:
    s = choose_splitters([3, 1, 1, 1, 1, 2, -0.0, 0.0], ranges)
    assert s.shape[0] <= ranges - 1
    assert np.all(np.diff(s) > 0)
    assert not np.signbit(s).any()


def test_empty_partition_gives_empty_pieces() -> None:
    parts = partial_blocks(np.zeros(0), np.zeros(0, dtype=bool), np.array([0.5]))
    assert len(parts) == 2 and all(p.n == 0 for p in parts)

"""``extract`` stores labels in the smallest integer dtype that holds the classes and the
ignore index, and never wraps a value that does not fit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsfix.errors import RuntimeFailure
from lsfix.extract.writer import _check_fits, label_dtype


@pytest.mark.parametrize("k,ignore,want", [
    (19, 255, np.uint8), (19, None, np.uint8), (256, None, np.uint8), (257, None, np.uint16),
    (10, -100, np.int8), (10, -1, np.int8), (200, -1, np.int16), (1000, None, np.uint16),
    (1000, -100, np.int16), (2, None, np.uint8), (1, None, np.uint8), (19, 256, np.uint16),
    (70000, None, np.uint32), (10, -(2**40), np.int64),
])
def test_smallest_dtype(k, ignore, want):
    assert label_dtype(k, ignore) == np.dtype(want)


@given(k=st.integers(1, 2**33), ignore=st.none() | st.integers(-(2**40), 2**40))
def test_every_label_and_the_ignore_index_round_trip(k, ignore):
    dt = label_dtype(k, ignore)
    values = [0, max(1, k - 1)] + ([] if ignore is None else [ignore])
    a = np.array(values, dtype=np.int64)
    assert np.array_equal(a.astype(dt).astype(np.int64), a)
    for smaller in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32):
        if np.dtype(smaller).itemsize < dt.itemsize:  # no smaller type would do
            info = np.iinfo(smaller)
            assert min(values) < info.min or max(values) > info.max


def test_a_label_that_does_not_fit_is_refused_not_wrapped():
    _check_fits(np.array([0, 18, 255]), np.dtype(np.uint8), "x.h5")
    with pytest.raises(RuntimeFailure, match="label 256 does not fit the file's uint8"):
        _check_fits(np.array([0, 256]), np.dtype(np.uint8), "x.h5")
    with pytest.raises(RuntimeFailure, match="label -1 does not fit"):
        _check_fits(np.array([-1, 3]), np.dtype(np.uint8), "x.h5")

"""An extract output stopped in the middle of an ``append`` ends at its committed rows.

A SIGINT/SIGTERM raises ``KeyboardInterrupt`` between two Python steps, so it can land after an
append has grown ``/logits`` but before it counted the rows. ``close`` (what the interrupted run
calls) must leave every dataset at the committed row count, whatever the timing: this test
puts the interrupt at that exact step instead of waiting for a lucky signal.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lsfix.extract.writer import ATTR_ROWS_DONE, LABELS, LOGITS, SAMPLE_IDS, ChunkedWriter


class _InterruptedIds:
    """Sample ids whose iteration raises what a signal handler raises."""

    def __len__(self) -> int:
        return 16

    def __iter__(self):
        raise KeyboardInterrupt


def test_a_stop_inside_append_leaves_only_committed_rows(tmp_path):
    out = tmp_path / "out.h5"
    w = ChunkedWriter.create(out, job={"j": 1}, rows_total=64, provenance={}, history=[],
                             sync_every=0.0)
    w.init_datasets((5,), np.dtype(np.float32), label_shape=(), transforms={},
                    class_names=None, ignore_index=None)
    rng = np.random.default_rng(0)
    first = rng.normal(size=(16, 5)).astype(np.float32)
    w.append(first, np.arange(16), [f"s{i}" for i in range(16)])  # committed (sync_every=0)
    with pytest.raises(KeyboardInterrupt):
        w.append(rng.normal(size=(16, 5)).astype(np.float32), np.arange(16), _InterruptedIds())
    assert w.f[LOGITS].shape[0] == 32  # the half-appended batch grew the datasets
    w.close()
    with h5py.File(out, "r") as f:
        assert int(f.attrs[ATTR_ROWS_DONE]) == 16
        for name in (LOGITS, LABELS, SAMPLE_IDS):
            assert f[name].shape[0] == 16, name
        np.testing.assert_array_equal(f[LOGITS][()], first)

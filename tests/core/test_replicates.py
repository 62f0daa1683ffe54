"""lsfix.core.replicates: the kept replicates are bootstrap_ci's and paired_bootstrap's."""

from __future__ import annotations

import numpy as np
import pytest

from lsfix.core import bootstrap_ci, bootstrap_metrics, paired_bootstrap
from lsfix.core.replicates import metric_replicates


def _data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.8
    return np.round(rng.random(n) + 0.4 * y, 2), rng.random(n) + 0.2 * y, y


def test_percentiles_of_the_replicates_are_bootstrap_ci() -> None:
    a, _, y = _data()
    reps = metric_replicates(a, y, n_boot=150, seed=5, coverages=(0.8,), risks=(0.1,))
    ci = bootstrap_ci(a, y, n_boot=150, seed=5, coverages=(0.8,), risks=(0.1,))
    assert set(reps) == set(ci) == {*bootstrap_metrics(), "risk@0.8", "coverage@0.1"}
    for name, iv in ci.items():
        ok = reps[name][~np.isnan(reps[name])]
        lo, hi = np.percentile(ok, [50 * (1 - 0.95), 50 * (1 + 0.95)])
        assert (lo, hi, ok.shape[0]) == (iv.low, iv.high, iv.n_valid), name


def test_same_seed_gives_the_paired_bootstrap() -> None:
    a, b, y = _data()
    ra = metric_replicates(a, y, n_boot=120, seed=2)
    rb = metric_replicates(b, y, n_boot=120, seed=2)
    for metric in ("aurc", "auroc", "eaurc"):
        d = paired_bootstrap(a, y, b, y, n_boot=120, seed=2, metric=metric)
        lo, hi = np.percentile(rb[metric] - ra[metric], [50 * (1 - 0.95), 50 * (1 + 0.95)])
        assert (lo, hi) == (d.low, d.high), metric


@pytest.mark.parametrize("convention", ["lsfix", "xia", "torch-uncertainty", "fd-shifts"])
def test_aurc_alone_matches_the_block_metrics(convention: str) -> None:
    a, _, y = _data(500, 3)
    fast = metric_replicates(a, y, n_boot=80, seed=1, metrics=("aurc",), convention=convention)
    slow = metric_replicates(a, y, n_boot=80, seed=1, metrics=("aurc", "accuracy"),
                             convention=convention)
    np.testing.assert_allclose(fast["aurc"], slow["aurc"], rtol=1e-12, atol=0)

"""Probability detection (:mod:`lsfix.readers.kind`) on the rows real pipelines save: one-hot
rows, clipped probabilities and float32 softmax that underflows to exact 0s and 1s are
probabilities; sigmoid outputs in [0, 1] that do not sum to 1 are not (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest

from lsfix.core import compute_scores, parse_score
from lsfix.readers import kind


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _one_hot(n: int, k: int, seed: int = 0) -> np.ndarray:
    y = np.random.default_rng(seed).integers(0, k, n)
    p = np.zeros((n, k))
    p[np.arange(n), y] = 1.0
    return p


def _clipped(n: int, k: int, seed: int = 0) -> np.ndarray:
    """torch.clamp(p, 1e-7, 1 - 1e-7) as losses do: rows sum to 1 within a few 1e-7."""
    z = np.random.default_rng(seed).normal(0, 20, (n, k))
    return np.clip(_softmax(z), 1e-7, 1 - 1e-7)


def _float32_underflow(n: int, k: int, seed: int = 0) -> np.ndarray:
    """softmax in float32 of confident logits: exact 0.0 and exact 1.0 entries."""
    z = np.random.default_rng(seed).normal(0, 60, (n, k)).astype(np.float32)
    p = _softmax(z.astype(np.float32)).astype(np.float32)
    assert (p == 0).any() and (p == 1).any()
    return p


@pytest.mark.parametrize("make", [_one_hot, _clipped, _float32_underflow])
def test_rows_with_exact_zeros_and_ones_are_probabilities(make) -> None:  # noqa: ANN001
    p = make(300, 5)
    assert ((p == 0) | (p == 1)).any() or make is _clipped
    assert kind.detect(np.asarray(p, dtype=np.float64), binary=False) == "probs"


@pytest.mark.parametrize("make", [_one_hot, _float32_underflow])
def test_a_whole_file_of_such_rows_is_read_as_probabilities(make) -> None:  # noqa: ANN001
    """Through :func:`kind.apply`: a note is said, and every score is computed on
    ``log(max(p, tiny))`` (the module's definition), not on ``p`` read as logits."""
    from lsfix.core.source import ArrayRows

    class _Pred:
        name = "p.npy"

    p = np.asarray(make(50, 5), dtype=np.float64)
    pred = _Pred()
    pred.logits = ArrayRows(p)
    said = kind.apply(pred, None)
    assert said is not None and "read as probabilities" in said
    assert isinstance(pred.logits, kind.ProbRows)
    specs = [parse_score(s) for s in ("msp", "max_logit", "neg_entropy")]
    got = compute_scores(pred.logits, specs)
    want = compute_scores(ArrayRows(np.log(np.maximum(p, kind.TINY))), specs)
    naive = compute_scores(ArrayRows(p), specs)
    for key in got:
        np.testing.assert_array_equal(got[key], want[key])
    assert not np.array_equal(got["max_logit"], naive["max_logit"])


def test_sigmoid_outputs_in_unit_interval_are_not_probabilities() -> None:
    """Multi-label heads: sigmoid per class, every value in [0, 1], rows summing to anything.
    They stay logits (no note), as ``--input`` documents."""
    z = np.random.default_rng(1).normal(0, 3, (400, 5))
    s = 1.0 / (1.0 + np.exp(-z))
    assert ((s >= 0) & (s <= 1)).all()
    assert kind.detect(s, binary=False) is None


def test_sigmoid_rows_that_happen_to_sum_near_one_are_not_all_probabilities() -> None:
    """One row summing to 1 among many that do not: still logits (every row must pass)."""
    s = 1.0 / (1.0 + np.exp(-np.random.default_rng(2).normal(0, 3, (100, 2))))
    s[0] = (0.25, 0.75)
    assert kind.detect(s, binary=False) is None


def test_log_of_one_hot_rows_are_log_probabilities() -> None:
    """log p of a clipped one-hot row: 0 and log(1e-7), logsumexp within 1e-6 of 0."""
    lp = np.log(np.clip(_one_hot(100, 4), 1e-12, 1.0))
    assert kind.detect(lp, binary=False) == "log-probs"

"""A new score or metric is one registration in one module: from there it reaches parsing,
computation, the CLI's choices and completion, JSON, tables, the bootstrap and the gate.

The toy score and metric below are the whole diff a contributor writes (plus a kernel
test): ``@register_score`` in ``lsfix/core/scores.py`` and ``@register_metric`` in
``lsfix/core/metrics.py``. Here they are registered for the test and removed after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lsfix
import lsfix.cli.commands  # noqa: F401  (registers the commands)
from lsfix.cli.app import app
from lsfix.cli.helptext import value_choices
from lsfix.core import metrics as core_metrics
from lsfix.core import scores as core_scores

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = str(ROOT / "sample_data" / "fmnist_ls02_test.h5")
SAMPLE_CE = str(ROOT / "sample_data" / "fmnist_ce_test.h5")


@pytest.fixture()
def toy() -> Iterator[None]:
    before = (dict(core_scores.SCORES), dict(core_metrics.METRICS))

    # --- the toy score: its kernel plus one registration (lsfix/core/scores.py) ---
    @core_scores.register_score("top_two_mean", summary="mean of the two largest logits")
    def _top_two_mean(ch):  # noqa: ANN001, ANN202
        return (ch.top + ch.second) / 2.0

    # --- the toy metric: its formula plus one registration (lsfix/core/metrics.py) ---
    @core_metrics.register_metric("error_at_full", label="Err@100%",
                                  summary="selective risk at full coverage (the error rate)")
    def _error_at_full(sm, convention):  # noqa: ANN001, ANN202
        return sm.n_errors / sm.n

    yield
    for registry, old in zip((core_scores.SCORES, core_metrics.METRICS), before, strict=True):
        registry.clear()
        registry.update(old)


def _slow_top_two_mean(z: np.ndarray) -> np.ndarray:
    s = np.sort(np.asarray(z, dtype=np.float64), axis=1)
    return (s[:, -1] + s[:, -2]) / 2.0


def test_toy_score_and_metric_reach_every_layer(toy: None, tmp_path: Path) -> None:
    with lsfix.read(SAMPLE) as pred:
        z = pred.logits.rows(0, pred.n)
        y = np.asarray(pred.labels)
    # parsing and computation
    spec = lsfix.parse_score("top_two_mean")
    got = lsfix.compute_scores(z, [spec])["top_two_mean"]
    np.testing.assert_array_equal(got, _slow_top_two_mean(z))
    assert "top_two_mean" in lsfix.score_families() and "top_two_mean" in lsfix.plain_scores()
    # the planner, JSON (with the metric), and the bootstrap
    ev = lsfix.evaluate(SAMPLE, ["top_two_mean"], bootstrap=20, percent=True)
    row = ev.to_dict()["results"][0]
    correct = np.argmax(z, axis=1) == y
    assert row["error_at_full"] == pytest.approx(100 * (1 - correct.mean()), rel=1e-15)
    assert "error_at_full" in row["ci"]
    # the CLI: choice, table column, JSON, the gate
    res = CliRunner().invoke(app, ["curve", SAMPLE, "-s", "top_two_mean", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["results"][0]["error_at_full"] == pytest.approx(
        1 - correct.mean(), rel=1e-15)
    res = CliRunner().invoke(app, ["curve", SAMPLE, "-s", "top_two_mean", "-f", "table"],
                             env={"COLUMNS": "400"})
    assert res.exit_code == 0 and "Err@100%" in res.stdout, res.output
    res = CliRunner().invoke(app, ["compare", SAMPLE, SAMPLE_CE, "-s", "top_two_mean",
                                   "--fail-if", "error_at_full>+0.5", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert "top_two_mean" in value_choices("curve", "score")


def test_registered_names_are_checked() -> None:
    with pytest.raises(ValueError, match="taken"):
        core_scores.register_score("msp", summary="again")
    with pytest.raises(ValueError, match="taken"):
        core_metrics.register_metric("aurc", label="x", summary="again")


def test_builtin_registry_order_is_the_documented_list() -> None:
    assert lsfix.score_families() == (
        "msp", "max_logit", "logit_margin", "softmax_margin", "neg_entropy", "gini", "energy",
        "msp_ts", "pnorm", "pnorm_raw")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_registry_docs.py"),
                          "--check"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    for name in lsfix.score_families():
        assert f"| `{name}` |" in doc, f"docs/metrics.md does not list the score {name!r}"

"""Terminal tables fit the terminal, intervals stay on one line, and risk@coverage /
coverage@risk carry bootstrap intervals (checked against a slow reference)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lsfix.core import bootstrap_ci, evaluate
from lsfix.output.table import render_table

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "fmnist_ls02_test.h5"
INTERVAL = re.compile(r"-?[\d.e+-]+ \[-?[\d.e+-]+, -?[\d.e+-]+\]")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    from typer.testing import CliRunner

    from lsfix.cli import app

    res = CliRunner().invoke(app, ["curve", str(SAMPLE), "-s", "msp", "-s", "pnorm", "-b", "50",
                                   "--coverage", "0.8", "--risk", "0.01", "-f", "json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    from lsfix.output.report import flat_row

    return [flat_row({"file": r["file"], "score": r["score"]}, r, r["ci"])
            for r in doc["results"]]


@pytest.mark.parametrize("width", [60, 80, 100, 140, 320])
def test_table_fits_and_intervals_stay_on_one_line(rows: list[dict[str, Any]],
                                                   width: int) -> None:
    text = render_table(rows, "t", show_file=False, width=width)
    lines = text.splitlines()
    body = [ln for ln in lines if ln.startswith("│")]
    assert len(body) == 2, text  # one line per row: nothing wrapped
    for ln in lines[:-1] if lines[-1].startswith("(") else lines:
        assert len(ln) <= width, (width, ln)
    cells = [c.strip() for c in body[0].split("│")[2:-1]]
    assert cells and all(INTERVAL.fullmatch(c) or c.isdigit() for c in cells), cells
    if width >= 320:
        assert not lines[-1].startswith("("), "everything fits at 320 columns"
    else:
        assert lines[-1].startswith(f"(not shown at {width} columns: "), lines[-1]


def test_requested_points_are_kept_before_secondary_columns(rows: list[dict[str, Any]]) -> None:
    head = render_table(rows, "t", show_file=False, width=120).splitlines()[2]
    assert "risk@0.8" in head and "coverage@0.01" in head and "AUGRC" not in head


def test_point_intervals_match_a_slow_resampling_reference() -> None:
    rng = np.random.default_rng(5)
    n = 60
    conf = np.round(rng.uniform(size=n), 2)  # ties on purpose
    correct = rng.uniform(size=n) < 0.3 + 0.6 * conf
    ci = bootstrap_ci(conf, correct, n_boot=40, seed=3, coverages=(0.5,), risks=(0.2,))
    draws = np.random.default_rng(3)
    risk, cov = [], []
    for _ in range(40):
        counts = np.bincount(draws.integers(0, n, n), minlength=n)
        idx = np.repeat(np.arange(n), counts)
        m = evaluate(conf[idx], correct[idx], coverages=[0.5], risks=[0.2])
        risk.append(m.risk_at_coverage[0].risk)
        cov.append(m.coverage_at_risk[0].coverage)
    full = evaluate(conf, correct, coverages=[0.5], risks=[0.2])
    for key, vals, est in (("risk@0.5", risk, full.risk_at_coverage[0].risk),
                           ("coverage@0.2", cov, full.coverage_at_risk[0].coverage)):
        lo, hi = np.percentile(vals, [2.5, 97.5])
        assert ci[key].estimate == pytest.approx(est, abs=1e-12)
        assert (ci[key].low, ci[key].high) == pytest.approx((lo, hi), abs=1e-9), key
        assert ci[key].low <= ci[key].estimate <= ci[key].high


def test_point_intervals_in_json_and_percent() -> None:
    from typer.testing import CliRunner

    from lsfix.cli import app

    args = ["curve", str(SAMPLE), "-s", "msp", "-b", "30", "--coverage", "0.8", "-f", "json"]
    plain = json.loads(CliRunner().invoke(app, args).stdout)["results"][0]
    pct = json.loads(CliRunner().invoke(app, [*args, "--percent"]).stdout)["results"][0]
    iv = plain["ci"]["risk@0.8"]
    assert iv["estimate"] == pytest.approx(plain["risk_at_coverage"][0]["risk"])
    assert pct["ci"]["risk@0.8"]["low"] == pytest.approx(100 * iv["low"])

"""Golden output of ``lsfix audit`` on the committed sample data (regenerate with
``LSFIX_UPDATE_GOLDEN=1 pytest tests/test_audit_golden.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lsfix.cli import app

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden_audit"
ARGS = ["audit", "sample_data/fmnist_ls02_test.h5", "--val", "sample_data/fmnist_ls02_val.h5",
        "--bootstrap", "200", "--seed", "0"]


@pytest.mark.parametrize("fmt", ["json", "tsv"])
def test_audit_on_sample_data_matches_golden(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(app, [*ARGS, "-f", fmt])
    assert res.exit_code == 0, res.output
    got = res.stdout.replace(f"\"lsfix_version\": \"{__import__('lsfix').__version__}\"",
                             "\"lsfix_version\": \"<version>\"")
    path = GOLDEN / f"audit_sample_ls02.{fmt}"
    if os.environ.get("LSFIX_UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8"), f"audit output changed; see {path}"
    if fmt == "json":
        assert "MSP ranking is broken" in got


def test_audit_verdict_on_ce_sample_keeps_msp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(app, ["audit", "sample_data/fmnist_ce_test.h5", "--val",
                                   "sample_data/fmnist_ce_val.h5", "-b", "200", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert '"broken": false' in res.stdout and "MSP is fine: keep it" in res.stdout

"""The GitHub Action (action.yml) and its gate script, run here as the action runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "action_gate.sh"
ACTION = ROOT / "action.yml"


def test_action_is_composite_and_runs_the_script() -> None:
    text = ACTION.read_text(encoding="utf-8")
    assert re.search(r"^runs:\n  using: composite$", text, re.M)
    assert 'run: bash "${{ github.action_path }}/scripts/action_gate.sh"' in text
    env = set(re.findall(r"^        (INPUT_[A-Z_]+|GH_TOKEN): ", text, re.M))
    used = set(re.findall(r"\$\{?(INPUT_[A-Z_]+)", SCRIPT.read_text(encoding="utf-8")))
    assert used <= env, used - env  # every input the script reads is passed by the action
    declared = set(re.findall(r"^  ([a-z-]+):\n    description:", text, re.M))
    for name in env - {"GH_TOKEN"}:
        assert name[len("INPUT_"):].lower().replace("_", "-") in declared, name


def test_action_yml_parses() -> None:
    yaml = pytest.importorskip("yaml", reason="needs PyYAML to parse action.yml")
    doc = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert doc["runs"]["using"] == "composite"
    assert {"baseline", "candidates", "fail-if"} <= set(doc["inputs"])


def _gate(tmp_path: Path, fail_if: str, **extra: str) -> tuple[subprocess.CompletedProcess[str],
                                                               Path]:
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data", dirs_exist_ok=True)
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    gh = bindir / "gh"  # a stand-in for GitHub's CLI: records what it was asked to post
    gh.write_text('#!/bin/sh\necho "$@" > "$GH_LOG"\ncp "$5" "$GH_LOG.body"\n')
    gh.chmod(0o755)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    env = {**os.environ,
           "PATH": os.pathsep.join([str(bindir), str(Path(sys.executable).parent),
                                    os.environ["PATH"]]),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "INPUT_BASELINE": "sample_data/fmnist_ce_test.h5",
           "INPUT_CANDIDATES": "sample_data/fmnist_ls02_test.h5",
           "INPUT_SCORES": "msp", "INPUT_FAIL_IF": fail_if, "INPUT_BOOTSTRAP": "200",
           "INPUT_COMMENT": "true", "GITHUB_EVENT_PATH": str(event),
           "GITHUB_OUTPUT": str(tmp_path / "out.txt"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
           "GH_LOG": str(tmp_path / "gh.log"), **extra}
    res = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    return res, tmp_path


def test_gate_fails_with_exit_4_and_posts_the_report(tmp_path: Path) -> None:
    res, d = _gate(tmp_path, "eaurc>+5%\naccuracy<-1%", INPUT_GATE="point")
    assert res.returncode == 4, res.stderr
    assert "rule 'eaurc>+5%' failed" in res.stderr
    outputs = (d / "out.txt").read_text().splitlines()
    assert outputs == ["exit-code=4", "report=lsfix-report/pr-comment.md"]
    report = (d / "lsfix-report" / "pr-comment.md").read_text()
    assert "fmnist_ls02_test" in report
    assert (d / "summary.md").read_text() == report
    assert (d / "gh.log").read_text().split() == ["pr", "comment", "7", "--body-file",
                                                  "lsfix-report/pr-comment.md"]
    assert (d / "gh.log.body").read_text() == report


def test_interval_gate_is_inconclusive_with_exit_5(tmp_path: Path) -> None:
    # the default gate: +7.2 % E-AURC on one seed is within the bootstrap's noise
    res, d = _gate(tmp_path, "eaurc>+5%\naccuracy<-1%", INPUT_COMMENT="false")
    assert res.returncode == 5, res.stderr
    assert "--gate interval" in res.stderr and "rule 'eaurc>+5%' inconclusive" in res.stderr
    assert (d / "out.txt").read_text().splitlines()[0] == "exit-code=5"
    assert "**Gate: INCONCLUSIVE**" in (d / "lsfix-report" / "pr-comment.md").read_text()


def test_gate_passes(tmp_path: Path) -> None:
    res, d = _gate(tmp_path, "eaurc>+50% accuracy<-1%", INPUT_COMMENT="false")
    assert res.returncode == 0, res.stderr
    assert (d / "out.txt").read_text().splitlines()[0] == "exit-code=0"
    assert not (d / "gh.log").exists()

"""The README's set-up commands are the ones CI runs, and its exit-code table is the code's."""

from __future__ import annotations

import re
from pathlib import Path

from lsfix.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = _shell_blocks(setup)
    assert len(blocks) == 2, "the README's set-up is exactly two commands"
    install_and_run, test_cmd = (b.strip() for b in blocks)
    assert install_and_run.startswith("pip install . && lsfix ")
    assert "sample_data/" in install_and_run
    assert "pytest" in test_cmd and "\n" not in test_cmd
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci.splitlines(), ".ci/run must run the README's test command verbatim"


def test_readme_exit_code_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, flags=re.M))
    assert {int(k) for k in rows} == {int(c) for c in ExitCode}

"""The committed shell completions are current, and they work (bash)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGEN = ".venv/bin/python scripts/gen_completions.py"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_completions",
                                                  ROOT / "scripts" / "gen_completions.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_completions_are_current():
    gen = _gen()
    fresh = gen.render_all()
    assert set(fresh) == {"lsfix.bash", "_lsfix", "lsfix.fish"}
    for name, text in fresh.items():
        path = ROOT / "completions" / name
        assert path.exists(), f"completions/{name} is missing; run {REGEN}"
        assert path.read_text(encoding="utf-8") == text, (
            f"completions/{name} is stale; run {REGEN} and commit the result")


def test_zsh_file_starts_with_compdef():
    first = (ROOT / "completions" / "_lsfix").read_text(encoding="utf-8").split("\n", 1)[0]
    assert first == "#compdef lsfix"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_commands_and_options():
    script = ROOT / "completions" / "lsfix.bash"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        ["bash", "-c", f'source "{script}"; '
                       "COMP_WORDS=(lsfix comp); COMP_CWORD=1; _lsfix_completion lsfix; "
                       'printf "%s\\n" "${COMPREPLY[@]}"; echo --; '
                       "COMP_WORDS=(lsfix curve --conv); COMP_CWORD=2; _lsfix_completion lsfix; "
                       'printf "%s\\n" "${COMPREPLY[@]}"'],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    commands, options = out.stdout.split("--\n")
    assert commands.split() == ["compare"]
    assert options.split() == ["--convention"]

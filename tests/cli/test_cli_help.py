"""``--help`` and shell completion stay light: no torch, no matplotlib (each run in a fresh
interpreter). Wall times are printed, not asserted (see them with ``-s`` or ``-rP``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import typer

from lsfix.cli import app

HEAVY = ("torch", "matplotlib")
REPORTED = ("torch", "matplotlib", "h5py", "numpy", "rich")

SCRIPT = r"""
import json, os, sys, time
t0 = time.perf_counter()
from lsfix.cli.app import app
args = json.loads(sys.argv[1])
code = 0
try:
    app(args, standalone_mode=False, prog_name="lsfix")
except SystemExit as exc:  # completion requests exit
    code = exc.code or 0
dt = time.perf_counter() - t0
sys.stdout.flush()
sys.stderr.write("\n@@" + json.dumps({"code": code, "seconds": dt,
    "modules": [m for m in REPORTED if m in sys.modules]}) + "\n")
""".replace("REPORTED", repr(REPORTED))

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[dict, str, float]:
    import os

    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(args)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stderr.rsplit("@@", 1)[1])
    return info, proc.stdout, wall


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in COMMANDS]],
                         ids=["lsfix", *COMMANDS])
def test_help_imports_no_heavy_library(args):
    info, out, wall = _run(args)
    assert info["code"] == 0
    assert "Usage: lsfix" in out
    heavy = [m for m in HEAVY if m in info["modules"]]
    assert not heavy, f"lsfix {' '.join(args)} imported {heavy}"
    print(f"\nlsfix {' '.join(args)}: {wall:.3f} s wall (process), {info['seconds']:.3f} s "
          f"in-process; loaded: {info['modules'] or 'none of ' + ', '.join(REPORTED)}")


def test_completion_request_imports_no_heavy_library():
    info, out, wall = _run([], env={"_LSFIX_COMPLETE": "complete_bash",
                                    "COMP_WORDS": "lsfix curve --co", "COMP_CWORD": "2"})
    assert "--convention" in out.split() and "--coverage" in out.split()
    assert not [m for m in HEAVY if m in info["modules"]]
    print(f"\nTAB completion: {wall:.3f} s wall (process), {info['seconds']:.3f} s in-process")

"""Shared helpers of the hardening tests: the real CLI in-process and as a subprocess.

``cli(args, input=None)`` runs the typer app in-process (CliRunner, stdout and stderr apart);
an exception escaping the app fails the test at once: that is the traceback a user would see.
``lsfix_proc(args, ...)`` runs the installed ``lsfix`` console script in a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.testing

from lsfix.cli import app

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LSFIX_EXE = Path(sys.executable).parent / "lsfix"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: bytes
    stderr: str

    def __repr__(self) -> str:  # what pytest shows on failure
        return f"Result(code={self.code}, stderr={self.stderr!r}, stdout={self.stdout[:200]!r})"


def cli(args: Sequence[object], input: bytes | str | None = None) -> Result:
    """``lsfix ARGS`` in-process; fails the test if an exception escapes (a traceback)."""
    res = typer.testing.CliRunner().invoke(app, [str(a) for a in args], input=input,
                                           prog_name="lsfix")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(
            f"lsfix {' '.join(map(str, args))} raised {res.exception!r} (a user would see a "
            f"traceback); stderr={res.stderr!r}") from res.exception
    return Result(res.exit_code, res.stdout_bytes, res.stderr)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    return env


def lsfix_proc(args: Sequence[object], *, cwd: str | Path | None = None,
               input: bytes | None = None, timeout: float = 120) -> Result:
    """``lsfix ARGS`` through the installed console script."""
    if not LSFIX_EXE.exists():
        pytest.skip(f"{LSFIX_EXE} not installed (pip install -e .)")
    proc = subprocess.run([str(LSFIX_EXE), *map(str, args)], cwd=cwd, input=input,
                          capture_output=True, timeout=timeout, env=subprocess_env())
    return Result(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


def error_line(r: Result, cmd: str) -> str:
    """Assert stderr is one ``lsfix <cmd>: error: ...`` line with no traceback; return it."""
    assert "Traceback" not in r.stderr, r
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r
    assert lines[0].startswith(f"lsfix {cmd}: error: "), r
    return lines[0]


def tree_digest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (folders as ``<dir>``)."""
    out: dict[str, str] = {}
    for p in sorted(Path(folder).rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_dir():
            out[rel] = "<dir>"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def file_digest(path: Path) -> str | None:
    if not path.exists():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The generated bad-input corpus (one copy per xdist worker) and its cases by name."""
    from .corpus import write_corpus

    folder = tmp_path_factory.mktemp("corpus")
    made = write_corpus(folder)
    return folder, {c.name: c for c in made}

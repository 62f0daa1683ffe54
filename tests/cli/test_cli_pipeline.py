"""Real pipelines: the venv's ``lsfix`` executable in ``bash -c 'set -o pipefail; ... | ...'``.

``/bin/sh`` is dash on Debian/Ubuntu, which has no ``pipefail`` before dash 0.5.12, so the
pipelines run under bash (skipped when there is none).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lsfix.readers.logitsfile import new_file

LSFIX = Path(sys.executable).parent / "lsfix"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash for set -o pipefail")

ERROR_LINE = re.compile(r"^lsfix (score|normalise|curve|compare|audit): error: \S.*$")


def sh(script: str, cwd: Path, **kw) -> subprocess.CompletedProcess[bytes]:
    """Run ``script`` with pipefail; ``lsfix`` is the venv's executable.

    PYTHONUNBUFFERED is dropped, as in a user's shell: with it, ``sys.stdout.buffer`` is a raw
    FileIO and a reader that goes away shows up as a short write instead of EPIPE.
    """
    assert LSFIX.exists(), f"{LSFIX} missing: run .venv/bin/pip install -e . --no-deps"
    env = {**os.environ, "PATH": f"{LSFIX.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for var in ("COLUMNS", "PYTHONUNBUFFERED"):
        env.pop(var, None)
    q = shlex.quote(str(LSFIX))
    full = "set -o pipefail; " + script.replace("lsfix ", f"{q} ")
    return subprocess.run([BASH, "-c", full], cwd=cwd, env=env, capture_output=True,
                          timeout=120, **kw)


@pytest.fixture
def work(files, tmp_path) -> Path:
    shutil.copy(files.a, tmp_path / "A.h5")
    return tmp_path


def test_score_normalise_curve(work):
    p = sh("lsfix score A.h5 | lsfix normalise A.h5 --with - | lsfix curve - --format json",
           work)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    # stderr: only normalise's two notes (and the warning that 60 rows are too few to fit on)
    lines = [ln for ln in err.splitlines() if "too few to choose p reliably" not in ln]
    assert len(lines) == 2 and all(x.startswith("lsfix normalise: ") for x in lines), err
    doc = json.loads(p.stdout)
    assert doc["format"] == "lsfix.curve"
    assert doc["file"] == "<stdin>"
    assert doc["n_fit_excluded"] == 60
    assert [r["score"] for r in doc["results"]] == ["msp", "pnorm"]
    assert {r["n"] for r in doc["results"]} == {240}


def test_history_records_each_stage(work):
    p = sh("lsfix score A.h5 -m gini | lsfix normalise A.h5 --with - --p 2 -q -o out.h5", work)
    assert p.returncode == 0, p.stderr.decode()
    import h5py

    with h5py.File(work / "out.h5", "r") as f:
        history = json.loads(f.attrs["history"])
        assert f.attrs["lsfix_schema"] == "lsfix.scores"
        assert "logits" not in f  # a scores file: never a copy of the logits
        assert sorted(f["scores"]) == ["gini", "pnorm"]
    assert history == ["lsfix score A.h5 -m gini",
                       "lsfix normalise A.h5 --with - --p 2 -q -o out.h5"]


def test_a_scores_file_without_its_logits_says_what_to_pass(work):
    p = sh("lsfix score A.h5 | lsfix normalise - --p 2", work)
    assert p.returncode == 3
    err = p.stderr.decode()
    assert err.splitlines() == [
        "lsfix normalise: error: <stdin>: is a scores file (no /logits); this command needs "
        "the logits file it was computed from (pass that, and this with --with)"], err


def test_score_table_through_a_pipe_equals_curve_on_the_file(work):
    p = sh("lsfix score A.h5 -m msp --format tsv | lsfix curve - --format json", work)
    q = sh("lsfix curve A.h5 --score msp --format json", work)
    assert (p.returncode, q.returncode) == (0, 0), (p.stderr, q.stderr)
    assert (p.stderr, q.stderr) == (b"", b"")
    a, b = json.loads(p.stdout)["results"][0], json.loads(q.stdout)["results"][0]
    for key in ("n", "n_errors", "accuracy", "aurc", "oracle_aurc", "eaurc", "naurc", "augrc",
                "auroc", "fpr_at_95tpr"):
        assert a[key] == pytest.approx(b[key], rel=1e-12, abs=0), key


def test_failing_middle_stage_propagates(work):
    p = sh("lsfix score A.h5 | lsfix normalise - --grid x | lsfix curve - --format json", work)
    err = p.stderr.decode()
    assert p.returncode != 0
    assert p.returncode in (2, 3)  # pipefail: the last failing stage (curve: empty input)
    assert p.stdout == b""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert ("lsfix normalise: error: --grid: 'x' is not a list like 0,1,2 or a range like 0-9"
            in lines)
    for line in lines:
        assert ERROR_LINE.match(line), line


def test_gate_exit_code_through_a_pipe(work, files):
    shutil.copy(files.b, work / "B.h5")
    p = sh("lsfix compare A.h5 B.h5 -s msp --fail-if 'aurc>0.0001' --format tsv | cat", work)
    assert p.returncode == 4, p.stderr.decode()
    assert p.stdout.decode().startswith("file\tscore\t")
    assert p.stderr.decode().splitlines()[-1].startswith("lsfix compare: error: ")


def test_text_reader_going_away_is_not_an_error(work):
    p = sh("lsfix score A.h5 -f tsv | head -n 2", work)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stderr == b""
    assert p.stdout.decode().splitlines()[0] == "sample_id\tconfidence\tcorrect"


def test_binary_reader_going_away_is_not_an_error(work):
    # as with text output: exit 0, nothing on stderr (once: exit 1 and 'error: <stdin>: cannot
    # write (Broken pipe)'). 600 KB: far more than a pipe buffer, so EPIPE is certain.
    rng = np.random.default_rng(0)
    new_file(str(work / "big.h5"), rng.normal(size=(3000, 50)).astype(np.float32),
             labels=rng.integers(0, 50, 3000))
    p = sh("lsfix score big.h5 | head -c 10 > /dev/null", work)
    assert (p.returncode, p.stderr.decode()) == (0, "")

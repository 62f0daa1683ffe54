"""Every bad-input case of ``corpus.py`` through the real CLI: ``curve``, ``score``,
``normalise`` and ``audit``.

For each case and command: the exit code the case names (3 = bad input data, 2 = usage, 0 for
the awkward-but-valid files), one stderr line ``lsfix <cmd>: error: ...`` naming the file and
the problem, no traceback, no output file and no temporary ``.out.*`` file, the corpus folder
byte-identical afterwards (inputs never modified, nothing written next to them), and no pickle
payload ever run. The in-process runs use CliRunner; ``test_every_case_through_the_installed_
lsfix`` repeats the ``curve`` sweep through the real console script in a subprocess, and
``test_every_case_on_stdin`` feeds the bytes on stdin.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from lsfix.readers.entry import read as read_predictions

from .conftest import ROOT, Result, cli, error_line, lsfix_proc, tree_digest
from .corpus import COMMANDS, Case, cases, pwned_markers

HAVE_TORCH = importlib.util.find_spec("torch") is not None
CASES = [c for c in cases() if HAVE_TORCH or "torch" not in c.tags]
OUTPUT = {"curve": "out.tsv", "score": "out.h5", "normalise": "out.h5", "audit": "out.txt"}

#: normalise tunes p on a random 20 % of the rows before it scores all of them; when the
#: non-finite rows fall outside that split it prints its "tuned on ..." note and only then the
#: error (two stderr lines). Lead's file: lsfix/cli/normalise_cmd.py (print the notes after
#: ``fitted.score(pred.logits)``).


def args_for(command: str, path: Path, out_dir: Path) -> list[str]:
    args = [command, str(path), "-o", str(out_dir / OUTPUT[command])]
    if command == "audit":
        args += ["--bootstrap", "20"]
    return args


def check(case: Case, command: str, code: int, stderr: str, out_dir: Path,
          folder: Path, before: dict[str, str], *, name: str | None = None) -> None:
    expected = case.expected(command)
    assert not pwned_markers(folder), "a pickle payload ran"
    assert tree_digest(folder) == before, "the corpus folder changed (an input was modified)"
    assert code == expected, (code, stderr)
    assert "Traceback" not in stderr, stderr
    if expected == 0:
        assert [p.name for p in out_dir.iterdir()] == [OUTPUT[command]], stderr
        return
    line = error_line(Result(code, b"", stderr), command)
    assert (name or case.name) in line, line
    for fragment in case.fragments if name is None else ():
        assert fragment in line, (fragment, line)
    left = sorted(p.name for p in out_dir.iterdir())
    assert left == [], f"output or temporary files left behind: {left}"


def _params() -> list[object]:
    out = []
    for c in CASES:
        for command in COMMANDS:
            marks = []
            out.append(pytest.param(c.name, command, id=f"{command}-{c.name}", marks=marks))
    return out


@pytest.mark.parametrize(("name", "command"), _params())
def test_every_case_every_command(corpus: tuple[Path, dict[str, Case]], tmp_path: Path,
                                  name: str, command: str) -> None:
    folder, by_name = corpus
    case = by_name[name]
    before = tree_digest(folder)
    r = cli(args_for(command, folder / name, tmp_path))
    if case.expected(command) != 0:
        assert r.stdout == b"", r
    check(case, command, r.code, r.stderr, tmp_path, folder, before)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_every_case_through_the_installed_lsfix(corpus: tuple[Path, dict[str, Case]],
                                                tmp_path: Path, name: str) -> None:
    """The same sweep for ``curve`` through the console script: what a CI job runs."""
    folder, by_name = corpus
    case = by_name[name]
    before = tree_digest(folder)
    r = lsfix_proc(args_for("curve", folder / name, tmp_path), cwd=tmp_path)
    check(case, "curve", r.code, r.stderr, tmp_path, folder, before)


@pytest.mark.parametrize("name", [c.name for c in CASES
                                  if not {"folder", "missing"} & set(c.tags)])
def test_every_case_on_stdin(corpus: tuple[Path, dict[str, Case]], tmp_path: Path,
                             name: str) -> None:
    """``lsfix curve - < FILE``: no extension to go by, the format is sniffed; the verdict
    (exit code, one clean line naming ``<stdin>``) stays the same."""
    folder, by_name = corpus
    case = by_name[name]
    before = tree_digest(folder)
    r = cli(["curve", "-", "-o", tmp_path / OUTPUT["curve"]],
            input=(folder / name).read_bytes())
    check(case, "curve", r.code, r.stderr, tmp_path, folder, before, name="<stdin>")


# --------------------------------------------------------------------------------------------
# the corpus itself


def test_corpus_has_40_cases_across_every_reader(corpus: tuple[Path, dict[str, Case]]) -> None:
    folder, by_name = corpus
    assert len(by_name) >= 40
    readers = {c.reader for c in by_name.values()}
    assert {"hdf5", "npy", "npz", "csv", "tsv", "dispatch"} <= readers
    if HAVE_TORCH:
        assert "torch" in readers
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [m["name"] for m in manifest] == list(by_name)
    assert all(m["exit"] in (0, 2, 3) for m in manifest)
    assert all(m["fragments"] or m["exit"] == 0 for m in manifest)


def test_corpus_script_entry_points(tmp_path: Path) -> None:
    """``python -m tests.hardening.corpus OUT`` and ``python tests/hardening/corpus.py``."""
    res = subprocess.run([sys.executable, "-m", "tests.hardening.corpus", str(tmp_path / "a")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("wrote ")
    listing = subprocess.run([sys.executable, str(ROOT / "tests/hardening/corpus.py"),
                              "--list"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert len(listing.stdout.splitlines()) == len(cases())
    made = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert len(made) >= 40


# --------------------------------------------------------------------------------------------
# the awkward-but-valid files give defined numbers


def test_float16_extremes_give_finite_scores(corpus: tuple[Path, dict[str, Case]],
                                             tmp_path: Path) -> None:
    """float16 logits at +-65504 (where exp, sums and norms overflow in float16) are scored in
    float64: every score finite, and rows of ties get equal confidences."""
    folder, _ = corpus
    out = tmp_path / "scored.h5"
    methods = ["msp", "max_logit", "logit_margin", "softmax_margin", "neg_entropy", "gini",
               "energy", "msp_ts:0.5", "pnorm:2", "pnorm:0"]
    r = cli(["score", folder / "float16_extreme.h5", "-o", out,
             *[x for m in methods for x in ("-m", m)]])
    assert r.code == 0, r
    with h5py.File(out, "r") as f:
        for key in f["scores"]:
            vals = f["scores"][key][()]
            assert np.isfinite(vals).all(), key
    r = cli(["curve", out, "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    for res in doc["results"]:
        for key in ("aurc", "oracle_aurc", "eaurc", "augrc"):
            assert res[key] is not None and np.isfinite(res[key]), (res["score"], key)


def test_big_endian_logits_read_like_native_ones(corpus: tuple[Path, dict[str, Case]],
                                                  tmp_path: Path) -> None:
    folder, _ = corpus
    with read_predictions(str(folder / "logits_bigendian.h5")) as p:
        z = np.asarray(p.raw_logits[()])
        y = p.labels
    native = tmp_path / "native.h5"
    from lsfix.readers.logitsfile import new_file

    new_file(native, z.astype("<f4"), labels=y)
    a = cli(["curve", folder / "logits_bigendian.h5", "-f", "json"])
    b = cli(["curve", native, "-f", "json"])
    assert a.code == b.code == 0, (a, b)
    ra, rb = json.loads(a.stdout)["results"], json.loads(b.stdout)["results"]
    assert [{k: v for k, v in x.items() if k != "file"} for x in ra] == \
        [{k: v for k, v in x.items() if k != "file"} for x in rb]

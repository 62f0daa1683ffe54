"""One command line (issue 17, items 4 and 8): shared options mean the same everywhere, one
rule for output folders and for --overwrite, completion per shell, help panels, and the
trip-ups a new user reported (each reproduced here first; every test fails on main 6e68f59)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer

from lsfix.cli import app
from lsfix.cli.helptext import polish
from lsfix.cli.options import ADVANCED

ROOT = Path(__file__).resolve().parents[2]
LSFIX = [sys.executable, "-c", "import sys; from lsfix._entry import main; "
         "sys.argv[0] = 'lsfix'; main()"]


def _lsfix(args: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*LSFIX, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, **kw)  # type: ignore[call-overload]


def _commands() -> dict[str, object]:
    group = typer.main.get_command(app)
    polish(group)
    return group.commands  # type: ignore[attr-defined,no-any-return]


def _option(cmd: object, flag: str) -> object | None:
    return next((p for p in cmd.params  # type: ignore[attr-defined]
                 if flag in getattr(p, "opts", ())), None)


# ------------------------------------------------------------------ shared options

#: shared flag -> the commands that have it; each has the same help, metavar and default
SHARED = {
    "-o": ("score", "normalise", "curve", "compare", "audit"),
    "-q": ("extract", "merge", "score", "normalise", "audit"),
    "--overwrite": ("extract", "score", "normalise"),
    "--plot": ("curve", "compare"),
    "--labels": ("score", "normalise", "curve", "compare", "audit"),
    "--input": ("score", "normalise", "curve", "compare", "audit"),
    "--with": ("score", "normalise", "curve", "audit"),
    "--convention": ("normalise", "curve", "compare", "audit"),
    "--ignore-index": ("score", "normalise", "curve", "compare", "audit"),
    "--coverage": ("curve", "compare", "audit"),
    "--risk": ("curve", "compare", "audit"),
    "--scheduler": ("score", "normalise", "curve", "audit"),
    "--scheduler-timeout": ("score", "normalise", "curve", "audit"),
    "--memory-limit": ("curve", "compare", "audit"),
    "--subsample-pixels": ("curve", "compare", "audit"),
    "--tmpdir": ("curve", "compare"),
    "--bootstrap-unit": ("curve", "compare", "audit"),
    "--by": ("curve", "compare", "audit"),
}


@pytest.mark.parametrize("flag", sorted(SHARED))
def test_shared_options_are_declared_once(flag: str) -> None:
    cmds = _commands()
    seen = set()
    for name in SHARED[flag]:
        opt = _option(cmds[name], flag)
        assert opt is not None, f"lsfix {name} has no {flag}"
        seen.add((opt.help, tuple(opt.opts), opt.metavar, repr(opt.default),  # type: ignore
                  getattr(opt, "rich_help_panel", None)))
    assert len(seen) == 1, f"{flag} differs between {SHARED[flag]}: {seen}"


def test_format_means_the_format_of_the_main_output() -> None:
    cmds = _commands()
    reports = {_option(cmds[c], "-f").help for c in ("curve", "compare", "audit")}  # type: ignore
    scores = {_option(cmds[c], "-f").help for c in ("score", "normalise")}  # type: ignore
    assert len(reports) == 1 and len(scores) == 1
    assert "table | tsv | json" in reports.pop() and "h5" in scores.pop()


def test_advanced_options_have_their_own_help_panel(run) -> None:
    out = run(["curve", "--help"]).stdout
    options, advanced = out.split("\nOptions:\n")[1].split(f"\n{ADVANCED}:\n")
    for flag in ("--scheduler", "--memory-limit", "--subsample-pixels", "--ignore-index",
                 "--rank-map", "--bootstrap-unit"):
        assert flag in advanced and flag not in options, flag
    for flag in ("--score", "--coverage", "--plot", "--format", "--output"):
        assert flag in options, flag
    for cmd in ("score", "normalise", "compare", "audit"):
        text = run([cmd, "--help"]).stdout
        assert f"\n{ADVANCED}:\n" in text and "--ignore-index" in text.split(ADVANCED)[1]


# ------------------------------------------------------------------ completion and version


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o default -F _lsfix_completion lsfix"),
    ("zsh", "#compdef lsfix"),
    ("fish", "complete --command lsfix"),
    ("powershell", "Register-ArgumentCompleter"),
    ("pwsh", "Register-ArgumentCompleter"),
])
def test_show_completion_prints_that_shells_script(shell: str, marker: str,
                                                   tmp_path: Path) -> None:
    r = _lsfix(["--show-completion", shell], tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert marker in r.stdout
    others = {"bash": "complete -o default -F", "zsh": "#compdef", "fish": "complete --command"}
    for other, text in others.items():
        if other != shell:
            assert text not in r.stdout, (shell, other)


@pytest.mark.parametrize("args", [["--show-completion", "nonsense"], ["--show-completion"]])
def test_show_completion_of_an_unknown_shell_is_a_usage_error(args: list[str],
                                                              tmp_path: Path) -> None:
    r = _lsfix(args, tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("lsfix: error: ") and r.stderr.count("\n") == 1, r.stderr


def test_version_to_a_closed_stdout_is_one_error_line(tmp_path: Path) -> None:
    import shlex

    r = subprocess.run(["bash", "-c", f"{shlex.join(LSFIX)} -V >&-"], cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr == "lsfix: error: cannot write to stdout: it is closed; give -o FILE\n"


def test_version_is_the_same_line_on_every_path(run, tmp_path: Path) -> None:
    fast = _lsfix(["--version"], tmp_path)
    assert fast.returncode == 0 and fast.stdout.startswith("lsfix ")
    assert run(["--version"]).stdout == fast.stdout == _lsfix(["-V", "curve"], tmp_path).stdout


# ------------------------------------------------------------------ one rule for output folders


@pytest.mark.parametrize("args", [
    ["curve", "{a}", "--plot", "nodir/rc.png"],
    ["curve", "{a}", "-o", "nodir/out.tsv"],
    ["compare", "{a}", "{b}", "--plot", "nodir/rc.png"],
    ["score", "{a}", "-o", "nodir/s.h5"],
    ["normalise", "{a}", "--p", "2", "--save-params", "nodir/p.json", "-o", "s.h5"],
    ["audit", "{a}", "-o", "nodir/audit.tsv", "-b", "10"],
])
def test_a_missing_output_folder_is_refused_before_any_work(run, files, tmp_path, monkeypatch,
                                                            error_of, args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [a.format(a=files.a, b=files.b) for a in args]
    r = run(argv)
    target = next(a for a in argv if a.startswith("nodir/"))
    assert r.code == 1
    assert error_of(r, argv[0]) == (f"{target}: folder 'nodir' does not exist; nothing was "
                                    "written")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder made, nothing written


# ------------------------------------------------------------------ audit: -q, --coverage/--risk


def test_audit_quiet_prints_nothing_but_the_output(run, files) -> None:
    loud = run(["audit", files.a, "-f", "tsv", "-b", "20"])
    quiet = run(["audit", files.a, "-f", "tsv", "-b", "20", "-q"])
    assert loud.code == quiet.code == 0
    assert "verdict" in loud.stderr and quiet.stderr == ""
    assert quiet.stdout == loud.stdout


def test_audit_coverage_and_risk_are_curves(run, files) -> None:
    a = json.loads(run(["audit", files.a, "--val", files.val, "-b", "20", "-f", "json",
                        "--coverage", "0.5,0.8", "--risk", "0.1"]).stdout)
    c = json.loads(run(["curve", files.a, "-s", "msp", "-f", "json",
                        "--coverage", "0.5,0.8", "--risk", "0.1"]).stdout)
    msp = next(s for s in a["scores"] if s["score"] == "msp")
    assert msp["risk_at_coverage"] == c["results"][0]["risk_at_coverage"]
    assert msp["coverage_at_risk"] == c["results"][0]["coverage_at_risk"]
    assert [p["target"] for p in msp["risk_at_coverage"]] == [0.5, 0.8]
    tsv = run(["audit", files.a, "--val", files.val, "-b", "20", "-f", "tsv", "--risk", "0.1"])
    assert "coverage@0.1" in tsv.stdout.splitlines()[0].split("\t")


# ------------------------------------------------------------------ normalise -f


def test_normalise_tsv_is_the_scores_table_of_the_new_score(run, files, tmp_path,
                                                            monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["normalise", files.a, "--fit-fraction", "0.3", "-o", "n.h5", "-q"]).code == 0
    t = run(["normalise", files.a, "--fit-fraction", "0.3", "-f", "tsv", "-o", "n.tsv"])
    assert t.code == 0 and "fit row(s) left out of the table" in t.stderr
    lines = Path("n.tsv").read_text().splitlines()
    assert lines[0] == "sample_id\tconfidence\tcorrect"
    with h5py.File("n.h5", "r") as f:
        keep = ~f["fit_mask"][()]
        pnorm = f["scores/pnorm"][()][keep]
    got = np.array([float(x.split("\t")[1]) for x in lines[1:]])
    assert got.shape == pnorm.shape and np.array_equal(got, pnorm)  # repr(): exact floats
    on_table = json.loads(run(["curve", "n.tsv", "-f", "json"]).stdout)["results"][0]
    on_file = json.loads(run(["curve", "n.h5", "-s", "pnorm", "-f", "json"]).stdout)["results"][0]
    assert on_table["aurc"] == on_file["aurc"] and on_table["n"] == on_file["n"]


def test_normalise_tsv_refuses_copy_logits(run, files, error_of) -> None:
    r = run(["normalise", files.a, "--p", "1", "-f", "tsv", "--copy-logits"])
    assert (r.code, error_of(r, "normalise")) == (
        2, "--copy-logits writes an HDF5 file; it does not go with --format tsv")


# ------------------------------------------------------------------ score -f tsv says what it holds


def test_score_tsv_says_the_confidence_column_holds_log_msp(run, files, tmp_path,
                                                            monkeypatch, read_scores) -> None:
    monkeypatch.chdir(tmp_path)
    r = run(["score", files.a, "-m", "msp", "-f", "tsv", "-o", "s.tsv"])
    assert r.code == 0
    assert "column 'confidence' holds msp as log-MSP" in r.stderr
    assert run(["score", files.a, "-m", "msp", "-o", "s.h5"]).code == 0
    values = [float(x.split("\t")[1]) for x in Path("s.tsv").read_text().splitlines()[1:]]
    assert np.array_equal(values, read_scores("s.h5")["msp"])  # exact: log-MSP as stored
    assert max(values) < 0  # log of a probability
    assert run(["score", files.a, "-m", "msp", "-f", "tsv", "-q", "-o", "q.tsv"]).stderr == ""
    assert run(["score", files.a, "-m", "energy", "-f", "tsv", "-o", "e.tsv"]).stderr == ""


# ------------------------------------------------------------------ npz FILE:KEY


@pytest.fixture
def positional_npz(tmp_path: Path) -> Path:
    """``np.savez(f, logits, labels)``: arrays arr_0 and arr_1."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 120)
    z = rng.normal(size=(120, 4)) + 2.0 * np.eye(4)[y]
    np.savez(tmp_path / "pos.npz", z, y)
    np.save(tmp_path / "y.npy", y)
    return tmp_path


def test_labels_from_an_npz_array_by_key(run, positional_npz: Path, monkeypatch) -> None:
    monkeypatch.chdir(positional_npz)
    by_key = run(["curve", "pos.npz", "--labels", "pos.npz:arr_1", "-f", "json"])
    by_file = run(["curve", "pos.npz", "--labels", "y.npy", "-f", "json"])
    assert by_key.code == by_file.code == 0, by_key.stderr
    assert json.loads(by_key.stdout)["results"] == json.loads(by_file.stdout)["results"]


def test_curve_of_a_positional_npz_says_which_arrays_it_took(run, positional_npz: Path,
                                                             monkeypatch) -> None:
    monkeypatch.chdir(positional_npz)
    r = run(["curve", "pos.npz"])
    assert r.code == 3
    assert r.stderr == ("lsfix curve: error: no labels in pos.npz (pass --labels FILE); pos.npz: "
                        "array(s) 'arr_1' not used; read 'arr_0' as logits (--labels "
                        "pos.npz:arr_1 takes labels from 'arr_1')\n")


@pytest.mark.parametrize(("spec", "message"), [
    ("pos.npz:arr_7", "pos.npz: has no array 'arr_7' (it holds 'arr_0', 'arr_1')"),
    ("pos.npz", "pos.npz: no labels array (looked for labels, y, y_true, targets; it holds "
                "'arr_0', 'arr_1': name one as pos.npz:KEY)"),
    ("y.npy:arr_1", "y.npy: ':arr_1' names an array of an .npz or a column of a .csv/.tsv; "
                    "y.npy holds one list of labels (drop ':arr_1')"),
])
def test_npz_key_errors_name_the_arrays(run, positional_npz: Path, monkeypatch, error_of,
                                        spec: str, message: str) -> None:
    monkeypatch.chdir(positional_npz)
    r = run(["curve", "pos.npz", "--labels", spec])
    assert (r.code, error_of(r, "curve")) == (3, message)


# ------------------------------------------------------------------ msp_ts: a message that is true


def test_curve_msp_ts_without_temperature_names_commands_that_work(run, files, tmp_path,
                                                                   monkeypatch,
                                                                   error_of) -> None:
    monkeypatch.chdir(tmp_path)
    r = run(["curve", files.a, "-s", "msp_ts"])
    assert r.code == 2
    msg = error_of(r, "curve")
    assert "--fit)" not in msg  # curve has no --fit
    assert msg.endswith(f"lsfix score {files.a} -m msp_ts --fit VAL.h5 -o scored.h5, then "
                        "lsfix curve scored.h5 -s msp_ts")
    # the commands it names work, with a real VAL.h5
    assert run(["score", files.a, "-m", "msp_ts", "--fit", files.val, "-o", "scored.h5",
                "-q"]).code == 0
    ok = run(["curve", "scored.h5", "-s", "msp_ts", "-f", "tsv"])
    assert ok.code == 0 and "\tmsp_ts\t" in ok.stdout
    assert run(["curve", files.a, "-s", "msp_ts:1.5", "-f", "tsv"]).code == 0
    r = run(["compare", files.a, files.b, "-s", "msp_ts"])
    assert r.code == 2 and "then lsfix compare scored.h5 -s msp_ts" in error_of(r, "compare")


# ------------------------------------------------------------------ --with: same score, no clash


def test_with_a_scores_file_that_carries_the_inputs_scores(run, files, tmp_path,
                                                          monkeypatch) -> None:
    """A scores file holds its input's stored scores: joining it back is no clash."""
    monkeypatch.chdir(tmp_path)
    assert run(["score", files.a, "-m", "gini", "-o", "g.h5", "-q"]).code == 0
    assert run(["score", files.a, "--with", "g.h5", "-m", "energy", "-o", "ge.h5",
                "-q"]).code == 0
    r = run(["curve", "ge.h5", "-f", "tsv"])
    assert r.code == 0
    joined = run(["score", files.a, "--with", "ge.h5", "--with", "g.h5", "-m", "msp",
                  "-o", "all.h5", "-q"])
    assert (joined.code, joined.stderr) == (0, "")


def test_install_completion_takes_a_shell(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    r = subprocess.run([*LSFIX, "--install-completion", "fish"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    script = tmp_path / ".config" / "fish" / "completions" / "lsfix.fish"
    assert "complete --command lsfix" in script.read_text()
    bad = subprocess.run([*LSFIX, "--install-completion", "tcsh"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "'tcsh' is not a shell lsfix completes" in bad.stderr


@pytest.mark.parametrize("cmd", [["score", "-f", "tsv", "-o", "s.tsv"],
                                 ["normalise", "--p", "1", "-o", "n.h5"],
                                 ["audit", "-b", "10", "-f", "tsv", "-o", "a.tsv"]])
def test_quiet_means_no_notes_or_warnings_on_every_command(run, positional_npz: Path,
                                                           monkeypatch, cmd: list[str]) -> None:
    """-q silences how an input was read (the unused array), what was assumed and fitted."""
    monkeypatch.chdir(positional_npz)
    args = [cmd[0], "pos.npz", "--labels", "pos.npz:arr_1", *cmd[1:]]
    loud = run(args)
    assert loud.code == 0 and "'arr_1' not used" in loud.stderr
    Path(cmd[-1]).unlink()
    quiet = run([*args, "-q"])
    assert (quiet.code, quiet.stderr) == (0, "")

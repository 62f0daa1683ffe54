"""What a first try expects: --version, --labels FILE, tables as people save them,
probabilities given as logits (--input), messages in the input's own vocabulary, help that reads
well, option values that complete."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lsfix import __version__

RunFn = Any


def ls_logits(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a usable but imperfect k-class model and labels (float64)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(0.0, 1.0, (n, k))
    z[np.arange(n), y] += rng.uniform(0.0, 4.0, n)
    return z, y

COMMANDS = ("score", "normalise", "curve", "compare", "audit")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    z, y = ls_logits(3, n=400, k=4)
    z = z.astype(np.float64)
    np.save(d / "z.npy", z)
    np.save(d / "y.npy", y)
    np.savez(d / "zy.npz", logits=z, labels=y)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.save(d / "p.npy", p)
    np.save(d / "logp.npy", np.log(p))
    (d / "y.txt").write_text("\n".join(map(str, y)) + "\n")
    names = ["cat", "dog", "eel", "fox"]
    lines = [",".join(["", *names, "label"])]  # pandas' df.to_csv(): unnamed index column
    for i in range(len(y)):
        lines.append(",".join([str(i), *(repr(float(v)) for v in z[i]), names[y[i]]]))
    (d / "pandas.csv").write_text("\n".join(lines) + "\n")
    np.savetxt(d / "savetxt.txt", z)
    np.savetxt(d / "savetxt.csv", z, delimiter=",")
    (d / "labels.csv").write_text("id,y_true\n" + "".join(f"s{i},{v}\n" for i, v in
                                                         enumerate(y)))
    (d / "names.txt").write_text("\n".join(names[v] for v in y) + "\n")
    pred = z.argmax(axis=1)
    conf = z.max(axis=1)
    (d / "ytrue.csv").write_text("y_true,y_pred,y_score\n" + "".join(
        f"{a},{b},{float(c)!r}\n" for a, b, c in zip(y, pred, conf, strict=True)))
    return d


def _tsv(out: str) -> dict[str, dict[str, str]]:
    rows = [ln.split("\t") for ln in out.strip().splitlines()]
    return {r[1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}


# ------------------------------------------------------------------------------------ version


def test_version_everywhere(run: RunFn) -> None:
    r = run(["--version"])
    assert (r.code, r.stdout) == (0, f"lsfix {__version__}\n")
    assert run(["-V"]).stdout == r.stdout
    assert f"(lsfix {__version__})" in run(["--help"]).stdout


def test_version_in_json(run: RunFn, data: Path) -> None:
    r = run(["curve", str(data / "zy.npz"), "-f", "json"])
    assert r.code == 0, r
    assert json.loads(r.stdout)["lsfix_version"] == __version__


# ------------------------------------------------------------------------------------ --labels


@pytest.mark.parametrize("labels", ["y.npy", "y.txt", "labels.csv", "labels.csv:y_true",
                                    "zy.npz"])
def test_labels_file_kinds(run: RunFn, data: Path, labels: str) -> None:
    ref = _tsv(run(["curve", str(data / "zy.npz")]).stdout)
    r = run(["curve", str(data / "z.npy"), "--labels", str(data / labels)])
    assert r.code == 0, r
    got = _tsv(r.stdout)
    assert got["msp"]["aurc"] == ref["msp"]["aurc"] and got["msp"]["accuracy"] == \
        ref["msp"]["accuracy"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_logits_command_takes_labels(run: RunFn, data: Path, cmd: str,
                                           tmp_path: Path) -> None:
    z, y = str(data / "z.npy"), str(data / "y.npy")
    args = {"score": ["score", z, "-o", str(tmp_path / "o.h5"), "--overwrite"],
            "normalise": ["normalise", z, "-o", str(tmp_path / "o.h5")],
            "curve": ["curve", z], "compare": ["compare", z, z], "audit": ["audit", z]}[cmd]
    without = run(args)
    if cmd == "normalise":  # tuning p needs labels: a usage error naming the ways to give them
        assert without.code == 2 and "has no labels to tune p on" in without.stderr
        assert "--labels FILE" in without.stderr
    elif cmd != "score":  # score needs no labels to compute confidences
        assert without.code == 3
        assert "no labels in " in without.stderr and "(pass --labels FILE)" in without.stderr
    r = run([*args, "--labels", y])
    assert r.code == 0, r
    assert "--labels FILE" in run([cmd, "--help"]).stdout


def test_no_labels_message_speaks_the_input_vocabulary(run: RunFn, data: Path,
                                                       error_of) -> None:  # noqa: ANN001
    r = run(["curve", str(data / "z.npy")])
    assert error_of(r, "curve") == f"no labels in {data / 'z.npy'} (pass --labels FILE)"


def test_labels_as_class_names(run: RunFn, data: Path) -> None:
    ref = _tsv(run(["curve", str(data / "zy.npz")]).stdout)
    r = run(["curve", str(data / "pandas.csv"), "--labels", str(data / "names.txt")])
    assert r.code == 0, r
    assert _tsv(r.stdout)["msp"]["aurc"] == ref["msp"]["aurc"]


def test_labels_refusals(run: RunFn, data: Path, error_of, tmp_path: Path) -> None:  # noqa: ANN001
    np.save(tmp_path / "short.npy", np.zeros(3, np.int64))
    r = run(["curve", str(data / "z.npy"), "--labels", str(tmp_path / "short.npy")])
    assert error_of(r, "curve") == f"{tmp_path / 'short.npy'}: 3 labels for 400 rows of " \
                                   f"{data / 'z.npy'}"
    other = (np.load(data / "y.npy") + 1) % 4
    np.save(tmp_path / "other.npy", other)
    r = run(["curve", str(data / "zy.npz"), "--labels", str(tmp_path / "other.npy")])
    assert "differs from the labels" in error_of(r, "curve")
    r = run(["curve", str(data / "z.npy"), "--labels", str(data / "names.txt")])
    assert "has no class names to match them with" in error_of(r, "curve")
    np.save(tmp_path / "big.npy", np.full(400, 7))
    r = run(["curve", str(data / "z.npy"), "--labels", str(tmp_path / "big.npy")])
    assert r.code == 3 and "not in [0, 4)" in r.stderr


def test_labels_go_to_the_inputs_not_the_fit_file(run: RunFn, data: Path, tmp_path: Path) -> None:
    r = run(["normalise", str(data / "z.npy"), "--labels", str(data / "y.npy"), "--val",
             str(data / "zy.npz"), "-o", str(tmp_path / "o.h5"), "-q"])
    assert r.code == 0, r


# ------------------------------------------------------------------------------------ tables


@pytest.mark.parametrize(("name", "extra", "note"), [
    ("pandas.csv", [], "dropped the index column"),
    ("savetxt.txt", ["--labels", "y.npy"], "no header line"),
    ("savetxt.csv", ["--labels", "y.npy"], "no header line"),
])
def test_tables_as_people_save_them(run: RunFn, data: Path, name: str, extra: list[str],
                                    note: str) -> None:
    ref = _tsv(run(["curve", str(data / "zy.npz"), "-s", "msp", "-s", "pnorm:2"]).stdout)
    extra = [str(data / e) if e.endswith(".npy") else e for e in extra]
    r = run(["curve", str(data / name), "-s", "msp", "-s", "pnorm:2", *extra])
    assert r.code == 0, r
    assert note in r.stderr
    got = _tsv(r.stdout)
    for s in ("msp", "pnorm:2"):  # savetxt prints 18 significant digits: equal to ~1e-15
        assert float(got[s]["aurc"]) == pytest.approx(float(ref[s]["aurc"]), rel=1e-12)


def test_class_name_columns_become_class_names(data: Path) -> None:
    from lsfix.readers.entry import read as read_predictions

    pred = read_predictions(str(data / "pandas.csv"))
    assert pred.class_names == ["cat", "dog", "eel", "fox"]
    np.testing.assert_array_equal(pred.labels, np.load(data / "y.npy"))


def test_y_true_y_pred_y_score(run: RunFn, data: Path) -> None:
    r = run(["curve", str(data / "ytrue.csv")])
    assert r.code == 0, r
    assert "correct = (y_true == y_pred)" in r.stderr
    ref = _tsv(run(["curve", str(data / "zy.npz"), "-s", "max_logit"]).stdout)
    assert _tsv(r.stdout)["confidence"]["aurc"] == ref["max_logit"]["aurc"]


def test_unknown_table_is_refused_with_a_hint(run: RunFn, tmp_path: Path, error_of) -> None:  # noqa: ANN001
    (tmp_path / "t.csv").write_text("prob_a,whatever\n0.1,x\n")
    msg = error_of(run(["curve", str(tmp_path / "t.csv")]), "curve")
    assert "Rename the columns to those names" in msg and "'whatever'" in msg
    (tmp_path / "s.csv").write_text("cat,dog,species\n0.1,0.9,dog\n0.8,0.2,cat\n")
    msg = error_of(run(["curve", str(tmp_path / "s.csv")]), "curve")
    assert msg.endswith("if 'species' holds the labels, rename it to 'label' (or y_true)"), msg


# ------------------------------------------------------------------------------------ --input


def test_probabilities_are_detected_and_give_the_logits_numbers(run: RunFn, data: Path) -> None:
    ref = _tsv(run(["curve", str(data / "zy.npz"), "-s", "msp", "-s", "pnorm:2",
                    "-s", "neg_entropy"]).stdout)
    r = run(["curve", str(data / "p.npy"), "--labels", str(data / "y.npy"), "-s", "msp",
             "-s", "pnorm:2", "-s", "neg_entropy"])
    assert r.code == 0, r
    assert r.stderr.splitlines() == [
        f"lsfix curve: warning: {data / 'p.npy'}: every row is in [0, 1] and sums to 1: read "
        "as probabilities (msp = max p, pnorm on log p); pass --input probs to say so, or "
        "--input logits if they are logits"]
    got = _tsv(r.stdout)
    for s in ("msp", "pnorm:2", "neg_entropy"):
        assert float(got[s]["aurc"]) == pytest.approx(float(ref[s]["aurc"]), rel=1e-9), s
    said = run(["curve", str(data / "p.npy"), "--labels", str(data / "y.npy"), "--input",
                "probs", "-s", "msp"])
    assert said.stderr == "" and _tsv(said.stdout)["msp"]["aurc"] == got["msp"]["aurc"]
    # read as logits on purpose: softmax(p) is not p, so the numbers differ
    wrong = run(["curve", str(data / "p.npy"), "--labels", str(data / "y.npy"), "--input",
                 "logits", "-s", "msp"])
    assert wrong.stderr == ""
    assert _tsv(wrong.stdout)["msp"]["auroc"] != got["msp"]["auroc"]


def test_log_probabilities_are_detected(run: RunFn, data: Path) -> None:
    r = run(["curve", str(data / "logp.npy"), "--labels", str(data / "y.npy"), "-s", "msp"])
    assert r.code == 0, r
    assert "read as log-probabilities" in r.stderr
    assert run(["curve", str(data / "logp.npy"), "--labels", str(data / "y.npy"),
                "--input", "log-probs"]).stderr == ""


def test_input_probs_refuses_what_is_not_probabilities(run: RunFn, data: Path,
                                                       error_of) -> None:  # noqa: ANN001
    r = run(["curve", str(data / "zy.npz"), "--input", "probs"])
    assert "--input probs: row 0 has a value outside [0, 1]" in error_of(r, "curve")
    r = run(["curve", str(data / "zy.npz"), "--input", "odds"])
    assert r.code == 2 and "choose one of logits, probs, log-probs" in r.stderr


def test_logits_are_not_mistaken(run: RunFn, data: Path) -> None:
    assert run(["curve", str(data / "zy.npz")]).stderr == ""


def test_single_column_in_unit_interval_is_flagged(run: RunFn, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p1 = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p1).astype(np.int64)
    np.savez(tmp_path / "b.npz", logits=p1, labels=y)
    r = run(["curve", str(tmp_path / "b.npz")])
    assert "single column with every value in [0, 1]: read as logits" in r.stderr
    z = np.log(p1) - np.log1p(-p1)  # the logits of those probabilities
    np.savez(tmp_path / "bz.npz", logits=z, labels=y)
    a = _tsv(run(["curve", str(tmp_path / "b.npz"), "--input", "probs"]).stdout)
    b = _tsv(run(["curve", str(tmp_path / "bz.npz")]).stdout)
    assert float(a["msp"]["aurc"]) == pytest.approx(float(b["msp"]["aurc"]), rel=1e-9)


# ------------------------------------------------------------------------------------ help


@pytest.mark.parametrize("cmd", ["extract", "score", "normalise", "curve", "compare", "audit",
                                 "merge"])
def test_help_reads_well(run: RunFn, cmd: str) -> None:
    r = run([cmd, "--help"], env={"COLUMNS": "80"})
    assert r.code == 0
    assert not re.search(r"<(list|int|float|str|text|integer)[^>]*>", r.stdout), r.stdout
    assert "{" not in r.stdout.split("\n", 1)[0], "usage line: plain argument names"
    for line in r.stdout.splitlines():  # an example is never broken mid-command
        if line.strip().startswith("lsfix ") and line.rstrip().endswith(("\\",)) is False:
            nxt = r.stdout.split(line, 1)[1].split("\n", 2)[1] if line in r.stdout else ""
            assert not (nxt.strip() and not nxt.strip().startswith(("lsfix", "-", "torchrun"))
                        and nxt.startswith("    ") and not nxt.startswith("      ")), (line, nxt)


def test_gate_rules_are_a_list(run: RunFn) -> None:
    out = run(["compare", "--help"], env={"COLUMNS": "80"}).stdout
    rules = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("'")]
    assert [r.split()[0] for r in rules] == ["'aurc>+0.002'", "'auroc<-1%'", "'aurc>0.08'"]


def test_normalise_val_is_fit(run: RunFn, data: Path, tmp_path: Path, read_scores) -> None:  # noqa: ANN001
    a = run(["normalise", str(data / "zy.npz"), "--val", str(data / "zy.npz"), "-o",
             str(tmp_path / "a.h5"), "-q"])
    b = run(["normalise", str(data / "zy.npz"), "--fit", str(data / "zy.npz"), "-o",
             str(tmp_path / "b.h5"), "-q"])
    assert a.code == b.code == 0, (a, b)
    np.testing.assert_array_equal(read_scores(tmp_path / "a.h5")["pnorm"],
                                  read_scores(tmp_path / "b.h5")["pnorm"])


# ------------------------------------------------------------------------------------ completion


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(("words", "expected"), [
    ("lsfix curve --convention ''", ["lsfix", "xia", "fd-shifts", "torch-uncertainty"]),
    ("lsfix curve -f ''", ["table", "tsv", "json"]),
    ("lsfix score --format ''", ["h5", "tsv"]),
    ("lsfix score -m max", ["max_logit"]),
    ("lsfix compare --score pn", ["pnorm", "pnorm_raw", "pnorm:2"]),
    ("lsfix curve --input ''", ["logits", "probs", "log-probs"]),
])
def test_option_values_complete(words: str, expected: list[str]) -> None:
    script = Path(__file__).resolve().parents[2] / "completions" / "lsfix.bash"
    exe_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{exe_dir}{os.pathsep}{os.environ['PATH']}"}
    n = len(words.split()) - 1
    out = subprocess.run(
        ["bash", "-c", f'source "{script}"; COMP_WORDS=({words}); COMP_CWORD={n}; '
                       '_lsfix_completion lsfix; printf "%s\\n" "${COMPREPLY[@]}"'],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == expected


# ------------------------------------------------------------------------------------ small fits


def test_small_fit_set_warns_how_much_data_is_needed(data: Path, tmp_path: Path) -> None:
    """400 rows: a 20 % split leaves 80 to fit p on (the run fixture hides this warning)."""
    from typer.testing import CliRunner

    from lsfix.cli import app

    warning = ("too few to choose p reliably; a reliable choice needs at least 500 rows with "
               "at least 20 wrong predictions")
    for args in (["normalise", str(data / "zy.npz"), "-o", str(tmp_path / "o.h5")],
                 ["audit", str(data / "zy.npz"), "-f", "json"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.stderr
        lines = [ln for ln in res.stderr.splitlines() if warning in ln]
        assert len(lines) == 1 and "the fit set has 80 rows and " in lines[0], res.stderr
    res = CliRunner().invoke(app, ["audit", str(data / "zy.npz"), "--report",
                                   str(tmp_path / "rep"), "-f", "json"])
    assert res.exit_code == 0, res.stderr
    assert "Warning: the fit set has 80 rows" in (tmp_path / "rep" / "report.md").read_text()
    big = np.tile(np.load(data / "z.npy"), (8, 1)), np.tile(np.load(data / "y.npy"), 8)
    np.savez(tmp_path / "big.npz", logits=big[0], labels=big[1])  # 640 rows to fit on
    res = CliRunner().invoke(app, ["normalise", str(tmp_path / "big.npz"), "-o",
                                   str(tmp_path / "b.h5")])
    assert res.exit_code == 0 and warning not in res.stderr, res.stderr

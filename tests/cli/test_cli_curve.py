"""``lsfix curve``: every format, stable JSON keys, --percent, --bootstrap, exact errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from lsfix.core import ScoreSpec, compute_scores, evaluate
from lsfix.readers.logitsfile import new_file

#: Keys every JSON result carries (consumers rely on them).
RESULT_KEYS = {"file", "score", "convention", "n", "n_errors", "n_tied", "accuracy", "aurc",
               "oracle_aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr",
               "risk_at_coverage", "coverage_at_risk", "undefined", "ci"}
TSV_HEAD = ["file", "score", "n", "accuracy", "aurc", "oracle_aurc", "eaurc", "naurc", "augrc",
            "auroc", "fpr_at_95tpr", "n_tied", "convention"]
SCALED = ("accuracy", "aurc", "oracle_aurc", "eaurc", "augrc", "auroc", "fpr_at_95tpr")


def _json(run, *args):
    r = run(["curve", *args, "--format", "json"])
    assert r.code == 0, r
    return json.loads(r.stdout), r


def _tsv(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


def test_default_format_is_tsv_off_a_terminal_and_table_on_one(run, files):
    r = run(["curve", files.a])
    assert r.code == 0 and r.stderr == "", r
    assert r.stdout.splitlines()[0].split("\t") == TSV_HEAD
    t = run(["curve", files.a], stdout_tty=True)
    assert t.code == 0 and t.stderr == "", t
    assert "\t" not in t.stdout
    assert f"{files.a} — convention lsfix" in " ".join(t.stdout.split())  # may wrap at 80
    for head in ("score", "AURC", "E-AURC", "NAURC", "AUGRC", "AUROC", "FPR@95TPR"):
        assert head in t.stdout
    assert "\x1b[" not in t.stdout  # no colour codes in captured text


def test_tsv_rows_match_the_core(run, files):
    r = run(["curve", files.a, "-s", "msp", "-s", "pnorm:2", "-f", "tsv"])
    assert r.code == 0 and r.stderr == "", r
    rows = _tsv(r.stdout)
    assert [row["score"] for row in rows] == ["msp", "pnorm:2"]
    with h5py.File(files.a, "r") as f:
        z, y = f["logits"][()], f["labels"][()]
    sc = compute_scores(z, [ScoreSpec("msp"), ScoreSpec("pnorm", 2.0)])
    for row, key in zip(rows, ("msp", "pnorm_p2"), strict=True):
        m = evaluate(sc[key], z.argmax(axis=1) == y)
        assert row["file"] == files.a and row["n"] == "300"
        assert float(row["aurc"]) == m.aurc  # repr(): full precision
        assert float(row["augrc"]) == m.augrc
        assert float(row["auroc"]) == m.auroc


def test_json_document_and_stable_keys(run, files):
    doc, r = _json(run, files.a, "-s", "msp", "-s", "max_logit", "--coverage", "0.5,0.8",
                   "--risk", "0.2")
    assert r.stderr == ""
    assert doc["format"] == "lsfix.curve" and doc["version"] == 1
    assert {"lsfix_version", "file", "convention", "percent", "n_fit_excluded",
            "results"} <= set(doc)
    assert doc["n_fit_excluded"] == 0
    for res in doc["results"]:
        assert set(res) == RESULT_KEYS, sorted(set(res) ^ RESULT_KEYS)
        assert res["convention"] == "lsfix"
        assert [p["target"] for p in res["risk_at_coverage"]] == [0.5, 0.8]
        assert [p["target"] for p in res["coverage_at_risk"]] == [0.2]
        assert set(res["risk_at_coverage"][0]) == {"target", "k", "coverage", "risk"}
        assert res["ci"] is None


@pytest.mark.parametrize("convention", ["lsfix", "xia", "fd-shifts", "torch-uncertainty"])
def test_conventions(run, files, convention):
    doc, _ = _json(run, files.a, "-c", convention)
    assert doc["convention"] == convention
    assert doc["results"][0]["convention"] == convention


def test_percent_scales_rates_not_counts_or_naurc(run, files):
    plain, _ = _json(run, files.a, "--coverage", "0.5", "--risk", "0.3")
    pct, _ = _json(run, files.a, "--coverage", "0.5", "--risk", "0.3", "--percent")
    assert pct["percent"] is True and plain["percent"] is False
    a, b = plain["results"][0], pct["results"][0]
    for key in SCALED:
        assert b[key] == pytest.approx(100 * a[key], rel=1e-12), key
    for key in ("n", "n_errors", "n_tied", "naurc"):
        assert b[key] == a[key], key
    for kind in ("risk_at_coverage", "coverage_at_risk"):
        pa, pb = a[kind][0], b[kind][0]
        assert pb["target"] == pa["target"] and pb["k"] == pa["k"]
        assert pb["risk"] == pytest.approx(100 * pa["risk"])
        assert pb["coverage"] == pytest.approx(100 * pa["coverage"])
    t = run(["curve", files.a, "-f", "tsv", "--percent"])
    row = _tsv(t.stdout)[0]
    assert float(row["aurc"]) == pytest.approx(100 * a["aurc"], rel=1e-12)
    tab = run(["curve", files.a, "-f", "table", "--percent"])
    assert "(×100)" in tab.stdout


def test_bootstrap_intervals_present_and_deterministic(run, files):
    args = [files.a, "-s", "msp", "-s", "pnorm:2", "--bootstrap", "60"]
    d1, r1 = _json(run, *args, "--seed", "5")
    d2, _ = _json(run, *args, "--seed", "5")
    d3, _ = _json(run, *args, "--seed", "6")
    assert r1.stderr == ""
    assert d1 == d2
    assert d1 != d3
    for res in d1["results"]:
        ci = res["ci"]
        assert {"aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr",
                "accuracy"} <= set(ci)
        for key, iv in ci.items():
            assert set(iv) == {"estimate", "low", "high", "level", "n_boot", "n_valid"}
            assert iv["n_boot"] == 60 and iv["level"] == 0.95
            assert iv["low"] <= iv["high"], key
        assert ci["aurc"]["estimate"] == res["aurc"]
        assert ci["aurc"]["low"] <= res["aurc"] <= ci["aurc"]["high"]
    t = run(["curve", *args, "--seed", "5", "-f", "tsv"])
    row = _tsv(t.stdout)[0]
    assert float(row["aurc_low"]) == d1["results"][0]["ci"]["aurc"]["low"]
    assert float(row["aurc_high"]) == d1["results"][0]["ci"]["aurc"]["high"]
    pct, _ = _json(run, *args, "--seed", "5", "--percent")
    assert pct["results"][0]["ci"]["aurc"]["low"] == pytest.approx(
        100 * d1["results"][0]["ci"]["aurc"]["low"])
    assert pct["results"][0]["ci"]["naurc"]["low"] == d1["results"][0]["ci"]["naurc"]["low"]


def test_level(run, files):
    d90, _ = _json(run, files.a, "-b", "60", "--level", "0.5")
    d95, _ = _json(run, files.a, "-b", "60")
    w = [d["results"][0]["ci"]["aurc"]["high"] - d["results"][0]["ci"]["aurc"]["low"]
         for d in (d90, d95)]
    assert w[0] < w[1]
    assert d90["results"][0]["ci"]["aurc"]["level"] == 0.5


def test_stored_scores_are_the_default(run, files, tmp_path):
    out = tmp_path / "s.h5"
    assert run(["score", files.a, "-m", "gini", "-m", "energy", "-o", out]).code == 0
    doc, _ = _json(run, out)
    assert [r["score"] for r in doc["results"]] == ["gini", "energy"]
    doc, _ = _json(run, files.a)  # nothing stored: msp
    assert [r["score"] for r in doc["results"]] == ["msp"]


def test_output_file(run, files, tmp_path):
    out = tmp_path / "c.tsv"
    r = run(["curve", files.a, "-f", "tsv", "-o", out])
    assert (r.code, r.stdout, r.stderr) == (0, "", "")
    assert out.read_text() == run(["curve", files.a, "-f", "tsv"]).stdout


def test_stdin(run, files):
    r = run(["curve", "-", "-f", "tsv"], input=Path(files.a).read_bytes())
    assert r.code == 0, r
    assert _tsv(r.stdout)[0]["file"] == "<stdin>"


def test_score_table_input_equals_logits(run, files, tmp_path):
    table = tmp_path / "s.tsv"
    assert run(["score", files.a, "-m", "msp", "-f", "tsv", "-o", table]).code == 0
    from_table, _ = _json(run, table)
    from_logits, _ = _json(run, files.a, "--score", "msp")
    a, b = from_table["results"][0], from_logits["results"][0]
    assert a["score"] == "confidence" and b["score"] == "msp"
    for key in ("n", "accuracy", "aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr"):
        assert a[key] == b[key], key


def test_binary_classifier(run, files):
    doc, _ = _json(run, files.binary)
    assert doc["results"][0]["n"] == 300


def test_undefined_metrics_warn_on_stderr_and_are_null(run, tmp_path):
    z = np.random.default_rng(0).normal(size=(40, 3))
    path = tmp_path / "right.h5"
    new_file(str(path), z, labels=z.argmax(axis=1))
    doc, r = _json(run, path)
    res = doc["results"][0]
    assert res["auroc"] is None and res["naurc"] is None and res["fpr_at_95tpr"] is None
    assert res["undefined"]["auroc"] == "all predictions correct"
    assert r.stderr.splitlines() == [
        f"lsfix curve: warning: {path} msp: {m} undefined (all predictions correct)"
        for m in ("naurc", "auroc", "fpr_at_95tpr")
    ]
    t = run(["curve", path, "-f", "tsv"])
    row = _tsv(t.stdout)[0]
    assert row["auroc"] == "" and row["aurc"] == "0.0"


def test_interrupt_exits_130_and_writes_nothing(run, files, tmp_path, monkeypatch, error_of):
    import lsfix.evaluation.inmemory

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(lsfix.evaluation.inmemory, "evaluate_file", boom)
    out = tmp_path / "c.tsv"
    r = run(["curve", files.a, "-o", out])
    assert r.code == 130
    assert error_of(r, "curve") == "interrupted; no output was written"
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--coverage", "1.5"], "--coverage must be in (0, 1], got 1.5"),
        (["--coverage", "0"], "--coverage must be in (0, 1], got 0"),
        (["--coverage", "0.5,abc"], "--coverage: 'abc' is not a number"),
        (["--risk", "-0.1"], "--risk must be in [0, 1], got -0.1"),
        (["--format", "xml"], "--format must be table, tsv or json, got 'xml'"),
        (["--convention", "foo"],
         "unknown convention 'foo'; choose one of lsfix, xia, fd-shifts, torch-uncertainty"),
        (["--bootstrap", "-1"], "--bootstrap must be >= 0, got -1"),
        (["--level", "1"], "--level must be in (0, 1), got 1.0"),
        (["-s", "nosuch"], "a.h5: no stored score 'nosuch' and it is not a score lsfix can "
                           "compute (stored: none)"),
        (["-s", "pnorm"], "a.h5: no stored score 'pnorm' and it is not a score lsfix can "
                          "compute (stored: none)"),
        (["--plot", "rc.bmp"], "plot file 'rc.bmp' must end in .png, .svg or .pdf"),
    ],
)
def test_usage_errors(run, files, monkeypatch, error_of, args, message):
    monkeypatch.chdir(files.folder)
    r = run(["curve", "a.h5", *args])
    assert r.code == 2, r
    assert error_of(r, "curve") == message


def test_no_labels(run, files, monkeypatch, error_of):
    monkeypatch.chdir(files.folder)
    r = run(["curve", "nolabels.h5"])
    assert r.code == 3
    assert error_of(r, "curve") == ("nolabels.h5: no /labels dataset; evaluation (correctness) "
                                    "needs labels (pass --labels FILE)")


@pytest.mark.parametrize(("args", "message"), [
    (["--nope"], "No such option: --nope"),
    (["-b", "abc"], "Invalid value for '--bootstrap' / '-b': "),
])
def test_parser_errors_are_one_line_exit_2(run, files, error_of, args, message):
    # errors found by typer's parser, before lsfix code runs, in the same one-line style
    r = run(["curve", files.a, *args])
    assert r.code == 2, r
    msg = error_of(r, "curve")
    assert msg.startswith(message)
    assert msg.endswith("(see 'lsfix curve --help')")


@pytest.mark.parametrize("cmd", [["curve", "-b", "5"], ["compare", "-b", "5"], ["audit", "-b", "5"],
                                 ["normalise", "--fit-fraction", "0.2", "-o", "x.h5"]])
def test_negative_seed_is_a_usage_error(run, files, tmp_path, monkeypatch, cmd):
    # once a ValueError traceback from numpy.random.default_rng (exit 1)
    monkeypatch.chdir(tmp_path)
    extra = [files.b] if cmd[0] == "compare" else []
    r = run([cmd[0], files.a, *extra, *cmd[1:], "--seed", "-1"])
    assert r.code == 2, r
    assert r.stdout == ""
    assert "--seed" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.h5").exists()

"""``lsfix audit``: every score, the fitted pNorm, the paired bootstrap and the verdict."""

from __future__ import annotations

import json

import pytest

from lsfix.core import PLAIN_SCORES

B = ["--bootstrap", "200"]  # enough for the verdicts below, fast


def _doc(run, *args):
    r = run(["audit", *args, *B, "--format", "json"])
    assert r.code == 0, r
    assert r.stderr == ""
    return json.loads(r.stdout)


def test_json_broken_ranking(run, files):
    doc = _doc(run, files.a)
    assert doc["format"] == "lsfix.audit" and doc["version"] == 1
    assert {"file", "convention", "n_eval", "k", "fit_source", "fit", "temperature", "scores",
            "paired_pnorm_minus_msp", "excess_aurc_removed", "broken", "verdict"} <= set(doc)
    assert doc["n_eval"] == 240 and doc["k"] == 5
    assert doc["fit_source"] == f"60 random rows of {files.a} (fraction 0.2, seed 0)"
    assert [s["score"] for s in doc["scores"]] == [*PLAIN_SCORES, "msp_ts", "pnorm"]
    for s in doc["scores"]:
        assert s["n"] == 240
        for key in ("aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr", "accuracy",
                    "risk_at_coverage", "coverage_at_risk", "convention"):
            assert key in s
    assert doc["fit"]["fallback_msp"] is False
    assert doc["broken"] is True
    assert doc["verdict"].startswith(f"MSP ranking is broken: normalisation (p={doc['fit']['p']}")
    d = doc["paired_pnorm_minus_msp"]
    assert d["metric"] == "aurc" and d["high"] < 0 and d["n_boot"] == 200


def test_val_file(run, files):
    doc = _doc(run, files.a, "--val", files.val)
    assert doc["n_eval"] == 300
    assert doc["fit_source"] == f"{files.val} (300 samples)"
    selection = doc["fit"]["split"].pop("selection")  # the p-selection test (lsfix.fitpolicy)
    assert selection["choice"] == f"pnorm:{doc['fit']['p']}" and selection["n_boot"] == 1000
    assert doc["fit"]["split"] == {"kind": "file", "file": files.val, "n": 300}


def test_calibrated_model_is_fine(run, files):
    doc = _doc(run, files.fallback)
    assert doc["broken"] is False
    assert doc["fit"]["fallback_msp"] is True
    assert doc["verdict"].startswith("MSP is fine: keep it")


def test_deterministic_with_seed(run, files):
    assert _doc(run, files.a, "--seed", "4") == _doc(run, files.a, "--seed", "4")
    assert _doc(run, files.a, "--seed", "4") != _doc(run, files.a, "--seed", "5")


def test_tsv_and_table(run, files):
    t = run(["audit", files.a, *B, "-f", "tsv"])
    assert t.code == 0, t
    lines = t.stdout.splitlines()
    assert lines[0].startswith("file\tscore\tn\t")
    assert len(lines) == 1 + len(PLAIN_SCORES) + 2  # pure TSV: the verdict goes to stderr
    assert t.stderr.startswith("lsfix audit: verdict: MSP ranking is broken")
    tab = run(["audit", files.a, *B], stdout_tty=True)
    assert tab.code == 0 and tab.stderr == ""
    assert "\nverdict: MSP ranking is broken" in tab.stdout
    assert "held-out AURC by p: p=0: " in tab.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["a.h5", "-b", "0"], 2, "--bootstrap must be >= 1 for audit (the verdict needs it)"),
        (["a.h5", "--fit-fraction", "1.5"], 2, "--fit-fraction must be in (0, 1), got 1.5"),
        (["a.h5", "--format", "xml"], 2, "--format must be table, tsv or json, got 'xml'"),
        (["a.h5", "--val", "binary.h5"], 2, "binary.h5 has K=2 classes, a.h5 has K=5"),
        (["nolabels.h5"], 3,
         "nolabels.h5: no /labels dataset; this command needs labels (pass --labels FILE)"),
        (["a.h5", "--val", "nolabels.h5"], 3,  # --labels would not reach the --val file
         "nolabels.h5: no /labels dataset; fitting needs labels (pass --val-labels FILE; "
         "--labels is for the input only)"),
    ],
)
def test_errors(run, files, monkeypatch, error_of, args, code, message):
    monkeypatch.chdir(files.folder)
    r = run(["audit", *args])
    assert r.code == code, r
    assert error_of(r, "audit") == message


def test_file_with_fit_split_refused(run, files, tmp_path, monkeypatch, error_of):
    monkeypatch.chdir(tmp_path)
    assert run(["normalise", files.a, "-o", "n.h5", "-q"]).code == 0
    r = run(["audit", files.a, "--with", "n.h5", *B])
    assert r.code == 2
    assert error_of(r, "audit") == (f"{files.a} already holds a fit split (/fit_mask); audit the "
                                    "file before 'normalise --fit-fraction', or pass --val")


def test_file_with_fit_split_accepted_with_val(run, files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(["normalise", files.a, "-o", "n.h5", "-q"]).code == 0
    r = run(["audit", files.a, "--with", "n.h5", "--val", files.val, *B, "-f", "json"])
    assert r.code == 0, r
    assert json.loads(r.stdout)["n_eval"] == 240  # the fit rows stay excluded


def test_score_entries_have_the_result_keys(run, files):
    doc = _doc(run, files.a)
    for s in doc["scores"]:
        assert {"file", "score", "convention", "n", "accuracy", "aurc", "eaurc", "naurc",
                "augrc", "auroc", "fpr_at_95tpr", "risk_at_coverage", "coverage_at_risk",
                "ci"} <= set(s), sorted(s)

"""``lsfix threshold``, ``score --params``, ``curve --threshold-params`` and the calibration
sections of ``curve`` and ``audit``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """2,000 rows: ``good`` (MSP ranks well), ``ls`` (MSP broken, pNorm p >= 1 fixes it),
    ``val`` (a fit file like ``ls``)."""
    from conftest import calibrated_logits, ids, ls_logits

    from lsfix.readers.logitsfile import new_file

    d = tmp_path_factory.mktemp("thr")
    out = {}
    for name, (z, y) in (("good", calibrated_logits(5, n=2000)), ("ls", ls_logits(6, n=2000)),
                         ("val", ls_logits(7, n=2000))):
        out[name] = str(d / f"{name}.h5")
        new_file(out[name], z, labels=y, sample_ids=ids(2000))
    return out


def _doc(run: Any, *args: Any) -> dict[str, Any]:
    r = run(["threshold", *args, "-f", "json"])
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


def test_threshold_certifies_and_the_params_apply_to_the_same_rows(run: Any, big: Any,
                                                                     files: Any,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "thr.json"
    d = _doc(run, big["good"], "-s", "msp", "--risk", "0.2", "--delta", "0.1",
             "--save-params", out)
    assert d["certified"] and d["bound"] <= 0.2 and d["tuning"] == {"kind": "none"}
    assert d["n_tests"] == math.ceil(math.log2(d["n"]))
    assert d["delta_per_test"] == pytest.approx(0.1 / d["n_tests"])
    saved = json.loads(out.read_text())
    assert saved["threshold"] == d["threshold"] and saved["format"] == "lsfix.threshold"
    assert saved["threshold_probability"] == pytest.approx(math.exp(d["threshold"]))
    r = run(["score", big["good"], "--params", out, "-f", "tsv"])
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["sample_id", "confidence", "accept", "correct"]
    rows = [ln.split("\t") for ln in lines[1:]]
    accepted = [row for row in rows if row[2] == "1"]
    assert len(accepted) == d["n_accepted"]
    assert sum(1 for row in accepted if row[3] == "0") == d["n_errors"]
    assert all((float(row[1]) >= d["threshold"]) == (row[2] == "1") for row in rows)
    c = json.loads(run(["curve", big["good"], "--threshold-params", out, "-f", "json"]).stdout)
    assert c["threshold"]["realised"] == {
        "n": d["n"], "n_accepted": d["n_accepted"], "n_errors": d["n_errors"],
        "coverage": d["certified_coverage"], "risk": d["empirical_risk"]}
    t = run(["curve", files.b, "--threshold-params", out, "-f", "table"])
    assert "realised coverage" in t.stdout and "certified on" in t.stdout


def test_pnorm_without_p_uses_a_union_bound_over_the_grid(run: Any, big: Any) -> None:
    d = _doc(run, big["ls"], "-s", "pnorm", "--risk", "0.2", "--grid", "0,1,2,3")
    assert d["certified"] and d["spec"] in ("pnorm:1", "pnorm:2", "pnorm:3")
    tun = d["tuning"]
    assert tun["kind"] == "union_bound"
    assert tun["candidates"] == ["msp", "pnorm:0", "pnorm:1", "pnorm:2", "pnorm:3"]
    assert tun["delta_per_candidate"] == pytest.approx(0.05 / 5)
    assert d["delta"] == 0.05  # the overall level, not the share
    best = max(tun["coverages"].values())
    assert d["certified_coverage"] == best
    fixed = _doc(run, big["ls"], "-s", d["spec"], "--risk", "0.2", "--delta", "0.01")
    assert fixed["threshold"] == d["threshold"]  # the same SGR at delta/G


def test_fit_file_fits_p_or_t_elsewhere_at_the_full_delta(run: Any, big: Any) -> None:
    d = _doc(run, big["ls"], "-s", "msp_ts", "--fit", big["val"], "--risk", "0.2")
    assert d["tuning"]["kind"] == "fit_file" and d["tuning"]["fitted"] == "temperature"
    assert d["spec"] == f"msp_ts:{d['temperature']!r}" and d["delta_per_test"] == 0.05 / 11
    p = _doc(run, big["ls"], "-s", "pnorm", "--fit", big["val"], "--risk", "0.2")
    assert p["tuning"]["fitted"] == "p" and p["tuning"]["fit_file"] == big["val"]
    assert p["certified"] and p["spec"].startswith("pnorm:")


def test_nothing_certified_rejects_everything(run: Any, files: Any, tmp_path: Path) -> None:
    out = tmp_path / "none.json"
    d = _doc(run, files.a, "-s", "msp", "--risk", "0.001", "--save-params", out)
    assert not d["certified"] and d["threshold"] is None and d["certified_coverage"] == 0
    r = run(["score", files.a, "--params", out, "-f", "tsv"])
    assert {ln.split("\t")[2] for ln in r.stdout.splitlines()[1:]} == {"0"}
    t = run(["threshold", files.a, "-s", "msp", "--risk", "0.001", "-f", "table"])
    assert "no threshold certified: reject everything" in t.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (["-s", "msp_ts"], 2, "msp_ts's temperature must be fitted on rows other than"),
    (["--risk", "1.5"], 2, "--risk must be in [0, 1), got 1.5"),
    (["--delta", "0"], 2, "--delta must be in (0, 1), got 0"),
    (["-f", "tsv"], 2, "--format must be table or json for threshold"),
    (["-s", "msp", "--fit", "SELF"], 2, "is the input: a p or T fitted on the rows"),
    (["-s", "nope"], 2, "unknown score 'nope'"),
])
def test_threshold_errors(run: Any, files: Any, error_of: Any, args: list[str], code: int,
                          message: str) -> None:
    args = [files.a if a == "SELF" else a for a in args]
    r = run(["threshold", files.a, *args])
    assert r.code == code
    assert message in error_of(r, "threshold")


def test_threshold_needs_labels(run: Any, files: Any, error_of: Any) -> None:
    r = run(["threshold", files.nolabels])
    assert r.code == 3 and "label" in error_of(r, "threshold")


@pytest.mark.parametrize(("doc", "message"), [
    ({"format": "lsfix.pnorm_fit"}, "not an lsfix threshold params file"),
    ({"format": "lsfix.threshold", "version": 9}, "version 9 is not one this lsfix reads"),
    ({"format": "lsfix.threshold", "version": 1, "score": "msp", "spec": "msp",
      "certified": True, "threshold": "high"}, "key 'threshold' must be a finite number"),
    ({"format": "lsfix.threshold", "version": 1, "score": "msp", "spec": "bogus:1",
      "certified": True, "threshold": 0.5}, "key 'spec': unknown score"),
    ({"format": "lsfix.threshold", "version": 1, "score": "msp", "spec": "msp",
      "certified": True, "threshold": None}, "'threshold' is null but 'certified' is true"),
])
def test_bad_params_files_exit_3_naming_the_file(run: Any, files: Any, error_of: Any,
                                                 tmp_path: Path, doc: dict[str, Any],
                                                 message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    for cmd in (["score", files.a, "--params", bad, "-f", "tsv"],
                ["curve", files.a, "--threshold-params", bad, "-f", "json"]):
        r = run(cmd)
        assert r.code == 3, r.stderr
        line = error_of(r, cmd[0])
        assert str(bad) in line and message in line


def test_score_params_usage_errors(run: Any, files: Any, error_of: Any, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    assert run(["threshold", files.a, "--risk", "0.2", "--save-params", out]).code == 0
    r = run(["score", files.a, "--params", out, "-o", tmp_path / "x.h5"])
    assert r.code == 2 and "pass -f tsv" in error_of(r, "score")
    r = run(["score", files.a, "--params", out, "-m", "msp", "-f", "tsv"])
    assert r.code == 2 and "does not go with -m" in error_of(r, "score")
    # unlabelled new logits: the decision without a correct column
    r = run(["score", files.nolabels, "--params", out, "-f", "tsv"])
    assert r.code == 0 and r.stdout.splitlines()[0] == "sample_id\tconfidence\taccept" or \
        r.stdout.splitlines()[0] == "confidence\taccept"


def test_curve_calibration_json_and_table(run: Any, files: Any, tmp_path: Path) -> None:
    import lsfix
    from lsfix.core.calibration import calibration_metrics, calibration_rows

    pred = lsfix.read(files.a)
    ref = calibration_metrics(calibration_rows(pred.logits.rows(0, pred.n), pred.labels), 10)
    pred.close()
    rel = tmp_path / "rel.png"
    r = run(["curve", files.a, "--calibration", "--bins", "10", "--calibration-fit", files.val,
             "--reliability", rel, "-b", "50", "-f", "json"])
    assert r.code == 0, r.stderr
    cal = json.loads(r.stdout)["calibration"]
    model, scaled = cal["variants"]
    assert model["ece"] == ref.ece and model["nll"] == ref.nll and model["brier"] == ref.brier
    assert model["ci"]["ece"]["low"] <= model["ece"] <= model["ci"]["ece"]["high"]
    assert scaled["temperature"] == cal["temperature_fit"]["temperature"] != 1.0
    assert scaled["accuracy"] == model["accuracy"]
    assert rel.stat().st_size > 1000
    t = run(["curve", files.a, "--calibration", "-f", "table"])
    assert "ECE (equal mass)" in t.stdout and "model (T = 1)" in t.stdout
    r = run(["curve", files.a, "--calibration", "-f", "tsv"])
    assert r.code == 2


def test_audit_shows_accuracy_calibration_and_ranking_side_by_side(run: Any,
                                                                   files: Any) -> None:
    r = run(["audit", files.a, "--val", files.val, "-b", "20", "-f", "json"])
    doc = json.loads(r.stdout)
    rows = doc["calibration"]["side_by_side"]
    assert [x["probabilities_unchanged"] for x in rows] == [False, False, True]
    assert len({x["accuracy"] for x in rows}) == 1  # neither T nor pNorm changes argmax
    assert rows[2]["ece"] == rows[0]["ece"] and rows[2]["nll"] == rows[0]["nll"]
    by = {s["score"]: s["aurc"] for s in doc["scores"]}
    assert (rows[0]["aurc"], rows[1]["aurc"], rows[2]["aurc"]) == (by["msp"], by["msp_ts"],
                                                                   by["pnorm"])
    assert doc["calibration"]["variants"][1]["temperature"] == doc["temperature"]
    t = run(["audit", files.a, "--val", files.val, "-b", "20", "-f", "table"])
    assert "accuracy, calibration and selective classification" in t.stdout
    assert "pNorm re-ranks rows without changing any probability" in t.stdout


def test_a_stored_pnorm_tuned_on_these_rows_is_refused(run: Any, big: Any, error_of: Any,
                                                        tmp_path: Path) -> None:
    """normalise --fit X records X; certifying on X's rows (the logits joined, or X's own
    scores file, found by fingerprint) would see them twice."""
    same = tmp_path / "same.h5"
    assert run(["normalise", big["ls"], "--fit", big["ls"], "-o", same]).code == 0
    for args in ([same], [big["ls"], "--with", same]):
        r = run(["threshold", *args, "-s", "pnorm", "--risk", "0.2"])
        assert r.code == 2, r.stderr
        assert "/scores/pnorm was tuned on this file" in error_of(r, "threshold")
    other = tmp_path / "other.h5"
    assert run(["normalise", big["ls"], "--fit", big["val"], "-o", other]).code == 0
    d = _doc(run, other, "-s", "pnorm", "--risk", "0.2")
    assert d["tuning"] == {"kind": "none", "note": "stored score"} and d["spec"].startswith(
        "pnorm:")

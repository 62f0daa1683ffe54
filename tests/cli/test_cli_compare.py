"""``lsfix compare``: side-by-side rows, paired bootstrap, and the CI gate (exit 4)."""

from __future__ import annotations

import json

import pytest

from lsfix.errors import ExitCode


def _doc(run, *args):
    r = run(["compare", *args, "--format", "json"])
    assert r.code in (0, 4), r
    return json.loads(r.stdout), r


def _rows(text: str) -> list[dict[str, str]]:
    lines = text.split("\n\n")[0].splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


@pytest.fixture
def aurcs(run, files) -> dict[tuple[str, str], dict]:
    """(file, score) -> JSON result of ``compare a b -s msp -s pnorm:2``."""
    doc, _ = _doc(run, files.a, files.b, "-s", "msp", "-s", "pnorm:2")
    return {(r["file"], r["score"]): r for r in doc["results"]}


def test_rows_files_by_scores_baseline_first(run, files):
    r = run(["compare", files.a, files.b, "-s", "msp", "-s", "pnorm:2", "-f", "tsv"])
    assert (r.code, r.stderr) == (0, ""), r
    rows = _rows(r.stdout)
    assert [(x["file"], x["score"]) for x in rows] == [
        (files.a, "msp"), (files.a, "pnorm:2"), (files.b, "msp"), (files.b, "pnorm:2")]
    c = run(["curve", files.b, "-s", "msp", "-f", "tsv"])
    assert _rows(c.stdout)[0]["aurc"] == rows[2]["aurc"]  # same numbers as curve


def test_json_document(run, files):
    doc, r = _doc(run, files.a, files.b)
    assert r.stderr == ""
    assert doc["format"] == "lsfix.compare" and doc["version"] == 1
    assert doc["baseline"] == files.a
    assert doc["paired"] == []
    assert doc["gate"] == {"rules": [], "failed": [], "passed": True}
    for res in doc["results"]:  # the same keys as curve's results
        assert set(res) == {"file", "score", "convention", "n", "n_errors", "n_tied",
                            "accuracy", "aurc", "oracle_aurc", "eaurc", "naurc", "augrc",
                            "auroc", "fpr_at_95tpr", "risk_at_coverage", "coverage_at_risk",
                            "undefined", "ci"}
        assert res["ci"] is None  # compare's bootstrap is paired (see "paired")


def test_table_on_a_terminal(run, files):
    r = run(["compare", files.a, files.b], stdout_tty=True)
    assert r.code == 0 and r.stderr == ""
    # the title may wrap at the terminal's width (a long temporary path): compare the words
    assert f"compare — baseline {files.a}, convention lsfix" in " ".join(r.stdout.split())


# --------------------------------------------------------------------------------------------
# the gate


def test_absolute_rule_breached_exits_4_and_names_the_rule(run, files, aurcs):
    lo = min(r["aurc"] for r in aurcs.values())
    rule = f"aurc>{lo / 2:.4f}"  # every row is above: every row breaches
    r = run(["compare", files.a, files.b, "-s", "msp", "-s", "pnorm:2", "--fail-if", rule,
             "-f", "tsv"])
    assert r.code == ExitCode.GATE_FAILED == 4
    assert len(_rows(r.stdout)) == 4  # the report is still written
    lines = r.stderr.splitlines()
    assert len(lines) == 5, r.stderr
    for line, (f, s) in zip(lines, aurcs, strict=False):
        assert line.startswith(f"lsfix compare: gate: rule '{rule}' failed for {f} {s}: aurc ")
    assert lines[-1].startswith(f"lsfix compare: error: 4 gate rule breach(es); first: rule "
                                f"'{rule}' failed for {files.a} msp: aurc ")
    assert "Traceback" not in r.stderr


def test_absolute_rule_passed_exits_0(run, files, aurcs):
    hi = max(r["aurc"] for r in aurcs.values())
    r = run(["compare", files.a, files.b, "-s", "msp", "-s", "pnorm:2",
             "--fail-if", f"aurc>{hi + 0.01:.4f}", "--fail-if", "auroc<0.01", "-f", "tsv"])
    assert r.code == 0, r
    assert r.stderr == "lsfix compare: gate passed (2 rule(s))\n"


def _delta_rules(a: float, b: float) -> tuple[str, str]:
    """(a rule b breaches, a rule b passes) for the change ``b - a`` of AURC."""
    d = b - a
    assert d != 0
    if d > 0:
        return f"aurc>+{d / 2:.6g}", f"aurc>+{2 * d:.6g}"
    return f"aurc<-{-d / 2:.6g}", f"aurc<-{-2 * d:.6g}"


def test_delta_rule(run, files, aurcs):
    a, b = aurcs[(files.a, "msp")]["aurc"], aurcs[(files.b, "msp")]["aurc"]
    breach, ok = _delta_rules(a, b)
    r = run(["compare", files.a, files.b, "-s", "msp", "--fail-if", breach, "-f", "json"])
    assert r.code == 4, r
    gate = json.loads(r.stdout)["gate"]
    assert gate["passed"] is False and gate["rules"] == [breach]
    assert gate["failed"] == [line.removeprefix("lsfix compare: gate: ")
                              for line in r.stderr.splitlines()[:-1]]
    assert f"aurc {b:.6g} vs baseline {a:.6g} (change {b - a:+.6g})" in gate["failed"][0]
    r = run(["compare", files.a, files.b, "-s", "msp", "--fail-if", ok, "-f", "json"])
    assert r.code == 0, r
    assert json.loads(r.stdout)["gate"] == {"rules": [ok], "failed": [], "passed": True}


def test_relative_percent_rule(run, files, aurcs):
    a, b = aurcs[(files.a, "msp")]["auroc"], aurcs[(files.b, "msp")]["auroc"]
    rel = 100 * (b - a) / abs(a)
    if rel > 0:
        breach, ok = f"auroc>+{rel / 2:.4f}%", f"auroc>+{2 * rel:.4f}%"
    else:
        breach, ok = f"auroc<-{-rel / 2:.4f}%", f"auroc<-{-2 * rel:.4f}%"
    r = run(["compare", files.a, files.b, "-s", "msp", "--fail-if", breach, "-f", "tsv"])
    assert r.code == 4, r
    assert f"(change {rel:+.6g}%)" in r.stderr
    assert run(["compare", files.a, files.b, "-s", "msp", "--fail-if", ok]).code == 0
    # relative rules do not depend on the display unit
    assert run(["compare", files.a, files.b, "-s", "msp", "--fail-if", breach,
                "--percent"]).code == 4
    assert run(["compare", files.a, files.b, "-s", "msp", "--fail-if", ok,
                "--percent"]).code == 0


def test_delta_rules_skip_the_baseline_absolute_rules_do_not(run, files):
    # 'aurc>-1': a change above -1, true of every row; the baseline row is not judged
    r = run(["compare", files.a, files.b, "-s", "msp", "--fail-if", "aurc>-1"])
    assert r.code == 4 and f"failed for {files.b} msp" in r.stderr
    assert f"failed for {files.a} msp" not in r.stderr
    r = run(["compare", files.a, "-s", "msp", "--fail-if", "aurc>0.0001"])
    assert r.code == 4 and f"failed for {files.a} msp" in r.stderr


def test_coverage_metric_in_a_rule(run, files):
    r = run(["compare", files.a, files.b, "--coverage", "0.8", "--fail-if", "risk@0.8>0.999"])
    assert r.code == 0, r
    r = run(["compare", files.a, files.b, "--coverage", "0.8", "--fail-if", "risk@0.8>0.0"])
    assert r.code == 4, r


def test_percent_does_not_change_absolute_gate(run, files, aurcs):
    hi = max(r["aurc"] for r in aurcs.values())
    rule = f"aurc>{hi + 0.05:.3f}"
    assert run(["compare", files.a, files.b, "-s", "msp", "--fail-if", rule]).code == 0
    r = run(["compare", files.a, files.b, "-s", "msp", "--fail-if", rule, "--percent"])
    assert r.code == 0, r


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("aurc~3", "--fail-if 'aurc~3': expected METRIC OP VALUE, e.g. 'aurc>+0.002'"),
        ("aurc>", "--fail-if 'aurc>': expected METRIC OP VALUE, e.g. 'aurc>+0.002'"),
        ("aurc>1.2.3", "--fail-if 'aurc>1.2.3': '1.2.3' is not a number"),
        ("auroc<1%", "--fail-if 'auroc<1%': a % threshold is relative to the baseline; give a "
                     "sign, e.g. 'auroc<-1%'"),
        ("foo>1", "--fail-if 'foo>1': unknown metric 'foo'; choose from accuracy, augrc, aurc, "
                  "auroc, eaurc, fpr_at_95tpr, naurc, oracle_aurc"),
        ("risk@0.5>0.1", "--fail-if 'risk@0.5>0.1': unknown metric 'risk@0.5'; choose from "
                         "accuracy, augrc, aurc, auroc, eaurc, fpr_at_95tpr, naurc, "
                         "oracle_aurc"),
    ],
)
def test_bad_rules_are_usage_errors(run, files, monkeypatch, error_of, rule, message):
    monkeypatch.chdir(files.folder)
    r = run(["compare", "a.h5", "b.h5", "--fail-if", rule])
    assert r.code == 2, r
    assert error_of(r, "compare") == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "--format must be table, tsv or json, got 'xml'"),
        (["--coverage", "1.5"], "--coverage must be in (0, 1], got 1.5"),
        (["-", "-"], "stdin (-) can be given only once"),
        (["--report", "pr.txt"], "--report 'pr.txt': end it in .html (one self-contained "
                                 "page), .md (Markdown and its PNG figures beside it) or name "
                                 "a folder"),
        (["-s", "nosuch"], "a.h5: no stored score 'nosuch' and it is not a score lsfix can "
                           "compute (stored: none)"),
    ],
)
def test_usage_errors(run, files, monkeypatch, error_of, args, message):
    monkeypatch.chdir(files.folder)
    r = run(["compare", "a.h5", "b.h5", *args])
    assert r.code == 2, r
    assert error_of(r, "compare") == message


# --------------------------------------------------------------------------------------------
# paired bootstrap


def test_paired_bootstrap_deterministic(run, files, aurcs):
    args = [files.a, files.b, "-s", "msp", "-s", "pnorm:2", "-b", "60"]
    d1, r1 = _doc(run, *args, "--seed", "2")
    d2, _ = _doc(run, *args, "--seed", "2")
    d3, _ = _doc(run, *args, "--seed", "3")
    assert r1.stderr == ""
    assert d1 == d2 and d1["paired"] != d3["paired"]
    assert [(p["file"], p["score"], p["baseline"], p["metric"]) for p in d1["paired"]] == [
        (files.b, "msp", files.a, "aurc"), (files.b, "pnorm:2", files.a, "aurc")]
    for p in d1["paired"]:
        assert set(p) == {"file", "score", "baseline", "unit", "metric", "difference", "low",
                          "high", "p_value", "level", "n_boot", "n_valid"}
        assert p["unit"] == "row"
        want = aurcs[(files.b, p["score"])]["aurc"] - aurcs[(files.a, p["score"])]["aurc"]
        assert p["difference"] == pytest.approx(want, abs=1e-12)
        assert p["low"] <= p["difference"] <= p["high"]
        assert p["n_boot"] == 60
    t = run(["compare", *args, "--seed", "2", "-f", "tsv"])
    lines = t.stdout.splitlines()
    assert "" not in lines  # one table: the paired difference is in extra columns
    head = lines[0].split("\t")
    assert head[-4:] == ["d_aurc", "d_aurc_low", "d_aurc_high", "d_aurc_p"]
    rows = [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]
    for row in rows:
        if row["file"] == files.a:
            assert row["d_aurc"] == ""  # the baseline has no difference to itself
        else:
            p = next(p for p in d1["paired"] if p["score"] == row["score"])
            assert float(row["d_aurc"]) == p["difference"]
    tab = run(["compare", *args, "--seed", "2", "-f", "table"])
    assert "paired bootstrap (row − baseline):" in tab.stdout


@pytest.mark.parametrize(
    ("other", "why"),
    [
        ("other_labels.h5", "labels differ (first at row 0)"),
        ("other_ids.h5", "sample ids differ (first at row 0)"),
        ("short.h5", "a.h5 has 300 rows, short.h5 has 200"),
        ("nolabels.h5", None),
    ],
)
def test_paired_bootstrap_refused_for_different_samples(run, files, monkeypatch, error_of,
                                                        other, why):
    monkeypatch.chdir(files.folder)
    if why is not None:  # without the bootstrap, unpaired files compare fine
        assert run(["compare", "a.h5", other, "-f", "tsv"]).code == 0
    r = run(["compare", "a.h5", other, "-b", "20"])
    assert r.code == 3, r
    msg = error_of(r, "compare")
    if why is None:  # no labels: cannot even evaluate
        assert msg == ("nolabels.h5: no /labels dataset; evaluation (correctness) needs labels "
                       "(pass --labels FILE)")
    else:
        assert msg == f"cannot pair a.h5 and {other} for the bootstrap: {why}"


def test_paired_bootstrap_refused_for_different_fit_splits(run, files, tmp_path, monkeypatch,
                                                           error_of):
    monkeypatch.chdir(tmp_path)
    assert run(["normalise", files.a, "--seed", "1", "-o", "a1.h5", "-q"]).code == 0
    assert run(["normalise", files.b, "--seed", "2", "-o", "b2.h5", "-q"]).code == 0
    r = run(["compare", "a1.h5", "b2.h5", "-b", "20"])
    assert r.code == 3
    assert error_of(r, "compare") == ("cannot pair a1.h5 and b2.h5 for the bootstrap: their "
                                      "fit splits (/fit_mask) differ")
    assert run(["normalise", files.b, "--seed", "1", "-o", "b1.h5", "-q"]).code == 0
    ok = run(["compare", "a1.h5", "b1.h5", "-b", "20", "-f", "json"])
    assert ok.code == 0, ok
    assert {r["n"] for r in json.loads(ok.stdout)["results"]} == {240}

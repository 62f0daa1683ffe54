"""``compare``'s gate on intervals, p tuned in the command, scores from the logits, pairing,
seeds (issues 18 and 19). The rule arithmetic itself: tests/test_gate.py."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from lsfix.core import ScoreSpec, aurc, compute_scores
from lsfix.errors import ExitCode
from lsfix.readers.logitsfile import new_file

# --------------------------------------------------------------------------------------------
# the four operators at equality, absolute and relative, both gates


def _half_right(path: Path) -> None:
    """4 rows, 2 right: accuracy exactly 0.5."""
    z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    new_file(str(path), z, labels=np.array([0, 1, 1, 0]))


def _all_right(path: Path) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 3)).astype(np.float32)
    new_file(str(path), z, labels=z.argmax(1))


@pytest.mark.parametrize(("rule", "code"), [
    ("accuracy>=0.5", 4), ("accuracy>0.5", 0), ("accuracy<=0.5", 4), ("accuracy<0.5", 0),
])
def test_point_gate_operators_at_equality_absolute(run, tmp_path, rule, code) -> None:
    _half_right(tmp_path / "h.h5")
    r = run(["compare", tmp_path / "h.h5", "--gate", "point", "--fail-if", rule])
    assert r.code == code, r
    if code == 4:
        assert f"rule '{rule}' failed for" in r.stderr and "accuracy 0.5" in r.stderr


@pytest.mark.parametrize(("rule", "code"), [
    ("accuracy>=+0%", 4), ("accuracy>+0%", 0), ("accuracy<=-0%", 4), ("accuracy<-0%", 0),
    ("aurc>=+0", 4), ("aurc>+0", 0), ("aurc<=+0", 4), ("aurc<+0", 0),
])
@pytest.mark.parametrize("gate", ["point", "interval"])
def test_operators_at_equality_relative_and_delta(run, tmp_path, rule, code, gate) -> None:
    # two copies of one file: every change is exactly 0, on the data and on every replicate
    _all_right(tmp_path / "a.h5")
    _half_right(tmp_path / "h.h5")
    src = tmp_path / ("h.h5" if rule.startswith("accuracy") else "a.h5")
    shutil.copy(src, tmp_path / "b.h5")
    r = run(["compare", src, tmp_path / "b.h5", "-s", "msp", "--gate", gate,
             "--fail-if", rule])
    assert r.code == code, r


@pytest.mark.parametrize(("rule", "code"), [
    ("accuracy>=1", 4), ("accuracy>1", 0), ("accuracy<=1", 4), ("accuracy<1", 0),
])
def test_interval_gate_operators_at_equality_absolute(run, tmp_path, rule, code) -> None:
    # every prediction right: accuracy is 1 on the data and on every bootstrap replicate
    _all_right(tmp_path / "a.h5")
    r = run(["compare", tmp_path / "a.h5", "--fail-if", rule, "-f", "json"])
    assert r.code == code, r
    check = json.loads(r.stdout)["gate"]["checks"][0]
    assert (check["low"], check["high"], check["mode"]) == (1.0, 1.0, "interval")


# --------------------------------------------------------------------------------------------
# the interval gate


def test_inconclusive_exits_5_and_says_how_many_samples_would_decide(run, files) -> None:
    a = aurc(compute_scores(_logits(files.a), [ScoreSpec("msp")])["msp"], _correct(files.a))
    b = aurc(compute_scores(_logits(files.b), [ScoreSpec("msp")])["msp"], _correct(files.b))
    rule = f"aurc>+{(b - a) / 3:.6g}"  # the change is above it, but not beyond the noise
    r = run(["compare", files.a, files.b, "-s", "msp", "--fail-if", rule, "-f", "json"])
    assert r.code == ExitCode.GATE_INCONCLUSIVE == 5, r
    gate = json.loads(r.stdout)["gate"]
    assert gate["outcome"] == "inconclusive" and gate["failed"] == []
    (check,) = gate["checks"]
    assert check["verdict"] == "inconclusive" and check["paired"] is True
    assert check["low"] < (b - a) / 3 < check["high"]
    want = int(np.ceil(300 * ((check["estimate"] - check["low"])
                              / (check["estimate"] - (b - a) / 3)) ** 2 - 1e-9))
    assert check["n_needed"] == want > 300
    assert re.search(rf"about {want:,} samples \(now 300\) would decide it", r.stderr)
    assert r.stderr.splitlines()[-1].startswith(
        "lsfix compare: error: 1 gate check(s) inconclusive, none failed; first: rule ")
    # the same rule on the point estimate fails
    assert run(["compare", files.a, files.b, "-s", "msp", "--fail-if", rule, "--gate",
                "point"]).code == 4


def test_gate_level_and_replicates_come_from_the_options(run, files) -> None:
    r = run(["compare", files.a, files.b, "-s", "msp", "--fail-if", "aurc>+0.5", "-b", "50",
             "--level", "0.8", "-f", "json"])
    assert r.code == 0, r
    gate = json.loads(r.stdout)["gate"]
    assert (gate["n_boot"], gate["level"], gate["outcome"]) == (50, 0.8, "passed")


# --------------------------------------------------------------------------------------------
# pNorm in one command


def _logits(path: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["logits"][()]


def _correct(path: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["logits"][()].argmax(1) == f["labels"][()]


def test_pnorm_without_fit_data_prints_the_command_to_run(run, files, error_of) -> None:
    r = run(["compare", files.a, files.b, "-s", "msp", "-s", "pnorm"])
    assert r.code == 2
    assert error_of(r, "compare") == (
        f"{files.a}: -s pnorm needs p chosen on labelled data, and there is no fit data and "
        f"no stored pnorm; run: lsfix compare {files.a} {files.b} -s msp -s pnorm "
        "--fit-fraction 0.2 (or give --fit VAL once per input, in input order; or -s pnorm:P "
        "to fix it)")
    # the printed command runs
    ok = run(["compare", files.a, files.b, "-s", "msp", "-s", "pnorm", "--fit-fraction", "0.2"])
    assert ok.code == 0, ok


def test_fit_per_input_tunes_each_file(run, files) -> None:
    r = run(["compare", files.a, files.b, "-s", "msp", "-s", "pnorm", "--fit", files.val,
             "--fit", files.fallback, "--select", "point", "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    fits = {f["file"]: f for f in doc["fits"]}
    assert fits[files.a]["kind"] == fits[files.b]["kind"] == "file"
    assert fits[files.a]["fit"]["split"]["file"] == files.val
    assert fits[files.b]["fit"]["split"]["file"] == files.fallback
    assert f"lsfix compare: {files.a}: pnorm: " in r.stderr
    p = fits[files.a]["fit"]["p"]
    want = compute_scores(_logits(files.a), [ScoreSpec("pnorm", float(p))])
    row = next(x for x in doc["results"] if x["file"] == files.a and x["score"] == "pnorm")
    assert row["aurc"] == aurc(want[ScoreSpec("pnorm", float(p)).name], _correct(files.a))


def test_fit_count_must_match_the_inputs(run, files, error_of) -> None:
    r = run(["compare", files.a, files.b, "-s", "pnorm", "--fit", files.val])
    assert r.code == 2
    assert error_of(r, "compare") == ("--fit: give one fit file per input, in input order "
                                      "(2 input(s), 1 --fit)")


def test_fit_fraction_rows_are_left_out_and_still_pair(run, files) -> None:
    r = run(["compare", files.a, files.b, "-s", "msp", "-s", "pnorm", "--fit-fraction", "0.2",
             "-b", "30", "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert {x["n"] for x in doc["results"]} == {240}
    assert len(doc["paired"]) == 2 and all(f["fit_rows"] == 60 for f in doc["fits"])


def test_bootstrap_gives_row_intervals_without_by(run, files) -> None:
    r = run(["compare", files.a, files.b, "-s", "msp", "-b", "30", "-f", "json"])
    assert r.code == 0, r
    for res in json.loads(r.stdout)["results"]:
        assert res["ci"]["aurc"]["low"] <= res["aurc"] <= res["ci"]["aurc"]["high"]


# --------------------------------------------------------------------------------------------
# scores come from the logits


def _with_stored_msp(src: str, dst: Path, values: np.ndarray) -> None:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        ds = f.create_dataset("scores/msp", data=values)
        ds.attrs["method"] = "msp"
        ds.attrs["params"] = "{}"


def test_a_forged_stored_score_is_refused_naming_both(run, files, tmp_path, error_of) -> None:
    msp = compute_scores(_logits(files.b), [ScoreSpec("msp")])["msp"]
    forged = tmp_path / "cand.h5"
    _with_stored_msp(files.b, forged, msp[::-1].copy())  # another ranking
    r = run(["compare", files.a, forged, "-s", "msp", "--fail-if", "aurc>+0.002"])
    assert r.code == 3, r
    msg = error_of(r, "compare")
    assert msg.startswith(f"{forged}: /scores/msp disagrees with msp computed from its /logits "
                          "(rows ")
    # the genuine score, or the same ranking stored as a probability, passes
    for i, values in enumerate((msp, np.exp(msp))):
        ok = tmp_path / f"ok{i}.h5"
        _with_stored_msp(files.b, ok, values)
        assert run(["compare", files.a, ok, "-s", "msp"]).code == 0


def test_one_swapped_pair_is_caught(run, files, tmp_path) -> None:
    msp = compute_scores(_logits(files.b), [ScoreSpec("msp")])["msp"]
    order = np.argsort(msp)
    forged = msp.copy()
    i, j = order[10], order[200]
    forged[i], forged[j] = forged[j], forged[i]
    _with_stored_msp(files.b, tmp_path / "c.h5", forged)
    r = run(["compare", files.a, tmp_path / "c.h5", "-s", "msp"])
    assert r.code == 3 and "disagrees" in r.stderr


def test_stored_tuned_pnorm_is_recomputed_from_its_p(run, files, tmp_path) -> None:
    out = tmp_path / "a.pn.h5"
    assert run(["normalise", files.a, "--fit", files.val, "--copy-logits", "-o", out,
                "-q"]).code == 0
    r = run(["compare", out, "-s", "pnorm", "-f", "json"])
    assert r.code == 0, r
    with h5py.File(out, "r+") as f:  # forge it: the recomputation catches it
        f["scores/pnorm"][...] = -f["scores/pnorm"][()]
    r = run(["compare", out, "-s", "pnorm"])
    assert r.code == 3 and "/scores/pnorm disagrees with pnorm:" in r.stderr


# --------------------------------------------------------------------------------------------
# pairing


def _table(path: Path, ids: list[str], conf: np.ndarray, y_true: np.ndarray,
           y_pred: np.ndarray) -> None:
    lines = ["sample_id\tconfidence\ty_true\ty_pred"]
    lines += [f"{i}\t{float(c)!r}\t{t}\t{p}" for i, c, t, p in zip(ids, conf, y_true, y_pred,
                                                            strict=True)]
    path.write_text("\n".join(lines) + "\n")


def test_two_models_score_tables_pair_on_y_true_and_align_by_id(run, tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 200
    ids = [f"s{i:03d}" for i in range(n)]
    y = rng.integers(0, 3, n)
    pa = np.where(rng.random(n) < 0.8, y, (y + 1) % 3)
    pb = np.where(rng.random(n) < 0.7, y, (y + 2) % 3)
    ca, cb = rng.random(n) + 0.3 * (pa == y), rng.random(n) + 0.3 * (pb == y)
    _table(tmp_path / "a.tsv", ids, ca, y, pa)
    _table(tmp_path / "b.tsv", ids, cb, y, pb)
    perm = rng.permutation(n)
    _table(tmp_path / "b_shuffled.tsv", [ids[i] for i in perm], cb[perm], y[perm], pb[perm])
    same = run(["compare", tmp_path / "a.tsv", tmp_path / "b.tsv", "-b", "40", "-f", "json"])
    assert same.code == 0, same  # correctness differs, the labels do not: they pair
    shuffled = run(["compare", tmp_path / "a.tsv", tmp_path / "b_shuffled.tsv", "-b", "40",
                    "-f", "json"])
    assert shuffled.code == 0, shuffled
    assert f"{tmp_path / 'b_shuffled.tsv'}: rows aligned to {tmp_path / 'a.tsv'} by sample id" \
        in shuffled.stderr
    p1, p2 = json.loads(same.stdout)["paired"], json.loads(shuffled.stdout)["paired"]
    assert [(p["difference"], p["low"], p["high"]) for p in p1] == \
        [(p["difference"], p["low"], p["high"]) for p in p2]
    # another y_true: refused, naming the sample
    y2 = y.copy()
    y2[5] = (y2[5] + 1) % 3
    _table(tmp_path / "c.tsv", ids, cb, y2, pb)
    bad = run(["compare", tmp_path / "a.tsv", tmp_path / "c.tsv", "-b", "40"])
    assert bad.code == 3 and "labels differ for sample id 's005'" in bad.stderr


def test_logits_files_with_reordered_ids_are_aligned(run, files, tmp_path) -> None:
    with h5py.File(files.b, "r") as f:
        z, y, sid = f["logits"][()], f["labels"][()], f["sample_ids"][()].astype(str)
    perm = np.random.default_rng(1).permutation(z.shape[0])
    new_file(str(tmp_path / "b_perm.h5"), z[perm], labels=y[perm], sample_ids=list(sid[perm]))
    r1 = run(["compare", files.a, files.b, "-s", "msp", "-b", "30", "-f", "json"])
    r2 = run(["compare", files.a, tmp_path / "b_perm.h5", "-s", "msp", "-b", "30", "-f", "json"])
    assert r1.code == r2.code == 0, (r1, r2)
    d1, d2 = json.loads(r1.stdout)["paired"][0], json.loads(r2.stdout)["paired"][0]
    assert (d1["difference"], d1["low"], d1["high"]) == (d2["difference"], d2["low"], d2["high"])


# --------------------------------------------------------------------------------------------
# seeds


def test_models_over_seeds_mean_sd_and_paired_t(run, files, tmp_path) -> None:
    for i in range(3):
        za = _logits(files.a)
        with h5py.File(files.a, "r") as f:
            labels = f["labels"][()]
        rng = np.random.default_rng(10 + i)
        new_file(str(tmp_path / f"ce_s{i}.h5"), za + rng.normal(0, 0.3, za.shape).astype(
            np.float32), labels=labels)
        new_file(str(tmp_path / f"ls_s{i}.h5"), za * 0.5 + rng.normal(0, 0.6, za.shape).astype(
            np.float32), labels=labels)
    r = run(["compare", "--model", f"CE={tmp_path}/ce_s*.h5", "--model",
             f"LS={tmp_path}/ls_s0.h5,{tmp_path}/ls_s1.h5,{tmp_path}/ls_s2.h5", "-s", "msp",
             "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert [m["name"] for m in doc["models"]] == ["CE", "LS"]
    assert doc["models"][0]["files"] == [f"{tmp_path}/ce_s{i}.h5" for i in range(3)]
    per = {x["file"]: x["aurc"] for x in doc["results"]}
    ce = [per[f"{tmp_path}/ce_s{i}.h5"] for i in range(3)]
    ls = [per[f"{tmp_path}/ls_s{i}.h5"] for i in range(3)]
    s = {(x["model"], x["metric"]): x for x in doc["seeds"]}
    assert s[("CE", "aurc")]["mean"] == pytest.approx(np.mean(ce), rel=1e-15)
    assert s[("CE", "aurc")]["sd"] == pytest.approx(np.std(ce, ddof=1), rel=1e-12)
    (pt,) = [x for x in doc["seeds_paired"] if x["metric"] == "aurc"]
    d = np.array(ls) - np.array(ce)
    t = d.mean() / (d.std(ddof=1) / np.sqrt(3))
    assert pt["t"] == pytest.approx(t, rel=1e-12) and pt["n_pairs"] == 3
    table = run(["compare", "--model", f"CE={tmp_path}/ce_s*.h5", "--model",
                 f"LS={tmp_path}/ls_s*.h5", "-s", "msp", "-f", "table"])
    assert "LS − CE msp: Δaurc = " in table.stdout and "over 3 seed(s)" in table.stdout


def test_stored_msp_ts_is_recomputed_from_its_temperature(run, files, tmp_path) -> None:
    assert run(["score", files.a, "-m", "msp_ts", "--fit", files.val, "--copy-logits", "-o",
                tmp_path / "t.h5"]).code == 0
    r = run(["compare", tmp_path / "t.h5", "-s", "msp_ts", "-f", "json"])
    assert r.code == 0, r
    with h5py.File(tmp_path / "t.h5", "r+") as f:
        f["scores/msp_ts"][...] = f["scores/msp_ts"][()][::-1]
    r = run(["compare", tmp_path / "t.h5", "-s", "msp_ts"])
    assert r.code == 3 and "/scores/msp_ts disagrees with msp_ts:" in r.stderr


def test_fit_data_replace_a_stored_tuned_score_without_a_check(run, files, tmp_path) -> None:
    # the stored pnorm was tuned elsewhere; with fit data compare tunes its own and uses it
    out = tmp_path / "a.pn.h5"
    assert run(["normalise", files.a, "--p", "7", "--copy-logits", "-o", out, "-q"]).code == 0
    r = run(["compare", out, "-s", "pnorm", "--fit", files.val, "--select", "point", "-f",
             "json"])
    assert r.code == 0, r
    (fit,) = json.loads(r.stdout)["fits"]
    assert fit["fit"]["p"] != 7

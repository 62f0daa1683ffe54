"""``lsfix.compare``: the one call behind ``lsfix compare``; its ``to_dict()`` is the command's
``-f json`` document, and its gate outcome the command's exit status."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import lsfix
from lsfix.cli.app import app
from lsfix.errors import GateFailed, GateInconclusive, UsageError
from lsfix.readers.logitsfile import new_file

ROOT = Path(__file__).resolve().parents[1]
CE = str(ROOT / "sample_data" / "fmnist_ce_test.h5")
LS = str(ROOT / "sample_data" / "fmnist_ls02_test.h5")
CE_VAL = str(ROOT / "sample_data" / "fmnist_ce_val.h5")
LS_VAL = str(ROOT / "sample_data" / "fmnist_ls02_val.h5")


def _cli(*args: object) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["compare", *map(str, args), "-f", "json"])
    assert res.exit_code in (0, 4, 5), res.output
    return res.exit_code, json.loads(res.stdout)


def _rows(path: str, score: str = "msp") -> tuple[np.ndarray, np.ndarray]:
    """A sample file's confidences (computed from its logits) and correctness."""
    with h5py.File(path, "r") as f:
        z, y = f["logits"][()], f["labels"][()]
    conf = lsfix.compute_scores(z, [lsfix.parse_score(score)])[score]
    return conf, z.argmax(axis=1) == y


def test_to_dict_equals_compare_json_on_sample_data() -> None:
    cmp = lsfix.compare([CE, LS], ["msp", "pnorm", "energy"], coverages=[0.8], risks=[0.02])
    code, want = _cli(CE, LS, "-s", "msp", "-s", "pnorm", "-s", "energy", "--coverage", "0.8",
                      "--risk", "0.02")
    assert (code, cmp.exit_code) == (0, 0)
    assert cmp.to_dict() == want
    assert sorted(want) == ["baseline", "convention", "fits", "format", "gate",
                            "lsfix_version", "paired", "percent", "results", "version"]
    assert (want["format"], want["baseline"], want["fits"], want["paired"]) == (
        "lsfix.compare", CE, [], [])
    assert [(r["file"], r["score"]) for r in want["results"]] == [
        (f, s) for f in (CE, LS) for s in ("msp", "pnorm", "energy")]
    for file, row in ((CE, want["results"][0]), (LS, want["results"][3])):
        m = lsfix.metrics(*_rows(file), coverages=[0.8], risks=[0.02])
        assert (row["aurc"], row["auroc"], row["n"]) == (m.aurc, m.auroc, m.n)


def test_paired_bootstrap_equals_compare_json() -> None:
    cmp = lsfix.compare([CE, LS], ["msp", "pnorm"], bootstrap=40, seed=3, level=0.9)
    _, want = _cli(CE, LS, "-s", "msp", "-s", "pnorm", "-b", "40", "--seed", "3", "--level",
                   "0.9")
    got = cmp.to_dict()
    assert got == want
    assert [(p["file"], p["score"]) for p in got["paired"]] == [(LS, "msp"), (LS, "pnorm")]
    d = lsfix.paired_bootstrap(*_rows(CE), *_rows(LS), n_boot=40, seed=3, level=0.9)
    p = got["paired"][0]
    assert (p["baseline"], p["difference"], p["low"], p["high"], p["p_value"]) == (
        CE, d.estimate, d.low, d.high, d.p_value)
    pct = lsfix.compare([CE, LS], "msp", bootstrap=40, seed=3, level=0.9, percent=True)
    assert pct.to_dict()["paired"][0]["difference"] == pytest.approx(100 * d.estimate)


def test_gate_outcome_and_exit_status_match_the_command() -> None:
    failed = lsfix.compare([CE, LS], "msp", fail_if=["aurc>0.01"], bootstrap=50, seed=1)
    code, want = _cli(CE, LS, "-s", "msp", "--fail-if", "aurc>0.01", "-b", "50", "--seed", "1")
    assert failed.to_dict() == want
    assert (code, failed.exit_code, failed.outcome) == (4, 4, "failed")
    assert isinstance(failed.gate_error(), GateFailed)
    assert str(failed.gate_error()).startswith("2 gate rule breach(es); first: rule "
                                               f"'aurc>0.01' failed for {CE} msp: aurc ")
    assert [c["verdict"] for c in want["gate"]["checks"]] == ["fail", "fail"]
    assert len(failed.gate_notes()) == 2
    # LS's MSP AURC is about 0.0009 above CE's: 0.0001 is within the bootstrap noise
    undecided = lsfix.compare([CE, LS], "msp", fail_if=["aurc>+0.0001"], bootstrap=50, seed=1)
    code, want = _cli(CE, LS, "-s", "msp", "--fail-if", "aurc>+0.0001", "-b", "50", "--seed",
                      "1")
    assert undecided.to_dict() == want
    assert (code, undecided.exit_code, undecided.outcome) == (5, 5, "inconclusive")
    assert isinstance(undecided.gate_error(), GateInconclusive)
    point = lsfix.compare([CE, LS], "msp", fail_if=["aurc>0.9"], gate="point")
    assert (point.outcome, point.exit_code, point.gate_error()) == ("passed", 0, None)
    assert point.gate_notes() == ["lsfix compare: gate passed (1 rule(s))"]


def test_a_file_compared_with_itself_differs_by_exactly_zero(tmp_path: Path) -> None:
    with h5py.File(CE, "r") as f:
        z, y = f["logits"][:2000], f["labels"][:2000]
    new_file(str(tmp_path / "a.h5"), z, labels=y)
    a = str(tmp_path / "a.h5")
    cmp = lsfix.compare([a, a], "msp", bootstrap=20, fail_if=["aurc>+0"])
    _, want = _cli(a, a, "-s", "msp", "-b", "20", "--fail-if", "aurc>+0")
    assert cmp.to_dict() == want
    (d,) = want["paired"]
    assert (d["difference"], d["low"], d["high"]) == (0.0, 0.0, 0.0)
    (check,) = want["gate"]["checks"]
    assert check["estimate"] == 0.0 and check["verdict"] == "pass"


def _dense(path: Path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(6, 3, 5, 6)).astype(np.float32)
    y = np.random.default_rng(0).integers(0, 3, (6, 5, 6))
    new_file(str(path), z)
    with h5py.File(path, "r+") as f:
        f.create_dataset("/labels", data=y)
    return str(path)


def test_dense_files_run_bounded_within_the_memory_limit_as_the_command(tmp_path: Path) -> None:
    a, b = _dense(tmp_path / "a.h5", 1), _dense(tmp_path / "b.h5", 2)
    cmp = lsfix.compare([a, b], ["msp", "max_logit"], memory_limit=0)
    assert cmp.engines == ["bounded", "bounded"]
    _, want = _cli(a, b, "-s", "msp", "-s", "max_logit", "--memory-limit", "0")
    assert cmp.to_dict() == want
    in_memory = lsfix.compare([a, b], ["msp", "max_logit"], keep_rows=True)
    assert in_memory.engines == ["memory", "memory"]
    assert in_memory.to_dict()["results"] == want["results"]  # the same numbers either way


def test_grouped_and_models_equal_the_command(tmp_path: Path) -> None:
    cmp = lsfix.compare([CE, LS], "msp", by="class", bootstrap=20)
    _, want = _cli(CE, LS, "-s", "msp", "--by", "class", "-b", "20")
    assert cmp.to_dict() == want and len(want["paired_groups"]) == 10
    models = lsfix.compare(models={"CE": [CE, CE_VAL], "LS": [LS, LS_VAL]}, scores="msp")
    _, want = _cli("--model", f"CE={CE},{CE_VAL}", "--model", f"LS={LS},{LS_VAL}", "-s", "msp")
    assert models.to_dict() == want
    assert want["models"] == [{"name": "CE", "files": [CE, CE_VAL]},
                              {"name": "LS", "files": [LS, LS_VAL]}]
    assert {s["metric"] for s in want["seeds_paired"]} >= {"aurc", "auroc"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fit_fraction": 1.5}, "--fit-fraction must be in (0, 1), got 1.5"),
    ({"fit": [CE, LS], "fit_fraction": 0.2}, "give --fit or --fit-fraction, not both"),
    ({"fit": [CE]}, "--fit: give one fit file per input, in input order (2 input(s), 1 --fit)"),
    ({"gate": "vote"}, "--gate must be one of interval, point, got 'vote'"),
    ({"fail_if": ["aurc>>1"]}, "--fail-if"),
    ({"level": 1.0}, "--level must be in (0, 1), got 1.0"),
])
def test_validation_errors_are_raised_from_python(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        lsfix.compare([CE, LS], "msp", **kwargs)
    assert str(exc.value).startswith(message)


def test_no_files_and_both_ways_of_giving_them_are_refused() -> None:
    with pytest.raises(UsageError, match="no files to compare"):
        lsfix.compare([])
    with pytest.raises(UsageError, match="either as arguments or with --model, not both"):
        lsfix.compare([CE], models=[f"CE={CE}"])
    with pytest.raises(UsageError, match="--model CE: a file is listed twice"):
        lsfix.compare(models={"CE": [CE, CE]})

"""The Python API the CLI shares: ``lsfix.read`` (one way in) and ``lsfix.evaluate`` (one
planner) give exactly what ``lsfix curve -f json`` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import lsfix
import lsfix.readers.logitsfile

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "fmnist_ce_test.h5"


@pytest.fixture()
def arrays(tmp_path: Path) -> tuple[Path, Path]:
    with h5py.File(SAMPLE, "r") as f:
        z, y = f["logits"][:1500], f["labels"][:1500]
    np.save(tmp_path / "x.npy", z)
    np.save(tmp_path / "y.npy", y)
    return tmp_path / "x.npy", tmp_path / "y.npy"


def _cli_json(*args: object) -> dict:
    out = subprocess.run([sys.executable, "-m", "lsfix", *map(str, args), "-f", "json"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return json.loads(out.stdout)


def test_read_then_evaluate_equals_curve_json(arrays: tuple[Path, Path]) -> None:
    x, y = arrays
    got = lsfix.evaluate(lsfix.read(str(x), labels=str(y)), scores=["msp", "pnorm:2"]).to_dict()
    want = _cli_json("curve", x, "--labels", y, "-s", "msp", "-s", "pnorm:2")
    assert got["results"] == want["results"]
    assert {k: v for k, v in got.items() if k != "file"} == {
        k: v for k, v in want.items() if k != "file"}


def test_evaluate_reads_paths_and_arrays_alike(arrays: tuple[Path, Path]) -> None:
    x, y = arrays
    by_path = lsfix.evaluate(x, ["msp", "energy"], labels=y, coverages=[0.8], risks=[0.01],
                             convention="xia")
    by_array = lsfix.evaluate(np.load(x), ["msp", "energy"], labels=np.load(y),
                              coverages=[0.8], risks=[0.01], convention="xia")
    assert by_path.plan == by_array.plan == "in-memory"
    assert by_path.to_dict()["results"][0]["aurc"] == by_array.to_dict()["results"][0]["aurc"]
    assert [r.metrics for r in by_path.results] == [r.metrics for r in by_array.results]
    # the numeric core on the same confidences gives the same metrics
    m = lsfix.metrics(by_path.results[0].confidence, by_path.results[0].correct,
                      convention="xia", coverages=[0.8], risks=[0.01])
    assert repr(m) == repr(by_path.results[0].metrics)


def test_bounded_plan_equals_in_memory(arrays: tuple[Path, Path]) -> None:
    x, y = arrays
    path = x.with_suffix(".h5")
    lsfix.readers.logitsfile.new_file(str(path), np.load(x), labels=np.load(y))
    bounded = lsfix.evaluate(str(path), ["msp", "max_logit"], memory_limit=0)
    memory = lsfix.evaluate(str(path), ["msp", "max_logit"], memory_limit="2G")
    assert (bounded.plan, memory.plan) == ("bounded", "in-memory")
    assert bounded.to_dict()["results"] == memory.to_dict()["results"]


def test_read_options_are_arguments(arrays: tuple[Path, Path]) -> None:
    x, y = arrays
    z = np.load(x).astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    said = lsfix.read(p, labels=np.load(y))
    assert said.warnings and "read as probabilities" in said.warnings[0]
    told = lsfix.read(p, labels=np.load(y), input="probs")
    assert told.warnings == []
    # float labels as pandas and torch hold them, and an ignore index
    labels = np.load(y).astype(np.float64)
    labels[:3] = 255
    pred = lsfix.read(z, labels=labels, ignore_index=255)
    assert pred.keep is not None and int((~pred.keep).sum()) == 3
    with pytest.raises(lsfix.InputError, match="1499 labels for 1500 rows"):
        lsfix.read(z, labels=np.load(y)[:-1])


def test_predictions_function_is_not_shadowed_by_a_module() -> None:
    import lsfix.readers.predictions  # noqa: F401  (the data model's module)

    z = np.array([[0.0, 2.0], [3.0, 1.0]])
    assert lsfix.predictions(z).tolist() == [1, 0]


def test_no_context_variables_in_lsfix() -> None:
    hits = [p for p in (ROOT / "lsfix").rglob("*.py")
            if "ContextVar" in p.read_text(encoding="utf-8")
            or "contextvars" in p.read_text(encoding="utf-8")]
    assert not hits, hits


def test_a_failed_finish_leaves_the_callers_predictions_open(arrays: tuple[Path, Path]) -> None:
    x, y = arrays
    h5 = x.with_suffix(".h5")
    lsfix.readers.logitsfile.new_file(str(h5), np.load(x), labels=np.load(y))
    pred = lsfix.read(str(h5))
    with pytest.raises(lsfix.InputError, match="labels for"):
        lsfix.read(pred, labels=np.load(y)[:-1])
    assert pred.h5 is not None and pred.logits.rows(0, 2).shape == (2, pred.k)
    pred.close()


def test_evaluate_sections_equal_curve_json(tmp_path: Path) -> None:
    """``--calibration``, ``--calibration-fit`` and ``--threshold-params`` are arguments of the
    one planner call: the whole document equals ``lsfix curve -f json``'s."""
    val = ROOT / "sample_data" / "fmnist_ce_val.h5"
    params = tmp_path / "t.json"
    subprocess.run([sys.executable, "-m", "lsfix", "threshold", str(val), "--risk", "0.05",
                    "--save-params", str(params)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    ev = lsfix.evaluate(str(SAMPLE), ["msp"], calibration=True, bins=10, calibration_fit=val,
                        threshold_params=params, bootstrap=20, seed=3)
    got = ev.to_dict()
    want = _cli_json("curve", SAMPLE, "-s", "msp", "--calibration", "--bins", "10",
                     "--calibration-fit", val, "--threshold-params", params, "--bootstrap",
                     "20", "--seed", "3")
    assert set(got) >= {"calibration", "threshold"}
    assert got["calibration"]["temperature_fit"]["file"] == str(val)
    assert got == want
    # the same document from the saved threshold as a dict
    doc = json.loads(params.read_text())
    again = lsfix.evaluate(str(SAMPLE), ["msp"], threshold_params=doc).to_dict()
    assert again["threshold"]["realised"] == want["threshold"]["realised"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bootstrap": -1}, "--bootstrap must be >= 0"),
    ({"level": 1.5}, "--level must be in (0, 1)"),
    ({"calibration": True, "bins": 0}, "--bins must be in [1, 10000]"),
    ({"scheduler_timeout": 0}, "--scheduler-timeout must be in (0, 3600]"),
    ({"by": "class", "calibration": True}, "do not go with --by"),
    ({"scores": ["msp_ts"]}, "needs a temperature"),
])
def test_evaluate_checks_its_arguments(kwargs: dict, message: str) -> None:
    """The planner checks its arguments itself, with the CLI's messages (exit 2 there)."""
    kwargs = {"scores": ["msp"], **kwargs}
    with pytest.raises(lsfix.UsageError, match=message.replace("(", r"\(").replace(
            ")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        lsfix.evaluate(str(SAMPLE), **kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_a_dataframe_is_read_with_its_exact_values(dtype: str) -> None:
    """A pandas DataFrame of logits gives the same values (widened to float64) as the same
    array saved to .npy: a float32 column is not rounded through its shortest decimal form."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(7)
    z = (rng.normal(size=(200, 4)) * 3).astype(dtype)
    z[0, 0] = np.finfo(dtype).tiny  # the smallest normal: all 17 digits matter
    y = rng.integers(0, 4, 200)
    df = pd.DataFrame(z, columns=[f"logit_{i}" for i in range(4)]).assign(label=y)
    pred = lsfix.read(df)
    np.testing.assert_array_equal(np.asarray(pred.logits), z.astype(np.float64))
    by_df = lsfix.evaluate(df, ["msp", "pnorm:2"]).to_dict()["results"]
    by_array = lsfix.evaluate(z, ["msp", "pnorm:2"], labels=y).to_dict()["results"]
    assert [{k: v for k, v in r.items() if k != "file"} for r in by_df] == [
        {k: v for k, v in r.items() if k != "file"} for r in by_array]

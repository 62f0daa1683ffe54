"""The fit API: ``lsfix.evaluate(..., fit=...)`` chooses p (and T) by the one policy and gives
what ``lsfix compare``/``normalise`` + ``curve`` give for the same fit data; ``lsfix.normalise``
and ``lsfix.score`` are the commands' one library call (their files, parameters and saved fit
are the commands'); argument checks raise from Python with the commands' messages."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import lsfix

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "sample_data" / "fmnist_ls02_test.h5"
VAL = ROOT / "sample_data" / "fmnist_ls02_val.h5"


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsfix", *map(str, args)],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def _json(*args: object) -> dict:
    return json.loads(_cli(*args, "-f", "json").stdout)


def _no_file(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "file"}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 rows of the LS test file, its stored scores dropped (so nothing stored can
    stand in for a fitted one)."""
    path = tmp_path_factory.mktemp("fit") / "small.h5"
    with h5py.File(TEST, "r") as f:
        z, y = f["logits"][:3000], f["labels"][:3000]
    lsfix.score(z, "msp", labels=y).write(path, copy_logits=True)
    return path


# --------------------------------------------------------------------------------------------
# evaluate(fit=...)


def test_fit_fraction_equals_compare(small: Path) -> None:
    got = lsfix.evaluate(small, ["msp", "pnorm", "msp_ts"], fit=lsfix.Fit(fraction=0.2, seed=3),
                         bootstrap=0).to_dict()
    want = _json("compare", small, "-s", "msp", "-s", "pnorm", "-s", "msp_ts",
                 "--fit-fraction", "0.2", "--seed", "3")
    assert got["results"] == want["results"]
    assert got["n_fit_excluded"] == 600 and got["results"][0]["n"] == 2400
    assert {k: v for k, v in want["fits"][0].items() if k != "file"}.items() <= got[
        "fit"].items()


def test_fit_is_in_the_curve_schema(small: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema")
    from referencing import Registry, Resource

    schemas = [json.loads(p.read_text()) for p in (ROOT / "docs" / "schema").glob("*.json")]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s))
                                         for s in schemas)
    curve = next(s for s in schemas if s["$id"].endswith("/curve.json"))
    for by in (None, "class"):
        doc = lsfix.evaluate(small, ["msp", "pnorm"], fit=lsfix.Fit(p=3), by=by).to_dict()
        assert doc["fit"]["kind"] == "fixed"
        jsonschema.Draft202012Validator(curve, registry=registry).validate(doc)


def test_fit_file_equals_normalise_then_curve(small: Path, tmp_path: Path) -> None:
    out, saved = tmp_path / "n.h5", tmp_path / "p.json"
    _cli("normalise", small, "--fit", VAL, "--save-params", saved, "-o", out, "-q")
    want = _json("curve", out, "-s", "msp", "-s", "pnorm")
    ev = lsfix.evaluate(str(small), ["msp", "pnorm"], fit=str(VAL))
    got = ev.to_dict()
    assert _no_file(got["results"][1]) == _no_file(want["results"][1])
    assert got["results"][0] == want["results"][0] | {"file": str(small)}
    assert got["n_fit_excluded"] == want["n_fit_excluded"] == 0
    assert got["fit"]["kind"] == "file" and got["fit"]["fit"] == json.loads(saved.read_text())
    # the saved fit, reused: the same numbers, nothing tuned
    again = lsfix.evaluate(small, ["pnorm"], fit=lsfix.Fit(params=saved)).to_dict()
    assert _no_file(again["results"][0]) == _no_file(want["results"][1])
    assert again["fit"]["kind"] == "params"


def test_default_fraction_equals_normalise_then_curve(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "n.h5"
    _cli("normalise", small, "-o", out, "-q")  # a labelled input: --fit-fraction 0.2 --seed 0
    want = _json("curve", out, "-s", "pnorm")
    got = lsfix.evaluate(small, "pnorm", fit=0.2).to_dict()
    assert _no_file(got["results"][0]) == _no_file(want["results"][0])
    assert got["n_fit_excluded"] == want["n_fit_excluded"] == 600


def test_fit_leaves_the_callers_predictions_alone(small: Path) -> None:
    pred = lsfix.read(small)
    ev = lsfix.evaluate(pred, ["pnorm"], fit=0.3)
    assert ev.n_fit_excluded == 900 and pred.fit_mask is None and "pnorm" not in pred.scores
    assert lsfix.evaluate(pred, ["msp"], fit=0.3).fit is None  # no score needs fit data
    pred.close()


# --------------------------------------------------------------------------------------------
# normalise and score: the commands' files, parameters and fits


def _datasets(path: Path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, o: out.__setitem__(k, (o[()].tolist(), {
            a: v for a, v in o.attrs.items()})) if isinstance(o, h5py.Dataset) else None)
    return out


def test_normalise_is_the_command(small: Path, tmp_path: Path) -> None:
    cli_out, cli_fit = tmp_path / "cli.h5", tmp_path / "cli.json"
    _cli("normalise", small, "--fit", VAL, "--no-centre", "--save-params", cli_fit,
         "-o", cli_out, "-q")
    res = lsfix.normalise(small, lsfix.Fit(data=VAL, centred=False))
    res.write(tmp_path / "py.h5")
    res.save_fit(tmp_path / "py.json")
    doc = res.to_dict()
    assert doc["format"] == "lsfix.normalise" and doc["scores"][0]["name"] == "pnorm_raw"
    with h5py.File(cli_out, "r") as f:
        attrs = f["scores/pnorm_raw"].attrs
        assert doc["scores"][0]["method"] == attrs["method"]
        assert doc["scores"][0]["params"] == json.loads(attrs["params"])
    assert doc["fit"]["fit"] == json.loads(cli_fit.read_text())
    assert (tmp_path / "py.json").read_text() == cli_fit.read_text()
    assert _datasets(tmp_path / "py.h5") == _datasets(cli_out)
    assert res.notes[0] == _cli("normalise", small, "--fit", VAL, "--no-centre", "-o",
                                tmp_path / "x.h5").stderr.splitlines()[0].removeprefix(
        "lsfix normalise: ")
    # -f tsv: the table of the evaluated rows, as the command writes it
    frac = lsfix.normalise(small, lsfix.Fit(fraction=0.2))
    assert frac.write(tmp_path / "py.tsv", format="tsv") == [
        "lsfix normalise: 600 fit row(s) left out of the table"]
    _cli("normalise", small, "-f", "tsv", "-o", tmp_path / "cli.tsv", "-q")
    assert (tmp_path / "py.tsv").read_text() == (tmp_path / "cli.tsv").read_text()
    assert frac.to_dict()["n_fit_excluded"] == 600


def test_score_is_the_command(small: Path, tmp_path: Path) -> None:
    _cli("score", small, "-m", "msp", "-m", "energy:0.5", "-m", "msp_ts", "--fit", VAL, "-o",
         tmp_path / "cli.h5", "-q")
    res = lsfix.score(small, ["msp", "energy:0.5", "msp_ts"], fit=VAL)
    res.write(tmp_path / "py.h5")
    doc = res.to_dict()
    assert doc["format"] == "lsfix.score" and doc["n"] == 3000
    with h5py.File(tmp_path / "cli.h5", "r") as f:
        assert [s["name"] for s in doc["scores"]] == list(f["scores"])
        for s in doc["scores"]:
            assert s["method"] == f["scores"][s["name"]].attrs["method"]
            assert s["params"] == json.loads(f["scores"][s["name"]].attrs["params"])
    assert _datasets(tmp_path / "py.h5") == _datasets(tmp_path / "cli.h5")
    assert {"fit_file": str(VAL), "fit_n": 10000}.items() <= doc["scores"][2]["params"].items()
    assert res.notes == [
        f"fitted temperature T={doc['scores'][2]['params']['temperature']:.6g} on {VAL} "
        "(10000 samples)"]
    # a threshold applied: the command's table
    thr = tmp_path / "thr.json"
    _cli("threshold", VAL, "-s", "msp", "--risk", "0.1", "--save-params", thr, "-f", "json")
    applied = lsfix.score(small, threshold=thr)
    applied.write(tmp_path / "py.tsv", format="tsv")
    _cli("score", small, "--params", thr, "-f", "tsv", "-o", tmp_path / "cli.tsv")
    assert (tmp_path / "py.tsv").read_text() == (tmp_path / "cli.tsv").read_text()
    assert applied.to_dict()["threshold"]["n_accepted"] == int(applied.accept.sum()) > 0


# --------------------------------------------------------------------------------------------
# checks raised from Python, with the commands' messages


def test_validation_errors_from_python(small: Path, tmp_path: Path) -> None:
    with pytest.raises(lsfix.UsageError, match=r"^give only one of --p, --fit, --fit-fraction, "
                       r"--params \(got --p, --fit-fraction\)$"):
        lsfix.Fit(p=2, fraction=0.2)
    with pytest.raises(lsfix.UsageError, match=r"^--fit-fraction must be in \(0, 1\), got 1$"):
        lsfix.evaluate(small, ["pnorm"], fit=lsfix.Fit(fraction=1))
    with pytest.raises(lsfix.UsageError, match="^p must be a finite number >= 0, got -1"):
        lsfix.normalise(small, lsfix.Fit(p=-1))
    with pytest.raises(lsfix.UsageError, match="^--name must be letters, digits and _"):
        lsfix.normalise(small, lsfix.Fit(p=1), name="a-b")
    with pytest.raises(lsfix.UsageError, match=r"^-m pnorm:2000: p above the limit of 1000$"):
        lsfix.score(small, "pnorm:2000")
    with pytest.raises(lsfix.UsageError, match="^score given twice: msp, msp$"):
        lsfix.score(small, ["msp", "msp"])
    (tmp_path / "bad.json").write_text('{"format": "something.else"}')
    with pytest.raises(lsfix.InputError, match=r"bad.json: not an lsfix p-norm fit"):
        lsfix.Fit(params=tmp_path / "bad.json")
    z = np.asarray(lsfix.read(VAL).logits.rows(0, 50))  # logits without labels
    with pytest.raises(lsfix.InputError, match="no labels; fitting needs labels"):
        lsfix.evaluate(small, ["pnorm"], fit=z)
    with pytest.raises(lsfix.UsageError, match="^--format tsv writes one score"):
        lsfix.score(small, ["msp", "gini"]).write(tmp_path / "x.tsv", format="tsv")
    assert not (tmp_path / "x.tsv").exists()


def test_docstring_examples_run() -> None:
    from lsfix.evaluation import fitpolicy, planner, scoring

    for mod in (fitpolicy, planner, scoring):
        assert doctest.testmod(mod, optionflags=doctest.ELLIPSIS).failed == 0, mod.__name__


def test_curve_fit_option_is_evaluate_fit() -> None:
    """``lsfix curve F -s msp -s pnorm --fit VAL`` is ``lsfix.evaluate(F, ..., fit=Fit(data=VAL))``
    (the one policy), and ``-s msp_ts`` is fitted there too instead of refused."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    test = root / "sample_data" / "fmnist_ls02_test.h5"
    val = root / "sample_data" / "fmnist_ls02_val.h5"
    out = subprocess.run([sys.executable, "-m", "lsfix", "curve", str(test), "-s", "msp", "-s",
                          "pnorm", "-s", "msp_ts", "--fit", str(val), "-f", "json"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    want = json.loads(out.stdout)
    got = lsfix.evaluate(str(test), ["msp", "pnorm", "msp_ts"],
                         fit=lsfix.Fit(data=str(val))).to_dict()
    assert got == want
    assert want["fit"]["kind"] == "file" and want["n_fit_excluded"] == 0
    assert "lsfix curve: pnorm: " in out.stderr
    aurc = {r["score"]: r["aurc"] for r in want["results"]}
    assert aurc["pnorm"] != aurc["msp"]  # p was tuned: not the MSP fallback on this model

"""``lsfix.threshold``: the whole of ``lsfix threshold`` as one library call; ``to_dict()`` is
the command's ``-f json`` document and ``params_dict()`` the file ``--save-params`` writes,
with the command's checks raised from Python."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lsfix
from lsfix.cli import app

ROOT = Path(__file__).resolve().parents[1]
LS, LS_VAL = "sample_data/fmnist_ls02_test.h5", "sample_data/fmnist_ls02_val.h5"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _cli(*args: object) -> dict:
    res = CliRunner().invoke(app, ["threshold", *map(str, args), "-f", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("args", [
    ("msp", {"risk": 0.05, "delta": 0.1}),
    ("pnorm_raw", {"risk": 0.05, "grid": (0, 1, 2, 3)}),  # the file stores a pnorm score
    ("pnorm_raw", {"risk": 0.05, "fit": LS_VAL}),
    ("msp_ts", {"risk": 0.05, "fit": LS_VAL}),
    ("pnorm:2", {"risk": 0.001}),  # nothing certified
])
def test_threshold_to_dict_is_the_commands_json(args: tuple[str, dict],
                                                tmp_path: Path) -> None:
    score, kw = args
    got = lsfix.threshold(LS, score, **kw)
    flags: list[object] = ["-s", score, "--risk", kw["risk"], "--save-params",
                           tmp_path / "p.json"]
    if "delta" in kw:
        flags += ["--delta", kw["delta"]]
    if "grid" in kw:
        flags += ["--grid", ",".join(map(str, kw["grid"]))]
    if "fit" in kw:
        flags += ["--fit", kw["fit"]]
    assert got.to_dict() == _cli(LS, *flags)
    assert got.params_dict() == json.loads((tmp_path / "p.json").read_text())
    assert isinstance(got, lsfix.ThresholdParams)
    if "grid" in kw:
        assert got.tuning["candidates"] == ["msp", *(f"{score}:{p}" for p in kw["grid"])]


def test_threshold_on_arrays() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(400) % 3
    z = rng.normal(size=(400, 3)) + 3 * np.eye(3)[y]
    t = lsfix.threshold(z, labels=y, risk=0.1)
    assert t.certified and t.to_dict()["format"] == "lsfix.threshold"
    assert t.bound <= 0.1 and t.n == 400


@pytest.mark.parametrize(("kw", "message"), [
    ({"risk": 1.5}, "--risk must be in [0, 1), got 1.5"),
    ({"delta": 0.0}, "--delta must be in (0, 1), got 0"),
    ({"fit": LS}, "is the input: a p or T fitted on the rows that certify the threshold"),
    ({"fit": "./" + LS}, "is the input: a p or T fitted on the rows that certify"),
])
def test_threshold_checks_its_arguments(kw: dict, message: str) -> None:
    with pytest.raises(lsfix.UsageError) as exc:
        lsfix.threshold(LS, "pnorm", **kw)
    assert message in str(exc.value)


def test_threshold_refuses_the_same_predictions_as_fit_and_other_k() -> None:
    rng = np.random.default_rng(1)
    pred = lsfix.read(rng.normal(size=(60, 3)), labels=np.arange(60) % 3)  # no file behind
    with pytest.raises(lsfix.UsageError, match="is the input"):
        lsfix.threshold(pred, "pnorm", fit=pred)
    with pytest.raises(lsfix.UsageError, match="has K=3 classes"):
        lsfix.threshold(LS, "pnorm", fit=lsfix.read(rng.normal(size=(50, 3)),
                                                     labels=np.arange(50) % 3))
    with pytest.raises(lsfix.UsageError, match="msp_ts's temperature must be fitted"):
        lsfix.threshold(LS, "msp_ts")


@pytest.mark.parametrize("kwargs", [{"fit": "val"}, {"grid": (1.0, 2.0)}])
def test_a_stored_score_is_not_silently_retuned(kwargs: dict) -> None:
    """``-s pnorm`` on a file that stores ``pnorm`` certifies the stored score: a ``--fit`` or
    ``--grid`` that would have tuned it is refused in one line, never ignored."""
    root = Path(__file__).resolve().parents[1] / "sample_data"
    test, val = root / "fmnist_ls02_test.h5", root / "fmnist_ls02_val.h5"
    kwargs = {k: (str(val) if v == "val" else v) for k, v in kwargs.items()}
    with pytest.raises(lsfix.UsageError, match="is stored in .* has nothing to tune"):
        lsfix.threshold(str(test), "pnorm", risk=0.05, **kwargs)
    assert lsfix.threshold(str(test), "pnorm", risk=0.05).to_dict()["tuning"]["note"] == \
        "stored score"

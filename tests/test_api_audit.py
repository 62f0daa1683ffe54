"""``lsfix.audit``: the whole of ``lsfix audit`` as one library call, whose ``to_dict()`` is
the command's ``-f json`` document (sample data, a grouped run, a dense file drawn within the
memory limit), with the command's checks raised from Python."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import lsfix
from lsfix.cli import app

ROOT = Path(__file__).resolve().parents[1]
LS, LS_VAL = "sample_data/fmnist_ls02_test.h5", "sample_data/fmnist_ls02_val.h5"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the documents name the files as given


def _cli_json(*args: object) -> dict:
    res = CliRunner().invoke(app, ["audit", *map(str, args), "-f", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_audit_to_dict_is_the_commands_json() -> None:
    got = lsfix.audit(LS, val=LS_VAL, bootstrap=50, coverages=[0.8], risks=[0.05])
    assert got.to_dict() == _cli_json(LS, "--val", LS_VAL, "-b", "50", "--coverage", "0.8",
                                      "--risk", "0.05")
    assert got.broken and got.calibration is not None
    assert isinstance(got, lsfix.AuditResult)


def test_audit_of_read_predictions_equals_audit_of_paths() -> None:
    pred, val = lsfix.read(LS), lsfix.read(LS_VAL)
    try:
        by_pred = lsfix.audit(pred, val=val, bootstrap=20, seed=4, select="point")
    finally:
        pred.close()
        val.close()
    by_path = lsfix.audit(LS, val=LS_VAL, bootstrap=20, seed=4, select="point")
    assert by_pred.to_dict() == by_path.to_dict()


def test_grouped_audit_to_dict_is_the_commands_json() -> None:
    got = lsfix.audit(LS, val=LS_VAL, bootstrap=20, by="class", fit_fraction=0.3)
    assert got.to_dict() == _cli_json(LS, "--val", LS_VAL, "-b", "20", "--by", "class",
                                      "--fit-fraction", "0.3")
    assert got.to_dict()["by"] == "class" and got.to_dict()["groups"]


def _dense(path: Path, n: int = 12, k: int = 5, h: int = 6, w: int = 10) -> str:
    from lsfix.readers.logitsfile import set_root_attrs

    rng = np.random.default_rng(7)
    y = rng.integers(0, k, (n, h, w)).astype(np.uint8)
    y[:, :2] = 255
    z = np.round(rng.normal(size=(n, k, h, w)) * 2, 1).astype(np.float32)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z, chunks=(1, k, h, w))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(255)
    return str(path)


def test_dense_audit_draws_pixels_within_the_memory_limit(tmp_path: Path) -> None:
    a = _dense(tmp_path / "a.h5")
    kw = dict(subsample_pixels="40/2", seed=3, bootstrap=30, bootstrap_unit="image",
              fit_fraction=0.25, memory_limit="1K")
    got = lsfix.audit(a, **kw)  # type: ignore[arg-type]
    want = _cli_json(a, "--subsample-pixels", "40/2", "--seed", "3", "-b", "30",
                     "--bootstrap-unit", "image", "--fit-fraction", "0.25",
                     "--memory-limit", "1K")
    assert got.to_dict() == want and want["paired_pnorm_minus_msp"]["unit"] == "image"
    with pytest.raises(lsfix.UsageError, match="above --memory-limit 1K"):
        lsfix.audit(a, bootstrap=10, memory_limit="1K")


@pytest.mark.parametrize(("kw", "message"), [
    ({"bootstrap": 0}, "--bootstrap must be >= 1 for audit (the verdict needs it)"),
    ({"val_labels": "y.npy"}, "--val-labels gives the labels of the --val file; pass --val too"),
    ({"convention": "nope"}, "unknown convention 'nope'"),
    ({"bootstrap_unit": "pixel"}, "--bootstrap-unit must be row or image, got 'pixel'"),
    ({"level": 1.5}, "--level must be in (0, 1), got 1.5"),
    ({"coverages": [0]}, "--coverage must be in (0, 1], got 0"),
    ({"bins": 0}, "--bins must be in [1, 10000], got 0"),
    ({"memory_limit": "lots"}, "--memory-limit must be a size like 2G"),
])
def test_audit_checks_its_arguments_before_reading(kw: dict, message: str) -> None:
    with pytest.raises(lsfix.UsageError) as exc:
        lsfix.audit("no-such-file.h5", **kw)  # the check comes before any read
    assert message in str(exc.value)


def test_a_report_from_python(tmp_path: Path) -> None:
    from lsfix.output.audit import write_report

    res = lsfix.audit(LS, val=LS_VAL, bootstrap=20, keep_open=True)
    try:
        written = write_report(res, str(tmp_path / "audit.html"))
    finally:
        res.close()
    assert written[0] == str(tmp_path / "audit.html")
    assert res.verdict.split(":")[0] in (tmp_path / "audit.html").read_text(encoding="utf-8")

"""``--ignore-index``: ignored rows never reach a number, whatever the input format."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer.testing

from lsfix.cli.app import app
from lsfix.core import evaluate
from lsfix.readers.logitsfile import new_file, set_root_attrs

K = 4


def _run(*args: object) -> typer.testing.Result:
    res = typer.testing.CliRunner().invoke(app, [str(a) for a in args], prog_name="lsfix")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"traceback: {res.stderr}") from res.exception
    return res


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(60, K)).astype(np.float32)
    y = rng.integers(0, K, 60)
    y[::5] = 255
    return z, y


def _expected(z: np.ndarray, y: np.ndarray) -> float:
    keep = y != 255
    zz = z[keep].astype(np.float64)
    conf = zz.max(axis=1) - np.log(np.exp(zz - zz.max(axis=1, keepdims=True)).sum(axis=1)) \
        - zz.max(axis=1)
    return evaluate(conf, zz.argmax(axis=1) == y[keep]).aurc


def _write(fmt: str, folder: Path, z: np.ndarray, y: np.ndarray) -> Path:
    if fmt == "npz":
        path = folder / "p.npz"
        np.savez(path, logits=z, labels=y)
    elif fmt == "csv":
        path = folder / "p.csv"
        head = ",".join(f"logit_{i}" for i in range(K)) + ",label\n"
        body = "".join(",".join(repr(float(v)) for v in row) + f",{lab}\n"
                       for row, lab in zip(z, y, strict=True))
        path.write_text(head + body)
    elif fmt == "pt":
        torch = pytest.importorskip("torch", reason="writing a .pt test input needs torch")
        path = folder / "p.pt"
        torch.save({"logits": torch.from_numpy(z), "labels": torch.from_numpy(y)}, path)
    else:  # an lsfix file without an ignore_index attribute
        path = folder / "p.h5"
        with h5py.File(path, "w") as f:
            set_root_attrs(f, {}, [])
            f.create_dataset("logits", data=z)
            f.create_dataset("labels", data=y)
    return path


@pytest.mark.parametrize("fmt", ["npz", "csv", "pt", "h5"])
def test_ignore_index_for_every_format(fmt: str, data, tmp_path: Path) -> None:
    z, y = data
    path = _write(fmt, tmp_path, z, y)
    refused = _run("curve", path)
    assert refused.exit_code == 3
    if fmt != "csv":
        assert refused.stderr.rstrip().endswith("pass --ignore-index 255"), refused.stderr
    res = _run("curve", path, "--ignore-index", "255", "-f", "json")
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)["results"][0]
    assert got["n"] == int((y != 255).sum())
    assert got["aurc"] == pytest.approx(_expected(z, y), rel=1e-12)
    # the scores file keeps the ignore_index, so the next stage needs no option
    out = tmp_path / "s.h5"
    assert _run("score", path, "--ignore-index", "255", "-o", out).exit_code == 0
    again = json.loads(_run("curve", out, "-f", "json").stdout)["results"][0]
    assert again["n"] == got["n"] and again["aurc"] == got["aurc"]


def test_disagreeing_ignore_index_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=np.zeros((4, 2, 2, 2), np.float32))
        ds = f.create_dataset("labels", data=np.array([[[0, 1], [255, 0]]] * 4, np.uint8))
        ds.attrs["ignore_index"] = 255
    res = _run("curve", path, "--ignore-index", "0")
    assert res.exit_code == 3
    assert res.stderr == (f"lsfix curve: error: {path}:/labels: attribute ignore_index=255 "
                          "disagrees with --ignore-index 0\n")
    assert _run("curve", path, "--ignore-index", "255").exit_code == 0


def test_without_ignored_values_the_option_changes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(30, 3)), rng.integers(0, 3, 30)
    new_file(tmp_path / "c.h5", z, labels=y)
    a = _run("curve", tmp_path / "c.h5", "-f", "tsv").stdout
    b = _run("curve", tmp_path / "c.h5", "--ignore-index", "255", "-f", "tsv").stdout
    assert a == b


def test_new_file_keeps_dense_labels_and_their_ignore_index(tmp_path: Path) -> None:
    """``new_file`` used to flatten (N, H, W) labels, which the reader then refused."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    y = rng.integers(0, 3, (2, 4, 5)).astype(np.uint8)
    y[0, 0, :] = 255
    new_file(tmp_path / "d.h5", z, labels=y, ignore_index=255)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert f["labels"].shape == (2, 4, 5) and f["labels"].dtype == np.uint8
        assert int(f["labels"].attrs["ignore_index"]) == 255
    res = _run("curve", tmp_path / "d.h5", "-f", "json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["results"][0]["n"] == 2 * 4 * 5 - 5

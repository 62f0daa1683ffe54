"""Scores files (``lsfix.scores``): what score/normalise write, the fingerprint that keeps them
paired with their logits, and ignored pixels that never reach an output."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer.testing

from lsfix.cli.app import app
from lsfix.core import evaluate
from lsfix.errors import InputError
from lsfix.readers.entry import read as read_predictions
from lsfix.readers.predictions import predictions_from_arrays
from lsfix.readers.logitsfile import new_file, set_root_attrs
from lsfix.readers.scoresfile import (
    FINGERPRINT_SAMPLES,
    SCHEMA_NAME,
    _sample_slices,
    check_same_samples,
    check_same_source,
    fingerprint,
)


def _run(*args: object) -> typer.testing.Result:
    res = typer.testing.CliRunner().invoke(app, [str(a) for a in args], prog_name="lsfix")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"traceback: {res.stderr}") from res.exception
    return res


def _error(res: typer.testing.Result, cmd: str) -> str:
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"lsfix {cmd}: error: ")
    return lines[0][len(f"lsfix {cmd}: error: "):]


def _logits(n: int = 200, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)).astype(np.float32)
    z[np.arange(n), y] += 1.5
    return z, y


def _dense(path: Path, *, n: int = 3, k: int = 4, h: int = 5, w: int = 6, seed: int = 0,
           ignore: int = 255, dtype: str = "uint8") -> tuple[np.ndarray, np.ndarray]:
    """A dense file written as extract writes one: labels in their own dtype, ignore_index."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, (n, h, w)).astype(dtype)
    y[:, 0, :] = ignore  # a whole row of pixels per image is "void"
    z = rng.normal(size=(n, k, h, w)).astype(np.float32)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z, chunks=(1, k, h, w))
        ds = f.create_dataset("labels", data=y)
        ds.attrs["ignore_index"] = np.int64(ignore)
    return z, y


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    z, y = _logits()
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    new_file(a, z, labels=y, sample_ids=[f"s{i}" for i in range(len(y))])
    z2 = z.copy()
    z2[-1, 0] += 1.0  # one logit of the last row differs: a sampled block
    new_file(b, z2, labels=y, sample_ids=[f"s{i}" for i in range(len(y))])
    return a, b


def test_score_writes_a_scores_file_that_reads_back(pair: tuple[Path, Path], tmp_path: Path
                                                    ) -> None:
    a, _ = pair
    out = tmp_path / "s.h5"
    assert _run("score", a, "-m", "msp", "-m", "gini", "-o", out).exit_code == 0
    with read_predictions(str(out)) as s, read_predictions(str(a)) as src:
        assert s.kind == SCHEMA_NAME and s.logits is None
        assert list(s.scores) == ["msp", "gini"]
        z = np.asarray(src.logits)
        np.testing.assert_array_equal(s.correct, z.argmax(axis=1) == src.labels)
        np.testing.assert_array_equal(s.labels, src.labels)
        assert s.fingerprint == fingerprint(src)
        check_same_source(s, src)
        check_same_samples(s, src, "a test")


def test_scores_file_of_other_logits_is_refused(pair: tuple[Path, Path], tmp_path: Path
                                                ) -> None:
    a, b = pair
    out = tmp_path / "s.h5"
    assert _run("score", a, "-o", out).exit_code == 0
    res = _run("curve", b, "--with", out, "-f", "json")
    assert res.exit_code == 3
    assert _error(res, "curve") == f"{out}: was not computed from {b} (logit values differ)"
    res = _run("normalise", b, "--with", out, "--p", "2", "-o", tmp_path / "n.h5")
    assert res.exit_code == 3 and "was not computed from" in res.stderr
    assert not (tmp_path / "n.h5").exists()


def test_scores_file_of_other_labels_is_refused(tmp_path: Path) -> None:
    z, y = _logits()
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    new_file(a, z, labels=y)
    y2 = y.copy()
    y2[7] = (y2[7] + 1) % 5
    new_file(b, z, labels=y2)  # the same logits, labels of another split
    assert _run("score", a, "-o", tmp_path / "s.h5").exit_code == 0
    res = _run("curve", b, "--with", tmp_path / "s.h5")
    assert res.exit_code == 3
    assert _error(res, "curve").endswith(f"was not computed from {b} (labels differ)")


def test_with_needs_a_scores_file(pair: tuple[Path, Path]) -> None:
    a, b = pair
    res = _run("curve", a, "--with", b)
    assert res.exit_code == 2
    assert "--with takes a scores file" in _error(res, "curve")


def test_curve_on_a_scores_file_equals_curve_on_the_logits(pair: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    a, _ = pair
    out = tmp_path / "s.h5"
    assert _run("score", a, "-m", "msp", "-m", "energy", "-o", out).exit_code == 0
    direct = json.loads(_run("curve", a, "-s", "msp", "-s", "energy", "-f", "json").stdout)
    via = json.loads(_run("curve", out, "-f", "json").stdout)
    for r1, r2 in zip(direct["results"], via["results"], strict=True):
        assert {**r1, "file": ""} == {**r2, "file": ""}


def test_a_scores_file_holding_logits_is_refused(pair: tuple[Path, Path], tmp_path: Path
                                                 ) -> None:
    a, _ = pair
    out = tmp_path / "s.h5"
    assert _run("score", a, "-o", out).exit_code == 0
    with h5py.File(out, "a") as f:
        f.create_dataset("logits", data=np.zeros((200, 5), np.float32))
    with pytest.raises(InputError, match="a scores file must not hold /logits"):
        read_predictions(str(out))


@pytest.mark.parametrize("bad", ["{", "[]", '{"shape": [0, 5]}', '{"shape": "x"}'])
def test_a_bad_source_attribute_is_one_clear_error(pair: tuple[Path, Path], tmp_path: Path,
                                                   bad: str) -> None:
    a, _ = pair
    out = tmp_path / "s.h5"
    assert _run("score", a, "-o", out).exit_code == 0
    with h5py.File(out, "a") as f:
        f.attrs["source"] = bad
    with pytest.raises(InputError, match="source"):
        read_predictions(str(out))


class _CountingArray:
    """An array-like that counts the elements read through it."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        self.shape, self.dtype, self.read = a.shape, a.dtype, 0

    def __getitem__(self, key: object) -> np.ndarray:
        out = self._a[key]
        self.read += int(np.size(out))
        return out


@pytest.mark.parametrize("shape", [(1000,), (5000, 300), (4, 19, 64, 128)])
def test_fingerprint_reads_a_bounded_sample(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=shape).astype(np.float32)
    pred = predictions_from_arrays("x", z)
    pred.raw_logits = _CountingArray(z)
    fp = fingerprint(pred)
    assert pred.raw_logits.read <= FINGERPRINT_SAMPLES * 4096
    assert fp["shape"] == list(shape) and fp["dtype"] == "f4"
    # a change in a sampled block changes it
    z2 = z.copy()
    z2[_sample_slices(shape)[-1]] += 1
    assert fingerprint(predictions_from_arrays("x", z2))["logits_sha256"] != fp["logits_sha256"]
    assert fingerprint(predictions_from_arrays("x", z.copy())) == fp


def test_dense_labels_keep_their_dtype_and_ignore_index(tmp_path: Path) -> None:
    src = tmp_path / "dense.h5"
    _dense(src)
    out = tmp_path / "s.h5"
    assert _run("score", src, "-o", out).exit_code == 0
    with h5py.File(out, "r") as f:
        assert f["labels"].dtype == np.uint8 and f["labels"].shape == (3, 5, 6)
        assert int(f["labels"].attrs["ignore_index"]) == 255
    with read_predictions(str(out)) as s, read_predictions(str(src)) as d:
        assert s.keep is not None and int((~s.keep).sum()) == 3 * 6
        # in memory too: 1 B per pixel, not an int64 copy
        assert s.labels.dtype == np.uint8 and d.labels.dtype == np.uint8


def _curve_json(*args: object) -> dict:
    res = _run("curve", *args, "-f", "json")
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_ignored_pixels_never_reach_the_tsv(tmp_path: Path) -> None:
    """The silent error of issue 11: ``score dense.h5 -f tsv | curve -`` kept void pixels."""
    src = tmp_path / "dense.h5"
    z, y = _dense(src)
    res = _run("score", src, "-m", "msp", "-f", "tsv")
    assert res.exit_code == 0
    assert res.stderr == "lsfix score: 18 ignored pixel(s) left out of the table\n"
    rows = res.stdout.splitlines()[1:]
    assert len(rows) == y.size - 18
    table = tmp_path / "t.tsv"
    table.write_text(res.stdout)
    via_table = _curve_json(table)["results"][0]
    direct = _curve_json(src, "-s", "msp")["results"][0]
    assert via_table["n"] == direct["n"] == y.size - 18
    for key in ("aurc", "augrc", "auroc", "accuracy"):
        assert via_table[key] == pytest.approx(direct[key], rel=1e-12, abs=0), key
    # and by hand: pixels in (N, H, W) order, void pixels dropped
    flat_z = np.moveaxis(z, 1, -1).reshape(-1, z.shape[1]).astype(np.float64)
    flat_y = y.reshape(-1).astype(np.int64)
    keep = flat_y != 255
    conf = flat_z.max(axis=1) - np.log(np.exp(flat_z).sum(axis=1))  # log-MSP
    m = evaluate(conf[keep], flat_z[keep].argmax(axis=1) == flat_y[keep])
    assert direct["aurc"] == pytest.approx(m.aurc, rel=1e-9)


@pytest.mark.parametrize("copy", [False, True])
def test_groups_are_carried_into_every_output(tmp_path: Path, copy: bool) -> None:
    z, y = _logits(n=30)
    src = tmp_path / "g.h5"
    new_file(src, z, labels=y)
    with h5py.File(src, "a") as f:
        f.create_dataset("groups/site", data=np.arange(30) % 3)
    out = tmp_path / "o.h5"
    args = ["--copy-logits"] if copy else []
    assert _run("score", src, "-o", out, *args).exit_code == 0
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["groups/site"][()], np.arange(30) % 3)

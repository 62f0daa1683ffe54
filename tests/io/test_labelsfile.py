"""``--labels FILE`` (:mod:`lsfix.readers.labelsfile`): labels saved as floats (as pandas and
torch often save them) for K >= 256 classes, non-integral labels refused, class names, and
cost bounded by the file (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer.testing

from lsfix.cli import app
from lsfix.errors import InputError
from lsfix.readers.labelsfile import MAX_CELL, ClassNames, read_labels_file

K = 300
N = 2000


def _data(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Logits of K = 300 classes whose labels reach 299; about a third predicted right."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, K, N)
    y[:K] = np.arange(K)  # every class, 299 included
    z = rng.normal(0.0, 1.0, (N, K))
    hit = rng.random(N) < 0.3
    z[hit, y[hit]] += 6.0
    np.save(tmp_path / "z.npy", z.astype(np.float32))
    return tmp_path / "z.npy", z, y


def _accuracy(args: list[str]) -> float:
    res = typer.testing.CliRunner().invoke(app, ["curve", *args, "-s", "msp", "-f", "json"],
                                           prog_name="lsfix")
    assert res.exit_code == 0, res.stderr
    return float(json.loads(res.stdout)["results"][0]["accuracy"])


@pytest.mark.parametrize(("fmt", "dtype"), [("npy", np.float64), ("npy", np.float32),
                                            ("npz", np.float64), ("txt", np.float64),
                                            ("csv", np.float64)])
def test_float_labels_above_255_read_as_their_integers(tmp_path: Path, fmt: str,
                                                       dtype: type) -> None:
    """299.0 is class 299: the accuracy equals the one with integer labels (a float branch
    narrowed to uint8 would wrap 299 to 43 and lower it)."""
    z_path, z, y = _data(tmp_path)
    want = float(np.mean(np.argmax(z, axis=1) == y))
    yf = y.astype(dtype)
    lab = tmp_path / f"y.{fmt}"
    if fmt == "npy":
        np.save(lab, yf)
    elif fmt == "npz":
        np.savez(lab, labels=yf)
    elif fmt == "txt":
        lab.write_text("\n".join(f"{v:.1f}" for v in yf))  # "299.0": a float written as text
    else:
        lab.write_text("label\n" + "\n".join(f"{v:.1f}" for v in yf))
    if fmt in ("txt", "csv"):  # "299.0" in text is a class name, not a number: say so
        res = typer.testing.CliRunner().invoke(app, ["curve", str(z_path), "--labels",
                                                     str(lab)], prog_name="lsfix")
        assert res.exit_code == 3 and "has no class names" in res.stderr, res.stderr
        return
    raw, _ = read_labels_file(str(lab))
    assert raw.dtype == np.int64 and raw.max() == 299
    np.testing.assert_array_equal(raw, y)
    got = _accuracy([str(z_path), "--labels", str(lab)])
    np.save(tmp_path / "yint.npy", y)
    assert got == _accuracy([str(z_path), "--labels", str(tmp_path / "yint.npy")])
    assert got == pytest.approx(want, rel=1e-12)
    assert want > 0.25


def test_float_labels_as_an_array_through_the_api(tmp_path: Path) -> None:
    """``lsfix.read(..., labels=array)``: the same float branch for arrays."""
    import lsfix

    z_path, z, y = _data(tmp_path)
    pred = lsfix.read(str(z_path), labels=y.astype(np.float64))
    np.testing.assert_array_equal(np.asarray(pred.labels), y)
    assert int(np.asarray(pred.labels).max()) == 299


@pytest.mark.parametrize("bad", [2.5, np.nan, np.inf, 1e300])
def test_non_integral_float_labels_are_refused(tmp_path: Path, bad: float) -> None:
    z_path, _, y = _data(tmp_path)
    yf = y.astype(np.float64)
    yf[7] = bad
    np.save(tmp_path / "y.npy", yf)
    with pytest.raises(InputError, match="y.npy: labels (must be integers|are out of the)"):
        read_labels_file(str(tmp_path / "y.npy"))
    res = typer.testing.CliRunner().invoke(app, ["curve", str(z_path), "--labels",
                                                 str(tmp_path / "y.npy")], prog_name="lsfix")
    assert res.exit_code == 3 and res.stderr.count("\n") == 1, res.stderr


def test_class_names_are_held_once_each(tmp_path: Path) -> None:
    (tmp_path / "y.txt").write_text("cat dog\ncat\n3\ndog\n")
    raw, _ = read_labels_file(str(tmp_path / "y.txt"))
    assert isinstance(raw, ClassNames)
    assert [raw.vocab[c] for c in raw.codes] == ["cat", "dog", "cat", "3", "dog"]
    assert sorted(raw.vocab) == ["3", "cat", "dog"]


def test_names_after_integers_keep_their_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """Cells read as integers before the first name are names as written ("007", "+3")."""
    from lsfix.readers import labelsfile

    monkeypatch.setattr(labelsfile, "BLOCK", 4)
    (tmp_path / "y.txt").write_text("007 +3 12 cat 007\n")
    raw, _ = read_labels_file(str(tmp_path / "y.txt"))
    assert isinstance(raw, ClassNames)
    assert [raw.vocab[c] for c in raw.codes] == ["007", "+3", "12", "cat", "007"]


def test_text_labels_across_read_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    """A cell split by a block boundary is read whole (blocks of 7 bytes here)."""
    from lsfix.readers import labelsfile

    monkeypatch.setattr(labelsfile, "BLOCK", 7)
    y = np.arange(1000) % 300
    (tmp_path / "y.txt").write_text(" \n".join(map(str, y)) + "\n")
    raw, _ = read_labels_file(str(tmp_path / "y.txt"))
    np.testing.assert_array_equal(raw, y)


def test_a_cell_longer_than_the_limit_is_refused_in_a_short_message(tmp_path: Path) -> None:
    (tmp_path / "y.txt").write_text("1\n" + "x" * (MAX_CELL + 1) + "\n")
    with pytest.raises(InputError) as info:
        read_labels_file(str(tmp_path / "y.txt"))
    assert len(str(info.value)) < 300 and "4096" in str(info.value)

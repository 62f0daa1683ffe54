"""Seeded pixel subsampling (``lsfix.core.subsample``) against a slow reference, properties,
and ``curve --subsample-pixels`` on a small dense file."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.cli.app import app
from lsfix.core import bootstrap_ci, compute_scores, evaluate, parse_score
from lsfix.core.bootstrap import cluster_bootstrap_ci
from lsfix.core.subsample import parse_subsample, subsample_rows
from lsfix.errors import UsageError
from lsfix.readers.entry import read as read_predictions
from lsfix.evaluation.inmemory import split_fit_rows
from lsfix.readers.logitsfile import new_file, set_root_attrs


def _slow(eligible: list[bool], n_items: int, pixels: int, per: int, images: int, seed: int
          ) -> list[bool]:
    """Reference: batch by batch, Python lists, one Generator."""
    rng = np.random.default_rng(seed)
    out = [False] * len(eligible)
    for b0 in range(0, n_items, images):
        rows = [r for r in range(b0 * pixels, min(n_items, b0 + images) * pixels)
                if eligible[r]]
        if len(rows) <= per:
            chosen = rows
        else:
            chosen = [rows[int(i)] for i in rng.choice(len(rows), size=per, replace=False)]
        for r in chosen:
            out[r] = True
    return out


@settings(max_examples=150, deadline=None)
@given(n_items=st.integers(1, 7), pixels=st.integers(1, 9), per=st.integers(1, 12),
       images=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_matches_reference_and_counts(n_items: int, pixels: int, per: int, images: int,
                                      seed: int, data: st.DataObject) -> None:
    n = n_items * pixels
    elig = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    got = subsample_rows(elig, n_items, pixels, per_batch=per, images=images, seed=seed)
    assert got.tolist() == _slow(elig.tolist(), n_items, pixels, per, images, seed)
    assert not (got & ~elig).any()  # only eligible rows
    step = images * pixels
    for s in range(0, n, step):
        assert got[s:s + step].sum() == min(per, elig[s:s + step].sum())
    again = subsample_rows(elig, n_items, pixels, per_batch=per, images=images, seed=seed)
    assert np.array_equal(got, again)  # same seed, same pixels


@pytest.mark.parametrize(("text", "want"), [("5000/12", (5000, 12)), ("7", (7, 1))])
def test_parse(text: str, want: tuple[int, int]) -> None:
    assert parse_subsample(text) == want


@pytest.mark.parametrize("text", ["", "0", "5/0", "a/b", "-1/2", "5/"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--subsample-pixels"):
        parse_subsample(text)


def _dense(path: Path, n: int = 3, k: int = 19, h: int = 16, w: int = 32) -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, k, (n, h, w)).astype(np.uint8)
    y[:, :3, :] = 255
    z = rng.normal(size=(n, k, h, w)).astype(np.float32)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z, chunks=(1, k, h, w))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(255)


def _run(*args: object) -> typer.testing.Result:
    return typer.testing.CliRunner().invoke(app, [str(a) for a in args], prog_name="lsfix")


def test_curve_subsample_pixels_on_a_dense_file(tmp_path: Path) -> None:
    path = tmp_path / "dense.h5"
    _dense(path)
    res = _run("curve", path, "-s", "msp", "--subsample-pixels", "100/2", "--seed", "3",
               "-f", "json")
    assert res.exit_code == 0, res.stderr
    # 3 images of 16 x 32, 3 rows of each ignored: 288 ignored, 1248 eligible, 200 drawn
    assert res.stderr == ("lsfix curve: 200 pixels drawn (--subsample-pixels 100/2, seed 3); "
                          "not drawn 1048, ignored 288, fit rows 0\n")
    doc = json.loads(res.stdout)
    assert (doc["n_ignored"], doc["n_not_drawn"], doc["n_fit_excluded"]) == (288, 1048, 0)
    got = doc["results"][0]
    pred = read_predictions(str(path))
    assert pred.keep is not None
    mask = subsample_rows(pred.keep, 3, 16 * 32, per_batch=100, images=2, seed=3)
    assert not (mask & ~pred.keep).any()  # never an ignored (255) pixel
    spec = parse_score("msp")
    s = compute_scores(pred.logits, [spec], labels=pred.labels)
    want = evaluate(s["msp"][mask], s["_correct"][mask])
    assert got["n"] == 200 and got["aurc"] == want.aurc and got["auroc"] == want.auroc
    pred.close()


def test_subsample_pixels_refuses_a_per_sample_file(tmp_path: Path) -> None:
    path = tmp_path / "flat.h5"
    new_file(path, np.eye(3, dtype=np.float32), labels=np.arange(3))
    res = _run("curve", path, "--subsample-pixels", "2")
    assert res.exit_code == 2
    assert res.stderr == (f"lsfix curve: error: {path}: --subsample-pixels needs dense "
                          "(N, K, H, W) predictions; this input has one row per sample\n")


def test_normalise_fit_fraction_on_a_dense_file_splits_whole_images(tmp_path: Path) -> None:
    path, out = tmp_path / "dense.h5", tmp_path / "s.h5"
    _dense(path, n=5)
    res = _run("normalise", path, "--fit-fraction", "0.4", "--seed", "1", "-o", out, "-q")
    assert res.exit_code == 0, res.stderr
    with h5py.File(out, "r") as f:
        fit = f["fit_mask"][()].reshape(5, -1)
        split = json.loads(f["scores"]["pnorm"].attrs["params"])["split"]
    per_image = fit.all(axis=1)
    assert (fit.all(axis=1) | ~fit.any(axis=1)).all()  # every image all in or all out
    assert per_image.sum() == 2  # ceil(0.4 * 5) images
    assert per_image.tolist() == split_fit_rows(5, 0.4, 1).tolist()
    assert split["unit"] == "image" and split["n"] == 2 * 16 * 32


def test_audit_fit_fraction_on_a_dense_file_holds_out_whole_images(tmp_path: Path) -> None:
    path = tmp_path / "dense.h5"
    _dense(path, n=5)
    res = _run("audit", path, "--fit-fraction", "0.4", "--seed", "1", "-b", "5", "-f", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    pred = read_predictions(str(path))
    assert pred.keep is not None
    held_out = split_fit_rows(5, 0.4, 1)
    evaluated = pred.keep.reshape(5, -1)[~held_out]
    assert doc["n_eval"] == int(evaluated.sum())
    pred.close()


# --------------------------------------------------------------------------------------------
# image-level (cluster) bootstrap


def test_cluster_bootstrap_with_one_row_per_cluster_is_the_row_bootstrap() -> None:
    rng = np.random.default_rng(4)
    c = rng.integers(0, 5, 60) / 5.0
    y = rng.random(60) < 0.6
    a = bootstrap_ci(c, y, n_boot=50, seed=9, convention="xia")
    b = cluster_bootstrap_ci(c, y, np.arange(60), n_boot=50, seed=9, convention="xia")
    assert repr(a) == repr(b)


def _slow_cluster_ci(c: np.ndarray, y: np.ndarray, g: np.ndarray, n_boot: int, seed: int,
                     level: float) -> tuple[float, float]:
    """Reference: rebuild each replicate's rows by concatenation, evaluate from scratch."""
    rng = np.random.default_rng(seed)
    n_g = int(g.max()) + 1
    vals = []
    for _ in range(n_boot):
        drawn = rng.integers(0, n_g, n_g)
        rows = np.concatenate([np.flatnonzero(g == k) for k in drawn])
        vals.append(evaluate(c[rows], y[rows]).aurc if rows.size else np.nan)
    ok = np.array([v for v in vals if v == v])
    lo, hi = np.percentile(ok, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), n_g=st.integers(1, 6), data=st.data())
def test_cluster_bootstrap_matches_slow_reference(seed: int, n_g: int,
                                                  data: st.DataObject) -> None:
    n = data.draw(st.integers(n_g, 30))
    g = np.array(data.draw(st.lists(st.integers(0, n_g - 1), min_size=n, max_size=n)))
    c = np.array(data.draw(st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.9]), min_size=n,
                                    max_size=n)))
    y = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    got = cluster_bootstrap_ci(c, y, g, n_boot=20, seed=seed, level=0.9)["aurc"]
    lo, hi = _slow_cluster_ci(c, y, g, 20, seed, 0.9)
    assert got.low == pytest.approx(lo, rel=1e-12, abs=1e-15)
    assert got.high == pytest.approx(hi, rel=1e-12, abs=1e-15)


def test_curve_bootstrap_unit_image_on_a_dense_file(tmp_path: Path) -> None:
    path = tmp_path / "dense.h5"
    _dense(path)
    res = _run("curve", path, "-s", "msp", "-b", "30", "--seed", "2", "--bootstrap-unit",
               "image", "-f", "json")
    assert res.exit_code == 0, res.stderr
    ci = json.loads(res.stdout)["results"][0]["ci"]["aurc"]
    pred = read_predictions(str(path))
    s = compute_scores(pred.logits, [parse_score("msp")], labels=pred.labels)
    keep = pred.keep
    images = np.repeat(np.arange(3), 16 * 32)[keep]
    want = cluster_bootstrap_ci(s["msp"][keep], s["_correct"][keep], images, n_boot=30,
                                seed=2)["aurc"]
    assert (ci["low"], ci["high"]) == (want.low, want.high)
    bad = _run("curve", path, "--bootstrap-unit", "pixel")
    assert bad.exit_code == 2 and "--bootstrap-unit must be row or image" in bad.stderr
    pred.close()

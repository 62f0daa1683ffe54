"""``curve``'s out-of-core path (lsfix/evaluation/bounded.py) equals the in-memory path bit for bit:
dense files with ignored pixels (uint8 and int64 labels, ignore_index 255 and -1), fit rows,
several scores, a spill budget so small that every piece becomes runs, and plain (N, K) files
sent there by ``--memory-limit 0``."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer.testing

from lsfix.cli.app import app
from lsfix.readers.entry import read as load
from lsfix.evaluation.bounded import evaluate_bounded
from lsfix.evaluation.planner import parse_memory_limit, wanted
from lsfix.evaluation.inmemory import evaluate_file
from lsfix.readers.logitsfile import set_root_attrs

SCORES = ["msp", "pnorm_raw:8", "max_logit", "neg_entropy"]
KW = {"coverages": (0.25, 0.9), "risks": (0.5, 0.9)}


def _run(*args: object) -> typer.testing.Result:
    res = typer.testing.CliRunner().invoke(app, [str(a) for a in args], prog_name="lsfix")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"traceback: {res.stderr}") from res.exception
    return res


def _dense(path: Path, dtype: type, ignore: int, *, fit: bool = False) -> Path:
    rng = np.random.default_rng(abs(ignore) + np.dtype(dtype).itemsize)
    n, k, h, w = 3, 5, 6, 7
    y = rng.integers(0, k, (n, h, w)).astype(dtype)
    y[:, :2] = ignore  # a band of ignored pixels
    y[1, 3, 4] = ignore
    z = np.round(rng.normal(size=(n, k, h, w)), 1).astype(np.float32)  # ties
    z[:, :, 3] += 3 * (np.arange(k) == 2)[:, None]  # some confident right/wrong pixels
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z, chunks=(1, k, h, w))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(ignore)
        if fit:
            f.create_dataset("fit_mask", data=rng.random(n * h * w) < 0.2)
    return path


@pytest.mark.parametrize("scores", [SCORES, ["msp"]])  # ["msp"]: the (K, pixels) kernel
@pytest.mark.parametrize("dtype,ignore", [(np.uint8, 255), (np.int64, 255), (np.int64, -1)])
@pytest.mark.parametrize("convention", ["lsfix", "fd-shifts", "torch-uncertainty", "xia"])
def test_dense_bounded_equals_in_memory(tmp_path, dtype, ignore, convention, scores):
    path = _dense(tmp_path / "d.h5", dtype, ignore)
    pred = load(str(path))
    assert wanted(pred, scores, parse_memory_limit("2G"))  # dense: always this path
    assert pred.labels is not None and pred.labels.dtype == np.dtype(dtype)
    want = evaluate_file(pred, scores, convention=convention, **KW)
    for run_rows in (1, 7, 1 << 20):  # 1: every pair is its own run
        got, curves, oracle, ex = evaluate_bounded(pred, scores, convention=convention,
                                               run_rows=run_rows, curve_points=50, **KW)
        assert [r.score for r in got] == scores
        for a, b in zip(got, want, strict=True):
            assert repr(a.metrics) == repr(b.metrics), (a.score, run_rows)
        assert got[0].metrics.n == int(pred.keep.sum())
    assert len(curves) == len(scores) and oracle[0][-1] == 1.0


def test_fit_rows_are_left_out_like_in_memory(tmp_path):
    path = _dense(tmp_path / "f.h5", np.uint8, 255, fit=True)
    pred = load(str(path))
    assert pred.fit_mask is not None and pred.fit_mask.any()
    want = evaluate_file(pred, ["msp"], **KW)
    got, *_ = evaluate_bounded(pred, ["msp"], convention="lsfix", run_rows=5, **KW)
    assert repr(got[0].metrics) == repr(want[0].metrics)


def test_dense_curve_cli_matches_in_memory_numbers(tmp_path):
    """The CLI takes the bounded path for a dense file; its JSON equals the numbers of the
    in-memory evaluation of the same rows, and ``--plot`` works there."""
    path = _dense(tmp_path / "c.h5", np.uint8, 255)
    res = _run("curve", path, "-s", "msp", "-s", "pnorm_raw:8", "--coverage", "0.5",
               "--risk", "0.5", "-f", "json", "--plot", tmp_path / "rc.png")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "rc.png").stat().st_size > 0
    got = json.loads(res.stdout)["results"]
    want = evaluate_file(load(str(path)), ["msp", "pnorm_raw:8"], coverages=(0.5,),
                         risks=(0.5,))
    for g, w in zip(got, want, strict=True):
        assert g["n"] == w.metrics.n
        assert repr(g["aurc"]) == repr(w.metrics.aurc)
        assert repr(g["augrc"]) == repr(w.metrics.augrc)
        assert repr(g["auroc"]) == repr(w.metrics.auroc)


def test_plain_file_memory_limit_zero_takes_bounded_path_same_output(tmp_path):
    rng = np.random.default_rng(0)
    z = np.round(rng.normal(size=(500, 6)), 1).astype(np.float32)
    y = rng.integers(0, 6, 500)
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z)
        f.create_dataset("labels", data=y)
    pred = load(str(path))
    assert not wanted(pred, ["msp"], parse_memory_limit("2G"))
    assert wanted(pred, ["msp"], parse_memory_limit("0"))
    outs = [_run("curve", path, "-s", "msp", "-s", "gini", "--coverage", "0.8", "-f", "json",
                 "--memory-limit", lim) for lim in ("2G", "0")]
    assert all(o.exit_code == 0 for o in outs), [o.stderr for o in outs]
    assert json.loads(outs[0].stdout)["results"] == json.loads(outs[1].stdout)["results"]


def test_stored_scores_and_bad_limit():
    assert parse_memory_limit("512M") == 512 << 20
    assert parse_memory_limit("1.5k") == 1536
    with pytest.raises(Exception, match="--memory-limit"):
        parse_memory_limit("lots")
    res = _run("curve", "-", "--memory-limit", "lots")
    assert res.exit_code == 2 and "--memory-limit" in res.stderr


@pytest.mark.parametrize("dtype,ignore", [(np.uint8, 255), (np.int64, -1)])
def test_labels_left_on_disk_read_image_by_image(tmp_path, dtype, ignore):
    """Read with ``defer_dense_labels=True``, a dense file's labels stay on disk (no per-pixel
    array); the bounded path reads them image by image and gets the same numbers."""

    path = _dense(tmp_path / "d.h5", dtype, ignore, fit=True)
    for scores in (SCORES, ["msp"]):
        lazy = load(str(path), defer_dense_labels=True)
        assert lazy.labels is None and lazy.keep is None and lazy.deferred_labels is not None
        want = evaluate_file(load(str(path)), scores, **KW)
        got, *_ = evaluate_bounded(lazy, scores, convention="lsfix", run_rows=11, **KW)
        for a, b in zip(got, want, strict=True):
            assert repr(a.metrics) == repr(b.metrics), a.score
    lazy.load_labels()
    eager = load(str(path))
    np.testing.assert_array_equal(lazy.labels, eager.labels)
    np.testing.assert_array_equal(lazy.keep, eager.keep)
    assert lazy.labels.dtype == np.dtype(dtype)


def test_bad_label_in_a_later_image_gives_the_normal_error(tmp_path):
    path = _dense(tmp_path / "b.h5", np.uint8, 255)
    with h5py.File(path, "r+") as f:
        y = f["labels"][()]
        y[2, 5, 5] = 7  # K = 5
        f["labels"][...] = y
    lazy = _run("curve", path, "-f", "json")
    eager = _run("curve", path, "-f", "json", "--bootstrap", "2")  # in-memory path
    assert lazy.exit_code == eager.exit_code != 0
    assert lazy.stderr == eager.stderr and "not in [0, 5)" in lazy.stderr


def test_every_pixel_ignored_gives_the_normal_error(tmp_path):
    path = _dense(tmp_path / "e.h5", np.uint8, 255)
    with h5py.File(path, "r+") as f:
        f["labels"][...] = 255
    lazy = _run("curve", path, "-f", "json")
    eager = _run("curve", path, "-f", "json", "--bootstrap", "2")
    assert lazy.exit_code == eager.exit_code != 0
    assert lazy.stderr == eager.stderr


def test_dense_probabilities_with_labels_on_disk(tmp_path):
    """A dense file of probabilities (read as log p through ``input_kind.ProbRows``) takes the
    row kernels, with the labels still read image by image, and matches in memory."""
    from lsfix.readers import kind as input_kind

    rng = np.random.default_rng(4)
    z = rng.normal(size=(2, 4, 5, 6))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, 4, (2, 5, 6)).astype(np.uint8)
    y[0, 0] = 255
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=p.astype(np.float32))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(255)
    lazy = load(str(path), defer_dense_labels=True, input="probs")
    assert isinstance(lazy.logits, input_kind.ProbRows)
    eager = load(str(path), input="probs")
    want = evaluate_file(eager, ["msp", "gini"], **KW)
    got, *_ = evaluate_bounded(lazy, ["msp", "gini"], convention="lsfix", run_rows=7, **KW)
    for a, b in zip(got, want, strict=True):
        assert repr(a.metrics) == repr(b.metrics), a.score


def test_json_counts_ignored_and_fit_rows_like_in_memory(tmp_path):
    """``n_ignored`` and ``n_fit_excluded`` of the bounded path (counted while reading, with
    the labels on disk) equal the in-memory path's."""
    path = _dense(tmp_path / "j.h5", np.uint8, 255, fit=True)
    lazy = json.loads(_run("curve", path, "-f", "json").stdout)
    eager = json.loads(_run("curve", path, "-f", "json", "--bootstrap", "2").stdout)
    for key in ("n_ignored", "n_not_drawn", "n_fit_excluded"):
        assert lazy[key] == eager[key], key
    assert lazy["n_ignored"] > 0
    assert lazy["results"][0]["n"] == eager["results"][0]["n"]
    assert repr(lazy["results"][0]["aurc"]) == repr(eager["results"][0]["aurc"])

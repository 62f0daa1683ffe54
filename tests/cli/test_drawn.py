"""Dense files on the bounded engines (issue 20): ``--subsample-pixels`` reads only the drawn
pixels (lsfix/evaluation/drawn.py) and gives the in-memory path's numbers bit for bit;
``compare`` takes the out-of-core path for dense files; ``audit``/``compare`` refuse, in one
line, a dense file that would not fit ``--memory-limit`` in memory."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer.testing

from lsfix.cli.app import app
from lsfix.core import paired_bootstrap
from lsfix.evaluation.dense import apply_subsample, image_of_rows
from lsfix.evaluation.drawn import gather
from lsfix.evaluation.inmemory import eval_mask, evaluate_file, excluded_rows
from lsfix.readers.entry import read
from lsfix.readers.logitsfile import set_root_attrs

K, H, W = 5, 6, 10


def _run(*args: object) -> typer.testing.Result:
    res = typer.testing.CliRunner().invoke(app, [str(a) for a in args], prog_name="lsfix")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"traceback: {res.stderr}") from res.exception
    return res


def _dense(path: Path, seed: int, *, n: int = 7, dtype: type = np.float32,
           ldtype: type = np.uint8, ignore: int = 255, fit: bool = False,
           labels: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, (n, H, W)).astype(ldtype) if labels is None else labels
    y[:, :2] = ignore
    y[3, 4, :] = ignore
    z = np.round(rng.normal(size=(n, K, H, W)) * 2, 1).astype(dtype)  # ties
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z, chunks=(1, K, H, W))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(ignore)
        if fit:
            f.create_dataset("fit_mask", data=rng.random(n * H * W) < 0.15)
    return path


def _read(path: Path, deferred: bool):
    return read(str(path), defer_dense_labels=deferred)


@pytest.mark.parametrize("deferred", [True, False])
@pytest.mark.parametrize("dtype,ldtype,ignore", [(np.float32, np.uint8, 255),
                                                 (np.float16, np.int64, -1),
                                                 (np.float64, np.int64, 255)])
@pytest.mark.parametrize("sub", ["7", "25/3", "1000/2", "3/7"])
@pytest.mark.parametrize("fit", [False, True])
def test_gather_is_apply_subsample_bit_for_bit(tmp_path, deferred, dtype, ldtype, ignore, sub,
                                               fit):
    path = _dense(tmp_path / "d.h5", 1, dtype=dtype, ldtype=ldtype, ignore=ignore, fit=fit)
    full = _read(path, False)
    apply_subsample(full, sub, 11)
    mask = eval_mask(full)
    rows = np.flatnonzero(mask)
    d = gather(_read(path, deferred), sub, 11)
    assert d.rows.tolist() == rows.tolist()
    assert d.images.tolist() == image_of_rows(full, "x")[mask].tolist()
    assert d.excluded == excluded_rows(full)
    assert d.pred.labels.dtype == full.labels.dtype
    np.testing.assert_array_equal(d.pred.labels, full.labels[mask])
    np.testing.assert_array_equal(np.asarray(d.pred.logits), np.asarray(full.logits)[mask])
    names = ["msp", "pnorm_raw:8", "max_logit"]
    want = evaluate_file(full, names, convention="fd-shifts", coverages=(0.5,), risks=(0.3,),
                         n_boot=30, seed=2, clusters=image_of_rows(full, "x"))
    got = evaluate_file(d.pred, names, convention="fd-shifts", coverages=(0.5,), risks=(0.3,),
                        n_boot=30, seed=2, clusters=d.images)
    for a, b in zip(got, want, strict=True):
        assert repr(a.metrics) == repr(b.metrics) and repr(a.ci) == repr(b.ci)
        assert a.confidence.tobytes() == b.confidence.tobytes()


def test_a_non_finite_logit_anywhere_is_the_normal_error(tmp_path):
    path = _dense(tmp_path / "d.h5", 2)
    with h5py.File(path, "r+") as f:
        z = f["logits"][()]
        z[5, 1, 0, 0] = np.nan  # an ignored pixel of image 5, never drawn
        f["logits"][...] = z
    r = _run("curve", path, "--subsample-pixels", "3", "-f", "json")
    assert r.exit_code == 3 and "non-finite" in r.stderr and r.stderr.count("\n") == 1


def test_curve_subsample_cli_equals_the_in_memory_path(tmp_path):
    path = _dense(tmp_path / "d.h5", 3, fit=True)
    r = _run("curve", path, "-s", "msp", "-s", "pnorm_raw:8", "--subsample-pixels", "20/3",
             "--seed", "4", "--bootstrap", "40", "--bootstrap-unit", "image", "-f", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    full = _read(path, False)
    apply_subsample(full, "20/3", 4)
    want = evaluate_file(full, ["msp", "pnorm_raw:8"], n_boot=40, seed=4,
                         clusters=image_of_rows(full, "x"))
    ex = excluded_rows(full)
    assert (got["n_ignored"], got["n_not_drawn"]) == (ex.ignored, ex.not_drawn)
    for res, w in zip(got["results"], want, strict=True):
        assert res["aurc"] == w.metrics.aurc and res["n"] == w.metrics.n
        assert res["ci"]["aurc"]["low"] == w.ci["aurc"].low
    assert f"{ex.evaluated} pixels drawn" in r.stderr


def _paired(files, scores, sub, seed, unit):
    """The in-memory paired differences, computed here from apply_subsample's rows."""
    preds = [_read(p, False) for p in files]
    for p in preds:
        apply_subsample(p, sub, seed)
    res = [evaluate_file(p, scores) for p in preds]
    mask = eval_mask(preds[0])
    clusters = image_of_rows(preds[0], "x")[mask] if unit == "image" else None
    return [paired_bootstrap(b.confidence, b.correct, r.confidence, r.correct, n_boot=50,
                             seed=seed, clusters=clusters)
            for b, r in zip(res[0], res[1], strict=True)], res


@pytest.mark.parametrize("unit", ["row", "image"])
def test_compare_subsample_paired_equals_in_memory(tmp_path, unit):
    a = _dense(tmp_path / "a.h5", 5)
    with h5py.File(a, "r") as f:
        y = f["labels"][()]
    b = _dense(tmp_path / "b.h5", 6, labels=y.copy())
    r = _run("compare", a, b, "-s", "msp", "--subsample-pixels", "30/2", "--seed", "9",
             "--bootstrap", "50", "--bootstrap-unit", unit, "-f", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    want, res = _paired([a, b], ["msp"], "30/2", 9, unit)
    assert [x["aurc"] for x in got["results"]] == [res[0][0].metrics.aurc,
                                                   res[1][0].metrics.aurc]
    p = got["paired"][0]
    assert (p["difference"], p["low"], p["high"], p["unit"]) == (
        want[0].estimate, want[0].low, want[0].high, unit)


def test_compare_subsample_refuses_files_whose_draws_differ(tmp_path):
    a = _dense(tmp_path / "a.h5", 5)
    b = _dense(tmp_path / "b.h5", 6)  # other labels: other ignored pixels are the same, but
    r = _run("compare", a, b, "--subsample-pixels", "30/2", "--bootstrap", "20", "-f", "json")
    assert r.exit_code == 3 and "cannot pair" in r.stderr and "labels differ" in r.stderr


def test_compare_dense_without_bootstrap_is_out_of_core_and_exact(tmp_path, monkeypatch):
    import lsfix.evaluation.bounded as ooc

    a = _dense(tmp_path / "a.h5", 5)
    b = _dense(tmp_path / "b.h5", 6)
    calls = []
    real = ooc.evaluate_bounded
    monkeypatch.setattr(ooc, "evaluate_bounded",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    r = _run("compare", a, b, "-s", "msp", "-s", "neg_entropy", "--plot", tmp_path / "c.png",
             "-f", "json", "--tmpdir", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert len(calls) == 2 and (tmp_path / "c.png").stat().st_size > 0
    got = json.loads(r.stdout)["results"]
    want = [m for p in (a, b) for m in evaluate_file(_read(p, False), ["msp", "neg_entropy"])]
    assert [g["aurc"] for g in got] == [w.metrics.aurc for w in want]
    assert [g["auroc"] for g in got] == [w.metrics.auroc for w in want]


def test_dense_files_too_large_for_memory_are_refused_in_one_line(tmp_path):
    a = _dense(tmp_path / "a.h5", 5)
    for cmd in (["compare", a, a, "--bootstrap", "10"], ["audit", a]):
        r = _run(*cmd, "--memory-limit", "1K")
        assert r.exit_code == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "--subsample-pixels N/IMAGES" in r.stderr
        assert "above --memory-limit 1K" in r.stderr


def test_audit_subsample_reads_only_drawn_pixels_and_splits_by_image(tmp_path):
    a = _dense(tmp_path / "a.h5", 7, n=12)
    r = _run("audit", a, "--subsample-pixels", "40/2", "--seed", "3", "--bootstrap", "30",
             "--bootstrap-unit", "image", "--fit-fraction", "0.25", "-f", "json",
             "--memory-limit", "1K")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    from lsfix.evaluation.audit import audit
    from lsfix.evaluation.inmemory import split_fit_rows

    full = _read(a, False)
    apply_subsample(full, "40/2", 3)
    mask = eval_mask(full)
    fit_img = split_fit_rows(12, 0.25, 3, full.name)
    images = image_of_rows(full, "x")[mask]
    assert got["n_eval"] == int((~fit_img[images]).sum())
    d = gather(_read(a, True), "40/2", 3)
    want = audit(d.pred, seed=3, n_boot=30, fit_fraction=0.25, bootstrap_unit="image",
                 images=d.images, n_images=12)
    assert got["paired_pnorm_minus_msp"]["difference"] == want.paired.estimate
    assert got["paired_pnorm_minus_msp"]["unit"] == "image"
    r = _run("audit", a, "--subsample-pixels", "40/2", "--by", "image")
    assert r.exit_code == 2 and "does not go with --by" in r.stderr


def test_audit_with_a_dense_val_file_draws_from_it(tmp_path):
    a = _dense(tmp_path / "a.h5", 7)
    v = _dense(tmp_path / "v.h5", 8, fit=True)  # its fit mask is not used for tuning
    r = _run("audit", a, "--val", v, "--subsample-pixels", "50/2", "--bootstrap", "20",
             "-f", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    want = gather(_read(v, True), "50/2", 0, use_fit_mask=False)
    assert f"({want.excluded.evaluated} samples)" in got["fit_source"]
    assert got["fit"]["split"]["n"] == want.excluded.evaluated


def test_the_planner_draws_from_disk_and_matches_its_in_memory_plan(tmp_path):
    import lsfix

    path = _dense(tmp_path / "d.h5", 9, fit=True)
    kw = dict(subsample_pixels="15/2", seed=5, bootstrap=25, bootstrap_unit="image",
              coverages=[0.5], risks=[0.2])
    drawn = lsfix.evaluate(str(path), ["msp", "max_logit"], **kw)
    assert drawn.plan == "drawn"
    full = _read(path, False)  # labels in memory: the planner keeps the in-memory path
    mem = lsfix.evaluate(full, ["msp", "max_logit"], **kw)
    assert mem.plan == "in-memory"
    assert drawn.to_dict() == mem.to_dict()
    assert drawn.subsampled == mem.subsampled == drawn.excluded.evaluated


def test_too_little_temporary_disk_is_refused_before_any_run(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from lsfix.errors import RuntimeFailure
    from lsfix.evaluation.bounded import evaluate_bounded

    path = _dense(tmp_path / "d.h5", 4)
    pred = _read(path, True)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    tmp = tmp_path / "t"
    tmp.mkdir()
    with pytest.raises(RuntimeFailure, match=r"not enough temporary disk in .*/t: needs up to "
                                             r"[\d.]+ MB \(24 B per row that may be "
                                             r"evaluated x 270 rows x 2 scores\)"):
        evaluate_bounded(pred, ["msp", "max_logit"], convention="lsfix", coverages=(),
                         risks=(), run_rows=10, folder=str(tmp))
    assert not any(tmp.iterdir())  # nothing written (270: the pixels that are not ignored)
    monkeypatch.undo()
    got = evaluate_bounded(pred, ["msp"], convention="lsfix", coverages=(), risks=(),
                           run_rows=10, folder=str(tmp))[0]
    assert got[0].metrics.n == int(_read(path, False).keep.sum())
    assert not any(tmp.iterdir())  # removed at the end

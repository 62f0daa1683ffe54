"""The paper-protocol options of issue 11 that the CLI gained after docs/dense.md's first
version, each against an independent recomputation:

* ``normalise --no-centre``: tuning the un-centred pNorm (``pnorm_raw``), and the saved fit;
* ``compare``/``audit --bootstrap-unit image``: paired cluster bootstrap over images;
* ``--subsample-pixels`` counts undrawn pixels apart from ignored ones;
* ``normalise --fit-labels`` / ``audit --val-labels`` (``--labels`` is for the input only),
  and a dense ``--fit`` file's ignored pixels never tuned on;
* an ImportError inside a command is one stderr line with exit 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer

from lsfix.core import PNormFit, compute_scores, paired_bootstrap, parse_score, tune_pnorm
from lsfix.errors import ExitCode
from lsfix.readers.entry import read as read_predictions
from lsfix.readers.logitsfile import set_root_attrs
from tests.cli.conftest import ls_logits

H, W, K = 8, 16, 5


def _dense(path: Path, seed: int, n: int = 6, *, shift: float = 0.0,
           labels_from: Path | None = None) -> None:
    """A dense file ``(n, K, H, W)``: a band of ignored (255) pixels, errors carrying larger
    logit norms (so pNorm beats MSP); ``labels_from`` copies another file's labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, (n, H, W)).astype(np.uint8)
    y[:, :2] = 255
    if labels_from is not None:
        with h5py.File(labels_from, "r") as f:
            y = f["labels"][()]
    z = rng.normal(size=(n, K, H, W))
    yy = np.where(y == 255, 0, y).astype(np.int64)
    np.put_along_axis(z, yy[:, None], np.take_along_axis(z, yy[:, None], 1) + 2.0, axis=1)
    wrong = z.argmax(axis=1) != yy
    z = z * np.where(wrong, 2.5, 1.0)[:, None] + shift
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z.astype(np.float32), chunks=(1, K, H, W))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(255)


def _rows(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits rows (n·H·W, K) float64, labels, keep) read independently of lsfix."""
    with h5py.File(path, "r") as f:
        z = f["logits"][()].astype(np.float64)
        y = f["labels"][()].reshape(-1).astype(np.int64)
    rows = z.transpose(0, 2, 3, 1).reshape(-1, K)
    return rows, y, y != 255


# --------------------------------------------------------------------------------------------
# normalise --no-centre


def test_no_centre_tunes_raw_pnorm_on_the_fit_file(run, tmp_path, read_scores, score_attrs):
    val, test = tmp_path / "val.h5", tmp_path / "test.h5"
    _dense(val, 1, shift=1.5)
    _dense(test, 2, shift=1.5)
    out, params = tmp_path / "s.h5", tmp_path / "p.json"
    r = run(["normalise", test, "--no-centre", "--fit", val, "--save-params", params,
             "-o", out])
    assert r.code == 0, r
    zv, yv, kv = _rows(val)
    want = tune_pnorm(zv[kv], yv[kv], centred=False,
                      split={"kind": "file", "file": str(val), "n": int(kv.sum())})
    assert want.p is not None  # the data make pNorm win: the variant is visible
    saved = json.loads(params.read_text())
    assert saved["method"] == "maxlogit_pnorm_raw" and saved["centred"] is False
    assert PNormFit.from_dict(saved) == want
    assert r.stderr.startswith(f"lsfix normalise: chose p={want.p:g} (un-centred pNorm): ")
    scores = read_scores(out)
    assert list(scores) == ["pnorm_raw"]  # the default name says the variant
    zt, _, _ = _rows(test)
    spec = parse_score(f"pnorm_raw:{want.p:g}")
    assert np.array_equal(scores["pnorm_raw"], compute_scores(zt, [spec])[spec.name])
    attrs = score_attrs(out, "pnorm_raw")
    assert attrs["method"] == "maxlogit_pnorm_raw"
    assert json.loads(attrs["params"])["centred"] is False
    # the centred tuning of the same files is a different score
    out_c = tmp_path / "c.h5"
    assert run(["normalise", test, "--fit", val, "-o", out_c, "-q"]).code == 0
    assert list(read_scores(out_c)) == ["pnorm"]
    assert not np.array_equal(read_scores(out_c)["pnorm"], scores["pnorm_raw"])


def test_no_centre_with_params_fixed_p_and_fraction(run, files, tmp_path, read_scores,
                                                    error_of):
    params, out = tmp_path / "p.json", tmp_path / "a.h5"
    assert run(["normalise", files.a, "--no-centre", "--fit", files.val, "--save-params",
                params, "-o", out, "-q"]).code == 0
    again = tmp_path / "again.h5"
    assert run(["normalise", files.a, "--params", params, "-o", again, "-q"]).code == 0
    assert np.array_equal(read_scores(again)["pnorm_raw"], read_scores(out)["pnorm_raw"])
    r = run(["normalise", files.a, "--params", params, "--centre", "-o", tmp_path / "x.h5"])
    assert r.code == 2
    assert error_of(r, "normalise") == (f"{params}: --centre contradicts this saved fit, "
                                        "which is un-centred; drop the option")
    fixed = tmp_path / "fixed.h5"
    r = run(["normalise", files.a, "--no-centre", "--p", "8", "-o", fixed])
    assert r.code == 0 and r.stderr == "lsfix normalise: fixed p=8 (un-centred pNorm)\n"
    za = read_predictions(files.a).logits.rows(0, 300).astype(np.float64)
    spec = parse_score("pnorm_raw:8")
    assert np.array_equal(read_scores(fixed)["pnorm_raw"], compute_scores(za, [spec])[spec.name])
    frac = tmp_path / "frac.h5"
    assert run(["normalise", files.a, "--no-centre", "--fit-fraction", "0.3", "-o", frac,
                "-q"]).code == 0
    with h5py.File(frac, "r") as f:
        fit = json.loads(f["scores"]["pnorm_raw"].attrs["params"])
        mask = f["fit_mask"][()]
    _, y = ls_logits(0)
    want = tune_pnorm(za[mask], y[mask], centred=False)
    assert fit["centred"] is False and fit["grid"] == PNormFit.to_dict(want)["grid"]


# --------------------------------------------------------------------------------------------
# compare / audit --bootstrap-unit image


def test_compare_bootstrap_unit_image_pairs_the_same_images(run, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    _dense(a, 3)
    _dense(b, 4, labels_from=a)  # the same pixels (labels), another model
    r = run(["compare", a, b, "-s", "msp", "-b", "25", "--seed", "7", "--bootstrap-unit",
             "image", "-f", "json"])
    assert r.code == 0, r
    (got,) = json.loads(r.stdout)["paired"]
    za, y, keep = _rows(a)
    zb, _, _ = _rows(b)
    spec = parse_score("msp")
    ca = compute_scores(za, [spec])["msp"][keep]
    cb = compute_scores(zb, [spec])["msp"][keep]
    ya = (za.argmax(axis=1) == y)[keep]
    yb = (zb.argmax(axis=1) == y)[keep]
    images = np.repeat(np.arange(6), H * W)[keep]
    want = paired_bootstrap(ca, ya, cb, yb, n_boot=25, seed=7, clusters=images)
    assert got["unit"] == "image"
    assert (got["difference"], got["low"], got["high"], got["p_value"], got["n_valid"]) == (
        want.estimate, want.low, want.high, want.p_value, want.n_valid)
    row = paired_bootstrap(ca, ya, cb, yb, n_boot=25, seed=7)
    assert (want.low, want.high) != (row.low, row.high)  # resampling images is not rows


def test_bootstrap_unit_image_refusals(run, files, tmp_path, error_of):
    a = tmp_path / "a.h5"
    _dense(a, 3)
    r = run(["compare", files.a, files.b, "-b", "5", "--bootstrap-unit", "image"])
    assert r.code == 2
    assert error_of(r, "compare") == (f"{files.a}: --bootstrap-unit image needs dense "
                                      "(N, K, H, W) predictions; this input has one row per "
                                      "sample")
    r = run(["compare", a, a, "-b", "5", "--bootstrap-unit", "image", "--by", "image"])
    assert r.code == 2
    assert error_of(r, "compare") == ("--bootstrap-unit image does not go with --by (groups "
                                      "resample rows)")
    r = run(["audit", a, "-b", "5", "--bootstrap-unit", "pixel"])
    assert r.code == 2
    assert error_of(r, "audit") == "--bootstrap-unit must be row or image, got 'pixel'"


def test_audit_bootstrap_unit_image(run, tmp_path):
    test, val = tmp_path / "test.h5", tmp_path / "val.h5"
    _dense(test, 5)
    _dense(val, 6)
    r = run(["audit", test, "--val", val, "-b", "20", "--seed", "3", "--bootstrap-unit",
             "image", "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    z, y, keep = _rows(test)
    fit = PNormFit.from_dict(doc["fit"])
    s = compute_scores(z, [parse_score("msp"), fit.spec])
    correct = (z.argmax(axis=1) == y)[keep]
    images = np.repeat(np.arange(6), H * W)[keep]
    want = paired_bootstrap(s["msp"][keep], correct, s[fit.spec.name][keep], correct,
                            n_boot=20, seed=3, clusters=images)
    got = doc["paired_pnorm_minus_msp"]
    assert got["unit"] == "image"
    assert (got["difference"], got["low"], got["high"], got["p_value"]) == (
        want.estimate, want.low, want.high, want.p_value)
    rep = tmp_path / "rep"
    assert run(["audit", test, "--val", val, "-b", "5", "--bootstrap-unit", "image",
                "--report", rep, "-f", "json"]).code == 0
    assert "(paired bootstrap, 5 replicates, resampling images)" in (rep / "report.md"
                                                                     ).read_text()


# --------------------------------------------------------------------------------------------
# --subsample-pixels: undrawn pixels are not ignored pixels


def test_subsample_keeps_ignored_and_fit_counts_apart(tmp_path):
    from lsfix.evaluation.dense import apply_subsample
    from lsfix.evaluation.inmemory import eval_mask, evaluation_rows

    path = tmp_path / "d.h5"
    _dense(path, 8)
    pred = read_predictions(str(path))
    fit = np.zeros(pred.n, dtype=bool)
    fit[: H * W] = True  # image 0: fit rows
    pred.fit_mask = fit
    before = evaluation_rows(pred)[1:]
    drawn = apply_subsample(pred, "20/2", 1)
    ignored = 6 * 2 * W  # two rows of every image
    fit_kept = H * W - 2 * W
    assert before == (ignored, fit_kept)
    assert evaluation_rows(pred)[1:] == (ignored, fit_kept)  # unchanged by subsampling
    from lsfix.evaluation.inmemory import excluded_rows

    ex = excluded_rows(pred)
    assert (ex.ignored, ex.fit, ex.evaluated) == (ignored, fit_kept, drawn)
    assert ex.not_drawn == pred.n - ignored - fit_kept - drawn
    mask = eval_mask(pred)
    assert mask is not None and int(mask.sum()) == drawn == 60  # 3 batches of 2 images x 20
    pred.close()


# --------------------------------------------------------------------------------------------
# --fit-labels / --val-labels; ignored pixels of a dense --fit file


def test_fit_labels_for_a_foreign_fit_file(run, files, tmp_path, read_scores, error_of):
    zv, yv = ls_logits(2)
    np.save(tmp_path / "val.npy", zv)
    np.save(tmp_path / "val_labels.npy", yv)
    out = tmp_path / "o.h5"
    r = run(["normalise", files.a, "--fit", tmp_path / "val.npy", "--fit-labels",
             tmp_path / "val_labels.npy", "-o", out, "-q"])
    assert r.code == 0, r
    want = tune_pnorm(zv, yv)
    with h5py.File(out, "r") as f:
        fit = json.loads(f["scores"]["pnorm"].attrs["params"])
    assert fit["grid"] == want.to_dict()["grid"] and fit["p"] == want.to_dict()["p"]
    # --labels is the input's: it never reaches the --fit file, and the error says so
    np.save(tmp_path / "a_labels.npy", ls_logits(0)[1])
    r = run(["normalise", files.a, "--labels", tmp_path / "a_labels.npy", "--fit",
             tmp_path / "val.npy", "-o", tmp_path / "x.h5"])
    assert r.code == int(ExitCode.BAD_INPUT)
    assert error_of(r, "normalise") == (f"{tmp_path / 'val.npy'}: no labels; fitting needs "
                                        "labels (pass --fit-labels FILE; --labels is for the "
                                        "input only)")
    r = run(["normalise", files.a, "--fit-labels", tmp_path / "val_labels.npy", "-o",
             tmp_path / "y.h5"])
    assert r.code == 2
    assert error_of(r, "normalise") == ("--fit-labels gives the labels of the --fit file; "
                                        "pass --fit too")
    # wrong labels for the fit file: refused, not silently paired
    r = run(["normalise", files.a, "--fit", files.val, "--fit-labels",
             tmp_path / "a_labels.npy", "-o", tmp_path / "z.h5"])
    assert r.code == int(ExitCode.BAD_INPUT)
    assert "differs from the labels" in error_of(r, "normalise")


def test_audit_val_labels(run, files, tmp_path):
    zv, yv = ls_logits(2)
    np.save(tmp_path / "val.npy", zv)
    np.save(tmp_path / "yv.npy", yv)
    r = run(["audit", files.a, "--val", tmp_path / "val.npy", "--val-labels",
             tmp_path / "yv.npy", "-b", "5", "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert doc["fit"]["grid"] == tune_pnorm(zv, yv).to_dict()["grid"]


def test_dense_fit_file_ignored_pixels_are_not_tuned_on(run, tmp_path):
    val, test, out = tmp_path / "val.h5", tmp_path / "test.h5", tmp_path / "o.h5"
    _dense(val, 9)
    _dense(test, 10)
    assert run(["normalise", test, "--fit", val, "-o", out, "-q"]).code == 0
    zv, yv, kv = _rows(val)
    want = tune_pnorm(zv[kv], yv[kv])
    with h5py.File(out, "r") as f:
        fit = json.loads(f["scores"]["pnorm"].attrs["params"])
    assert fit["n_fit"] == int(kv.sum()) and fit["split"]["n"] == int(kv.sum())
    assert fit["grid"] == want.to_dict()["grid"]


# --------------------------------------------------------------------------------------------
# ImportError inside a command


def test_missing_package_inside_a_command_is_one_line(run, files, tmp_path, monkeypatch,
                                                      error_of):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    r = run(["curve", files.a, "--plot", tmp_path / "rc.png"])
    assert r.code == int(ExitCode.RUNTIME)
    assert error_of(r, "curve") == ("needs the Python package 'matplotlib', which is not "
                                    "installed; it is a dependency of lsfix: reinstall lsfix "
                                    "(pip install lsfix)")
    assert not (tmp_path / "rc.png").exists()


@pytest.mark.parametrize(("exc", "line"), [
    (ModuleNotFoundError("No module named 'dask'", name="dask"),
     "needs the Python package 'dask', which is not installed: pip install 'lsfix[dask]'"),
    (ModuleNotFoundError("No module named 'torch.nn'", name="torch.nn"),
     "needs the Python package 'torch', which is not installed: pip install 'lsfix[extract]'"),
    (ImportError("cannot import name 'x' from 'distributed'", name="distributed"),
     "cannot import the Python package 'distributed' (cannot import name 'x' from "
     "'distributed'): pip install 'lsfix[dask]'"),
    (ImportError("broken"), "cannot import a module this command needs (broken); reinstall "
                            "lsfix"),
])
def test_handle_errors_import_error(capsys, exc, line):
    from lsfix.cli.app import handle_errors

    with pytest.raises(typer.Exit) as info, handle_errors("score"):
        raise exc
    assert info.value.exit_code == int(ExitCode.RUNTIME)
    assert capsys.readouterr().err == f"lsfix score: error: {line}\n"


def test_fit_labels_of_dense_npy_predictions(run, tmp_path, error_of):
    """(N, H, W) labels for dense (N, K, H, W) .npy logits pair pixel by pixel; any other
    shape is refused, never reshaped by guess."""
    val, test = tmp_path / "val.h5", tmp_path / "test.h5"
    _dense(val, 11)
    _dense(test, 12)
    with h5py.File(val, "r") as f:
        np.save(tmp_path / "v.npy", f["logits"][()])
        y = f["labels"][()]
    np.save(tmp_path / "vy.npy", y)
    np.save(tmp_path / "vy_t.npy", y.transpose(0, 2, 1).copy())
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert run(["normalise", test, "--fit", val, "-o", a, "-q"]).code == 0
    r = run(["normalise", test, "--fit", tmp_path / "v.npy", "--fit-labels", tmp_path / "vy.npy",
             "--ignore-index", "255", "-o", b, "-q"])
    assert r.code == 0, r
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        ga = json.loads(fa["scores"]["pnorm"].attrs["params"])
        gb = json.loads(fb["scores"]["pnorm"].attrs["params"])
    assert ga["grid"] == gb["grid"] and ga["n_fit"] == gb["n_fit"] == 6 * (H - 2) * W
    r = run(["normalise", test, "--fit", tmp_path / "v.npy", "--fit-labels",
             tmp_path / "vy_t.npy", "--ignore-index", "255", "-o", tmp_path / "c.h5"])
    assert r.code == int(ExitCode.BAD_INPUT)
    assert error_of(r, "normalise") == (f"{tmp_path / 'vy_t.npy'}: labels must be one column "
                                        f"or (6, {H}, {W}) (N, H, W), got shape (6, {W}, {H})")


@pytest.mark.parametrize(("change", "message"), [
    ({"centred": "no"}, "key 'centred' must be true or false, got no"),
    ({"centred": True}, "inconsistent fit: method 'maxlogit_pnorm_raw' with centred=True"),
    ({"method": ["x"]}, "key 'method'"),
])
def test_saved_fit_variant_keys_checked(run, files, tmp_path, error_of, change, message):
    params = tmp_path / "p.json"
    assert run(["normalise", files.a, "--no-centre", "--fit", files.val, "--save-params",
                params, "-o", tmp_path / "a.h5", "-q"]).code == 0
    doc = {**json.loads(params.read_text()), **change}
    params.write_text(json.dumps(doc))
    r = run(["normalise", files.a, "--params", params, "-o", tmp_path / "b.h5"])
    assert r.code == int(ExitCode.BAD_INPUT)
    msg = error_of(r, "normalise")
    assert msg.startswith(f"{params}: ") and message in msg

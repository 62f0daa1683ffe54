"""``lsfix normalise``: fixed, fitted, split and reused p; the MSP fallback; refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from lsfix.core import ScoreSpec, compute_scores, evaluate
from lsfix.readers.logitsfile import HDF5_SIGNATURE


def _logits(path: str | Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["logits"][()]


def test_default_tunes_on_a_fifth_and_records_the_split(run, files, monkeypatch):
    monkeypatch.chdir(files.folder)
    r = run(["normalise", "a.h5"])
    assert r.code == 0, r
    assert r.stdout_bytes.startswith(HDF5_SIGNATURE)
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("lsfix normalise: chose p=")
    assert lines[0].endswith(" on 60 samples")
    assert lines[1] == ("lsfix normalise: tuned on 60 of 300 rows (seed 0); curve/compare "
                        "evaluate the other 240")
    with h5py.File(io.BytesIO(r.stdout_bytes), "r") as f:
        assert int(f["fit_mask"][()].sum()) == 60
        ds = f["scores/pnorm"]
        assert ds.attrs["method"] == "maxlogit_pnorm"
        params = json.loads(ds.attrs["params"])
        assert params["fallback_msp"] is False
        assert params["split"] == {"kind": "fraction", "fraction": 0.2, "seed": 0, "n": 60}
        assert "logits" not in f and f.attrs["lsfix_schema"] == "lsfix.scores"
        with h5py.File("a.h5", "r") as src:
            want = compute_scores(src["logits"][()], [ScoreSpec("pnorm", params["p"])])
        np.testing.assert_array_equal(ds[()], want[f"pnorm_p{params['p']:g}"])


def test_quiet(run, files):
    r = run(["normalise", files.a, "--quiet"])
    assert (r.code, r.stderr) == (0, "")


def test_fit_fraction_rows_are_excluded_from_curve(run, files, tmp_path):
    out = tmp_path / "n.h5"
    r = run(["normalise", files.a, "--fit-fraction", "0.25", "--seed", "3", "-o", out])
    assert r.code == 0, r
    assert "tuned on 75 of 300 rows (seed 3); curve/compare evaluate the other 225" in r.stderr
    c = run(["curve", files.a, "--with", out, "-s", "pnorm", "-s", "msp", "-f", "json"])
    assert c.code == 0, c
    doc = json.loads(c.stdout)
    assert doc["n_fit_excluded"] == 75
    assert [res["n"] for res in doc["results"]] == [225, 225]
    # the same numbers as evaluating the other rows by hand
    with h5py.File(out, "r") as f, h5py.File(files.a, "r") as src:
        mask = f["fit_mask"][()]
        z, y, pn = src["logits"][()], f["labels"][()], f["scores/pnorm"][()]
        np.testing.assert_array_equal(f["correct"][()], z.argmax(axis=1) == y)
    # the scores file alone gives the same pnorm numbers (it carries correctness)
    alone = run(["curve", out, "-s", "pnorm", "-f", "json"])
    assert alone.code == 0, alone
    assert json.loads(alone.stdout)["results"][0] == doc["results"][0] | {"file": str(out)}
    keep = ~mask
    correct = z.argmax(axis=1) == y
    m = evaluate(pn[keep], correct[keep])
    assert doc["results"][0]["aurc"] == pytest.approx(m.aurc, rel=1e-12, abs=0)
    assert doc["results"][0]["auroc"] == pytest.approx(m.auroc, rel=1e-12, abs=0)


def test_fixed_p(run, files, tmp_path, read_scores, score_attrs):
    out = tmp_path / "p2.h5"
    r = run(["normalise", files.nolabels, "--p", "2", "-o", out])
    assert (r.code, r.stdout) == (0, ""), r
    assert r.stderr == "lsfix normalise: fixed p=2\n"
    want = compute_scores(_logits(files.nolabels), [ScoreSpec("pnorm", 2.0)])["pnorm_p2"]
    np.testing.assert_array_equal(read_scores(out)["pnorm"], want)
    params = json.loads(score_attrs(out, "pnorm")["params"])
    assert params["p"] == 2 and params["split"] == {"kind": "fixed"}
    with h5py.File(out, "r") as f:
        assert "fit_mask" not in f


def test_fit_file_and_custom_name(run, files, tmp_path, read_scores, score_attrs):
    out = tmp_path / "v.h5"
    r = run(["normalise", files.a, "--fit", files.val, "--name", "pn_val", "-o", out])
    assert r.code == 0, r
    assert r.stderr.startswith("lsfix normalise: chose p=")
    assert r.stderr.endswith(" on 300 samples\n")
    params = json.loads(score_attrs(out, "pn_val")["params"])
    assert params["split"] == {"kind": "file", "file": files.val, "n": 300}
    assert list(read_scores(out)) == ["pn_val"]


def test_save_params_then_params_reproduces_scores(run, files, tmp_path, read_scores):
    fit = tmp_path / "fit.json"
    r1 = run(["normalise", files.a, "--fit", files.val, "--save-params", fit,
              "-o", tmp_path / "a1.h5"])
    assert r1.code == 0, r1
    doc = json.loads(fit.read_text())
    assert doc["format"] == "lsfix.pnorm_fit" and doc["version"] == 1
    assert doc["fallback_msp"] is False and doc["p"] is not None
    assert [g["p"] for g in doc["grid"]] == list(range(10))
    # same file, reused fit: identical scores
    r2 = run(["normalise", files.a, "--params", fit, "-o", tmp_path / "a2.h5"])
    assert r2.code == 0, r2
    assert r2.stderr.startswith("lsfix normalise: chose p=")  # the saved choice, described
    np.testing.assert_array_equal(read_scores(tmp_path / "a1.h5")["pnorm"],
                                  read_scores(tmp_path / "a2.h5")["pnorm"])
    # another file: the saved p applied as is
    r3 = run(["normalise", files.b, "--params", fit, "-o", tmp_path / "b.h5"])
    assert r3.code == 0, r3
    p = doc["p"]
    want = compute_scores(_logits(files.b), [ScoreSpec("pnorm", float(p))])
    np.testing.assert_array_equal(read_scores(tmp_path / "b.h5")["pnorm"],
                                  want[ScoreSpec("pnorm", float(p)).name])


def test_fallback_to_msp_is_recorded(run, files, tmp_path, read_scores, score_attrs):
    out = tmp_path / "fb.h5"
    fit = tmp_path / "fb.json"
    r = run(["normalise", files.fallback, "--save-params", fit, "-o", out])
    assert r.code == 0, r
    assert r.stderr.splitlines()[0].startswith("lsfix normalise: MSP kept (fallback): "
                                               "held-out AURC ")
    attrs = score_attrs(out, "pnorm")
    assert attrs["method"] == "msp"
    params = json.loads(attrs["params"])
    assert params["fallback_msp"] is True and params["p"] is None
    doc = json.loads(fit.read_text())
    assert doc["fallback_msp"] is True and doc["p"] is None
    msp = compute_scores(_logits(files.fallback), [ScoreSpec("msp")])["msp"]
    np.testing.assert_array_equal(read_scores(out)["pnorm"], msp)
    # reusing a fallback fit says so
    r2 = run(["normalise", files.a, "--params", fit, "-o", tmp_path / "a.h5"])
    assert r2.code == 0, r2
    assert r2.stderr.splitlines()[0].startswith("lsfix normalise: MSP kept (fallback)")
    assert score_attrs(tmp_path / "a.h5", "pnorm")["method"] == "msp"


def test_binary_classifier_falls_back(run, files, score_attrs, tmp_path):
    # with one logit every p > 0 ties all rows; p = 0 ranks like MSP: MSP is kept, untuned,
    # and the run says why in one line
    out = tmp_path / "bin.h5"
    r = run(["normalise", files.binary, "-o", out])
    assert r.code == 0, r
    assert "one logit per sample (binary, read as (0, z))" in r.stderr
    assert "nothing to tune; /scores/pnorm holds MSP (the |z| ranking)" in r.stderr
    assert score_attrs(out, "pnorm")["method"] == "msp"


# --------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--p", "2", "--fit", "x.h5"],
         "give only one of --p, --fit, --fit-fraction, --params (got --p, --fit)"),
        (["--fit-fraction", "0.2", "--params", "p.json"],
         "give only one of --p, --fit, --fit-fraction, --params (got --fit-fraction, --params)"),
        (["--p", "-1"], "p must be a finite number >= 0, got -1.0"),
        (["--p", "nan"], "p must be a finite number >= 0, got nan"),
        (["--fit-fraction", "1"], "--fit-fraction must be in (0, 1), got 1.0"),
        (["--grid", "5-2"], "--grid: '5-2' is not a list like 0,1,2 or a range like 0-9"),
        (["--grid", "x"], "--grid: 'x' is not a list like 0,1,2 or a range like 0-9"),
        (["--name", "a-b"], "--name must be letters, digits and _, got 'a-b'"),
        (["--convention", "foo"],
         "unknown convention 'foo'; choose one of lsfix, xia, fd-shifts, torch-uncertainty"),
        (["--fit", "binary.h5"], "binary.h5 has K=2 classes, a.h5 has K=5"),
    ],
)
def test_usage_errors(run, files, monkeypatch, error_of, args, message):
    monkeypatch.chdir(files.folder)
    r = run(["normalise", "a.h5", *args])
    assert r.code == 2, r
    assert error_of(r, "normalise") == message


def test_needs_labels_or_a_p(run, files, monkeypatch, error_of):
    monkeypatch.chdir(files.folder)
    r = run(["normalise", "nolabels.h5"])
    assert r.code == 2
    assert error_of(r, "normalise") == ("nolabels.h5 has no /labels to tune p on: give --p, "
                                        "--fit VAL.h5, --params P.json or --labels FILE")


def test_bad_params_file(run, files, tmp_path, monkeypatch, error_of):
    monkeypatch.chdir(tmp_path)
    Path("junk.json").write_text("{not json")
    Path("other.json").write_text('{"format": "something.else"}')
    r = run(["normalise", files.a, "--params", "missing.json"])
    assert (r.code, error_of(r, "normalise")) == (3, "missing.json: no such file")
    r = run(["normalise", files.a, "--params", "junk.json"])
    assert (r.code, error_of(r, "normalise")) == (
        3, "junk.json: JSON document is not valid JSON (Expecting property name enclosed in "
           "double quotes: line 1 column 2 (char 1))")
    r = run(["normalise", files.a, "--params", "other.json"])
    assert (r.code, error_of(r, "normalise")) == (
        3, "other.json: not an lsfix p-norm fit (format 'something.else')")


def test_overwrite_is_about_the_output_file(run, files, tmp_path, monkeypatch, error_of):
    """A pnorm joined with --with and computed again with another p: the new one is what the
    new file holds (no clash: the input never changes); an existing -o or --save-params
    file is replaced only with --overwrite (issue 17)."""
    monkeypatch.chdir(tmp_path)
    assert run(["normalise", files.a, "--p", "1", "-o", "one.h5"]).code == 0
    r = run(["normalise", files.a, "--with", "one.h5", "--p", "2", "-o", "two.h5"])
    assert (r.code, error_of(r, "normalise") if r.code else None) == (0, None)
    with h5py.File("two.h5", "r") as f:
        assert json.loads(f["scores/pnorm"].attrs["params"])["p"] == 2
    for extra in (["-o", "two.h5"], ["-o", "three.h5", "--save-params", "two.h5"]):
        r = run(["normalise", files.a, "--p", "3", *extra])
        assert (r.code, error_of(r, "normalise")) == (
            2, "two.h5: exists; pass --overwrite to replace it")
        assert not Path("three.h5").exists()
    assert run(["normalise", files.a, "--p", "3", "-o", "two.h5", "--overwrite"]).code == 0


def test_second_fit_split_refused(run, files, tmp_path, monkeypatch, error_of):
    monkeypatch.chdir(tmp_path)
    assert run(["normalise", files.a, "-o", "one.h5"]).code == 0
    r = run(["normalise", files.a, "--with", "one.h5", "--fit-fraction", "0.3", "--name",
             "again", "-o", "x.h5"])
    assert r.code == 2
    assert error_of(r, "normalise") == (f"{files.a} already has a fit split (/fit_mask); tune "
                                        "with --fit VAL.h5 or reuse --params")


def test_binary_output_to_terminal_refused(run, files, error_of):
    r = run(["normalise", files.a, "--p", "2"], stdout_tty=True)
    assert r.code == 2
    assert error_of(r, "normalise") == ("refusing to write binary HDF5 to a terminal; use -o "
                                        "FILE or pipe into another command")


def test_in_process_pipeline(run, files):
    s = run(["score", files.a, "-m", "msp"])
    n = run(["normalise", files.a, "--with", "-", "--quiet"], input=s.stdout_bytes)
    assert (n.code, n.stderr) == (0, ""), n
    c = run(["curve", "-", "-f", "json"], input=n.stdout_bytes)
    assert (c.code, c.stderr) == (0, ""), c
    doc = json.loads(c.stdout)
    assert doc["file"] == "<stdin>"
    assert [r["score"] for r in doc["results"]] == ["msp", "pnorm"]
    assert {r["n"] for r in doc["results"]} == {240}

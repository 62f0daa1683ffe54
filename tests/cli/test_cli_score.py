"""``lsfix score``: HDF5 and TSV output, stdout/stderr apart, exact usage errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from lsfix.core import ScoreSpec, compute_scores
from lsfix.readers.logitsfile import HDF5_SIGNATURE


def _logits_labels(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    with h5py.File(path, "r") as f:
        z = f["logits"][()]
        y = f["labels"][()] if "labels" in f else None
    return z, y


def test_h5_to_stdout_only_data(run, files):
    r = run(["score", files.a])
    assert r.code == 0, r
    assert r.stderr == ""
    assert r.stdout_bytes.startswith(HDF5_SIGNATURE)
    z, y = _logits_labels(files.a)
    with h5py.File(io.BytesIO(r.stdout_bytes), "r") as f:
        assert f.attrs["lsfix_schema"] == "lsfix.scores"
        assert "logits" not in f  # what the stage adds, never a copy of the logits
        assert list(f["scores"]) == ["msp"]
        ds = f["scores/msp"]
        assert ds.attrs["method"] == "msp"
        assert json.loads(ds.attrs["params"]) == {}
        np.testing.assert_array_equal(ds[()], compute_scores(z, [ScoreSpec("msp")])["msp"])
        np.testing.assert_array_equal(f["correct"][()], z.argmax(axis=1) == y)
        history = json.loads(f.attrs["history"])
        assert len(history) == 1 and history[0].startswith("lsfix")
        source = json.loads(f.attrs["source"])
        assert source["shape"] == list(z.shape) and source["dtype"] == "f4"
        # labels and ids are copied as stored
        with h5py.File(files.a, "r") as src:
            assert f["labels"].dtype == src["labels"].dtype
            np.testing.assert_array_equal(f["labels"][()], src["labels"][()])
        assert f["sample_ids"].shape == (300,)


def test_copy_logits_writes_the_whole_file(run, files, tmp_path):
    out = tmp_path / "full.h5"
    r = run(["score", files.a, "--copy-logits", "-o", out])
    assert (r.code, r.stderr) == (0, "")
    z, _ = _logits_labels(files.a)
    with h5py.File(out, "r") as f:
        assert f.attrs["lsfix_schema"] == "lsfix.predictions"
        np.testing.assert_array_equal(f["logits"][()], z)
        assert list(f["scores"]) == ["msp"]


def test_several_methods_to_file(run, files, tmp_path, read_scores):
    out = tmp_path / "scored.h5"
    r = run(["score", files.a, "-m", "msp", "-m", "energy:2", "-m", "pnorm:3", "-o", out])
    assert (r.code, r.stdout, r.stderr) == (0, "", "")
    got = read_scores(out)
    assert list(got) == ["msp", "energy_t2", "pnorm_p3"]  # dataset names of the specs
    z, _ = _logits_labels(files.a)
    want = compute_scores(z, [ScoreSpec("msp"), ScoreSpec("energy", 2.0), ScoreSpec("pnorm", 3.0)])
    for name in got:
        np.testing.assert_array_equal(got[name], want[name])


def test_same_input_same_bytes(run, files, tmp_path):
    for name in ("x1.h5", "x2.h5"):
        assert run(["score", files.a, "-m", "gini", "-o", tmp_path / name]).code == 0
    assert (tmp_path / "x1.h5").read_bytes() == (tmp_path / "x2.h5").read_bytes()


def test_tsv(run, files):
    r = run(["score", files.a, "-m", "logit_margin", "--format", "tsv"])
    assert r.code == 0 and r.stderr == "", r
    lines = r.stdout.splitlines()
    assert lines[0] == "sample_id\tconfidence\tcorrect"  # the file's sample ids are kept
    assert len(lines) == 301
    conf = np.array([float(line.split("\t")[1]) for line in lines[1:]])
    corr = np.array([int(line.split("\t")[2]) for line in lines[1:]])
    z, y = _logits_labels(files.a)
    np.testing.assert_array_equal(conf, compute_scores(z, [ScoreSpec("logit_margin")])
                                  ["logit_margin"])  # repr() round-trips exactly
    np.testing.assert_array_equal(corr, (z.argmax(axis=1) == y).astype(int))


def test_binary_single_logit(run, files):
    r = run(["score", files.binary, "-f", "tsv"])
    assert r.code == 0, r
    rows = [line.split("\t") for line in r.stdout.splitlines()[1:]]
    z, y = _logits_labels(files.binary)
    assert z.ndim == 1
    np.testing.assert_array_equal([int(c) for _, c in rows], ((z > 0).astype(int) == y))


def test_stdin_input(run, files):
    data = Path(files.a).read_bytes()
    r = run(["score", "-", "-m", "gini"], input=data)
    assert r.code == 0 and r.stderr == "", r
    with h5py.File(io.BytesIO(r.stdout_bytes), "r") as f:
        assert list(f["scores"]) == ["gini"]


def test_msp_ts_fitted_note_on_stderr(run, files, tmp_path, read_scores, score_attrs):
    out = tmp_path / "ts.h5"
    r = run(["score", files.a, "-m", "msp_ts", "--fit", files.val, "-o", out])
    assert r.code == 0 and r.stdout == "", r
    lines = r.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("lsfix score: fitted temperature T=")
    assert lines[0].endswith(f"on {files.val} (300 samples)")
    assert list(read_scores(out)) == ["msp_ts"]
    params = json.loads(score_attrs(out, "msp_ts")["params"])
    assert params["fit_file"] == files.val and params["fit_n"] == 300
    q = run(["score", files.a, "-m", "msp_ts", "--fit", files.val, "-o", tmp_path / "q.h5",
             "--quiet"])
    assert (q.code, q.stderr) == (0, "")


# --------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "foo"], "unknown score 'foo'; choose from msp, max_logit, logit_margin, "
                        "softmax_margin, neg_entropy, gini, energy, msp_ts, pnorm, pnorm_raw"),
        (["-m", "pnorm"], "pnorm needs p: use pnorm:P (e.g. pnorm:2), or 'lsfix normalise' to "
                          "tune p"),
        (["-m", "msp:2"], "score 'msp' takes no parameter (got 'msp:2')"),
        (["-m", "energy:x"], "bad parameter in 'energy:x': 'x' is not a number"),
        (["-m", "msp", "-m", "msp"], "score given twice: msp, msp"),
        (["--format", "xml"], "--format must be h5 or tsv, got 'xml'"),
        (["-m", "msp", "-m", "gini", "-f", "tsv"],
         "--format tsv writes one score; give exactly one -m"),
        (["-m", "msp_ts"], "msp_ts needs a temperature: give msp_ts:T or --fit VAL.h5"),
    ],
)
def test_usage_errors(run, files, error_of, args, message):
    r = run(["score", files.a, *args])
    assert r.code == 2, r
    assert error_of(r, "score") == message


def test_tsv_needs_labels(run, files, error_of, monkeypatch):
    monkeypatch.chdir(files.folder)
    r = run(["score", "nolabels.h5", "-f", "tsv"])
    assert r.code == 2
    assert error_of(r, "score") == "nolabels.h5: --format tsv needs /labels to print 'correct'"


def test_overwrite_is_about_the_output_file(run, files, tmp_path, monkeypatch, error_of,
                                            read_scores):
    """A score computed again is no clash (the output is a new file; the input never
    changes); an existing -o file is replaced only with --overwrite (issue 17)."""
    monkeypatch.chdir(tmp_path)
    assert run(["score", files.a, "-m", "msp", "-m", "gini", "-o", "one.h5"]).code == 0
    r = run(["score", files.a, "--with", "one.h5", "-m", "energy", "-m", "gini",
             "-o", "two.h5"])
    assert (r.code, r.stderr) == (0, "")
    assert list(read_scores("two.h5")) == ["msp", "gini", "energy"]
    assert np.array_equal(read_scores("two.h5")["gini"], read_scores("one.h5")["gini"])
    before = Path("two.h5").read_bytes()
    r = run(["score", files.a, "-m", "energy", "-o", "two.h5"])
    assert r.code == 2
    assert error_of(r, "score") == "two.h5: exists; pass --overwrite to replace it"
    assert Path("two.h5").read_bytes() == before
    ok = run(["score", files.a, "-m", "energy", "-o", "two.h5", "--overwrite"])
    assert (ok.code, ok.stderr) == (0, "")
    assert list(read_scores("two.h5")) == ["energy"]


def test_binary_output_to_terminal_refused(run, files, tmp_path, error_of):
    r = run(["score", files.a], stdout_tty=True)
    assert r.code == 2
    assert error_of(r, "score") == ("refusing to write binary HDF5 to a terminal; use -o FILE "
                                    "or pipe into another command")
    # a file target, or text output, is fine on a terminal
    assert run(["score", files.a, "-o", tmp_path / "ok.h5"], stdout_tty=True).code == 0
    t = run(["score", files.a, "-f", "tsv"], stdout_tty=True)
    assert t.code == 0 and t.stdout.startswith("sample_id\tconfidence\tcorrect\n")


def test_stdin_terminal_refused(run, error_of):
    r = run(["score"], stdin_tty=True, stdout_tty=False)
    assert r.code == 2
    assert error_of(r, "score") == ("no input: stdin is a terminal; give a file path or pipe "
                                    "data in")


def test_empty_stdin(run, error_of):
    r = run(["score", "-"], input=b"")
    assert r.code == 3
    assert error_of(r, "score") == "<stdin>: empty input (0 bytes)"


class _ShortWriter(io.RawIOBase):
    """A raw stdout that accepts at most 4096 bytes per write() (as a raw FileIO may: under
    PYTHONUNBUFFERED=1 / python -u, sys.stdout.buffer *is* the raw FileIO)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        n = min(len(b), 4096)
        self.data += bytes(b[:n])
        return n


def test_hdf5_on_stdout_survives_short_writes(files, tmp_path, monkeypatch):
    # shutil.copyfileobj ignored short writes: the HDF5 was silently cut at the first one
    from lsfix.cli import app

    ref = tmp_path / "ref.h5"
    app(["score", files.a, "-o", str(ref)], standalone_mode=False, prog_name="lsfix")
    raw = _ShortWriter()
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(raw, write_through=True))
    app(["score", files.a], standalone_mode=False, prog_name="lsfix")
    monkeypatch.undo()
    assert len(raw.data) == ref.stat().st_size
    assert bytes(raw.data) == ref.read_bytes()


@pytest.mark.parametrize("value", ["0", "many", "300"])
def test_a_bad_lsfix_threads_is_one_usage_error(run, files, error_of, value):
    r = run(["score", files.a, "-f", "tsv"], env={"LSFIX_THREADS": value})
    assert r.code == 2, r
    assert error_of(r, "score") == (
        f"LSFIX_THREADS must be an integer from 1 to 256; got {value!r}")


@pytest.mark.parametrize("value", ["1", "2", "7"])
@pytest.mark.parametrize("method", ["msp", "energy", "pnorm:3"])
def test_lsfix_threads_never_changes_the_output(run, files, value, method):
    base = run(["score", files.a, "-m", method, "-f", "tsv"], env={"LSFIX_THREADS": "1"})
    r = run(["score", files.a, "-m", method, "-f", "tsv"], env={"LSFIX_THREADS": value})
    assert base.code == r.code == 0
    assert r.stdout == base.stdout

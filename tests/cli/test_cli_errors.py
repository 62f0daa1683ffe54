"""Bad inputs give exit 3 and one ``lsfix <cmd>: error: file...`` line, for every command;
the exit-code table; outputs are never left half-written or replaced when not regular files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lsfix.errors import ExitCode

#: (command, extra arguments) run on each bad input; compare gets a good baseline first.
COMMANDS = [
    ("score", []),
    ("normalise", ["--p", "2"]),
    ("curve", []),
    ("compare", []),
    ("audit", ["-b", "10"]),
]

BAD = [
    ("missing.h5", "missing.h5: no such file"),
    ("notes.json", "notes.json: unrecognised input format (not HDF5, .npy, .npz, .pt, .csv, "
                   ".tsv or .txt)"),
    ("text.h5", "text.h5: does not start with the HDF5 signature; not an HDF5 file, or corrupt"),
    ("empty.h5", "empty.h5: empty file (0 bytes)"),
    ("bad_labels.h5", "bad_labels.h5:/labels: 1 label(s) not in [0, 5); first at row 7 = 7"),
    ("truncated.h5", None),  # the reason comes from the HDF5 library; checked below
]


@pytest.fixture
def bad_dir(files, monkeypatch):
    monkeypatch.chdir(files.folder)
    Path("text.h5").write_text("not hdf5 at all\n")
    return files.folder


@pytest.mark.parametrize(("cmd", "extra"), COMMANDS, ids=[c for c, _ in COMMANDS])
@pytest.mark.parametrize(("name", "message"), BAD, ids=[b for b, _ in BAD])
def test_bad_input_exit_3(run, bad_dir, error_of, cmd, extra, name, message):
    args = [cmd, *(["a.h5"] if cmd == "compare" else []), name, *extra]
    if cmd in ("score", "normalise"):
        args += ["-o", "out.h5"]
    r = run(args)
    assert r.code == ExitCode.BAD_INPUT == 3, r
    msg = error_of(r, cmd)
    if message is None:
        assert msg.startswith(f"{name}: not a readable HDF5 file (")
        assert msg.endswith("); truncated or corrupt?")
    else:
        assert msg == message
    assert not Path("out.h5").exists()


def test_folder_as_input(run, tmp_path, monkeypatch, error_of):
    monkeypatch.chdir(tmp_path)
    os.mkdir("d.h5")
    r = run(["curve", "d.h5"])
    assert (r.code, error_of(r, "curve")) == (3, "d.h5: is a folder, not a file")


def test_foreign_hdf5_file(run, tmp_path, monkeypatch, error_of):
    import h5py

    monkeypatch.chdir(tmp_path)
    with h5py.File("plain.h5", "w") as f:
        f["logits"] = [[1.0, 2.0]]
    r = run(["curve", "plain.h5"])
    assert r.code == 3
    assert error_of(r, "curve") == "plain.h5: is not an lsfix file (no lsfix_schema attribute)"


def test_output_folder_missing_is_runtime_error(run, files, tmp_path, monkeypatch, error_of):
    monkeypatch.chdir(tmp_path)
    r = run(["curve", files.a, "-o", "nodir/c.tsv"])
    assert r.code == ExitCode.RUNTIME == 1
    assert error_of(r, "curve") == ("nodir/c.tsv: folder 'nodir' does not exist; nothing was "
                                    "written")


def test_exit_code_table():
    assert {e.name: int(e) for e in ExitCode} == {
        "OK": 0, "RUNTIME": 1, "USAGE": 2, "BAD_INPUT": 3, "GATE_FAILED": 4,
        "GATE_INCONCLUSIVE": 5, "INTERRUPTED": 130}


def test_readme_documents_every_exit_code():
    readme = Path(__file__).resolve().parents[2] / "README.md"
    if not readme.exists():
        pytest.skip("README.md not written yet")
    text = readme.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.lstrip().startswith("|")]
    for code in ExitCode:
        cell = f"| {int(code)} |"
        hit = [r for r in rows if cell in " ".join(r.split()) or f"`{int(code)}`" in r]
        assert hit, f"README.md has no table row for exit code {int(code)} ({code.name})"


def test_output_to_a_named_pipe_is_written_not_replaced(run, files, tmp_path):
    # '-o /dev/null' once replaced the device node by a regular file (os.replace over it);
    # a FIFO shows the same thing without touching /dev
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer open without blocking
    try:
        r = run(["curve", files.a, "-f", "tsv", "-o", fifo])
        still_fifo = stat.S_ISFIFO(os.lstat(fifo).st_mode)
        try:
            got = os.read(reader, 1 << 16)
        except BlockingIOError:
            got = b""
    finally:
        os.close(reader)
    assert r.code == 0, r
    assert still_fifo, "the named pipe was replaced by a regular file"
    assert got.startswith(b"file\tscore\t")


def test_outputs_respect_the_umask(run, files, tmp_path):
    old = os.umask(0o022)
    try:
        assert run(["curve", files.a, "-o", tmp_path / "c.tsv"]).code == 0
        assert run(["score", files.a, "-o", tmp_path / "s.h5"]).code == 0
    finally:
        os.umask(old)
    for name in ("c.tsv", "s.h5"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name

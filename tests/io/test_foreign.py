"""Foreign inputs (``lsfix.readers.foreign``): .npy, .npz, .pt, .csv/.tsv, stdin sniffing, refusals.

Round trips compare with an HDF5 file holding the same arrays, read by ``read_predictions``.
Refusals assert the exact one-line message. The fuzz tests feed random, truncated and
corrupted bytes and require that nothing but an ``LsfixError`` ever escapes.

No ``__init__.py`` here on purpose: a package named ``io`` under ``tests/`` would shadow the
standard library's ``io`` for every test package that puts ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import time
import types
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfix.readers import entry, foreign
from lsfix.errors import ExitCode, InputError, LsfixError, MissingDependency
from lsfix.readers.entry import read as read_predictions
from lsfix.readers.predictions import Predictions
from lsfix.readers.logitsfile import new_file, set_root_attrs

RNG = np.random.default_rng(20240601)
LOGITS = RNG.standard_normal((6, 3)).astype(np.float32)
LABELS = np.array([0, 2, 1, 1, 0, 2])
IDS = ["a", "b", "c", "d", "e", "f"]
NAMES = ["cat", "dog", "eel"]


NEITHER = ("neither a logits table (logit_0..logit_<K-1> or one numeric column per "
           "class, and label) nor a score table (confidence and correct, or confidence, "
           "y_true and y_pred); ")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a fresh folder so messages name short relative paths (``x.npz: ...``)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch")


def h5_read(path: str = "ref.h5", logits: Any = LOGITS, **kw: Any) -> Predictions:
    """The HDF5 read of the same arrays: the reference every foreign read must equal."""
    new_file(path, np.asarray(logits), **kw)
    return read_predictions(path)


def write_raw_h5(path: str, **datasets: Any) -> None:
    """An lsfix HDF5 file written without validation (to compare refusal messages)."""
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        for key, val in datasets.items():
            f.create_dataset(key, data=val)


def assert_same(pred: Predictions, ref: Predictions) -> None:
    assert pred.logits is not None and ref.logits is not None
    assert pred.logits.shape == ref.logits.shape
    np.testing.assert_array_equal(rows(pred), rows(ref))
    for attr in ("labels", "sample_ids", "keep"):
        got, want = getattr(pred, attr), getattr(ref, attr)
        assert (got is None) == (want is None), attr
        if want is not None:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert pred.class_names == ref.class_names


def rows(pred: Predictions) -> np.ndarray:
    assert pred.logits is not None
    return pred.logits.rows(0, pred.n)


def ids(pred: Predictions) -> list[str]:
    assert pred.sample_ids is not None
    return list(pred.sample_ids)


def refusal(path: str, exc: type[LsfixError] = InputError) -> str:
    with pytest.raises(exc) as info:
        read_predictions(path)
    assert info.value.exit_code == exc.exit_code
    assert "\n" not in str(info.value)
    return str(info.value)


def write(path: str, data: bytes | str) -> str:
    Path(path).write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def npz_bytes(*, compressed: bool = False, **arrays: Any) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# .npy


@pytest.mark.parametrize(
    "logits",
    [LOGITS, LOGITS.astype(np.float64), LOGITS[:, 0], LOGITS[:, :1],
     RNG.standard_normal((2, 3, 4, 5)).astype(np.float16)],
    ids=["2d-float32", "2d-float64", "binary-1d", "binary-n1", "dense-float16"],
)
def test_npy_round_trip(logits: np.ndarray) -> None:
    np.save("x.npy", logits)
    pred = read_predictions("x.npy")
    assert pred.foreign_format == "npy"
    assert pred.labels is None
    assert_same(pred, h5_read(logits=logits))


def test_npy_big_endian_fortran_order() -> None:
    arr = np.asfortranarray(LOGITS.astype(">f8"))
    np.save("x.npy", arr)
    pred = read_predictions("x.npy")
    np.testing.assert_array_equal(rows(pred), LOGITS.astype(np.float64))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.arange(6).reshape(2, 3), "x.npy: logits must be floating point, got int64"),
        (np.zeros((0, 3)), "x.npy: has zero rows, shape (0, 3)"),
        (np.zeros((3, 0)), "x.npy: has zero classes, shape (3, 0)"),
        (np.array([[0.0, np.nan], [1.0, 2.0], [np.inf, 0.0]]),
         "x.npy: 2 non-finite logit value(s) (NaN or inf); first in row 0"),
        (np.array([[1.0, 2.0]], dtype=object),
         "x.npy: object arrays are refused (allow_pickle stays off)"),
        (np.zeros(3, dtype=[("a", "f4"), ("b", "f4")]),
         "x.npy: unsupported dtype [('a', '<f4'), ('b', '<f4')]"),
        (np.array(["a", "b"]), "x.npy: logits must be floating point, got <U1"),
    ],
    ids=["int", "zero-rows", "zero-classes", "nan-inf", "object", "structured", "strings"],
)
def test_npy_refusals(array: np.ndarray, message: str) -> None:
    np.save("x.npy", array, allow_pickle=True)
    assert refusal("x.npy") == message


def test_npy_truncated_data_is_refused_before_allocating() -> None:
    np.save("x.npy", np.zeros((4, 3)))
    data = Path("x.npy").read_bytes()
    write("x.npy", data[:-46])
    assert refusal("x.npy") == (
        "x.npy: truncated: shape (4, 3) float64 needs 96 bytes of data, 50 present")
    # a small file whose header claims 8 TB of data
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    write("huge.npy", buf.getvalue() + b"\0" * 8)
    assert refusal("huge.npy") == (
        "huge.npy: truncated: shape (1000000000000,) float64 needs 8000000000000 bytes of data, "
        "8 present")


def test_npy_nan_message_matches_hdf5() -> None:
    bad = LOGITS.astype(np.float64)
    bad[4, 1] = np.nan
    np.save("x.npy", bad)
    write_raw_h5("x.h5", logits=bad)
    with pytest.raises(InputError) as h5_err:
        pred = read_predictions("x.h5")
        rows(pred)  # HDF5 logits are checked as they are read
    npy_msg = refusal("x.npy")
    assert npy_msg.split(": ", 1)[1] == str(h5_err.value).split(": ", 1)[1]


# --------------------------------------------------------------------------------------------
# .npz


@pytest.mark.parametrize("compressed", [False, True], ids=["savez", "savez_compressed"])
def test_npz_round_trip(compressed: bool) -> None:
    write("x.npz", npz_bytes(compressed=compressed, logits=LOGITS, labels=LABELS, sample_ids=IDS,
                              class_names=NAMES, extra=np.zeros(2)))
    pred = read_predictions("x.npz")
    assert pred.foreign_format == "npz"
    assert_same(pred, h5_read(labels=LABELS, sample_ids=IDS, class_names=NAMES))


@pytest.mark.parametrize("key", ["targets", "y"])
def test_npz_label_aliases(key: str) -> None:
    write("x.npz", npz_bytes(logits=LOGITS, **{key: LABELS}))  # type: ignore[arg-type]
    assert_same(read_predictions("x.npz"), h5_read(labels=LABELS))


def test_npz_ids_as_bytes_or_integers() -> None:
    write("b.npz", npz_bytes(logits=LOGITS, sample_ids=np.array([s.encode() for s in IDS])))
    assert ids(read_predictions("b.npz")) == IDS
    write("i.npz", npz_bytes(logits=LOGITS, sample_ids=np.arange(10, 16)))
    assert ids(read_predictions("i.npz")) == [str(i) for i in range(10, 16)]


def test_npz_unnamed_logits_fall_back_to_the_only_float_matrix() -> None:
    buf = io.BytesIO()
    np.savez(buf, LOGITS, labels=LABELS)  # stored as arr_0
    write("x.npz", buf.getvalue())
    assert_same(read_predictions("x.npz"), h5_read(labels=LABELS))


def test_npz_label_message_matches_hdf5() -> None:
    bad = LABELS.copy()
    bad[3] = 7
    write("x.npz", npz_bytes(logits=LOGITS, labels=bad))
    write_raw_h5("x.h5", logits=LOGITS, labels=bad)
    npz_msg, h5_msg = refusal("x.npz"), refusal("x.h5")
    assert npz_msg == "x.npz:/labels: 1 label(s) not in [0, 3); first at row 3 = 7"
    assert npz_msg.replace("x.npz", "x.h5") == h5_msg


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"logits": np.array([[1.0]], dtype=object)},
         "x.npz:/logits: object arrays are refused (allow_pickle stays off)"),
        ({"logits": LOGITS, "sample_ids": np.array(IDS, dtype=object)},
         "x.npz:/sample_ids: object arrays are refused (allow_pickle stays off)"),
        ({"a": np.zeros(3), "b": np.arange(3)},
         "x.npz: no 'logits' array, and no floating arrays with 2+ axes to take instead "
         "(arrays: 'a', 'b'); name the logits 'logits'"),
        ({"a": LOGITS, "b": LOGITS},
         "x.npz: no 'logits' array, and 2 floating arrays with 2+ axes to take instead "
         "(arrays: 'a', 'b'); name the logits 'logits'"),
        ({"logits": LOGITS, "labels": LABELS, "y": LABELS},
         "x.npz: has both 'labels' and 'y'; keep one (label arrays read from 'labels', "
         "'targets', 'y')"),
        ({"logits": LOGITS, "targets": LABELS[:4]},
         "x.npz:/targets: shape (4,) does not match logits (6, 3) (expected (6,))"),
        ({"logits": LOGITS, "labels": LABELS.astype(float)},
         "x.npz:/labels: labels must be integers, got float64"),
        ({"logits": LOGITS, "sample_ids": np.array(IDS).reshape(2, 3)},
         "x.npz:/sample_ids: must be 1-D, got shape (2, 3)"),
        ({"logits": LOGITS, "sample_ids": np.linspace(0, 1, 6)},
         "x.npz:/sample_ids: must hold strings (or integer ids), got float64"),
        ({"logits": LOGITS, "class_names": ["a", "b"]},
         "x.npz:/class_names: 2 class names for K=3"),
        ({"logits": LOGITS.astype(np.int32)}, "x.npz:/logits: logits must be floating point, "
         "got int32"),
        ({}, "x.npz: is an .npz with no arrays"),
    ],
    ids=["object-logits", "object-ids", "no-logits", "two-candidates", "two-label-arrays",
         "label-shape", "float-labels", "2d-ids", "float-ids", "class-names",
         "int-logits", "empty"],
)
def test_npz_refusals(arrays: dict[str, Any], message: str) -> None:
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=True, **arrays)  # type: ignore[arg-type]
    write("x.npz", buf.getvalue())
    assert refusal("x.npz") == message


def test_npz_duplicate_ids_message_matches_hdf5() -> None:
    ids = ["a", "b", "a", "c", "a", "d"]
    write("x.npz", npz_bytes(logits=LOGITS, sample_ids=ids))
    write_raw_h5("x.h5", logits=LOGITS, sample_ids=np.array(ids, dtype=h5py.string_dtype()))
    assert refusal("x.npz").replace("x.npz", "x.h5") == refusal("x.h5")


def test_npz_duplicate_ids_exact_message() -> None:
    write("x.npz", npz_bytes(logits=LOGITS, sample_ids=["a"] * 6))
    assert refusal("x.npz") == "x.npz:/sample_ids: 5 duplicated sample id(s), e.g. 'a'"


def test_zip_that_is_neither_npz_nor_torch() -> None:
    with zipfile.ZipFile("x.npz", "w") as zf:
        zf.writestr("logits.npy", npz_bytes())
        zf.writestr("README.txt", "hello")
    assert refusal("x.npz") == (
        "x.npz: is a zip archive but neither an .npz (member 'README.txt' is not *.npy) nor a "
        "torch.save file (no data.pkl)"
    )


def test_npz_member_not_npy() -> None:
    with zipfile.ZipFile("x.npz", "w") as zf:
        zf.writestr("logits.npy", b"not an array")
    assert refusal("x.npz").startswith("x.npz:/logits: unreadable array (ValueError: ")


# --------------------------------------------------------------------------------------------
# .pt / .pth


@pytest.mark.torch
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_pt_round_trips(torch: Any, legacy: bool) -> None:
    t_logits, t_labels = torch.from_numpy(LOGITS), torch.from_numpy(LABELS)
    kw = {"_use_new_zipfile_serialization": False} if legacy else {}
    torch.save(t_logits, "tensor.pt", **kw)
    torch.save({"logits": t_logits, "labels": t_labels, "sample_ids": IDS,
                "class_names": NAMES, "epoch": 3}, "dict.pth", **kw)
    torch.save((t_logits, t_labels), "pair.pt", **kw)
    assert_same(read_predictions("tensor.pt"), h5_read())
    full = read_predictions("dict.pth")
    assert full.foreign_format == "torch"
    assert_same(full, h5_read("full.h5", labels=LABELS, sample_ids=IDS, class_names=NAMES))
    assert_same(read_predictions("pair.pt"), h5_read("pair.h5", labels=LABELS))


@pytest.mark.torch
def test_pt_bfloat16_and_requires_grad(torch: Any) -> None:
    t = torch.from_numpy(LOGITS).to(torch.bfloat16).requires_grad_(True)
    torch.save({"logits": t, "targets": torch.from_numpy(LABELS)}, "x.pt")
    pred = read_predictions("x.pt")
    want = t.detach().float().numpy()
    np.testing.assert_array_equal(rows(pred), want.astype(np.float64))
    np.testing.assert_array_equal(pred.labels, LABELS)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: {"state_dict": {"w": t.zeros(2)}, "w": t.zeros(3)},
         "x.pt: no 'logits' entry, and no floating entries with 2+ axes to take instead "
         "(entries: 'state_dict', 'w'); name the logits 'logits'"),
        (lambda t: [t.zeros(2, 2)] * 3,
         "x.pt: holds a list of 3 items; expected a tensor of logits, a dict with 'logits' "
         "(and 'labels'), or a (logits, labels) pair"),
        (lambda t: "hello", "x.pt: holds a str; expected a tensor of logits, a dict with "
         "'logits' (and 'labels'), or a (logits, labels) pair"),
        (lambda t: t.arange(6).reshape(2, 3), "x.pt: logits must be floating point, got int64"),
        (lambda t: (t.zeros(2, 3), t.tensor([0, 3])),
         "x.pt:[1]: 1 label(s) not in [0, 3); first at row 1 = 3"),
        (lambda t: {"logits": t.zeros(2, 3), "labels": {"a": 1}},
         "x.pt:/labels: holds a dict, expected a tensor"),
    ],
    ids=["no-logits", "long-list", "string", "int-logits", "label-range", "dict-labels"],
)
def test_pt_refusals(torch: Any, make: Any, message: str) -> None:
    torch.save(make(torch), "x.pt")
    assert refusal("x.pt") == message


class _Evil:
    """Unpickling this calls ``os.mkdir(marker)``: the proof that a loader executed code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def test_evil_payload_is_live(tmp_path: Path) -> None:
    """Sanity check of the payload used below: a plain unpickle does run it."""
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Evil(marker)))  # the point of the test
    assert marker.exists()


def test_plain_pickle_is_refused_unopened(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker), protocol=4)
    message = ("is a plain pickle, not a torch.save file; lsfix never unpickles arbitrary "
               "objects (save tensors with torch.save or arrays with numpy.savez)")
    for path in ("evil.pt", "evil.npy", "evil.pkl"):
        assert refusal(write(path, payload)) == f"{path}: {message}"
    with pytest.raises(InputError, match="plain pickle"):
        entry.read_foreign(io.BytesIO(payload), "<stdin>", payload[:8])
    assert not marker.exists()


@pytest.mark.torch
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_malicious_torch_file_is_refused_by_weights_only(
    torch: Any, tmp_path: Path, legacy: bool
) -> None:
    marker = tmp_path / "pwned"
    kw = {"_use_new_zipfile_serialization": False} if legacy else {}
    torch.save({"logits": _Evil(marker)}, "evil.pt", **kw)
    msg = refusal("evil.pt")
    # zip files are read by lsfix's own restricted unpickler (lsfix.readers.torchzip), legacy ones by
    # torch.load(weights_only=True)
    prefix = ("evil.pt: refused by torch.load(weights_only=True): " if legacy else
              "evil.pt: refused: the pickle in this torch.save file names the global ")
    assert msg.startswith(prefix)
    assert "mkdir" in msg
    assert msg.endswith("lsfix never unpickles arbitrary objects (save plain tensors, e.g. "
                        "torch.save({'logits': logits, 'labels': labels}, path))")
    data = Path("evil.pt").read_bytes()
    with pytest.raises(InputError, match=r"^<stdin>: refused"):
        entry.read_foreign(io.BytesIO(data), "<stdin>", data[:8])
    assert not marker.exists()


@pytest.mark.parametrize("torch_installed", [True, False])
def test_unsupported_torch_feature_is_refused_not_handed_to_torch_load(
        monkeypatch: pytest.MonkeyPatch, torch_installed: bool) -> None:
    """A feature only torch.load reads (here: a sparse-tensor rebuild) is refused in one line
    (exit 3): the file never chooses torch.load as its parser (issue 19), installed or not."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x/data.pkl", b"\x80\x02ctorch._utils\n_rebuild_sparse_tensor\nq\x00.")
    write("x.pt", buf.getvalue())
    if not torch_installed:
        monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    else:
        fake = types.ModuleType("torch")
        fake.load = lambda *a, **k: pytest.fail("torch.load was called")  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "torch", fake)
    msg = refusal("x.pt", InputError)
    assert msg.startswith("x.pt: holds torch._utils._rebuild_sparse_tensor, which lsfix's "
                          "tensor reader does not read (it never hands a data file to "
                          "torch.load)"), msg


# --------------------------------------------------------------------------------------------
# .csv / .tsv


def logits_table(delim: str = ",", newline: str = "\n") -> str:
    order = [2, 0, 1]  # columns in any order
    head = ["sample_id", *(f"logit_{j}" for j in order), "label"]
    lines = [delim.join(head)]
    for i in range(6):
        cells = [IDS[i], *(repr(float(LOGITS[i, j])) for j in order), str(LABELS[i])]
        lines.append(delim.join(cells))
    return newline.join(lines) + newline


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("x.csv", logits_table()),
        ("x.tsv", logits_table("\t")),
        ("crlf.csv", logits_table(newline="\r\n")),
        ("bom.csv", "\ufeff" + logits_table()),
        ("blank.csv", logits_table().replace("\n", "\n\n", 3)),
    ],
    ids=["csv", "tsv", "crlf", "bom", "blank-lines"],
)
def test_logits_table_round_trip(path: str, text: str) -> None:
    pred = read_predictions(write(path, text))
    assert pred.foreign_format == "logits-table"
    assert foreign.table_correct(pred) is None
    assert_same(pred, h5_read(logits=LOGITS.astype(np.float64), labels=LABELS, sample_ids=IDS))


def test_logits_table_quoted_cells() -> None:
    text = 'sample_id,logit_0,logit_1\n"a, b",1.5,-2\n"two\nlines",0,"3"\nplain,1,1\n'
    pred = read_predictions(write("x.csv", text))
    assert ids(pred) == ["a, b", "two\nlines", "plain"]
    np.testing.assert_array_equal(rows(pred), [[1.5, -2], [0, 3], [1, 1]])


def test_single_logit_column_is_binary() -> None:
    pred = read_predictions(write("x.csv", "logit_0,label\n-1.5,0\n2.0,1\n"))
    assert pred.k == 2
    np.testing.assert_array_equal(rows(pred), [[0, -1.5], [0, 2.0]])


def test_score_table() -> None:
    text = "sample_id\tconfidence\tcorrect\nx\t0.9\t1\ny\t-3e-2\tFALSE\nz\t7\ttrue\nw\t0.5\t0\n"
    pred = read_predictions(write("scores.tsv", text))
    assert pred.foreign_format == foreign.SCORE_TABLE
    assert pred.logits is None and pred.k is None and pred.n == 4
    np.testing.assert_array_equal(pred.scores["confidence"], [0.9, -0.03, 7.0, 0.5])
    assert pred.score_attrs == {"confidence": {"method": "table", "params": {}}}
    np.testing.assert_array_equal(pred.labels, [1, 0, 1, 0])  # labels hold correctness
    np.testing.assert_array_equal(foreign.table_correct(pred), [True, False, True, False])
    assert ids(pred) == ["x", "y", "z", "w"]


CSV_ERRORS = [
    ("confidence,correct\n0.5,1\nabc,0\n",
     "t.csv: line 3, column 'confidence': 'abc' is not a number"),
    ("confidence,correct\n0.5,1\n0.7\n", "t.csv: line 3: 1 field(s), the header has 2"),
    ("confidence,correct\n0.5,1,9\n", "t.csv: line 2: 3 field(s), the header has 2"),
    ("confidence\n0.5\n", "t.csv: line 1: missing column 'correct' (a score table has "
     "confidence, correct and optionally sample_id)"),
    ("confidence,correct,label\n0.5,1,1\n", "t.csv: line 1: unknown column 'label' (a score "
     "table has confidence, correct and optionally sample_id)"),
    ("confidence,correct\n", "t.csv: no data rows (only the header, line 1)"),
    ("\n\n", "t.csv: empty table (no header line)"),
    ("confidence,correct\n0.5,1\n\nnan,1\n",
     "t.csv: line 4, column 'confidence': 'nan' is not finite"),
    ("confidence,correct\n-inf,1\n", "t.csv: line 2, column 'confidence': '-inf' is not finite"),
    ("confidence,correct\n1e999,1\n",
     "t.csv: line 2, column 'confidence': '1e999' is not finite"),
    ("confidence,correct\n0.5,\n", "t.csv: line 2, column 'correct': empty cell"),
    ("confidence,correct\n0.5,2\n", "t.csv: line 2, column 'correct': '2' is not 0/1 or "
     "true/false"),
    ("confidence,correct\n0.5,yes\n", "t.csv: line 2, column 'correct': 'yes' is not 0/1 or "
     "true/false"),
    ("confidence,correct\n0.5,0\n0.7,x\nz,1\n",  # earliest line wins over column order
     "t.csv: line 3, column 'correct': 'x' is not 0/1 or true/false"),
    ("sample_id,confidence,correct\na,1,1\nb,1,1\na,1,1\n", "t.csv: line 4, column "
     "'sample_id': sample id 'a' is repeated (first on line 2)"),
    ("sample_id,confidence,correct\na,1,1\n,1,1\n",
     "t.csv: line 3, column 'sample_id': empty cell"),
    ("confidence,confidence,correct\n1,1,1\n", "t.csv: line 1: duplicate column 'confidence'"),
    ("logit_0,logit_1,logit_2,label\n1,2,3,0\n1,2,3,3\n",
     "t.csv: line 3, column 'label': label 3 is not in [0, 3)"),
    ("logit_0,logit_1,label\n1,2,-1\n", "t.csv: line 2, column 'label': label -1 is not in "
     "[0, 2)"),
    ("logit_0,label\n1,2\n", "t.csv: line 2, column 'label': label 2 is not 0 or 1 "
     "(single-logit binary classifier)"),
    ("logit_0,logit_1,label\n1,2,1.0\n", "t.csv: line 2, column 'label': '1.0' is not an "
     "integer label"),
    ("logit_0,logit_1,label\n1,2,99999999999999999999999\n", "t.csv: line 2, column 'label': "
     "label 99999999999999999999999 is not in [0, 2)"),
    ("logit_0,logit_1\n1,2\n1,NaN\n", "t.csv: line 3, column 'logit_1': 'NaN' is not finite"),
    ("logit_0,logit_2\n1,2\n", "t.csv: line 1: missing column 'logit_1' (a logits table has "
     "logit_0..logit_2 and optionally label and sample_id)"),
    ("logit_0,logit_01\n1,2\n", "t.csv: line 1: unknown column 'logit_01' (a logits table "
     "has logit_0..logit_0 and optionally label and sample_id)"),
    ("a,b\nx,2\n", "t.csv: line 1: " + NEITHER + "columns: 'a', 'b'. Rename the columns to "
     "those names"),
    ("confidence\tcorrect\n0.5\t1\n", "t.csv: line 1: " + NEITHER + "columns: "
     "'confidence\\tcorrect' (the file looks tab-separated: name it .tsv). Rename the columns "
     "to those names"),
    ('sample_id,confidence,correct\n"a,1,1\nb,1,1\n', "t.csv: line 3: unexpected end of data"),
    ('sample_id,confidence,correct\n"a"x,1,1\n',
     "t.csv: line 2: ',' expected after '\"'"),
    (b"confidence,correct\n0.5,1\n\xff,1\n", "t.csv: line 3: not UTF-8 text (byte 0xff)"),
    ('sample_id,confidence,correct\n"x\ny",0.5,1\nz,zz,1\n',  # a quoted newline shifts lines
     "t.csv: line 4, column 'confidence': 'zz' is not a number"),
]


@pytest.mark.parametrize(("text", "message"), CSV_ERRORS, ids=range(len(CSV_ERRORS)))
def test_table_refusals(text: str | bytes, message: str) -> None:
    assert refusal(write("t.csv", text)) == message


def test_large_score_table() -> None:
    """10**5 rows: parsing is columnar (no per-cell Python work beyond float())."""
    n = 100_000
    conf = RNG.random(n)
    correct = RNG.integers(0, 2, n)
    body = "\n".join(f"{c!r},{k}" for c, k in zip(conf.tolist(), correct.tolist(), strict=True))
    write("big.csv", "confidence,correct\n" + body + "\n")
    start = time.perf_counter()
    pred = read_predictions("big.csv")
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(pred.scores["confidence"], conf)
    np.testing.assert_array_equal(pred.labels, correct)
    assert elapsed < 5.0


# --------------------------------------------------------------------------------------------
# dispatch, stdin and sniffing


class _FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)

    def isatty(self) -> bool:
        return False


def test_stdin_sniffs_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _FakeStdin(logits_table("\t").encode()))
    pred = read_predictions("-")
    assert pred.name == "<stdin>" and pred.foreign_format == "logits-table"
    assert_same(pred, h5_read(logits=LOGITS.astype(np.float64), labels=LABELS, sample_ids=IDS))
    pred = entry.read_foreign(io.BytesIO(b"confidence,correct\n0.5,1\n"), "<stdin>", b"")
    assert pred.foreign_format == "score-table"
    with pytest.raises(InputError) as info:
        entry.read_foreign(io.BytesIO(b"confidence,correct\n0.5,x\n"), "<stdin>", b"")
    assert str(info.value) == "<stdin>: line 2, column 'correct': 'x' is not 0/1 or true/false"


def test_stdin_binary_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    np.save(buf, LOGITS)
    monkeypatch.setattr(sys, "stdin", _FakeStdin(buf.getvalue()))
    assert_same(read_predictions("-"), h5_read())
    data = npz_bytes(logits=LOGITS, labels=LABELS)
    pred = entry.read_foreign(io.BytesIO(data), "<stdin>", data[:8])
    assert_same(pred, h5_read("l.h5", labels=LABELS))


@pytest.mark.torch
def test_stdin_torch(torch: Any) -> None:
    buf = io.BytesIO()
    torch.save({"logits": torch.from_numpy(LOGITS)}, buf)
    pred = entry.read_foreign(io.BytesIO(buf.getvalue()), "<stdin>", buf.getvalue()[:8])
    assert_same(pred, h5_read())


def test_extensionless_path_is_sniffed() -> None:
    pred = read_predictions(write("scores", "confidence\tcorrect\n0.5\t1\n"))
    assert pred.foreign_format == "score-table"


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("x.txt", b"confidence,correct\n0.5,1\n",
         "x.txt: line 1: " + NEITHER + "columns: 'confidence,correct' (the file looks "
         "comma-separated: name it .csv). Rename the columns to those names"),
        ("x.json", b"{}", "x.json: unrecognised input format (not HDF5, .npy, .npz, .pt, .csv, "
         ".tsv or .txt)"),
        ("noext", b"\x00\x01\x02binary",
         "noext: unrecognised input format (not HDF5, .npy, .npz, .pt, .csv, .tsv or .txt)"),
        ("x.npy", b"hello world", "x.npy: does not start with the .npy magic bytes; not a .npy "
         "file, or corrupt"),
        ("x.npz", b"hello world", "x.npz: is not a zip archive; not an .npz file, or corrupt"),
        ("x.pth", b"hello world", "x.pth: is neither a zip archive nor a legacy torch pickle; "
         "not a torch.save file, or corrupt"),
        ("x.h5", b"\x89HDF\r\n", "x.h5: does not start with the HDF5 signature; not an HDF5 "
         "file, or corrupt"),
        ("x.npz", b"PK\x03\x04garbage", "x.npz: not a readable zip archive (BadZipFile: File "
         "is not a zip file); truncated or corrupt?"),
        ("x.npy", b"\x93NUMPY\x01\x00", "x.npy: not a valid .npy header (ValueError: EOF: "
         "reading array header length, expected 2 bytes got 0)"),
    ],
    ids=["txt", "json", "binary-noext", "npy", "npz", "pth", "h5", "bad-zip", "npy-header"],
)
def test_unrecognised_and_mismatched(path: str, data: bytes, message: str) -> None:
    assert refusal(write(path, data)) == message


def test_stdin_binary_junk() -> None:
    with pytest.raises(InputError) as info:
        entry.read_foreign(io.BytesIO(b"\x00\xff junk"), "<stdin>", b"\x00\xff junk")
    assert str(info.value) == (
        "<stdin>: unrecognised input format (not HDF5, .npy, .npz, .pt, .csv, .tsv or .txt)")


def test_magic_wins_over_extension() -> None:
    write("looks.npy", npz_bytes(logits=LOGITS, labels=LABELS))
    assert read_predictions("looks.npy").foreign_format == "npz"


# --------------------------------------------------------------------------------------------
# fuzz: nothing but LsfixError escapes, whatever the bytes


def _valid_inputs() -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    buf = io.BytesIO()
    np.save(buf, LOGITS)
    out["npy"] = (".npy", buf.getvalue())
    out["npz"] = (".npz", npz_bytes(logits=LOGITS, labels=LABELS, sample_ids=IDS))
    out["npz-compressed"] = (".npz", npz_bytes(compressed=True, logits=LOGITS, labels=LABELS))
    out["csv"] = (".csv", logits_table().encode())
    out["tsv"] = (".tsv", b"confidence\tcorrect\n0.5\t1\n0.25\t0\n")
    try:
        import torch
    except ImportError:
        return out
    for legacy in (False, True):
        buf = io.BytesIO()
        torch.save({"logits": torch.from_numpy(LOGITS), "labels": torch.from_numpy(LABELS)},
                   buf, _use_new_zipfile_serialization=not legacy)
        out["pt-legacy" if legacy else "pt"] = (".pt", buf.getvalue())
    return out


VALID = _valid_inputs()
PREFIXES = [foreign.NPY_MAGIC, foreign.NPY_MAGIC + b"\x01\x00", b"PK\x03\x04", b"PK\x05\x06",
            foreign.TORCH_LEGACY_HEAD, b"\x80\x04", b"confidence,correct\n", b"logit_0\t", b""]
SUFFIXES = ["", ".npy", ".npz", ".pt", ".csv", ".tsv", ".bin"]
FUZZ = settings(max_examples=int(os.environ.get("LSFIX_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_anything(data: bytes, suffix: str, folder: Path) -> None:
    """Read ``data`` from stdin and from a file; only LsfixError may come out."""
    for src in (io.BytesIO(data), str(folder / f"fuzz{suffix}")):
        if isinstance(src, str):
            Path(src).write_bytes(data)
        try:
            pred = entry.read_foreign(src, "fuzz", data[:8])
        except LsfixError as exc:
            assert "\n" not in str(exc)
        else:
            assert isinstance(pred, Predictions)


@FUZZ
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=400),
       suffix=st.sampled_from(SUFFIXES))
def test_fuzz_random_bytes_after_each_magic(
    prefix: bytes, body: bytes, suffix: str, tmp_path: Path
) -> None:
    _read_anything(prefix + body, suffix, tmp_path)


@FUZZ
@given(which=st.sampled_from(sorted(VALID)), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4))
def test_fuzz_truncated_and_corrupted_valid_files(
    which: str, cut: float, flips: list[tuple[float, int]], tmp_path: Path
) -> None:
    suffix, data = VALID[which]
    arr = bytearray(data[: max(1, int(len(data) * cut))])
    for pos, byte in flips:
        arr[min(len(arr) - 1, int(pos * len(arr)))] = byte
    _read_anything(bytes(arr), suffix, tmp_path)


@FUZZ
@given(header=st.sampled_from(["confidence,correct", "sample_id,confidence,correct",
                               "logit_0,logit_1,label", "logit_0,sample_id"]),
       body=st.text(alphabet=st.sampled_from(list('0123456789.,-+e\n\r"\t nainftrueFALS_x\x00é')),
                    max_size=200))
def test_fuzz_table_text(header: str, body: str, tmp_path: Path) -> None:
    _read_anything(f"{header}\n{body}".encode(), ".csv", tmp_path)

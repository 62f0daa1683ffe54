"""Property/fuzz tests (hypothesis): random valid lsfix files, and the same files mutated.

* Valid files: random N, K (or a single-logit binary classifier), float16/32/64 logits over
  the dtype's whole finite range, optional labels, sample ids, class names and stored scores.
  ``curve`` succeeds (exit 0) when there are labels and refuses cleanly (exit 3, "needs
  labels") when there are none; ``score`` always succeeds and writes finite scores.
* Mutated files: byte flips, zeroed ranges, truncations and appended junk (the HDF5 container),
  and, through h5py, tampered attributes, deleted datasets, datasets replaced by arrays of
  another dtype or shape, and datasets replaced by links. ``curve`` exits 0, 2 or 3, and never
  with a traceback; an error is one line ``lsfix curve: error: ...`` naming the file.

The CLI runs in a separate long-lived process (``_fuzz_server.py``), so that a crash or a hang
inside the HDF5 library is reported with the offending file instead of killing pytest.
Runtime is bounded: ``LSFIX_FUZZ_EXAMPLES`` (default 40) examples per test, ~60 s in all;
raise it to fuzz longer (``LSFIX_FUZZ_EXAMPLES=2000 pytest tests/hardening/test_fuzz.py``).
Examples are derandomized (the same on every run) unless ``LSFIX_FUZZ_RANDOM=1``.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lsfix.readers.logitsfile import root_attrs

from .conftest import HERE, subprocess_env

EXAMPLES = int(os.environ.get("LSFIX_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("LSFIX_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
REQUEST_TIMEOUT = 20.0


# --------------------------------------------------------------------------------------------
# the CLI in a separate process


class Server:
    """``lsfix`` commands run by ``_fuzz_server.py``; restarted after a crash."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "_fuzz_server.py")], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
        return self.proc

    def run(self, args: list[str]) -> dict[str, Any]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(args) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([proc.stdout], [], [], REQUEST_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        if line:
            return json.loads(line)  # type: ignore[no-any-return]
        hung = proc.poll() is None
        self.close()
        return {"code": None, "stderr": "", "exc": None,
                "crash": "hung" if hung else f"server died with {proc.returncode}"}

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            self.proc = None


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where offending files are kept (their path is in the assertion message)."""
    return tmp_path_factory.mktemp("fuzz-failures")


_counter = itertools.count()


def _fresh(folder: Path, suffix: str = ".h5") -> Path:
    return folder / f"f{next(_counter):05d}{suffix}"


def known_heap_hang(data: bytes) -> bool:
    """A global heap collection (``GCOL``) whose object walk cannot progress (an object of
    size 0, or one running past the collection): libhdf5 2.0.0 loops forever on it
    (``test_kill.py::test_corrupt_global_heap_is_refused_not_hung``, an upstream bug)."""
    start = data.find(b"GCOL")
    while start != -1:
        size = int.from_bytes(data[start + 8 : start + 16], "little")
        pos = start + 16
        while pos + 16 <= start + size:
            index = int.from_bytes(data[pos : pos + 2], "little")
            length = int.from_bytes(data[pos + 8 : pos + 16], "little")
            if length == 0 or (index != 0 and pos + 16 + length > start + size):
                return True
            if index == 0:
                break
            pos += 16 + (length + 7) // 8 * 8
        start = data.find(b"GCOL", start + 4)
    return False


def assert_clean(res: dict[str, Any], path: Path, cmd: str, allowed: tuple[int, ...],
                 failures: Path) -> None:
    """Exit code in ``allowed``; no traceback; an error is one line naming the file."""
    if res.get("crash") == "hung" and path.exists() and known_heap_hang(path.read_bytes()):
        assume(False)  # the known libhdf5 infinite loop: not news; fuzz on
    def keep() -> str:
        kept = failures / path.name
        if path.exists():
            shutil.copyfile(path, kept)
        return str(kept)

    assert "crash" not in res, f"lsfix {res['crash']} on {keep()}"
    assert res["exc"] is None, f"traceback on {keep()}:\n{res['exc']}"
    assert "Traceback" not in res["stderr"], f"{keep()}: {res['stderr']}"
    assert res["code"] in allowed, f"exit {res['code']} on {keep()}: {res['stderr']}"
    if res["code"] != 0:
        lines = res["stderr"].splitlines()
        assert len(lines) == 1, f"{keep()}: {res['stderr']!r}"
        assert lines[0].startswith(f"lsfix {cmd}: error: "), f"{keep()}: {lines[0]}"
        assert path.name in lines[0], f"{keep()}: the message does not name the file: {lines[0]}"


# --------------------------------------------------------------------------------------------
# valid files


@dataclass
class Spec:
    logits: np.ndarray
    labels: np.ndarray | None
    ids: list[str] | None
    names: list[str] | None
    scores: dict[str, np.ndarray]

    @property
    def k(self) -> int:
        return 2 if self.logits.ndim == 1 or self.logits.shape[1] == 1 else self.logits.shape[1]


FMAX = {t: float(np.finfo(t).max) for t in ("float16", "float32", "float64")}
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
               max_size=8)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    n = draw(st.integers(1, 40))
    layout = draw(st.sampled_from(["nk", "nk", "nk", "binary", "binary_n1"]))
    k = draw(st.integers(2, 12)) if layout == "nk" else 2
    dtype = draw(st.sampled_from(["float16", "float32", "float64"]))
    shape = {"nk": (n, k), "binary": (n,), "binary_n1": (n, 1)}[layout]
    width = {"float16": 16, "float32": 32, "float64": 64}[dtype]
    scale = draw(st.sampled_from([10.0, 1e4, FMAX[dtype]]))
    elements = st.floats(-scale, scale, allow_nan=False, allow_infinity=False, width=width)
    logits = draw(hnp.arrays(np.dtype(dtype), shape, elements=elements))
    labels = None
    if draw(st.booleans()) or draw(st.booleans()):
        labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    ids = draw(st.lists(TEXT, min_size=n, max_size=n, unique=True)) if draw(
        st.booleans()) else None
    names = draw(st.lists(TEXT, min_size=shape[1], max_size=shape[1])) if (
        layout == "nk" and draw(st.booleans())) else None
    scores = {}
    for name in draw(st.lists(st.sampled_from(["msp", "pnorm", "mine", "energy"]),
                              max_size=2, unique=True)):
        scores[name] = draw(hnp.arrays(np.float64, (n,), elements=st.floats(
            allow_nan=False, allow_infinity=True)))
    return Spec(logits, labels, ids, names, scores)


def write_spec(path: Path, spec: Spec) -> None:
    str_dt = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        for key, val in root_attrs({}, []).items():
            f.attrs[key] = val
        f.create_dataset("logits", data=spec.logits)
        if spec.labels is not None:
            f.create_dataset("labels", data=spec.labels)
        if spec.ids is not None:
            f.create_dataset("sample_ids", data=np.array(spec.ids, dtype=object), dtype=str_dt)
        if spec.names is not None:
            f.create_dataset("class_names", data=np.array(spec.names, dtype=object),
                             dtype=str_dt)
        for name, vals in spec.scores.items():
            f.create_dataset(f"scores/{name}", data=vals)


@FUZZ
@given(spec=specs())
def test_valid_files_are_evaluated_or_refused_cleanly(server: Server, folder: Path,
                                                      failures: Path, spec: Spec) -> None:
    path = _fresh(folder)
    write_spec(path, spec)
    res = server.run(["curve", str(path), "-f", "json", "-o", str(path) + ".json"])
    if spec.labels is not None:
        assert_clean(res, path, "curve", (0,), failures)
        doc = json.loads(Path(str(path) + ".json").read_text())
        for r in doc["results"]:
            for key in ("aurc", "oracle_aurc", "eaurc", "naurc", "augrc", "auroc",
                        "fpr_at_95tpr"):
                assert r[key] is None or np.isfinite(r[key]), (key, r)
                if r[key] is None:  # an undefined metric says why
                    assert key in r["undefined"], (key, r)
    else:
        assert_clean(res, path, "curve", (3,), failures)
        assert "needs labels" in res["stderr"]
    out = Path(str(path) + ".scored.h5")
    res = server.run(["score", str(path), "-m", "msp", "-m", "max_logit", "-m", "pnorm:2",
                      "-m", "energy", "--overwrite", "-o", str(out)])
    assert_clean(res, path, "score", (0,), failures)
    with h5py.File(out, "r") as f:
        assert len(f["scores"]) >= 4
        for key in f["scores"]:
            assert not np.isnan(f["scores"][key][()]).any(), key
    for p in (path, out, Path(str(path) + ".json")):
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# mutated files


@st.composite
def byte_mutations(draw: st.DrawFn) -> list[tuple[str, float, int]]:
    ops = st.tuples(st.sampled_from(["flip", "flip", "flip", "zero", "truncate", "append"]),
                    st.floats(0.0, 1.0), st.integers(0, 255))
    return draw(st.lists(ops, min_size=1, max_size=6))


def mutate_bytes(data: bytes, ops: list[tuple[str, float, int]]) -> bytes:
    buf = bytearray(data)
    for op, where, value in ops:
        if not buf:
            break
        pos = min(len(buf) - 1, int(where * len(buf)))
        if op == "flip":
            buf[pos] = value if value != buf[pos] else (value + 1) % 256
        elif op == "zero":
            buf[pos : pos + 1 + value] = bytes(len(buf[pos : pos + 1 + value]))
        elif op == "truncate":
            del buf[pos:]
        elif op == "append":
            buf += bytes([value]) * (1 + int(where * 300))
    return bytes(buf)


@FUZZ
@given(spec=specs(), ops=byte_mutations())
def test_byte_mutations_never_escape_as_tracebacks(server: Server, folder: Path,
                                                   failures: Path, spec: Spec,
                                                   ops: list[tuple[str, float, int]]) -> None:
    path = _fresh(folder)
    write_spec(path, spec)
    path.write_bytes(mutate_bytes(path.read_bytes(), ops))
    res = server.run(["curve", str(path), "-f", "json", "-o", str(path) + ".json"])
    assert_clean(res, path, "curve", (0, 2, 3), failures)
    path.unlink()
    Path(str(path) + ".json").unlink(missing_ok=True)


ATTR_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(np.int64), st.floats(allow_nan=True).map(np.float64),
    TEXT, st.binary(max_size=12).map(np.void), st.booleans().map(np.bool_),
    st.lists(st.integers(-5, 5), min_size=0, max_size=4).map(
        lambda v: np.asarray(v, dtype=np.int64)),
    st.sampled_from(["lsfix.predictions", "{}", "[]", "{\"a\": 1}", "null", "[1, 2]", "2",
                     "\"x\""]),
)
ROOT_ATTRS = ["lsfix_schema", "lsfix_schema_version", "lsfix_complete", "provenance",
              "history", "lsfix_version"]
DATASETS = ["logits", "labels", "sample_ids", "class_names", "scores/msp", "fit_mask"]
DTYPES = ["int8", "uint8", "int64", "bool", "float16", "float32", "float64", "complex64",
          "S3", "U", "O"]


@st.composite
def h5_mutations(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["attr", "attr", "delattr", "delete", "replace", "replace",
                                     "dsattr", "link"]))
        if kind in ("attr", "delattr"):
            ops.append((kind, draw(st.sampled_from(ROOT_ATTRS)), draw(ATTR_VALUES)))
        elif kind == "delete":
            ops.append((kind, draw(st.sampled_from(DATASETS))))
        elif kind == "replace":
            dtype = draw(st.sampled_from(DTYPES))
            ndim = draw(st.integers(0, 3))
            shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
            ops.append((kind, draw(st.sampled_from(DATASETS)), dtype, shape,
                        draw(st.integers(0, 2**32 - 1))))
        elif kind == "dsattr":
            ops.append((kind, draw(st.sampled_from(["logits", "labels", "scores/msp"])),
                        draw(st.sampled_from(["ignore_index", "params", "method", "transforms"])),
                        draw(ATTR_VALUES)))
        else:
            ops.append((kind, draw(st.sampled_from(DATASETS)),
                        draw(st.sampled_from(["soft", "soft-dangling", "external", "hard"]))))
    return ops


def _random_array(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape)) if shape else 1
    if dtype in ("S3", "U", "O"):
        vals = np.array([f"s{i % 3}" for i in range(size)], dtype=object)
        arr = vals.astype("S3") if dtype == "S3" else vals
    elif dtype == "bool":
        arr = rng.integers(0, 2, size).astype(bool)
    elif dtype.startswith(("int", "uint")):
        arr = rng.integers(-3, 7, size).astype(dtype)
    else:
        with np.errstate(over="ignore"):  # 1e30 overflows float16: inf, which is fine here
            arr = (rng.normal(size=size) * rng.choice([1, 1e3, 1e30], size)).astype(dtype)
        if size:
            arr[rng.integers(0, size)] = rng.choice([np.nan, np.inf, -np.inf, 0.0])
    return arr.reshape(shape)


def mutate_h5(path: Path, ops: list[tuple[Any, ...]]) -> None:
    str_dt = h5py.string_dtype("utf-8")
    with h5py.File(path, "r+") as f:
        for op in ops:
            kind = op[0]
            if kind == "attr":
                f.attrs[op[1]] = op[2]
            elif kind == "delattr":
                if op[1] in f.attrs:
                    del f.attrs[op[1]]
            elif kind == "delete":
                if op[1] in f:
                    del f[op[1]]
            elif kind == "replace":
                _, name, dtype, shape, seed = op
                if name in f:
                    del f[name]
                arr = _random_array(dtype, shape, seed)
                if arr.dtype.kind == "O":
                    f.create_dataset(name, data=arr, dtype=str_dt)
                else:
                    f.create_dataset(name, data=arr)
            elif kind == "dsattr":
                if op[1] in f and isinstance(f[op[1]], h5py.Dataset):
                    f[op[1]].attrs[op[2]] = op[3]
            elif kind == "link":
                _, name, how = op
                if name in f:
                    del f[name]
                if how == "soft":
                    f[name] = h5py.SoftLink("/logits" if name != "logits" else "/labels")
                elif how == "soft-dangling":
                    f[name] = h5py.SoftLink("/nowhere")
                elif how == "external":
                    f[name] = h5py.ExternalLink("elsewhere.h5", "/" + name)
                elif "labels" in f and name != "labels":
                    f[name] = f["labels"]  # a second hard link to the same object


@FUZZ
@given(spec=specs(), ops=h5_mutations())
def test_structural_mutations_never_escape_as_tracebacks(server: Server, folder: Path,
                                                         failures: Path, spec: Spec,
                                                         ops: list[tuple[Any, ...]]) -> None:
    path = _fresh(folder)
    write_spec(path, spec)
    try:
        mutate_h5(path, ops)
    except (TypeError, ValueError, OSError, KeyError, RuntimeError):
        pass  # h5py refused to write that mutation; test what is there
    res = server.run(["curve", str(path), "-f", "json", "-o", str(path) + ".json"])
    assert_clean(res, path, "curve", (0, 2, 3), failures)
    res = server.run(["score", str(path), "-o", str(path) + ".out.h5"])
    assert_clean(res, path, "score", (0, 2, 3), failures)
    for p in (path, Path(str(path) + ".json"), Path(str(path) + ".out.h5")):
        p.unlink(missing_ok=True)

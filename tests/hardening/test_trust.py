"""Trust at every edge (issue 9): hostile files, output paths, untrusted values, resource bombs.

Every case of :data:`CASES` builds its inputs in ``in/`` and runs one real lsfix command
in-process (or, for stdout/descriptor cases, through the installed console script). Each is
checked for:

* the exit code (0, 1 runtime, 2 usage, 3 bad input data);
* for a refusal: one stderr line ``lsfix <cmd>: error: ...`` naming the file (and the key or
  dataset where the case says), no traceback, nothing on stdout;
* nothing left behind: ``out/`` holds exactly the files the case expects (none for a failure:
  no output, no temporary file, no plot, no params file, no report folder);
* inputs byte-identical (``in/`` hashed before and after);
* time and memory under a stated bound: :data:`TIME_BOUND_S` seconds of wall time (a hang
  guard, far above the ~1 s a case takes; a bomb that is not refused runs for minutes) and
  :data:`MEMORY_BOUND` bytes of Python/numpy allocations at peak (``tracemalloc``; a bomb that
  is not refused allocates gigabytes).

The classes: ``local`` (never read from a file that was not named), ``output`` (an output never
replaces a device, a FIFO or an input), ``value`` (attributes and JSON checked for type and
range), ``option`` (malformed or unbounded options), ``cost`` (cost follows the real data),
``artefact`` (a failed command leaves nothing).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from lsfix.readers.logitsfile import new_file, root_attrs

from .conftest import LSFIX_EXE, Result, cli, subprocess_env, tree_digest
from .corpus import K, N, arrays, write_h5

#: Wall-time bound per case (seconds); see the module docstring.
TIME_BOUND_S = 120.0
#: Peak of traced Python/numpy allocations per case (bytes).
MEMORY_BOUND = 256 << 20
#: JSON nested 100,000 levels deep (Python's json module overflows its stack on it).
DEEP = "[" * 100_000 + "]" * 100_000


# --------------------------------------------------------------------------------------------
# data


def good(path: Path, n: int = N, seed: int = 0) -> Path:
    z, y = arrays(n, seed=seed)
    new_file(str(path), z, labels=y)
    return path


def raw_h5(path: Path, *, logits: Any = "default", labels: Any = "default",
           attrs: dict[str, Any] | None = None, extra: Callable[[h5py.File], None] | None = None,
           ) -> Path:
    """An lsfix-schema file written with h5py directly (no validation): the corpus's writer."""
    write_h5(path, logits=logits, labels=labels, attrs=attrs, extra=extra)
    return path


def other_file(folder: Path) -> Path:
    """A file *next to* the inputs whose data must never be read through a link."""
    p = folder / "secret.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.full((N, K), 7.0, dtype=np.float32))
        f.create_dataset("y", data=np.zeros(N, dtype=np.int64))
    return p


def unknown_filter_h5(path: Path, where: str = "logits") -> Path:
    """``/<where>`` compressed with filter id 32245, which no build of libhdf5 has: the
    deflate entry of the filter pipeline message is rewritten (object header v1: no checksum)."""
    z, y = arrays()
    with h5py.File(path, "w") as f:
        for key, val in root_attrs({}, []).items():
            f.attrs[key] = val
        f.create_dataset("logits", data=z, chunks=(5, K),
                         **({"compression": "gzip", "compression_opts": 7}
                            if where == "logits" else {}))
        f.create_dataset("labels", data=y)
        if where != "logits":
            f.create_dataset(where, data=np.ones(8, dtype=np.float32), chunks=(4,),
                             compression="gzip", compression_opts=7)
    data = bytearray(path.read_bytes())
    i = data.find(b"deflate") - 8
    assert data[i:i + 2] == b"\x01\x00", "filter message layout changed"
    data[i:i + 2] = (32245).to_bytes(2, "little")
    data[i + 4:i + 6] = b"\x00\x00"  # mandatory
    path.write_bytes(bytes(data))
    return path


def shard(path: Path, *, rank: int, world: int, start: int, stop: int, total: int,
          attrs: dict[str, Any] | None = None, logits: Any = None,
          extra: Callable[[h5py.File], None] | None = None) -> Path:
    """A complete torchrun shard as ``lsfix extract`` writes it."""
    z, y = arrays(total)
    rec = {"rank": rank, "world": world, "start": start, "stop": stop, "total": total}
    base = {"lsfix_rows_done": np.int64(stop - start), "lsfix_rows_total": np.int64(stop - start),
            "lsfix_extract_job": json.dumps({"model": "m", "shard": rec}),
            "lsfix_shard": json.dumps(rec)}
    base.update(attrs or {})
    return raw_h5(path, logits=z[start:stop] if logits is None else logits,
                  labels=y[start:stop], attrs=base, extra=extra)


def two_shards(d: Path, **first: Any) -> list[str]:
    a = shard(d / "s.rank0-of-2.h5", rank=0, world=2, start=0, stop=10, total=20, **first)
    b = shard(d / "s.rank1-of-2.h5", rank=1, world=2, start=10, stop=20, total=20)
    return [str(a), str(b)]


# --------------------------------------------------------------------------------------------
# the harness


@dataclass
class Spec:
    """What a built case runs and expects."""

    args: list[str]
    exit: int
    fragments: tuple[str, ...] = ()
    name: str | None = None  #: the file the error line must name (default: first input)
    leaves: tuple[str, ...] = ()  #: files expected in out/ afterwards
    proc: bool = False  #: through the console script (real descriptors)
    stdout_file: str | None = None  #: proc only: stdout redirected into out/<this>
    close_stdout: bool = False
    check: Callable[[Path, Result], None] | None = None  #: extra checks after the run
    memory_bound: int = MEMORY_BOUND


@dataclass
class Case:
    name: str
    cls: str
    build: Callable[[Path, Path], Spec]
    needs: tuple[str, ...] = field(default_factory=tuple)


CASES: list[Case] = []


def case(name: str, cls: str, *, needs: tuple[str, ...] = ()
         ) -> Callable[[Callable[[Path, Path], Spec]], Callable[[Path, Path], Spec]]:
    def register(fn: Callable[[Path, Path], Spec]) -> Callable[[Path, Path], Spec]:
        CASES.append(Case(name, cls, fn, needs))
        return fn

    return register


def _run_proc(spec: Spec, cwd: Path, out: Path) -> Result:
    if not LSFIX_EXE.exists():
        pytest.skip(f"{LSFIX_EXE} not installed (pip install -e .)")
    stdout: Any = subprocess.PIPE
    if spec.stdout_file:
        stdout = open(out / spec.stdout_file, "wb")  # noqa: SIM115
    elif spec.close_stdout:
        stdout = None
    try:
        if spec.close_stdout:
            args = " ".join(_q(a) for a in [str(LSFIX_EXE), *spec.args])
            proc = subprocess.run(["sh", "-c", f"exec {args} >&-"], cwd=cwd,
                                  capture_output=False, stderr=subprocess.PIPE, timeout=300,
                                  env=subprocess_env())
            return Result(proc.returncode, b"", proc.stderr.decode("utf-8", "replace"))
        proc = subprocess.run([str(LSFIX_EXE), *spec.args], cwd=cwd, stdout=stdout,
                              stderr=subprocess.PIPE, timeout=300, env=subprocess_env())
    finally:
        if spec.stdout_file:
            stdout.close()
    return Result(proc.returncode, proc.stdout or b"", proc.stderr.decode("utf-8", "replace"))


def _q(a: str) -> str:
    import shlex

    return shlex.quote(a)


@contextlib.contextmanager
def _chdir(folder: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def run_case(c: Case, tmp_path: Path) -> tuple[Spec, Result]:
    for need in c.needs:
        if need == "torch":
            pytest.importorskip("torch", reason="needs torch (the extract extra)")
        elif shutil.which(need) is None:
            pytest.skip(f"needs the system package providing {need!r}")
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    out.mkdir()
    spec = c.build(inp, out)
    before = tree_digest(inp)
    t0 = time.monotonic()
    with _chdir(out):
        if spec.proc or spec.close_stdout:
            r = _run_proc(spec, out, out)
            peak = 0
        else:
            tracemalloc.start()
            try:
                r = cli(spec.args)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    elapsed = time.monotonic() - t0
    assert tree_digest(inp) == before, "an input was modified or a file was written next to it"
    assert r.code == spec.exit, r
    assert "Traceback" not in r.stderr, r
    assert elapsed < TIME_BOUND_S, f"{elapsed:.1f} s"
    assert peak < spec.memory_bound, f"peak {peak / 2**20:.0f} MiB"
    cmd = spec.args[0]
    if spec.exit not in (0, 4):  # 4: a gate breach prints its notes, then the error line
        lines = r.stderr.splitlines()
        assert len(lines) == 1, r
        assert lines[0].startswith(f"lsfix {cmd}: error: "), r
        if not spec.stdout_file:
            assert r.stdout == b"", r
        name = spec.name if spec.name is not None else _first_input(spec.args)
        if name:
            assert name in lines[0], (name, lines[0])
        for frag in spec.fragments:
            assert frag in lines[0], (frag, lines[0])
    left = sorted(p.name for p in out.iterdir())
    assert left == sorted(spec.leaves), f"left in out/: {left}"
    if spec.check is not None:
        spec.check(out, r)
    return spec, r


def _first_input(args: list[str]) -> str | None:
    for a in args[1:]:
        if not a.startswith("-"):
            return Path(a).name
    return None


def _ids() -> list[Any]:
    return [pytest.param(c, id=f"{c.cls}-{c.name}") for c in CASES]


# ============================================================================================
# local: never read data from a file that was not named


def _ext_link(path: str) -> Callable[[h5py.File], None]:
    def extra(f: h5py.File) -> None:
        del f[path.strip("/")]
        f[path.strip("/")] = h5py.ExternalLink("secret.h5", "/x")
    return extra


def _vds(f: h5py.File) -> None:
    del f["logits"]
    layout = h5py.VirtualLayout(shape=(N, K), dtype=np.float32)
    layout[:] = h5py.VirtualSource("secret.h5", "x", shape=(N, K))
    f.create_virtual_dataset("logits", layout)


def _external_storage(f: h5py.File) -> None:
    del f["labels"]
    f.create_dataset("labels", shape=(N,), dtype=np.int64, external=[("raw.bin", 0, N * 8)])


LOCAL_FILES: dict[str, tuple[Callable[[Path], Path], str, tuple[str, ...]]] = {
    "extlink_logits": (lambda d: raw_h5(d / "f.h5", extra=_ext_link("logits")), "/logits",
                       ("external link to secret.h5:/x",)),
    "extlink_in_unused_group": (
        lambda d: raw_h5(d / "f.h5", extra=lambda f: f.create_group("aux").__setitem__(
            "x", h5py.ExternalLink("secret.h5", "/x"))), "/aux/x", ("external link",)),
    "extlink_score": (
        lambda d: raw_h5(d / "f.h5", extra=lambda f: f.create_group("scores").__setitem__(
            "msp", h5py.ExternalLink("secret.h5", "/y"))), "/scores/msp", ("external link",)),
    "softlink_elsewhere": (
        lambda d: raw_h5(d / "f.h5", extra=lambda f: f.__setitem__(
            "aux", h5py.SoftLink("/labels"))), "/aux", ("soft link",)),
    "softlink_dangling": (
        lambda d: raw_h5(d / "f.h5", extra=lambda f: f.__setitem__(
            "aux", h5py.SoftLink("/nowhere"))), "/aux", ("soft link",)),
    "virtual_logits": (lambda d: raw_h5(d / "f.h5", extra=_vds), "/logits",
                       ("virtual dataset",)),
    "external_storage_labels": (lambda d: raw_h5(d / "f.h5", extra=_external_storage),
                                "/labels", ("external storage",)),
    "unknown_filter_logits": (lambda d: unknown_filter_h5(d / "f.h5"), "/logits",
                              ("HDF5 filter 32245", "LSFIX_HDF5_PLUGINS=1")),
    "unknown_filter_unused": (lambda d: unknown_filter_h5(d / "f.h5", "aux"), "/aux",
                              ("HDF5 filter 32245",)),
}


def _local_input(d: Path, kind: str) -> tuple[Path, str, tuple[str, ...]]:
    other_file(d)
    (d / "raw.bin").write_bytes(np.arange(N, dtype=np.int64).tobytes())
    build, where, frags = LOCAL_FILES[kind]
    return build(d), where, frags


for _kind in LOCAL_FILES:
    def _make(kind: str) -> Callable[[Path, Path], Spec]:
        def build(d: Path, out: Path) -> Spec:
            f, where, frags = _local_input(d, kind)
            return Spec(["curve", str(f), "-o", "r.tsv"], 3, (f"f.h5:{where}", *frags))
        return build
    case(f"curve_{_kind}", "local")(_make(_kind))


def _entry(cmd: list[str], kind: str = "extlink_logits") -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        f, where, frags = _local_input(d, kind)
        g = good(d / "g.h5")
        args = [a.replace("{bad}", str(f)).replace("{good}", str(g)) for a in cmd]
        return Spec(args, 3, (f"f.h5:{where}", *frags), name="f.h5")
    return build


case("score_fit_extlink", "local")(_entry(["score", "{good}", "-m", "msp_ts", "--fit", "{bad}",
                                            "-o", "o.h5"]))
case("normalise_fit_vds", "local")(_entry(["normalise", "{good}", "--fit", "{bad}", "-o",
                                            "o.h5"], "virtual_logits"))
case("audit_val_extstorage", "local")(_entry(["audit", "{good}", "--val", "{bad}", "-b", "10",
                                               "-o", "a.txt"], "external_storage_labels"))
case("compare_second_input_filter", "local")(_entry(["compare", "{good}", "{bad}", "-o",
                                                      "c.tsv"], "unknown_filter_logits"))
case("score_stdin_extlink_is_refused", "local")(_entry(["score", "{bad}", "-o", "o.h5"]))


def _merge_case(**first: Any) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        other_file(d)
        (d / "raw.bin").write_bytes(np.zeros(10, dtype=np.int64).tobytes())
        shards = two_shards(d, **first)
        return Spec(["merge", *shards, "-o", "m.h5"], 3, name="s.rank0-of-2.h5")
    return build


case("merge_shard_extlink_logits", "local")(_merge_case(extra=_ext_link("logits")))
case("merge_shard_virtual_logits", "local")(_merge_case(
    extra=lambda f: (f.__delitem__("logits"), f.create_virtual_dataset(
        "logits", _layout10()))))
case("merge_shard_external_labels", "local")(_merge_case(
    extra=lambda f: (f.__delitem__("labels"), f.create_dataset(
        "labels", shape=(10,), dtype=np.int64, external=[("raw.bin", 0, 80)]))))
case("merge_shard_softlink", "local")(_merge_case(
    extra=lambda f: f.__setitem__("aux", h5py.SoftLink("/logits"))))


def _layout10() -> h5py.VirtualLayout:
    layout = h5py.VirtualLayout(shape=(10, K), dtype=np.float32)
    layout[:] = h5py.VirtualSource("secret.h5", "x", shape=(N, K))[:10]
    return layout


@case("extract_resume_extlink", "local")
def _resume_ext(d: Path, out: Path) -> Spec:
    """``extract --resume`` opens the existing output local-only before anything else (the
    model is never loaded: the refusal comes first)."""
    other_file(d)
    f = shard(d / "o.h5", rank=0, world=1, start=0, stop=20, total=20,
              attrs={"lsfix_complete": np.bool_(False)}, extra=_ext_link("labels"))
    shutil.copy(f, out / "o.h5")
    return Spec(["extract", "nomodel.pt", "nodata.npz", "-o", "o.h5", "--resume"], 3,
                ("external link",), name="o.h5", leaves=("o.h5",))


def _scores_file(d: Path, change: Callable[[h5py.File], None]) -> Path:
    """A scores file (``lsfix score`` output: schema lsfix.scores), then ``change`` applied."""
    good(d / "g.h5")
    r = cli(["score", d / "g.h5", "-o", d / "s.h5"])
    assert r.code == 0, r
    (d / "g.h5").unlink()
    with h5py.File(d / "s.h5", "a") as f:
        change(f)
    return d / "s.h5"


def _scores_case(change: Callable[[h5py.File], None], frags: tuple[str, ...]
                 ) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        other_file(d)
        f = _scores_file(d, change)
        return Spec(["curve", str(f), "-o", "o.tsv"], 3, ("s.h5", *frags))
    return build


def _relink_score(f: h5py.File) -> None:
    del f["scores/msp"]
    f["scores/msp"] = h5py.ExternalLink("secret.h5", "/y")


def _attr(key: str, value: Any, on: str = "/") -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        f[on].attrs[key] = value
    return change


case("scores_file_extlink_score", "local")(_scores_case(_relink_score, ("external link",)))
case("scores_file_softlink", "local")(_scores_case(
    lambda f: f.__setitem__("aux", h5py.SoftLink("/correct")), ("soft link",)))
case("scores_file_source_deep", "value")(_scores_case(
    _attr("source", DEEP), ("source", "nested")))
case("scores_file_source_list", "value")(_scores_case(
    _attr("source", "[300, 5]"), ("source",)))
case("scores_file_ignore_index_inf", "value")(_scores_case(
    _attr("ignore_index", np.float64("inf"), "labels"), ("/labels", "ignore_index")))
case("scores_file_params_list", "value")(_scores_case(
    _attr("params", "[1]", "scores/msp"), ("/scores/msp", "params")))


# ============================================================================================
# output: never replace something that is not a regular file we own, never an input


def _curve_to(target: str, **kw: Any) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        good(d / "g.h5")
        return Spec(["curve", str(d / "g.h5"), "-o", target], **{"exit": 0, **kw})
    return build


def _has_report(name: str) -> Callable[[Path, Result], None]:
    def check(out: Path, r: Result) -> None:
        text = (out / name).read_text()
        assert text.startswith("file\t") or text.startswith("score\t"), text[:80]
        assert len(text.splitlines()) >= 2
    return check


case("dev_stdout_lands_in_redirect", "output")(
    _curve_to("/dev/stdout", proc=True, stdout_file="o.tsv", leaves=("o.tsv",),
              check=_has_report("o.tsv")))
case("proc_self_fd_1_lands_in_redirect", "output")(
    _curve_to("/proc/self/fd/1", proc=True, stdout_file="o.tsv", leaves=("o.tsv",),
              check=_has_report("o.tsv")))
case("dev_fd_1_lands_in_redirect", "output")(
    _curve_to("/dev/fd/1", proc=True, stdout_file="o.tsv", leaves=("o.tsv",),
              check=_has_report("o.tsv")))


def _link_then(target: str, **kw: Any) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        good(d / "g.h5")
        os.symlink(target, out / "lnk")
        leaves = tuple(sorted({"lnk", *kw.pop("leaves", ())}))

        def check(o: Path, r: Result) -> None:
            assert (o / "lnk").is_symlink() and os.readlink(o / "lnk") == target
            if "o.tsv" in leaves:
                _has_report("o.tsv")(o, r)
        return Spec(["curve", str(d / "g.h5"), "-o", "lnk"], 0, leaves=leaves, check=check,
                    **kw)
    return build


case("symlink_to_dev_stdout", "output")(
    _link_then("/dev/stdout", proc=True, stdout_file="o.tsv", leaves=("o.tsv",)))
case("symlink_to_proc_self_fd_1", "output")(
    _link_then("/proc/self/fd/1", proc=True, stdout_file="o.tsv", leaves=("o.tsv",)))
case("symlink_to_dev_null", "output")(_link_then("/dev/null"))


@case("dev_null_is_written_through", "output")
def _devnull(d: Path, out: Path) -> Spec:
    good(d / "g.h5")

    def check(o: Path, r: Result) -> None:
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    return Spec(["score", str(d / "g.h5"), "-o", "/dev/null"], 0, check=check)


def _fifo_case(link: bool) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        good(d / "g.h5")
        fifo = out / "pipe"
        os.mkfifo(fifo)
        got: list[bytes] = []

        def reader() -> None:
            with open(fifo, "rb") as fh:
                got.append(fh.read())
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        target = "pipe"
        leaves = ["pipe"]
        if link:
            os.symlink("pipe", out / "lnk")
            target = "lnk"
            leaves.append("lnk")

        def check(o: Path, r: Result) -> None:
            t.join(30)
            assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
            assert got and got[0].startswith((b"file\t", b"score\t")), got
        return Spec(["curve", str(d / "g.h5"), "-o", target, "-f", "tsv"], 0,
                    leaves=tuple(leaves), check=check)
    return build


case("fifo_is_written_through", "output")(_fifo_case(False))
case("symlink_to_fifo_is_written_through", "output")(_fifo_case(True))


@case("symlink_to_regular_file_replaces_the_file_keeps_the_link", "output")
def _link_regular(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    (out / "real.tsv").write_text("old\n")
    os.symlink("real.tsv", out / "lnk")

    def check(o: Path, r: Result) -> None:
        assert (o / "lnk").is_symlink() and os.readlink(o / "lnk") == "real.tsv"
        _has_report("real.tsv")(o, r)
    return Spec(["curve", str(d / "g.h5"), "-o", "lnk", "-f", "tsv"], 0,
                leaves=("lnk", "real.tsv"), check=check)


@case("dangling_symlink_creates_its_target", "output")
def _link_dangling(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    os.symlink("new.tsv", out / "lnk")

    def check(o: Path, r: Result) -> None:
        assert (o / "lnk").is_symlink()
        _has_report("new.tsv")(o, r)
    return Spec(["curve", str(d / "g.h5"), "-o", "lnk", "-f", "tsv"], 0,
                leaves=("lnk", "new.tsv"), check=check)


@case("name_max_output_name", "output")
def _name_max(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    name = "r" * 251 + ".tsv"  # 255 bytes: the longest legal name
    return Spec(["curve", str(d / "g.h5"), "-o", name], 0, leaves=(name,))


@case("name_max_h5_output", "output")
def _name_max_h5(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    name = "s" * 252 + ".h5"
    return Spec(["score", str(d / "g.h5"), "-o", name], 0, leaves=(name,))


def _same_as_input(cmd: str, how: str) -> Callable[[Path, Path], Spec]:
    """``-o`` names an input: directly, through a symlink, through a hard link."""
    def build(d: Path, out: Path) -> Spec:
        g = good(d / "g.h5")
        if how == "direct":
            target = str(g)
        elif how == "symlink":
            os.symlink(g, d / "alias.h5")
            target = str(d / "alias.h5")
        else:
            os.link(g, d / "hard.h5")
            target = str(d / "hard.h5")
        extra = {"curve": [], "score": ["-m", "msp"], "normalise": ["--p", "2"],
                 "audit": ["-b", "10"]}[cmd]
        return Spec([cmd, str(g), *extra, "-o", target], 2,
                    ("is an input of this command", "refusing to overwrite"),
                    name=Path(target).name)
    return build


for _cmd in ("curve", "score", "normalise", "audit"):
    for _how in ("direct", "symlink", "hardlink"):
        case(f"{_cmd}_output_is_input_{_how}", "output")(_same_as_input(_cmd, _how))


@case("score_output_is_the_fit_file", "output")
def _out_fit(d: Path, out: Path) -> Spec:
    g, v = good(d / "g.h5"), good(d / "v.h5", seed=1)
    return Spec(["score", str(g), "-m", "msp_ts", "--fit", str(v), "-o", str(v)], 2,
                ("is an input",), name="v.h5")


@case("audit_output_is_the_val_file", "output")
def _out_val(d: Path, out: Path) -> Spec:
    g, v = good(d / "g.h5"), good(d / "v.h5", seed=1)
    return Spec(["audit", str(g), "--val", str(v), "-b", "10", "-o", str(v)], 2,
                ("is an input",), name="v.h5")


@case("save_params_over_params_file", "output")
def _out_params(d: Path, out: Path) -> Spec:
    g = good(d / "g.h5")
    p = d / "p.json"
    p.write_text(json.dumps({"format": "lsfix.pnorm_fit", "version": 1, "p": 2.0,
                             "fallback_msp": False}))
    return Spec(["normalise", str(g), "--params", str(p), "--save-params", str(p), "-o",
                 "o.h5"], 2, ("is an input",), name="p.json")


@case("plot_over_input", "output")
def _out_plot(d: Path, out: Path) -> Spec:
    g = good(d / "g.h5")
    return Spec(["curve", str(g), "--plot", str(g), "-o", "r.tsv"], 2, ("is an input",),
                name="g.h5")


@case("compare_output_is_second_input", "output")
def _out_cmp(d: Path, out: Path) -> Spec:
    a, b = good(d / "a.h5"), good(d / "b.h5", seed=1)
    return Spec(["compare", str(a), str(b), "-o", str(b)], 2, ("is an input",), name="b.h5")


@case("extract_output_is_the_model", "output")
def _out_model(d: Path, out: Path) -> Spec:
    """Refused before torch is imported or the model read (extract writes in place)."""
    (d / "net.pt").write_bytes(b"not really a model")
    (d / "data.npy").write_bytes(b"x")
    return Spec(["extract", str(d / "net.pt"), str(d / "data.npy"), "-o", str(d / "net.pt"),
                 "--overwrite"], 2, ("is an input",), name="net.pt")


@case("merge_output_is_a_shard", "output")
def _out_merge(d: Path, out: Path) -> Spec:
    shards = two_shards(d)
    return Spec(["merge", *shards, "-o", shards[1]], 2, ("is an input",),
                name="s.rank1-of-2.h5")


@case("closed_stdout_report", "output")
def _closed1(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    return Spec(["curve", str(d / "g.h5")], 1, ("stdout", "closed"), name="",
                close_stdout=True)


@case("closed_stdout_h5", "output")
def _closed2(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    return Spec(["score", str(d / "g.h5")], 1, ("stdout", "closed"), name="",
                close_stdout=True)


@case("closed_stdout_dev_stdout", "output")
def _closed3(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    return Spec(["curve", str(d / "g.h5"), "-o", "/dev/stdout"], 1, ("stdout", "closed"),
                name="/dev/stdout", close_stdout=True)


@case("closed_stdout_with_file_output_works", "output")
def _closed4(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    return Spec(["curve", str(d / "g.h5"), "-o", "r.tsv"], 0, close_stdout=True,
                leaves=("r.tsv",))


NON_UTF8 = os.fsdecode(b"bad-\xff\xfe.h5")


def _odd_name(name: str, fmt: str) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        good(d / name)

        def check(o: Path, r: Result) -> None:
            text = (o / "r.out").read_text(encoding="utf-8")
            if fmt == "tsv":
                lines = text.splitlines()
                assert len(lines) == 2, lines
                assert len(lines[0].split("\t")) == len(lines[1].split("\t"))
                shown = lines[1].split("\t")[lines[0].split("\t").index("file")]
                assert "\t" not in shown and "\n" not in shown
                if "\t" in name or "\n" in name:
                    assert "\\t" in shown or "\\n" in shown, shown
                if name == NON_UTF8:  # shown as \xff (display), its backslash escaped in TSV
                    assert "bad-\\\\xff\\\\xfe.h5" in shown, shown
            elif fmt == "json":
                doc = json.loads(text, parse_constant=_no_constants)
                assert doc["file"].endswith(name if name != NON_UTF8 else
                                            "bad-\\xff\\xfe.h5"), doc["file"]
        return Spec(["curve", str(d / name), "-f", fmt, "-o", "r.out"], 0, leaves=("r.out",),
                    check=check)
    return build


for _n, _label in ((NON_UTF8, "non_utf8"), ("tab\there.h5", "tab"), ("new\nline.h5", "newline"),
                   ("back\\slash\r.h5", "backslash_cr")):
    for _fmt in ("tsv", "json", "table"):
        case(f"name_{_label}_{_fmt}", "output")(_odd_name(_n, _fmt))


def _no_constants(token: str) -> Any:
    raise AssertionError(f"non-strict JSON constant {token}")


# ============================================================================================
# value: every attribute and JSON value is checked for type and range (exit 3 naming both)


def _attr_case(key: str, value: Any, frags: tuple[str, ...], *, on: str = "/",
               cmd: str = "curve") -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        def extra(f: h5py.File) -> None:
            f[on].attrs[key] = value
        raw_h5(d / "f.h5", extra=extra)
        args = [cmd, str(d / "f.h5"), "-o", "o.out"]
        if cmd == "audit":
            args += ["-b", "10"]
        return Spec(args, 3, frags)
    return build


VALUE_CASES: dict[str, tuple[str, Any, tuple[str, ...], str]] = {
    "version_inf": ("lsfix_schema_version", np.float64("inf"), ("lsfix_schema_version",), "/"),
    "version_nan": ("lsfix_schema_version", np.float64("nan"), ("lsfix_schema_version",), "/"),
    "version_1e300": ("lsfix_schema_version", np.float64(1e300), ("lsfix_schema_version",), "/"),
    "version_list": ("lsfix_schema_version", np.array([1, 1]), ("lsfix_schema_version",), "/"),
    "version_uint64_max": ("lsfix_schema_version", np.uint64(2**64 - 1),
                           ("lsfix_schema_version",), "/"),
    "complete_string": ("lsfix_complete", "yes", ("lsfix_complete",), "/"),
    "complete_two": ("lsfix_complete", np.int64(2), ("lsfix_complete",), "/"),
    "schema_number": ("lsfix_schema", np.int64(5), ("lsfix_schema",), "/"),
    "ignore_index_inf": ("ignore_index", np.float64("inf"), ("/labels", "ignore_index"),
                         "labels"),
    "ignore_index_nan": ("ignore_index", np.float64("nan"), ("/labels", "ignore_index"),
                         "labels"),
    "ignore_index_string": ("ignore_index", "255", ("/labels", "ignore_index"), "labels"),
    "ignore_index_list": ("ignore_index", np.array([1, 2]), ("/labels", "ignore_index"),
                          "labels"),
    "ignore_index_fraction": ("ignore_index", np.float64(2.5), ("/labels", "ignore_index"),
                              "labels"),
    "provenance_list": ("provenance", "[1, 2]", ("provenance", "JSON object"), "/"),
    "provenance_deep": ("provenance", DEEP, ("provenance", "nested"), "/"),
    "provenance_1e999": ("provenance", "1e999", ("provenance", "JSON object"), "/"),
    "provenance_not_utf8": ("provenance", np.bytes_(b"{\xff}"), ("provenance",), "/"),
    "history_object": ("history", '{"a": 1}', ("history", "JSON list"), "/"),
    "history_deep": ("history", DEEP, ("history", "nested"), "/"),
}
for _k, (_key, _val, _frags, _on) in VALUE_CASES.items():
    case(f"attr_{_k}", "value")(_attr_case(_key, _val, _frags, on=_on))


def _score_attr(key: str, value: Any, frags: tuple[str, ...]) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        def extra(f: h5py.File) -> None:
            ds = f.create_group("scores").create_dataset("msp", data=np.linspace(0, 1, N))
            ds.attrs[key] = value
        raw_h5(d / "f.h5", extra=extra)
        return Spec(["curve", str(d / "f.h5"), "-o", "o.tsv"], 3, ("/scores/msp", *frags))
    return build


case("score_params_deep", "value")(_score_attr("params", DEEP, ("params", "nested")))
case("score_params_invalid", "value")(_score_attr("params", "{", ("params", "not valid JSON")))
case("score_params_list", "value")(_score_attr("params", "[1, 2]", ("params", "JSON object")))
case("score_method_number", "value")(_score_attr("method", np.int64(3), ("method",)))


@case("labels_uint64_above_2_63_true_value", "value")
def _u64(d: Path, out: Path) -> Spec:
    y = arrays()[1].astype(np.uint64)
    y[3] = np.uint64(2**64 - 1)
    raw_h5(d / "f.h5", labels=y)
    return Spec(["curve", str(d / "f.h5"), "-o", "o.tsv"], 3,
                ("/labels", "18446744073709551615", "row 3"))


@case("labels_uint64_2_63_exact", "value")
def _u64b(d: Path, out: Path) -> Spec:
    y = arrays()[1].astype(np.uint64)
    y[0] = np.uint64(2**63)
    raw_h5(d / "f.h5", labels=y)
    return Spec(["curve", str(d / "f.h5"), "-o", "o.tsv"], 3, ("9223372036854775808",))


def _params_case(doc: str, frags: tuple[str, ...]) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        g = good(d / "g.h5")
        (d / "p.json").write_bytes(doc.encode().replace(b"\\xff", b"\xff"))
        return Spec(["normalise", str(g), "--params", str(d / "p.json"), "-o", "o.h5"], 3,
                    frags, name="p.json")
    return build


FIT = '"format": "lsfix.pnorm_fit", "version": 1'
PARAMS_CASES = {
    "list": ("[1, 2]", ("JSON object",)),
    "p_1e999": (f'{{{FIT}, "p": 1e999, "fallback_msp": false}}', ("'p'",)),
    "p_nan": (f'{{{FIT}, "p": NaN, "fallback_msp": false}}', ("'p'",)),
    "p_string": (f'{{{FIT}, "p": "2", "fallback_msp": false}}', ("'p'",)),
    "p_huge": (f'{{{FIT}, "p": 1e308, "fallback_msp": false}}', ("'p'",)),
    "missing_p": (f'{{{FIT}, "fallback_msp": false}}', ("missing key 'p'",)),
    "fallback_string": (f'{{{FIT}, "p": 2, "fallback_msp": "no"}}', ("fallback_msp",)),
    "version_inf": ('{"format": "lsfix.pnorm_fit", "version": Infinity, "p": 2, '
                    '"fallback_msp": false}', ("version",)),
    "grid_object": (f'{{{FIT}, "p": 2, "fallback_msp": false, "grid": {{}}}}', ("grid",)),
    "grid_entry_list": (f'{{{FIT}, "p": 2, "fallback_msp": false, "grid": [[1, 2]]}}',
                        ("grid'[0]",)),
    "split_list": (f'{{{FIT}, "p": 2, "fallback_msp": false, "split": []}}', ("split",)),
    "n_fit_inf": (f'{{{FIT}, "p": 2, "fallback_msp": false, "n_fit": 1e999}}', ("n_fit",)),
    "deep": ("[" * 100_000 + "]" * 100_000, ("nested",)),
    "not_utf8": ('{"p": "\\xff"}', ("UTF-8",)),
}
for _k, (_doc, _frags) in PARAMS_CASES.items():
    case(f"params_{_k}", "value")(_params_case(_doc, _frags))


def _shard_attr_case(frags: tuple[str, ...], **attrs: Any) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        shards = two_shards(d, attrs=attrs)
        return Spec(["merge", *shards, "-o", "m.h5"], 3, frags, name="s.rank0-of-2.h5")
    return build


def _rec(**kw: Any) -> str:
    base = {"rank": 0, "world": 2, "start": 0, "stop": 10, "total": 20}
    base.update(kw)
    return json.dumps(base).replace('"INF"', "Infinity").replace('"NAN"', "NaN")


SHARD_CASES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "record_list": (("lsfix_shard", "JSON object"), {"lsfix_shard": "[0, 2, 0, 10, 20]"}),
    "start_inf": (("lsfix_shard", "'start'"), {"lsfix_shard": _rec(start="INF")}),
    "stop_nan": (("lsfix_shard", "'stop'"), {"lsfix_shard": _rec(stop="NAN")}),
    "start_negative": (("lsfix_shard", "'start'"), {"lsfix_shard": _rec(start=-5)}),
    "stop_1e30": (("lsfix_shard", "'stop'"), {"lsfix_shard": _rec(stop=10**30)}),
    "stop_above_total": (("lsfix_shard", "do not lie in"), {"lsfix_shard": _rec(stop=25)}),
    "total_huge": (("lsfix_shard",), {"lsfix_shard": _rec(total=2**62)}),
    "world_zero": (("lsfix_shard", "world"), {"lsfix_shard": _rec(world=0)}),
    "rank_ge_world": (("lsfix_shard", "rank 5 of world 2"), {"lsfix_shard": _rec(rank=5)}),
    "missing_stop": (("lsfix_shard", "'stop'"),
                     {"lsfix_shard": json.dumps({"rank": 0, "world": 2, "start": 0,
                                                 "total": 20})}),
    "rows_done_nan": (("lsfix_rows_done",), {"lsfix_rows_done": np.float64("nan")}),
    "rows_done_above_total": (("lsfix_rows_done",), {"lsfix_rows_done": np.int64(99)}),
    "job_list": (("lsfix_extract_job", "JSON object"), {"lsfix_extract_job": "[1]"}),
    "job_deep": (("lsfix_extract_job", "nested"), {"lsfix_extract_job": DEEP}),
    "provenance_list": (("provenance", "JSON object"), {"provenance": "[1]"}),
}
for _k, (_frags, _attrs) in SHARD_CASES.items():
    case(f"merge_{_k}", "value")(_shard_attr_case(_frags, **_attrs))


@case("merge_shard_rows_disagree_with_record", "value")
def _merge_rows(d: Path, out: Path) -> Spec:
    z, _ = arrays(20)
    shards = two_shards(d, logits=z[:12])
    return Spec(["merge", *shards, "-o", "m.h5"], 3, ("/logits", "has 12 rows"),
                name="s.rank0-of-2.h5")


# ============================================================================================
# option: malformed numbers and unbounded requests are usage errors (exit 2), up front


def _opt(args: list[str], frags: tuple[str, ...], files: int = 1
         ) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        paths = [str(good(d / f"g{i}.h5", seed=i)) for i in range(files)]
        full = [a.replace("{0}", paths[0]).replace("{1}", paths[-1]) for a in args]
        return Spec(full, 2, frags, name="")
    return build


for _rule in ("aurc>--1", "aurc>1.2.3", "aurc>+inf", "aurc>1e999", "aurc<1e", "aurc>0x10",
              "aurc>+-1"):
    case(f"fail_if_{_rule}", "option")(_opt(["compare", "{0}", "{1}", "--fail-if", _rule,
                                             "-o", "c.tsv"], ("--fail-if",), files=2))
case("bootstrap_1e9_curve", "option")(_opt(["curve", "{0}", "-b", "1000000000", "-o", "c.tsv"],
                                           ("--bootstrap", "100000")))
case("bootstrap_1e9_compare", "option")(_opt(["compare", "{0}", "{1}", "-b", "1000000000", "-o",
                                              "c.tsv"], ("limit of 100000",), files=2))
case("bootstrap_1e9_audit", "option")(_opt(["audit", "{0}", "-b", "1000000000", "-o", "a.txt"],
                                           ("limit of 100000",)))
case("grid_range_1e7", "option")(_opt(["normalise", "{0}", "--grid", "0-10000000", "-o",
                                       "o.h5"], ("--grid", "limit is 1000")))
case("grid_list_too_long", "option")(_opt(["normalise", "{0}", "--grid",
                                           ",".join(map(str, range(1500))), "-o", "o.h5"],
                                          ("--grid", "limit is 1000")))
case("grid_p_1e308", "option")(_opt(["normalise", "{0}", "--grid", "1,1e308", "-o", "o.h5"],
                                    ("--grid", "[0, 1000]")))
case("normalise_p_1e308", "option")(_opt(["normalise", "{0}", "--p", "1e308", "-o", "o.h5"],
                                         ("--p", "limit of 1000")))
case("score_energy_1e-308", "option")(_opt(["score", "{0}", "-m", "energy:1e-308", "-o",
                                            "o.h5"], ("non-finite score", "nothing was written"
                                                      .capitalize())))
case("score_msp_ts_1e-308", "option")(_opt(["score", "{0}", "-m", "msp_ts:1e-308", "-o",
                                            "o.h5"], ("non-finite score",)))
case("score_pnorm_1e308", "option")(_opt(["score", "{0}", "-m", "pnorm:1e308", "-o", "o.h5"],
                                         ("pnorm:1e+308", "limit of 1000")))
case("score_energy_1e-308_tsv", "option")(_opt(["score", "{0}", "-m", "energy:1e-308", "-f",
                                                "tsv", "-o", "o.tsv"], ("non-finite score",)))


# ============================================================================================
# cost: bounded by the real data, not by what a header claims


@case("csv_header_logit_9999999", "cost")
def _csv_bomb(d: Path, out: Path) -> Spec:
    (d / "h.csv").write_text("logit_9999999,label\n1,0\n")
    return Spec(["curve", str(d / "h.csv"), "-o", "o.tsv"], 3, ("missing column 'logit_0'",),
                memory_bound=16 << 20)


@case("csv_header_logit_huge_index", "cost")
def _csv_bomb2(d: Path, out: Path) -> Spec:
    (d / "h.csv").write_text("logit_0,logit_" + "9" * 40 + ",label\n1,2,0\n")
    return Spec(["curve", str(d / "h.csv"), "-o", "o.tsv"], 3, ("missing column 'logit_1'",),
                memory_bound=16 << 20)


def _declared(shape: tuple[int, ...], *, chunks: Any, labels: bool,
              what: str = "logits") -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        def extra(f: h5py.File) -> None:
            if what == "logits":
                del f["logits"]
                f.create_dataset("logits", shape=shape, dtype=np.float32, chunks=chunks)
            else:
                del f["labels"]
                f.create_dataset("labels", shape=shape, dtype=np.int64, chunks=chunks)
        raw_h5(d / "f.h5", extra=extra)
        if not labels:
            with h5py.File(d / "f.h5", "a") as f:
                del f["labels"]
        size = (d / "f.h5").stat().st_size
        assert size < 1 << 20, size
        return Spec(["curve", str(d / "f.h5"), "-o", "o.tsv"], 3,
                    (f"f.h5:/{what}", "refusing to read fill values"), memory_bound=32 << 20)
    return build


case("declared_2_40_rows_chunked", "cost")(_declared((2**40, 4), chunks=(4096, 4),
                                                     labels=False))
case("declared_4e7_rows_no_labels", "cost")(_declared((40_000_000, 4), chunks=(1000, 4),
                                                      labels=False))
case("declared_contiguous_unallocated", "cost")(_declared((1_000_000, 4), chunks=None,
                                                          labels=False))
case("declared_labels_unallocated", "cost")(_declared((N,), chunks=(4,), labels=True,
                                                      what="labels"))


@case("some_chunks_never_written", "cost")
def _partial(d: Path, out: Path) -> Spec:
    def extra(f: h5py.File) -> None:
        del f["logits"]
        ds = f.create_dataset("logits", shape=(N, K), dtype=np.float32, chunks=(5, K))
        ds[:10] = arrays()[0][:10]
    raw_h5(d / "f.h5", extra=extra)
    return Spec(["curve", str(d / "f.h5"), "-o", "o.tsv"], 3, ("/logits", "2 of its 4"))


@case("pt_zero_stride_view", "cost", needs=("torch",))
def _pt_stride(d: Path, out: Path) -> Spec:
    import torch

    t = torch.zeros(4).as_strided((2**40, 4), (0, 1))
    y = torch.zeros(1, dtype=torch.long).as_strided((2**40,), (0,))
    torch.save({"logits": t, "labels": y}, d / "bomb.pt")
    return Spec(["curve", str(d / "bomb.pt"), "-o", "o.tsv"], 3,
                ("bomb.pt", "zero or overlapping strides"), memory_bound=64 << 20)


@case("pt_overlapping_strides", "cost", needs=("torch",))
def _pt_overlap(d: Path, out: Path) -> Spec:
    import torch

    t = torch.arange(2000, dtype=torch.float32).as_strided((1000, 1000), (1, 1))
    torch.save({"logits": t, "labels": torch.zeros(1000, dtype=torch.long)}, d / "ov.pt")
    return Spec(["curve", str(d / "ov.pt"), "-o", "o.tsv"], 3,
                ("ov.pt", "zero or overlapping strides"))


@case("hdf5_gzip_bomb", "cost")
def _gz_bomb(d: Path, out: Path) -> Spec:
    """80 MB of zeros in 95 KB of gzip chunks: refused before it is decompressed."""
    def extra(f: h5py.File) -> None:
        del f["logits"], f["labels"]
        f.create_dataset("logits", data=np.zeros((5_000_000, 4), np.float32),
                         chunks=(65536, 4), compression="gzip", compression_opts=9)
    raw_h5(d / "f.h5", extra=extra)
    return Spec(["curve", str(d / "f.h5"), "-o", "o.tsv"], 3,
                ("f.h5:/logits", "compression bomb"), memory_bound=16 << 20)


@case("hdf5_one_gigabyte_chunk", "cost")
def _huge_chunk(d: Path, out: Path) -> Spec:
    def extra(f: h5py.File) -> None:
        del f["logits"], f["labels"]
        ds = f.create_dataset("logits", shape=(2**26, 4), dtype=np.float32, chunks=(2**26, 4),
                              compression="gzip")
        ds[: 2**20] = 0.0  # one chunk written (decompressed whole by any read)
    raw_h5(d / "f.h5", extra=extra)
    return Spec(["curve", str(d / "f.h5"), "-o", "o.tsv"], 3,
                ("f.h5:/logits", "storage chunks of 1073741824 bytes"), memory_bound=16 << 20)


@case("npz_zip_bomb", "cost")
def _npz_bomb(d: Path, out: Path) -> Spec:
    np.savez_compressed(d / "b.npz", logits=np.zeros((5_000_000, 4), np.float32),
                        labels=np.zeros(5_000_000, np.int64))
    return Spec(["curve", str(d / "b.npz"), "-o", "o.tsv"], 3,
                ("b.npz:/", "compression bomb"), memory_bound=16 << 20)


@case("pt_deflated_zip_bomb", "cost", needs=("torch",))
def _pt_bomb(d: Path, out: Path) -> Spec:
    """A torch.save archive rewritten with deflated members: 80 MB of zeros in ~80 KB."""
    import zipfile

    import torch

    torch.save({"logits": torch.zeros(5_000_000, 4), "labels": torch.zeros(5_000_000,
                                                                           dtype=torch.long)},
               d / "raw.pt")
    with zipfile.ZipFile(d / "raw.pt") as src, zipfile.ZipFile(
            d / "z.pt", "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    (d / "raw.pt").unlink()
    return Spec(["curve", str(d / "z.pt"), "-o", "o.tsv"], 3, ("z.pt", "compression bomb"),
                memory_bound=32 << 20)


@case("npy_header_declares_2_40_rows", "cost")
def _npy_big(d: Path, out: Path) -> Spec:
    import struct

    hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 4), }"
    hdr = hdr + b" " * (118 - len(hdr)) + b"\n"
    (d / "big.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr
                                + b"\0" * 16)
    return Spec(["curve", str(d / "big.npy"), "-o", "o.tsv"], 3, ("big.npy", "16 present"),
                memory_bound=16 << 20)


# ============================================================================================
# artefact: every output is committed only when the whole command succeeds


def _artefacts(args: list[str], frags: tuple[str, ...] = ("does not exist",), *,
               exit: int = 1, name: str = "nodir/x") -> Callable[[Path, Path], Spec]:
    """The last output (``-o nodir/x``) fails after the plots/params/report were staged."""
    def build(d: Path, out: Path) -> Spec:
        # 3000 rows: audit's fit split is then large enough not to warn (one stderr line)
        a, b = good(d / "a.h5", n=3000), good(d / "b.h5", n=3000, seed=1)
        full = [x.replace("{a}", str(a)).replace("{b}", str(b)) for x in args]
        return Spec(full, exit, frags, name=name)
    return build


case("curve_plot_then_failure", "artefact")(_artefacts(
    ["curve", "{a}", "--plot", "p.png", "-o", "nodir/x"]))
case("normalise_save_params_then_failure", "artefact")(_artefacts(
    ["normalise", "{a}", "--p", "2", "-q", "--save-params", "p.json", "-o", "nodir/x"]))
case("normalise_save_params_then_output_is_input", "artefact")(_artefacts(
    ["normalise", "{a}", "--fit", "{b}", "--save-params", "p.json", "--grid", "0-3", "-o",
     "{b}"], ("is an input",), exit=2, name="b.h5"))
case("compare_plot_explain_then_failure", "artefact")(_artefacts(
    ["compare", "{a}", "{b}", "--plot", "p.png", "--explain", "-o", "nodir/x"]))
case("compare_report_folder_then_failure", "artefact")(_artefacts(
    ["compare", "{a}", "{b}", "--report", "rep/sub/r.md", "-o", "nodir/x"]))
case("audit_report_folder_then_failure", "artefact")(_artefacts(
    ["audit", "{a}", "-b", "10", "-f", "json", "--report", "rep", "-o", "nodir/x"]))
case("audit_report_folder_then_input_clash", "artefact")(_artefacts(
    ["audit", "{a}", "-b", "10", "--report", "rep", "-o", "{a}"], ("is an input",), exit=2,
    name="a.h5"))


@case("gate_failure_still_writes_its_outputs", "artefact")
def _gate(d: Path, out: Path) -> Spec:
    a, b = good(d / "a.h5"), good(d / "b.h5", seed=1)
    return Spec(["compare", str(a), str(b), "--fail-if", "aurc<2", "--plot", "p.png", "-o",
                 "c.tsv"], 4, ("gate",), name="", leaves=("c.tsv", "p.png"))


@pytest.mark.parametrize("c", _ids())
def test_case(c: Case, tmp_path: Path) -> None:
    run_case(c, tmp_path)


# --------------------------------------------------------------------------------------------
# interrupts: Ctrl-C and SIGTERM after artefacts were staged leave nothing


def _signal_self(how: str) -> None:
    """Ctrl-C, or a real SIGTERM to this process (only once lsfix routes it: else it would
    end the test run)."""
    from lsfix import streams as lio
    if how == "sigint":
        raise KeyboardInterrupt
    assert signal.getsignal(signal.SIGTERM) is lio._sigterm_as_interrupt, \
        "SIGTERM is not routed to KeyboardInterrupt while outputs are staged"
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    raise AssertionError("SIGTERM was not delivered")


def _interrupt_after_plots(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Make the final ``-o`` write raise as a signal would, once the plots are staged."""
    from lsfix import streams as lio
    real = lio.write_text_atomic

    def write(path: Any, text: str) -> None:
        if str(path).endswith("final.tsv"):
            _signal_self(how)
        real(path, text)

    monkeypatch.setattr(lio, "write_text_atomic", write)


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
@pytest.mark.parametrize("cmd", ["curve", "compare", "audit", "normalise"])
def test_interrupt_after_artefacts_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  cmd: str, how: str) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    out.mkdir()
    a, b = good(inp / "a.h5", n=3000), good(inp / "b.h5", n=3000, seed=1)
    args = {
        "curve": ["curve", a, "--plot", "p.png", "-o", "final.tsv"],
        "compare": ["compare", a, b, "--plot", "p.png", "--explain", "--report", "r/r.md",
                    "-o", "final.tsv"],
        "audit": ["audit", a, "-b", "10", "-f", "json", "--report", "rep", "-o", "final.tsv"],
        "normalise": ["normalise", a, "--p", "2", "--save-params", "p.json", "-o", "o.h5",
                      "--quiet"],
    }[cmd]
    from lsfix import streams as lio
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("the test runner handles SIGTERM itself")
    monkeypatch.setattr(lio, "sigterm_interrupts_writes", True)  # as the console script sets
    if cmd == "normalise":
        from lsfix.readers import scoresfile as scorefile  # normalise writes a scores file

        def boom(*x: Any, **k: Any) -> None:
            _signal_self(how)
        monkeypatch.setattr(scorefile, "write_scores_file", boom)
    else:
        _interrupt_after_plots(monkeypatch, how)
    before = tree_digest(inp)
    old = signal.getsignal(signal.SIGTERM)
    try:
        with _chdir(out):
            r = cli([str(x) for x in args])
    finally:
        signal.signal(signal.SIGTERM, old)
    assert r.code == 130, r
    assert r.stderr.splitlines() == [f"lsfix {cmd}: error: interrupted; no output was written"], r
    assert sorted(p.name for p in out.iterdir()) == []
    assert tree_digest(inp) == before


# --------------------------------------------------------------------------------------------
# plugins and one opener


def test_plugin_loading_is_off_and_the_search_path_empty() -> None:
    from h5py import h5pl

    from lsfix.readers import h5safe
    assert h5safe.disable_plugins() == "off"
    assert h5pl.size() == 0


def test_unknown_filter_does_not_search_plugin_folders(tmp_path: Path) -> None:
    """strace the console script on a file whose /logits needs filter 32245, with
    HDF5_PLUGIN_PATH pointing at a folder: the folder is never opened or listed."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace (the strace package)")
    if not LSFIX_EXE.exists():
        pytest.skip(f"{LSFIX_EXE} not installed")
    plugins = tmp_path / "plugin-folder-canary"
    plugins.mkdir()
    f = unknown_filter_h5(tmp_path / "f.h5")
    env = {**subprocess_env(), "HDF5_PLUGIN_PATH": str(plugins)}
    trace = tmp_path / "trace.txt"
    proc = subprocess.run(["strace", "-f", "-e", "trace=file,getdents64", "-o", str(trace),
                           str(LSFIX_EXE), "curve", str(f), "-o", str(tmp_path / "o.tsv")],
                          capture_output=True, env=env, timeout=300)
    if proc.returncode != 3 and b"ptrace" in proc.stderr:
        pytest.skip("strace cannot trace here (ptrace not permitted)")
    assert proc.returncode == 3, proc.stderr
    assert b"HDF5 filter 32245" in proc.stderr
    assert "plugin-folder-canary" not in trace.read_text(errors="replace")
    # and the control: a plain h5py read of the same file does search that folder
    ctl = subprocess.run(["strace", "-f", "-e", "trace=file,getdents64", "-o", str(trace),
                          sys.executable, "-c", f"import h5py; f = h5py.File({str(f)!r}); "
                          "exec('try: f[\"logits\"][()]\\nexcept OSError: pass')"],
                         capture_output=True, env=env, timeout=300)
    assert ctl.returncode == 0, ctl.stderr
    assert "plugin-folder-canary" in trace.read_text(errors="replace")


def test_plugins_allowed_on_request(tmp_path: Path) -> None:
    """``LSFIX_HDF5_PLUGINS=1`` leaves libhdf5's plugin search as configured."""
    code = ("import lsfix.readers.h5safe as s; from h5py import h5pl; "
            "print(s.disable_plugins(), h5pl.size())")
    env = {**subprocess_env(), "LSFIX_HDF5_PLUGINS": "1", "HDF5_PLUGIN_PATH": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["allowed", "1"]


def test_only_h5safe_opens_hdf5_for_reading() -> None:
    """Every HDF5 read goes through ``lsfix.readers.h5safe.open_local``: no other module calls
    ``h5py.File`` except to create ("w") or resume ("r+", after an ``open_local`` check)."""
    import re

    root = Path(__file__).resolve().parents[2] / "lsfix"
    calls = re.compile(r"h5py\.File\(([^)]*)\)")
    offenders = []
    for py in root.rglob("*.py"):
        if py.name == "h5safe.py":
            continue
        for m in calls.finditer(py.read_text()):
            args = m.group(1)
            if '"w"' in args or "'w'" in args:
                continue
            if '"r+"' in args and py.name == "writer.py":
                continue
            offenders.append(f"{py.relative_to(root)}: h5py.File({args})")
    assert offenders == []


def test_chunked_logits_are_read_in_storage_chunk_steps(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """gzip-chunked /logits: every read starts on a storage chunk boundary and ends on one
    (or at N), so each chunk is decompressed once (before: 16x slower than uncompressed)."""
    from lsfix.readers import logitsfile as schema
    n, k, rows = 3000, 50, 128
    z = np.random.default_rng(0).normal(size=(n, k)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, k, n)
    path = tmp_path / "gz.h5"
    with h5py.File(path, "w") as f:
        for key, val in root_attrs({}, []).items():
            f.attrs[key] = val
        f.create_dataset("logits", data=z, chunks=(rows, k), compression="gzip")
        f.create_dataset("labels", data=y)
    reads: list[tuple[int, int]] = []
    real = schema.CheckedDataset.__getitem__

    def spy(self: Any, key: Any) -> Any:
        if isinstance(key, slice):
            reads.append((key.start or 0, key.stop))
        return real(self, key)

    monkeypatch.setattr(schema.CheckedDataset, "__getitem__", spy)
    for args in (["score", path, "-m", "msp", "-m", "energy", "-o", tmp_path / "s.h5"],
                 ["curve", path, "-o", tmp_path / "c.tsv"]):
        reads.clear()
        r = cli(args)
        assert r.code == 0, r
        assert reads, "no reads seen"
        bad = [(a, b) for a, b in reads if a % rows or (b % rows and b != n)]
        assert bad == [], bad[:5]


def test_readme_promises_name_tests_that_exist() -> None:
    """Every ``test_x.py::test_name[...]`` that docs/promises.md's "The promises, each with its
    test" section cites is a test function of ``tests/hardening/``, and every case id it cites
    exists."""
    import re

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "promises.md").read_text(encoding="utf-8")
    section = text.split("## The promises, each with its test", 1)[1].split("\n## ", 1)[0]
    refs = re.findall(r"`(test_\w+\.py)::(test_\w+)(?:\[([^\]]*)\])?`", section)
    assert len(refs) >= 20, refs
    ids = {f"{c.cls}-{c.name}" for c in CASES}
    for module, func, param in refs:
        source = (Path(__file__).parent / module).read_text(encoding="utf-8")
        assert re.search(rf"^def {func}\(", source, re.M), f"{module}::{func} is not a test"
        if module in ("test_trust.py", "test_surfaces.py") and func == "test_case" and param:
            if module == "test_surfaces.py":
                from .test_surfaces import CASES as SURFACES

                known = {f"{c.cls}-{c.name}" for c in SURFACES}
            else:
                known = ids
            pattern = re.escape(param).replace(r"\*", ".*")
            assert any(re.fullmatch(pattern, i) for i in known), f"no case matches {param}"


def test_missing_labels_found_before_any_pass_over_logits(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``curve`` on stored logits without /labels: refused before any pass over the logits
    (at most one bounded sample of rows is read, to tell logits from probabilities)."""
    from lsfix.readers import logitsfile as schema
    z, _ = arrays(20000, 10)
    raw_h5(tmp_path / "f.h5", logits=z, labels=None)
    reads: list[Any] = []
    real = schema.CheckedDataset.__getitem__

    def spy(self: Any, key: Any) -> Any:
        reads.append(key)
        return real(self, key)

    monkeypatch.setattr(schema.CheckedDataset, "__getitem__", spy)
    r = cli(["curve", tmp_path / "f.h5", "-o", tmp_path / "o.tsv"])
    assert r.code == 3, r
    assert "no /labels" in r.stderr
    rows = sum(k.stop - (k.start or 0) for k in reads if isinstance(k, slice))
    assert rows <= 4096, reads


def test_save_params_is_strict_json_and_reads_back(tmp_path: Path) -> None:
    """A fixed p has no held-out AURC: ``--save-params`` writes ``null`` there (never ``NaN``),
    and ``--params`` reads the file back; attributes lsfix writes are strict JSON too."""
    g = good(tmp_path / "g.h5")
    r = cli(["normalise", g, "--p", "2", "-q", "--save-params", tmp_path / "p.json", "-o",
             tmp_path / "o.h5"])
    assert r.code == 0, r
    doc = json.loads((tmp_path / "p.json").read_text(), parse_constant=_no_constants)
    assert doc["msp_aurc"] is None
    r = cli(["normalise", g, "--params", tmp_path / "p.json", "-q", "-o", tmp_path / "o2.h5"])
    assert r.code == 0, r
    with h5py.File(tmp_path / "o.h5", "r") as f:
        for text in (f.attrs["provenance"], f.attrs["history"],
                     f["scores/pnorm"].attrs["params"]):
            json.loads(text, parse_constant=_no_constants)


@pytest.mark.parametrize("command", ["curve", "score", "audit"])
def test_link_name_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path, command: str) -> None:
    """A link name that is not UTF-8 used to raise inside h5py's link-walk callback and end
    as a SystemError traceback (found by test_fuzz); it is exit 3 naming the file and path."""
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f["logits"] = np.arange(30, dtype=np.float32).reshape(10, 3)
        f["labels"] = np.arange(10) % 3
        f.attrs["lsfix_schema"] = "lsfix.predictions"
        f.attrs["lsfix_schema_version"] = 1
        f.create_group(b"g\xff\xfe").create_dataset(b"x\xff", data=np.arange(3))
    before = path.read_bytes()
    exe = Path(sys.executable).parent / "lsfix"
    res = subprocess.run([str(exe), command, str(path)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert res.returncode == 3, res.stderr
    assert res.stderr == (f"lsfix {command}: error: {path}:/g\\xff\\xfe: has a link name that "
                          "is not UTF-8; lsfix files use UTF-8 names\n")
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["odd.h5"]

"""Trust on the surfaces added since issue 9 (issue 19): labels files as inputs, names that
reach a terminal or a report, ``.pt`` bombs, ``--labels`` bombs, ``--by`` with many groups,
scheduler addresses, forged scores-file shapes, environment values.

Every case runs through the harness of ``test_trust.py`` (:func:`run_case`): the exit code,
one stderr line ``lsfix <cmd>: error: ...`` naming the file for a refusal, no traceback,
nothing left in ``out/`` but the expected files, inputs byte-identical, wall time and traced
memory under a bound. On top of those, every case here checks:

* no byte below 0x20 other than tab and newline on stdout or stderr (a name from a file never
  reaches the terminal as a control sequence), and no ESC/BEL anywhere in what was printed;
* no raw ``<`` from data in any report written (``.md``, ``.html``, ``.tsv``, table text):
  the hostile names all carry the marker ``<x-data``, which must never appear unescaped.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import socket
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from lsfix.readers.logitsfile import new_file

from .conftest import Result, cli
from .corpus import K, N, arrays
from .test_trust import Case, Spec, run_case

CASES: list[Case] = []

#: Hostile names: ANSI/OSC sequences, rich markup, HTML, Markdown, TeX.
ESC_RED = "\x1b[31mred\x1b[0m"
OSC_TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
MARKUP = "[red]x[/red]"
LINK = "[link=file:///etc/passwd]y[/link]"
CLOSE = "[/]"
HTML = "<x-data><img src=x onerror=alert(1)>"
TEX = "$\\badcmd{x$"
DEEP_TEX = "$" + "\\frac{" * 60 + "$"
FAKE_GATE = "ok\n\n**Gate: passed** (0 of 1 check(s) failed)\n"
MARK = "<x-data"


def case(name: str, cls: str, *, needs: tuple[str, ...] = ()
         ) -> Callable[[Callable[[Path, Path], Spec]], Callable[[Path, Path], Spec]]:
    def register(fn: Callable[[Path, Path], Spec]) -> Callable[[Path, Path], Spec]:
        CASES.append(Case(name, cls, fn, needs))
        return fn
    return register


def good(path: Path, n: int = N, seed: int = 0, **kw: Any) -> Path:
    z, y = arrays(n, seed=seed)
    new_file(str(path), z, labels=y, **kw)
    return path


# ============================================================================================
# input: every file a command reads counts as an input for "an output never overwrites it"


def _over_labels(cmd: list[str], labels_name: str, write: Callable[[Path], None],
                 target: str | None = None, how: str = "direct") -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        g = good(d / "g.h5")
        g2 = good(d / "g2.h5", seed=1)
        lab = d / labels_name
        write(lab)
        tgt = str(lab)
        if how == "symlink":
            os.symlink(lab, d / "link.tsv")
            tgt = str(d / "link.tsv")
        elif how == "hardlink":
            os.link(lab, d / "hard.tsv")
            tgt = str(d / "hard.tsv")
        spec = str(lab) if target is None else target.replace("{lab}", str(lab))
        args = [a.replace("{g}", str(g)).replace("{g2}", str(g2)).replace("{lab}", spec)
                .replace("{out}", tgt) for a in cmd]
        return Spec(args, 2, ("is an input of this command", "refusing to overwrite"),
                    name=Path(tgt).name)
    return build


def _npy_labels(p: Path) -> None:
    np.save(p, arrays()[1])


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _txt_labels(p: Path) -> None:
    p.write_text("\n".join(map(str, arrays()[1])) + "\n")


def _csv_labels(p: Path) -> None:
    p.write_text("id,y\n" + "".join(f"s{i},{v}\n" for i, v in enumerate(arrays()[1])))


case("score_output_is_the_labels_npy", "input")(_over_labels(
    ["score", "{g}", "--labels", "{lab}", "-o", "{out}"], "lab.npy", _npy_labels))
case("curve_output_is_the_labels_txt", "input")(_over_labels(
    ["curve", "{g}", "--labels", "{lab}", "-o", "{out}"], "lab.txt", _txt_labels))
case("normalise_save_params_is_the_labels_json", "input")(_over_labels(
    ["normalise", "{g}", "--labels", "{lab}", "--save-params", "{out}", "-o", "o.h5"],
    "lab.json", _txt_labels))
case("compare_report_is_the_labels_md", "input")(_over_labels(
    ["compare", "{g}", "{g2}", "--labels", "{lab}", "--report", "{out}", "-o", "c.tsv"],
    "lab.md", _txt_labels))
case("curve_output_symlink_to_the_labels", "input")(_over_labels(
    ["curve", "{g}", "--labels", "{lab}", "-o", "{out}"], "lab.tsv", _csv_labels,
    target="{lab}:y", how="symlink"))
case("curve_output_hardlink_to_the_labels", "input")(_over_labels(
    ["curve", "{g}", "--labels", "{lab}", "-o", "{out}"], "lab.txt", _txt_labels,
    how="hardlink"))
case("curve_output_is_the_labels_csv_column_spec", "input")(_over_labels(
    ["curve", "{g}", "--labels", "{lab}", "-o", "{out}"], "lab.csv", _csv_labels,
    target="{lab}:y"))
case("audit_plot_is_the_labels", "input")(_over_labels(
    ["audit", "{g}", "--labels", "{lab}", "-b", "10", "--report", "rep", "-o", "{out}"],
    "lab.txt", _txt_labels))
case("curve_plot_is_the_labels", "input")(_over_labels(
    ["curve", "{g}", "--labels", "{lab}", "--plot", "{out}", "-o", "o.tsv"], "lab.png",
    _txt_labels))
case("curve_rank_map_is_the_labels", "input")(_over_labels(
    ["curve", "{g}", "--labels", "{lab}", "--rank-map", "{out}", "-o", "o.tsv"], "lab.png",
    _txt_labels))


@case("curve_output_is_the_with_file", "input")
def _over_with(d: Path, out: Path) -> Spec:
    g = good(d / "g.h5")
    r = cli(["score", g, "-m", "msp", "-o", d / "s.h5"])
    assert r.code == 0, r
    return Spec(["curve", str(g), "--with", str(d / "s.h5"), "-o", str(d / "s.h5")], 2,
                ("is an input",), name="s.h5")


@case("normalise_fit_labels_is_the_output", "input")
def _over_fit_labels(d: Path, out: Path) -> Spec:
    g = good(d / "g.h5")
    z, _ = arrays(seed=1)
    np.save(d / "v.npy", z)
    _txt_labels(d / "vl.txt")
    return Spec(["normalise", str(g), "--fit", str(d / "v.npy"), "--fit-labels",
                 str(d / "vl.txt"), "-o", str(d / "vl.txt")], 2, ("is an input",),
                name="vl.txt")


# ============================================================================================
# names: names are data in tables, TSV, messages, reports and plots


def _named_file(path: Path, *, class_names: list[str] | None = None,
                scores: dict[str, np.ndarray] | None = None,
                groups: dict[str, Any] | None = None, n: int = 40, k: int = 4) -> Path:
    z, y = arrays(n, k)
    new_file(str(path), z, labels=y, class_names=class_names)
    with h5py.File(path, "a") as f:
        for key, vals in (scores or {}).items():
            f.require_group("scores").create_dataset(key, data=vals)
        for key, vals in (groups or {}).items():
            f.require_group("groups").create_dataset(key, data=vals)
    return path


HOSTILE = [ESC_RED, OSC_TITLE, CLEAR, MARKUP, LINK, CLOSE, HTML, TEX, DEEP_TEX,
           "all", "tab\there", "bidi\u202eevil"]


def _names_run(args: list[str], leaves: tuple[str, ...], *, exit: int = 0,
               expect: Callable[[Path, Result], None] | None = None,
               proc: bool = False) -> Spec:
    return Spec(args, exit, leaves=leaves, check=expect, proc=proc)


def _table_check(*must: str) -> Callable[[Path, Result], None]:
    def check(out: Path, r: Result) -> None:
        text = r.stdout.decode("utf-8", "replace")
        for m in must:
            assert m in text, (m, text[:2000])
    return check


@case("class_names_hostile_table_by_class", "names")
def _cls_table(d: Path, out: Path) -> Spec:
    f = _named_file(d / "c.h5", class_names=[ESC_RED, MARKUP, CLOSE, HTML], n=40)
    return _names_run(["curve", str(f), "--by", "class", "-f", "table"], (),
                      expect=_table_check("[red]x[/red]", "[/]", "\\x1b[31m"))


@case("class_names_hostile_tsv_by_predicted", "names")
def _cls_tsv(d: Path, out: Path) -> Spec:
    f = _named_file(d / "c.h5", class_names=[OSC_TITLE, CLEAR, LINK, "a\nb"], n=40)
    return _names_run(["curve", str(f), "--by", "predicted", "-f", "tsv"], (),
                      expect=_table_check("\\x1b]0;pwned\\x07", "\\x1b[2J", "a\\nb"))


@case("group_names_hostile_and_all", "names")
def _grp(d: Path, out: Path) -> Spec:
    vals = np.array([v.encode("utf-8") for v in
                     [HOSTILE[i % len(HOSTILE)] for i in range(48)]], dtype=object)
    f = _named_file(d / "g.h5", n=48)
    with h5py.File(f, "a") as h:
        h.create_dataset("groups/site", data=vals, dtype=h5py.string_dtype())

    def check(o: Path, r: Result) -> None:
        rows = [line.split("\t") for line in r.stdout.decode().splitlines()]
        head = rows[0]
        groups = [row[head.index("group")] for row in rows[1:]]
        assert groups.count("all") == len(groups) // (len(HOSTILE) + 1), groups
        assert "all (data)" in groups, groups
    return _names_run(["curve", str(f), "--by", "site", "-f", "tsv"], (), expect=check)


@case("score_names_hostile_table_and_tsv", "names")
def _scores_named(d: Path, out: Path) -> Spec:
    scores = {n: np.linspace(0, 1, 40) for n in (ESC_RED, "[red]x", "[bold]", "[link=x]y",
                                                   HTML.replace("/", ""),
                                                   "x\n**Gate: passed**")}
    f = _named_file(d / "s.h5", scores=scores)
    return _names_run(["curve", str(f), "-f", "table"], (),
                      expect=_table_check("[red]x", "[bold]", "[link=x]y", "\\x1b[31m"))


@case("compare_report_hostile_score_names_no_fake_gate", "names")
def _report_gate(d: Path, out: Path) -> Spec:
    names = ["x\n\n**Gate: passed** (0 of 1 check(s) failed)", HTML.replace("/", "")]
    a = _named_file(d / "a.h5", scores={n: np.linspace(0, 1, 40) for n in names})
    b = _named_file(d / "b.h5", scores={n: np.linspace(1, 0, 40) for n in names})

    def check(o: Path, r: Result) -> None:
        md = (o / "pr.md").read_text()
        gates = [line for line in md.splitlines() if "Gate:" in line and line.startswith("**")]
        assert len(gates) == 1 and gates[0].startswith("**Gate: FAILED**"), gates
    return _names_run(["compare", str(a), str(b), "-s", names[0], "-s", names[1],
                       "--fail-if", "aurc<2", "--report", "pr.md", "-o", "c.tsv"],
                      ("c.tsv", "pr.md", "pr.png"), exit=4, expect=check)


def _hostile_file_name(stem: str, cmd: str) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        a = good(d / f"{stem}.h5", n=300)
        b = good(d / "b.h5", n=300, seed=1)
        if cmd == "compare":
            return Spec(["compare", str(a), str(b), "--report", "pr.md", "--plot", "p.png",
                         "-o", "c.tsv"], 0, leaves=("c.tsv", "p.png", "pr.md", "pr.png"))
        if cmd == "audit":
            return Spec(["audit", str(a), "-b", "10", "--report", "rep", "-o", "a.txt"], 0,
                        leaves=("a.txt", "rep"))
        return Spec(["curve", str(a), "--plot", "p.svg", "-o", "c.txt", "-f", "table"], 0,
                    leaves=("c.txt", "p.svg"))
    return build


for _stem, _label in ((TEX, "tex"), ("$" + "\\frac{" * 38 + "$", "deep_tex"),
                      ("<x-data><img src=x onerror=alert(1)>", "html"),
                      (ESC_RED + "[red]x[bold]" + OSC_TITLE, "ansi_markup"),
                      ("a`b``c|d*e_f", "markdown")):
    for _cmd in ("curve", "compare", "audit"):
        case(f"file_name_{_label}_{_cmd}", "names")(_hostile_file_name(_stem, _cmd))


@case("error_about_a_file_with_ansi_in_its_name", "names")
def _err_name(d: Path, out: Path) -> Spec:
    p = d / f"{CLEAR}{OSC_TITLE}.h5"
    p.write_text("not hdf5")
    return Spec(["curve", str(p), "-o", "o.tsv"], 3, ("\\x1b[2J",), name="\\x1b]0;pwned\\x07")


@case("missing_markup_path_no_markup_error", "names")
def _markup_missing(d: Path, out: Path) -> Spec:
    good(d / "g.h5")
    return Spec(["compare", str(d / "g.h5"), str(d / "[/]x[red].h5"), "-o", "c.tsv"], 3,
                ("[/]x[red].h5",), name="[/]x[red].h5")


@case("csv_header_with_ansi_group_column", "names")
def _csv_hdr(d: Path, out: Path) -> Spec:
    z, y = arrays()
    rows = ["logit_0,logit_1,logit_2,logit_3,label," + CLEAR + "site"]
    rows += [",".join(map(str, z[i])) + f",{y[i]},{OSC_TITLE if i % 2 else 'b'}"
             for i in range(N)]
    (d / "t.csv").write_text("\n".join(rows) + "\n")
    return Spec(["curve", str(d / "t.csv"), "-f", "tsv", "-o", "o.tsv"], 0, leaves=("o.tsv",))


@case("labels_class_name_unknown_long_and_hostile", "names")
def _lab_names(d: Path, out: Path) -> Spec:
    f = _named_file(d / "c.h5", class_names=["one", "two", "three", "four"], n=N)
    (d / "lab.txt").write_text("one\n" * (N - 1) + "\x1b[2J" + "x" * 3000 + "\n")
    return Spec(["curve", str(f), "--labels", str(d / "lab.txt"), "-o", "o.tsv"], 3,
                ("is not one of", "'one', 'two'", "..."), name="lab.txt",
                check=lambda o, r: _short(r, 400))


def _short(r: Result, limit: int) -> None:
    assert len(r.stderr) < limit, len(r.stderr)
    assert "np.str_" not in r.stderr, r.stderr


# ============================================================================================
# pt: .pt bombs and tricks (read without torch, never handed to torch.load)


def _pt_zip(path: Path, pickle_bytes: bytes, members: dict[str, bytes] | None = None, *,
            deflate: tuple[str, ...] = (), byteorder: bytes = b"little") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle_bytes)
        zf.writestr(zipfile.ZipInfo("archive/byteorder"), byteorder,
                    compress_type=zipfile.ZIP_DEFLATED if "byteorder" in deflate
                    else zipfile.ZIP_STORED)
        for key, data in (members or {}).items():
            zf.writestr(f"archive/data/{key}", data,
                        compress_type=zipfile.ZIP_DEFLATED if key in deflate
                        else zipfile.ZIP_STORED)
    return path


def _tensor_pickle(entries: dict[str, tuple[str, str, int, tuple[int, ...], tuple[int, ...]]],
                   *, raw_size: dict[str, bytes] | None = None) -> bytes:
    """A protocol-2 pickle of ``{name: tensor}``, each ``(storage type, key, numel, size,
    stride)``, written opcode by opcode (no torch needed)."""
    out = bytearray(b"\x80\x02}q\x00(")
    for name, (stype, key, numel, size, stride) in entries.items():
        out += _str(name)
        out += b"ctorch._utils\n_rebuild_tensor_v2\n("
        out += b"(" + _str("storage") + f"ctorch\n{stype}\n".encode() + _str(key) + _str("cpu")
        out += _int(numel) + b"tQ" + _int(0)
        out += (raw_size or {}).get(name) or _tuple(size)
        out += _tuple(stride) + b"\x89" + b"ccollections\nOrderedDict\n)R" + b"tR"
    out += b"u."
    return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(v: int) -> bytes:
    if 0 <= v < 2**31:
        return b"J" + struct.pack("<i", v)
    raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _tuple(t: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(_int(v) for v in t) + b"t"


def _floats(n: int) -> bytes:
    return np.arange(n, dtype="<f4").tobytes()


@pytest.mark.parametrize("_", [0])
def test_tensor_pickle_helper_reads_like_torch(tmp_path: Path, _: int) -> None:
    """The hand-written pickle is a valid torch.save file (the cases below bend it)."""
    p = _pt_zip(tmp_path / "ok.pt", _tensor_pickle({"logits": ("FloatStorage", "0", 80,
                                                                 (20, 4), (4, 1))}),
                {"0": _floats(80)})
    r = cli(["curve", p, "--labels", _write_labels(tmp_path), "-f", "tsv"])
    assert r.code == 0, r


def _write_labels(d: Path) -> str:
    (d / "y.txt").write_text("\n".join(str(i % 4) for i in range(20)))
    return str(d / "y.txt")


def _pt_case(build_pt: Callable[[Path], Path], frags: tuple[str, ...], *, exit: int = 3,
             memory: int = 64 << 20) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        p = build_pt(d)
        return Spec(["curve", str(p), "--labels", _write_labels(d), "-o", "o.tsv"], exit,
                    frags, name=p.name, memory_bound=memory,
                    leaves=("o.tsv",) if exit == 0 else ())
    return build


case("pt_byteorder_zip_bomb", "pt")(_pt_case(lambda d: _pt_zip(
    d / "b.pt", _tensor_pickle({"logits": ("FloatStorage", "0", 80, (20, 4), (4, 1))}),
    {"0": _floats(80)}, deflate=("byteorder",), byteorder=b" " * (200 << 20)),
    ("b.pt", "byteorder"), memory=16 << 20))
case("pt_memo_index_2_31", "pt")(_pt_case(lambda d: _pt_zip(
    d / "m.pt", b"\x80\x02]r\xff\xff\xff\x7f."), ("m.pt", "memo index"), memory=16 << 20))
case("pt_many_memoized_empty_sets", "pt")(_pt_case(lambda d: _pt_zip(
    d / "s.pt", b"\x80\x04(" + b"\x8f\x94" * 1_100_000 + b"l."), ("s.pt", "memo"),
    memory=64 << 20))
case("pt_four_million_ops", "pt")(_pt_case(lambda d: _pt_zip(
    d / "o.pt", b"\x80\x02" + b"N0" * 2_100_000 + b"N."), ("o.pt", "operations"),
    memory=64 << 20))
case("pt_size_tuple_150k_memo_refs_to_2_62", "pt")(_pt_case(lambda d: _pt_zip(
    d / "t.pt", _tensor_pickle(
        {"logits": ("FloatStorage", "0", 80, (20, 4), (4, 1))},
        raw_size={"logits": b"(" + _int(2**62) + b"q\x01" + b"h\x01" * 150_000 + b"t"}),
    {"0": _floats(80)}), ("t.pt", "size is not a tuple of at most 64 integers")))
case("pt_size_is_a_string", "pt")(_pt_case(lambda d: _pt_zip(
    d / "t.pt", _tensor_pickle({"logits": ("FloatStorage", "0", 80, (20, 4), (4, 1))},
                               raw_size={"logits": _str("54")}),
    {"0": _floats(80)}), ("t.pt", "size is not a tuple")))
case("pt_size_has_a_bool", "pt")(_pt_case(lambda d: _pt_zip(
    d / "t.pt", _tensor_pickle({"logits": ("FloatStorage", "0", 80, (20, 4), (4, 1))},
                               raw_size={"logits": b"(\x88J\x04\x00\x00\x00t"}),
    {"0": _floats(80)}), ("t.pt", "size is not a tuple")))
case("pt_torch_global_outside_allow_list", "pt")(_pt_case(lambda d: _pt_zip(
    d / "p.pt", b"\x80\x02ctorch._utils\n_rebuild_parameter\n)R."),
    ("p.pt", "torch._utils._rebuild_parameter", "never hands a data file to torch.load")))
case("pt_torch_nn_module_global", "pt")(_pt_case(lambda d: _pt_zip(
    d / "p.pt", b"\x80\x02ctorch.nn.modules.linear\nLinear\n)R."),
    ("p.pt", "torch.nn.modules.linear.Linear")))
case("pt_build_on_a_storage", "pt")(_pt_case(lambda d: _pt_zip(
    d / "b.pt", b"\x80\x02(" + _str("storage") + b"ctorch\nFloatStorage\n" + _str("0")
    + _str("cpu") + _int(4) + b"tQ}" + _str("numel") + _int(10**9) + b"sb.",
    {"0": _floats(4)}), ("b.pt", "BUILD")))
case("pt_build_on_the_rebuild_function", "pt")(_pt_case(lambda d: _pt_zip(
    d / "b.pt", b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}" + _str("__defaults__")
    + b"Nsb."), ("b.pt", "BUILD")))
case("pt_storage_key_reused_with_another_dtype", "pt")(_pt_case(lambda d: _pt_zip(
    d / "k.pt", _tensor_pickle({"logits": ("FloatStorage", "0", 80, (20, 4), (4, 1)),
                                "labels": ("LongStorage", "0", 20, (20,), (1,))}),
    {"0": _floats(80)}), ("k.pt", "two different storages")))
case("pt_data_pkl_at_the_top", "pt")(_pt_case(lambda d: _zip_raw(
    d / "top.pt", {"data.pkl": b"\x80\x02N."}), ("top.pt", "<folder>/data.pkl")))
case("pt_two_data_pkl_records", "pt")(_pt_case(lambda d: _zip_raw(
    d / "two.pt", {"a/data.pkl": b"\x80\x02N.", "b/data.pkl": b"\x80\x02N."}),
    ("two.pt", "<folder>/data.pkl")))
case("pt_deflated_storage_bomb", "pt")(_pt_case(lambda d: _pt_zip(
    d / "z.pt", _tensor_pickle({"logits": ("FloatStorage", "0", 50 << 20, (50 << 18, 4),
                                            (4, 1))}),
    {"0": bytes(200 << 20)}, deflate=("0",)), ("z.pt", "compression bomb"),
    memory=16 << 20))
case("pt_two_storages_at_99x_read_only_what_the_view_needs", "pt")(_pt_case(lambda d: _pt_zip(
    d / "v.pt", _tensor_pickle({"logits": ("FloatStorage", "0", 20 << 20, (20, 4), (4, 1)),
                                "labels": ("LongStorage", "1", 10 << 20, (20,), (1,))}),
    {"0": _near_99x(80 << 20), "1": _near_99x(80 << 20, seed=1)}, deflate=("0", "1")),
    ("v.pt", "labels"), exit=3, memory=16 << 20))
case("pt_corrupt_deflate_stream", "pt")(_pt_case(lambda d: _corrupt_member(
    d / "c.pt", "archive/data.pkl", deflate=True), ("c.pt", "unreadable torch.save file")))
case("pt_bad_crc", "pt")(_pt_case(lambda d: _corrupt_member(
    d / "c.pt", "archive/data.pkl", deflate=False), ("c.pt", "unreadable torch.save file")))
case("pt_overlapping_members", "pt")(_pt_case(lambda d: _overlapping(d / "o.pt", torch=True),
                                              ("o.pt", "overlaps")))


def _near_99x(n: int, seed: int = 0) -> bytes:
    """``n`` bytes that deflate about 90-99 times (zeros with sparse random bytes)."""
    rng = np.random.default_rng(seed)
    data = np.zeros(n, np.uint8)
    idx = rng.integers(0, n, n // 190)
    data[idx] = rng.integers(1, 255, idx.size, dtype=np.uint8)
    return data.tobytes()


def _zip_raw(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return path


def _corrupt_member(path: Path, member: str, *, deflate: bool) -> Path:
    pk = _tensor_pickle({"logits": ("FloatStorage", "0", 80, (20, 4), (4, 1))})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, pk, compress_type=zipfile.ZIP_DEFLATED if deflate
                    else zipfile.ZIP_STORED)
        zf.writestr("archive/byteorder", b"little")
        zf.writestr("archive/data/0", _floats(80))
    data = bytearray(path.read_bytes())
    if deflate:  # garble the deflate stream's first bytes
        at = data.find(member.encode()) + len(member)
        data[at + 2:at + 10] = b"\xff" * 8
    else:  # flip one byte of the stored pickle: CRC mismatch
        at = data.find(b"_rebuild_tensor_v2")
        data[at] ^= 0x01
    path.write_bytes(bytes(data))
    return path


def _overlapping(path: Path, *, torch: bool) -> Path:
    """A zip whose two members point at one stored stream (the central directory's second
    entry reuses the first's local header offset)."""
    names = (["archive/data.pkl", "archive/data/0"] if torch else ["labels.npy", "y.npy"])
    payload = (_tensor_pickle({"logits": ("FloatStorage", "0", 8, (2, 4), (4, 1))})
               if torch else _npy_bytes(np.zeros(N, np.int64)))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(names[0], payload)
        zf.writestr(names[1], payload)
    data = bytearray(path.read_bytes())
    cd = data.rfind(b"PK\x01\x02")  # the second central-directory entry
    data[cd + 42:cd + 46] = struct.pack("<I", 0)  # its local header offset -> the first's
    path.write_bytes(bytes(data))
    return path


# ============================================================================================
# labels: --labels readers: one line naming the file, memory bounded by the real data


def _labels_case(fname: str, write: Callable[[Path], None], frags: tuple[str, ...], *,
                 exit: int = 3, memory: int = 64 << 20, k: int = K
                 ) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        z, _ = arrays(N, k)
        np.save(d / "z.npy", z)
        write(d / fname)
        return Spec(["curve", str(d / "z.npy"), "--labels", str(d / fname), "-o", "o.tsv"],
                    exit, frags, name=fname, memory_bound=memory,
                    leaves=("o.tsv",) if exit == 0 else (),
                    check=lambda o, r: _short(r, 600))
    return build


def _npz_raw(p: Path, payload: bytes | None = None, *, deflate: bool = True,
             crc: bool = False, stream: bool = False) -> None:
    y = _npy_bytes(arrays()[1])
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("labels.npy", payload if payload is not None else y,
                    compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    data = bytearray(p.read_bytes())
    if crc:
        at = data.find(b"NUMPY")
        data[at + 20] ^= 0x01
    if stream:
        at = data.find(b"labels.npy") + len("labels.npy")
        data[at:at + 6] = b"\xff" * 6
    p.write_bytes(bytes(data))


case("labels_npz_not_a_zip", "labels")(_labels_case(
    "l.npz", lambda p: p.write_bytes(b"not a zip at all" * 10), ("l.npz", "not a readable")))
case("labels_npz_bad_crc", "labels")(_labels_case(
    "l.npz", lambda p: _npz_raw(p, deflate=False, crc=True), ("l.npz", "CRC")))
case("labels_npz_bad_deflate", "labels")(_labels_case(
    "l.npz", lambda p: _npz_raw(p, stream=True), ("l.npz",)))
case("labels_npz_zip_bomb", "labels")(_labels_case(
    "l.npz", lambda p: np.savez_compressed(p, labels=np.zeros(20_000_000, np.int64)),
    ("l.npz", "compression bomb"), memory=16 << 20))
case("labels_npz_overlapping_members", "labels")(_labels_case(
    "l.npz", lambda p: _overlapping(p, torch=False), ("l.npz", "overlaps")))
case("labels_npz_truncated", "labels")(_labels_case(
    "l.npz", lambda p: (np.savez(p, labels=arrays()[1]),
                        p.write_bytes(p.read_bytes()[:200])), ("l.npz",)))
case("labels_npz_object_array", "labels")(_labels_case(
    "l.npz", lambda p: np.savez(p, labels=np.array([1, "a"], dtype=object)),
    ("l.npz", "object arrays are refused")))
case("labels_txt_one_wide_token", "labels")(_labels_case(
    "l.txt", lambda p: p.write_bytes(b"7" * (8 << 20)), ("l.txt", "characters"),
    memory=32 << 20))
case("labels_txt_many_cells_and_one_wide_name", "labels")(_labels_case(
    "l.txt", lambda p: p.write_bytes(b"a\n" * 200_000 + b"b" * 4000 + b"\n"),
    ("l.txt",), memory=64 << 20))
case("labels_csv_one_wide_cell", "labels")(_labels_case(
    "l.csv", lambda p: p.write_bytes(b"label\n" + b"3" * (1 << 20) + b"\n"),
    ("l.csv", "4096 characters"), memory=32 << 20))
case("labels_csv_wide_header", "labels")(_labels_case(
    "l.csv", lambda p: p.write_bytes(b"a" * 100_000 + b",b\n1,2\n"), ("l.csv",),
    memory=32 << 20))
case("labels_npy_huge_declared_shape", "labels")(_labels_case(
    "l.npy", lambda p: p.write_bytes(_npy_header_only((2**40,), "<i8")),
    ("l.npy", "truncated")))
case("labels_npy_shape_product_wraps_int64", "labels")(_labels_case(
    "l.npy", lambda p: p.write_bytes(_npy_header_only((2**33, 2**31), "<i8")),
    ("l.npy",)))
case("labels_int_overflow_text", "labels")(_labels_case(
    "l.txt", lambda p: p.write_text("1\n" * (N - 1) + "9" * 40 + "\n"), ("l.txt", "int64")))
case("labels_float_299_for_300_classes", "labels")(_labels_case(
    "l.npy", lambda p: np.save(p, (np.arange(N) * 15 % 300).astype(np.float64)), (),
    exit=0, k=300))
case("labels_float_non_integral", "labels")(_labels_case(
    "l.npy", lambda p: np.save(p, np.full(N, 2.5)), ("l.npy", "non-integral")))


def _npy_header_only(shape: tuple[int, ...], descr: str) -> bytes:
    hdr = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    hdr = hdr + b" " * (118 - len(hdr)) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + b"\0" * 16


# ============================================================================================
# by: many groups, few lines


@case("by_40000_groups", "by")
def _by_many(d: Path, out: Path) -> Spec:
    n = 40_000
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 4)).astype(np.float32)
    new_file(str(d / "g.h5"), z, labels=rng.integers(0, 4, n))
    with h5py.File(d / "g.h5", "a") as f:
        f.create_dataset("groups/site", data=np.arange(n))

    def check(o: Path, r: Result) -> None:
        assert len(r.stderr.splitlines()) <= 8, r.stderr[:2000]
        assert len(r.stderr) < 2000
    return Spec(["curve", str(d / "g.h5"), "--by", "site", "-f", "tsv", "-o", "o.tsv"], 0,
                leaves=("o.tsv",), check=check, memory_bound=512 << 20)


@case("by_class_singletons_one_summary_line", "by")
def _by_class(d: Path, out: Path) -> Spec:
    k = 50
    z, y = arrays(k, k)
    new_file(str(d / "c.h5"), z, labels=np.arange(k))

    def check(o: Path, r: Result) -> None:
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and "group result(s) have undefined metrics" in lines[0], lines
    return Spec(["curve", str(d / "c.h5"), "--by", "class", "-f", "tsv", "-o", "o.tsv"], 0,
                leaves=("o.tsv",), check=check)


# ============================================================================================
# scheduler: addresses checked before Dask, bounded connection, one line


def _sched(address: str, frags: tuple[str, ...], exit: int = 2,
           extra: tuple[str, ...] = ()) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        g = good(d / "g.h5")
        return Spec(["curve", str(g), "--scheduler", address, *extra, "-o", "o.tsv"], exit,
                    frags, name="")
    return build


for _addr, _frags in (("tls://127.0.0.1:8786", ("tls://", "security context")),
                      ("wss://127.0.0.1:8786", ("wss://",)),
                      ("inproc://127.0.0.1/1/2:0", ("inproc://",)),
                      ("ucx://127.0.0.1:8786", ("ucx://",)),
                      ("tcp://[::1:8786", ("IPv6",)), ("[fe80::zz]:1", ("IPv6",)),
                      ("host:1:2", ("host name",)), ("tcp://127.0.0.1:0", ("port 0",)),
                      ("tcp://127.0.0.1:99999", ("--scheduler",)),
                      ("tcp://" + "a" * 300 + ":1", ("--scheduler",)),
                      ("http://127.0.0.1:80", ("--scheduler must be",)),
                      ("tcp://\x1b[2J:1", ("\\x1b[2J",)), ("tcp://h_x:1", ("host name",))):
    _id = re.sub(r"[^A-Za-z0-9]+", "_", _addr)[:40]
    case(f"scheduler_refused_{_id}", "scheduler")(_sched(_addr, _frags))
for _t in ("0", "nan", "inf", "-1", "1e9"):
    case(f"scheduler_timeout_{_t}", "scheduler")(_sched(
        "tcp://127.0.0.1:1", ("--scheduler-timeout",), extra=("--scheduler-timeout", _t)))


def _listener(mode: str) -> tuple[int, Callable[[], None]]:
    """A loopback listener that accepts and never answers (``silent``) or sends garbage."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            conns.append(c)
            if mode == "garbage":
                try:
                    c.sendall(b"\x00\xff\x1b[2Jgarbage" * 64)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def close() -> None:
        stop.set()
        t.join(2)
        for c in conns:
            c.close()
        srv.close()
    return srv.getsockname()[1], close


_LISTENERS: list[Callable[[], None]] = []


def _sched_listener(mode: str) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        pytest.importorskip("distributed")
        g = good(d / "g.h5")
        port, close = _listener(mode)
        _LISTENERS.append(close)
        t0 = time.monotonic()

        def check(o: Path, r: Result) -> None:
            assert time.monotonic() - t0 < 2 + 2 + 10, "the connection was not bounded"
        return Spec(["curve", str(g), "--scheduler", f"tcp://127.0.0.1:{port}",
                     "--scheduler-timeout", "2", "-o", "o.tsv"], 1,
                    ("--scheduler", f"127.0.0.1:{port}"), name="", check=check)
    return build


case("scheduler_listener_never_answers", "scheduler")(_sched_listener("silent"))
case("scheduler_listener_sends_garbage", "scheduler")(_sched_listener("garbage"))


# ============================================================================================
# scores: a forged source shape in a scores file


def _forged_shape(shape: list[int]) -> Callable[[Path, Path], Spec]:
    def build(d: Path, out: Path) -> Spec:
        good(d / "g.h5", n=200)
        r = cli(["score", d / "g.h5", "-o", d / "s.h5"])
        assert r.code == 0, r
        (d / "g.h5").unlink()
        with h5py.File(d / "s.h5", "a") as f:
            src = json.loads(f.attrs["source"])
            src["shape"] = shape
            f.attrs["source"] = json.dumps(src)
        return Spec(["curve", str(d / "s.h5"), "--rank-map", "r.png", "-o", "o.tsv"], 3,
                    ("s.h5",))
    return build


case("scores_source_shape_wraps_to_one_pixel", "scores")(_forged_shape(
    [200, 5, 7, 7905747460161236407]))
case("scores_source_shape_wraps_to_zero", "scores")(_forged_shape([200, 5, 2**32, 2**32]))
case("scores_source_shape_bool", "scores")(_forged_shape([200, True]))
case("scores_source_shape_65_dims", "scores")(_forged_shape([200] + [1] * 64))


# ============================================================================================
# env: environment values


@case("lsfix_threads_5000_digits", "env")
def _threads(d: Path, out: Path) -> Spec:
    g = good(d / "g.h5")
    os.environ["LSFIX_THREADS"] = "9" * 5000
    return Spec(["curve", str(g), "-o", "o.tsv"], 2, ("LSFIX_THREADS",), name="",
                check=lambda o, r: _short(r, 300))


# ============================================================================================
# the harness


def _no_control_bytes(data: bytes, what: str) -> None:
    bad = sorted({b for b in data if b < 0x20 and b not in (0x09, 0x0A)})
    assert not bad, f"{what} holds control bytes {bad}: {data[:300]!r}"
    assert b"\x1b" not in data and b"\x07" not in data


def _reports(out: Path) -> Iterator[Path]:
    for p in out.rglob("*"):
        if p.is_file() and p.suffix in (".md", ".html", ".tsv", ".txt", ".json"):
            yield p


@pytest.fixture(autouse=True)
def _cleanup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("LSFIX_THREADS", raising=False)
    yield
    os.environ.pop("LSFIX_THREADS", None)
    while _LISTENERS:
        _LISTENERS.pop()()


@pytest.mark.parametrize("c", [pytest.param(c, id=f"{c.cls}-{c.name}") for c in CASES])
def test_case(c: Case, tmp_path: Path) -> None:
    spec, r = run_case(c, tmp_path)
    _no_control_bytes(r.stdout, "stdout")
    _no_control_bytes(r.stderr.encode("utf-8", "surrogateescape"), "stderr")
    assert "Traceback" not in r.stderr and "MarkupError" not in r.stderr
    for p in _reports(tmp_path / "out"):
        data = p.read_bytes()
        _no_control_bytes(data.replace(b"\r", b""), str(p))
        if p.suffix in (".md", ".html"):  # a report a browser or a PR page renders
            assert MARK.encode() not in data, f"{p.name}: raw {MARK} from data"


def test_surfaces_corpus_size() -> None:
    """The cases of issue 19 and the new ones: every class present."""
    assert len(CASES) >= 90
    assert {c.cls for c in CASES} == {"input", "names", "pt", "labels", "by", "scheduler",
                                      "scores", "env"}


# --------------------------------------------------------------------------------------------
# one helper for every output path


ROOT = Path(__file__).resolve().parents[2]
#: Modules allowed to write to stdout/stderr directly: each passes text through safetext.
WRITERS = {"lsfix/cli/app.py", "lsfix/streams.py", "lsfix/_entry.py"}


def test_no_output_path_bypasses_safetext() -> None:
    """Text reaches a terminal or a report only through :mod:`lsfix.safetext`: no module but
    the few writers (which call it) writes to stdout/stderr, prints, echoes, builds a rich
    Console table from strings, escapes HTML itself, or sets a matplotlib label without
    ``mpl(...)``."""
    bad: list[str] = []
    direct = re.compile(r"sys\.(stdout|stderr)\.write\(|(?<![.\w])print\(|typer\.echo\(|"
                        r"html\.escape\(|add_row\(|add_column\(")
    mpl_calls = re.compile(r"\.(set_title|set_xlabel|set_ylabel|suptitle|annotate|text)\("
                           r"(?!mpl\()")
    mpl_label = re.compile(r"label=(?!mpl\(|None\b)")
    for p in sorted((ROOT / "lsfix").rglob("*.py")):
        rel = str(p.relative_to(ROOT))
        if rel == "lsfix/safetext.py" or rel.startswith("lsfix/extract/"):
            continue  # extract's progress bar shows the command line's own model/data names
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if rel not in WRITERS and direct.search(code):
                if "add_row(" in code and "rich_text(" in code:
                    continue
                if "add_column(" in code and "rich_text(" in code:
                    continue
                bad.append(f"{rel}:{i}: {line.strip()}")
            if rel.startswith("lsfix/output/") and (mpl_calls.search(code)
                                                    or (mpl_label.search(code)
                                                        and "ax." in code)):
                bad.append(f"{rel}:{i}: {line.strip()}")
    assert not bad, "output paths that bypass lsfix.safetext:\n" + "\n".join(bad)
    for rel in WRITERS:
        text = (ROOT / rel).read_text(encoding="utf-8")
        writes = text.count("sys.stderr.write(") + text.count("sys.stdout.write(")
        assert writes == 0 or "safetext" in text or rel == "lsfix/_entry.py", rel

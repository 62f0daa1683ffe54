"""A generated corpus of bad (and awkward) inputs for every lsfix reader.

Each :class:`Case` is one file (or a missing path, or a folder) written by a small builder
function, with what the CLI must do with it: the exit code and the fragments its one-line
message must hold (the file name is always expected too). Nothing here is a committed blob:
``write_corpus(folder)`` makes every file from seeded arrays, so the corpus follows the schema
when it changes.

Usage::

    python -m tests.hardening.corpus OUTDIR        # from the repository root
    python tests/hardening/corpus.py OUTDIR        # the same
    python tests/hardening/corpus.py --list        # names, exit codes, fragments

``OUTDIR/manifest.json`` lists the cases (name, readers, expected exit codes, fragments).

Readers covered: HDF5 (container, schema, every dataset), ``.npy``, ``.npz``, ``.pt``/``.pth``
(zip and legacy torch.save, plain pickles), ``.csv``/``.tsv`` (logits and score tables), and
the dispatch itself (unknown formats, folders, missing paths).

Pickle payloads: cases tagged ``pickle`` hold an object whose unpickling would create the
file ``<folder>/PWNED-<case>``; a reader that unpickles them leaves that marker behind
(:func:`pwned_markers`).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lsfix.readers.logitsfile import root_attrs  # noqa: E402

#: Commands every case is run through (``tests/hardening/test_corpus.py``).
COMMANDS = ("curve", "score", "normalise", "audit")
N, K = 20, 4
PWNED_PREFIX = "PWNED-"


@dataclass(frozen=True)
class Case:
    """One corpus entry.

    Attributes
    ----------
    name : str
        File name inside the corpus folder (the path given to lsfix).
    reader : str
        ``hdf5``, ``npy``, ``npz``, ``torch``, ``csv``, ``tsv`` or ``dispatch``.
    exit : int
        Expected exit code for every command (3 = bad input data), unless ``per_command``
        says otherwise.
    fragments : tuple of str
        Substrings the one-line message must contain (the file name is checked as well).
    per_command : dict
        ``{command: exit code}`` overrides (e.g. a file valid for ``score`` but not ``audit``).
    tags : tuple of str
        ``pickle`` (a code-running payload), ``valid`` (an awkward but legal file: exit 0),
        ``torch`` (needs torch to build), ``missing`` (the path does not exist), ``folder``.
    note : str
        What the case is about, in a few words.
    """

    name: str
    reader: str
    exit: int
    fragments: tuple[str, ...]
    per_command: dict[str, int] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    note: str = ""

    def expected(self, command: str) -> int:
        return self.per_command.get(command, self.exit)


Builder = Callable[[Path], None]
_REGISTRY: list[tuple[Case, Builder]] = []


def case(name: str, reader: str, fragments: str | tuple[str, ...], *, exit: int = 3,
         per_command: dict[str, int] | None = None, tags: tuple[str, ...] = (),
         note: str = "") -> Callable[[Builder], Builder]:
    frags = (fragments,) if isinstance(fragments, str) else tuple(fragments)

    def register(fn: Builder) -> Builder:
        _REGISTRY.append((Case(name, reader, exit, frags, dict(per_command or {}), tags,
                               note or (fn.__doc__ or "").strip()), fn))
        return fn

    return register


# --------------------------------------------------------------------------------------------
# data


def arrays(n: int = N, k: int = K, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float32 logits ``(n, k)`` and int64 labels in ``[0, k)``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(0.0, 1.0, (n, k))
    z[np.arange(n), y] += 1.5
    return z.astype(np.float32), y.astype(np.int64)


def write_h5(path: Path, *, logits: Any = "default", labels: Any = "default",
             attrs: dict[str, Any] | None = None, drop_attrs: tuple[str, ...] = (),
             extra: Callable[[h5py.File], None] | None = None, **datasets: Any) -> None:
    """An lsfix HDF5 file written with h5py directly (no validation): root attributes of
    schema version 1 (overridable), ``/logits`` and ``/labels`` unless ``None``, more
    datasets by keyword, then ``extra(f)`` for links and layouts."""
    z, y = arrays()
    with h5py.File(path, "w") as f:
        for key, val in root_attrs({}, []).items():
            if key not in drop_attrs:
                f.attrs[key] = val
        for key, val in (attrs or {}).items():
            f.attrs[key] = val
        if logits is not None:
            f.create_dataset("logits", data=z if isinstance(logits, str) else logits)
        if labels is not None:
            f.create_dataset("labels", data=y if isinstance(labels, str) else labels)
        for key, val in datasets.items():
            f.create_dataset(key.replace("__", "/"), data=val)
        if extra is not None:
            extra(f)


def _valid_h5_bytes(tmp: Path) -> bytes:
    z, y = arrays(200, 8)
    write_h5(tmp, logits=z, labels=y,
             sample_ids=np.array([f"s{i}" for i in range(200)], dtype=object).astype("S"))
    data = tmp.read_bytes()
    tmp.unlink()
    return data


class Payload:
    """Unpickling this object calls ``open(marker, "w")``: the marker file proves code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def marker_for(path: Path) -> str:
    return str(path.parent / f"{PWNED_PREFIX}{path.name}")


def pwned_markers(folder: Path) -> list[str]:
    """Marker files left by an unpickled payload (must stay empty)."""
    return sorted(p.name for p in Path(folder).rglob(f"{PWNED_PREFIX}*"))


def _npz(path: Path, **arrays_: Any) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays_)


# --------------------------------------------------------------------------------------------
# dispatch and container


@case("not_hdf5.h5", "hdf5", "does not start with the HDF5 signature")
def _not_hdf5(p: Path) -> None:
    """text in a file named .h5"""
    p.write_text("these are not logits\n")


@case("empty.h5", "hdf5", "empty file (0 bytes)")
def _empty(p: Path) -> None:
    """0 bytes"""
    p.write_bytes(b"")


@case("truncated_head.h5", "hdf5", ("not a readable HDF5 file (only 100 of its",
                                   "bytes are there); truncated or corrupt?"))
def _trunc_head(p: Path) -> None:
    """the first 100 bytes of a valid file"""
    p.write_bytes(_valid_h5_bytes(p)[:100])


@case("truncated_half.h5", "hdf5", ("not a readable HDF5 file (only", "bytes are there"))
def _trunc_half(p: Path) -> None:
    """the first half of a valid file (superblock intact, EOF short)"""
    data = _valid_h5_bytes(p)
    p.write_bytes(data[: len(data) // 2])


@case("signature_then_noise.h5", "hdf5", "not a readable HDF5 file")
def _sig_noise(p: Path) -> None:
    """the HDF5 signature followed by random bytes"""
    rng = np.random.default_rng(1)
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())


@case("corrupt_chunk.h5", "hdf5", "/logits")
def _corrupt_chunk(p: Path) -> None:
    """gzip-compressed logits whose first chunk is overwritten with noise (the file opens;
    reading the data fails)"""
    z, y = arrays(400, 8)
    write_h5(p, logits=None, labels=y,
             extra=lambda f: f.create_dataset("logits", data=z, chunks=(50, 8),
                                              compression="gzip"))
    with h5py.File(p, "r") as f:
        info = f["logits"].id.get_chunk_info(0)
        offset, size = info.byte_offset, info.size
    with open(p, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xde\xad\xbe\xef" * (size // 4))


@case("unknown_format.dat", "dispatch", "unrecognised input format")
def _unknown(p: Path) -> None:
    """binary noise with an unknown extension"""
    p.write_bytes(bytes(range(256)) * 4)


@case("a_folder.h5", "dispatch", "is a folder, not a file", tags=("folder",))
def _folder(p: Path) -> None:
    """a folder where a file is expected"""
    p.mkdir()


@case("missing.h5", "dispatch", "no such file", tags=("missing",))
def _missing(p: Path) -> None:
    """a path that does not exist"""


# --------------------------------------------------------------------------------------------
# schema attributes


@case("foreign.h5", "hdf5", "is not an lsfix file (no lsfix_schema attribute)")
def _foreign(p: Path) -> None:
    """an HDF5 file some other tool made"""
    z, _ = arrays()
    with h5py.File(p, "w") as f:
        f.create_dataset("data", data=z)
        f.attrs["creator"] = "someone else"


@case("other_schema.h5", "hdf5", "schema 'other.thing' is not 'lsfix.predictions'")
def _other_schema(p: Path) -> None:
    """lsfix_schema names another schema"""
    write_h5(p, attrs={"lsfix_schema": "other.thing"})


@case("newer_schema.h5", "hdf5", ("schema version 2 is newer", "upgrade lsfix"))
def _newer(p: Path) -> None:
    """an lsfix file from a newer schema version"""
    write_h5(p, attrs={"lsfix_schema_version": np.int64(2)})


@case("bad_version.h5", "hdf5", "missing or invalid lsfix_schema_version")
def _bad_version(p: Path) -> None:
    """the schema version is text"""
    write_h5(p, attrs={"lsfix_schema_version": "one"})


@case("no_version.h5", "hdf5", "missing or invalid lsfix_schema_version")
def _no_version(p: Path) -> None:
    """the schema version attribute is missing"""
    write_h5(p, drop_attrs=("lsfix_schema_version",))


@case("incomplete.h5", "hdf5", ("is incomplete", "--resume", "--allow-incomplete"))
def _incomplete(p: Path) -> None:
    """an interrupted extract (lsfix_complete = False)"""
    write_h5(p, attrs={"lsfix_complete": np.bool_(False)})


@case("bad_provenance.h5", "hdf5", "attribute 'provenance' is not valid JSON")
def _bad_prov(p: Path) -> None:
    """the provenance attribute is not JSON"""
    write_h5(p, attrs={"provenance": "{not json"})


# --------------------------------------------------------------------------------------------
# /logits


@case("missing_logits.h5", "hdf5", "has no /logits dataset")
def _missing_logits(p: Path) -> None:
    """an lsfix file with labels but no /logits (and no scores)"""
    write_h5(p, logits=None)


@case("logits_scalar.h5", "hdf5", ("/logits", "is a scalar"))
def _scalar(p: Path) -> None:
    """/logits is a scalar (rank 0)"""
    write_h5(p, logits=np.float32(1.0), labels=None)


@case("logits_group.h5", "hdf5", ("/logits", "is a group, expected a dataset"))
def _logits_group(p: Path) -> None:
    """/logits is a group"""
    write_h5(p, logits=None, extra=lambda f: f.create_group("logits"))


@case("logits_int.h5", "hdf5", ("/logits", "dtype int32 is not float16/float32/float64"))
def _logits_int(p: Path) -> None:
    """integer logits"""
    write_h5(p, logits=np.ones((N, K), dtype=np.int32))


@case("logits_strings.h5", "hdf5", ("/logits", "is not float16/float32/float64"))
def _logits_str(p: Path) -> None:
    """string logits"""
    write_h5(p, logits=np.array([["1.0"] * K] * N, dtype="S3"))


@case("logits_complex.h5", "hdf5", ("/logits", "dtype complex128 is not float16"))
def _logits_complex(p: Path) -> None:
    """complex logits"""
    write_h5(p, logits=np.ones((N, K), dtype=np.complex128))


@case("logits_compound.h5", "hdf5", ("/logits", "is not float16/float32/float64"))
def _logits_compound(p: Path) -> None:
    """a compound (record) dtype"""
    write_h5(p, logits=np.zeros(N, dtype=[("a", "f4"), ("b", "f4")]))


@case("logits_zero_rows.h5", "hdf5", ("/logits", "has zero rows"))
def _zero_rows(p: Path) -> None:
    """(0, K) logits and (0,) labels"""
    write_h5(p, logits=np.zeros((0, K), np.float32), labels=np.zeros(0, np.int64))


@case("logits_zero_classes.h5", "hdf5", ("/logits", "has zero classes"))
def _zero_classes(p: Path) -> None:
    """(N, 0) logits"""
    write_h5(p, logits=np.zeros((N, 0), np.float32), labels=None)


def _with(value: float, dtype: Any = np.float32, row: int = 3) -> np.ndarray:
    z, _ = arrays()
    z = z.astype(dtype)
    z[row, 1] = value
    return z


@case("logits_nan.h5", "hdf5", ("/logits", "non-finite logit value(s)", "row 3"))
def _nan(p: Path) -> None:
    """a NaN logit"""
    write_h5(p, logits=_with(np.nan))


@case("logits_posinf.h5", "hdf5", ("/logits", "non-finite logit value(s)"))
def _posinf(p: Path) -> None:
    """a +inf logit"""
    write_h5(p, logits=_with(np.inf, row=19))


@case("logits_neginf.h5", "hdf5", ("/logits", "non-finite logit value(s)"))
def _neginf(p: Path) -> None:
    """a -inf logit (a masked class written as -inf)"""
    write_h5(p, logits=_with(-np.inf, row=0))


@case("logits_float16_inf.h5", "hdf5", ("/logits", "non-finite logit value(s)"))
def _f16_inf(p: Path) -> None:
    """float16 logits cast from values beyond 65504 (inf)"""
    z, _ = arrays()
    with np.errstate(over="ignore"):
        z16 = (z * 1e5).astype(np.float16)
    write_h5(p, logits=z16)


@case("float16_extreme.h5", "hdf5", (), exit=0, tags=("valid",),
      note="float16 logits at +-65504 and near-ties: exp/sum/norm overflow naive float16 "
           "formulas; lsfix works in float64 and must succeed with finite scores")
def _f16_extreme(p: Path) -> None:
    rng = np.random.default_rng(3)
    z = rng.uniform(-60000, 60000, (N, K))
    z[0] = 65504.0  # a row of ties at float16's max
    z[1] = [65504.0, -65504.0, 65504.0, 0.0]
    z[2] = [-65504.0] * K
    z[3] = [65504.0, 65472.0, 0.0, -65504.0]
    y = np.arange(N) % K
    y[4:8] = np.argmax(z[4:8], axis=1)  # some right, some wrong
    write_h5(p, logits=z.astype(np.float16), labels=y.astype(np.int64))


@case("logits_bigendian.h5", "hdf5", (), exit=0, tags=("valid",),
      note="big-endian float32 logits (written on another machine) are ordinary floats")
def _bigendian(p: Path) -> None:
    z, y = arrays()
    write_h5(p, logits=z.astype(">f4"), labels=y)


@case("logits_rank3_labels_rank1.h5", "hdf5", ("/labels", "does not match /logits"))
def _rank3(p: Path) -> None:
    """dense (N, K, H, W) logits with per-image (N,) labels: wrong rank"""
    rng = np.random.default_rng(4)
    write_h5(p, logits=rng.normal(size=(N, K, 3, 3)).astype(np.float32))


# --------------------------------------------------------------------------------------------
# /labels


@case("labels_n_mismatch.h5", "hdf5", ("/labels", "shape (19,) does not match /logits"))
def _n_mismatch(p: Path) -> None:
    """20 rows of logits, 19 labels"""
    write_h5(p, labels=arrays()[1][:19])


@case("labels_wrong_rank.h5", "hdf5", ("/labels", "shape (20, 4) does not match /logits"))
def _labels_rank(p: Path) -> None:
    """one-hot (N, K) labels instead of class indices"""
    write_h5(p, labels=np.eye(K, dtype=np.int64)[arrays()[1]])


@case("labels_out_of_range.h5", "hdf5", ("/labels", "not in [0, 4)", "row 5 = 4"))
def _out_of_range(p: Path) -> None:
    """a label equal to K"""
    y = arrays()[1]
    y[5] = K
    write_h5(p, labels=y)


@case("labels_negative.h5", "hdf5", ("/labels", "not in [0, 4)", "= -1"))
def _negative(p: Path) -> None:
    """a label of -1 (an ignore value without ignore_index)"""
    y = arrays()[1]
    y[2] = -1
    write_h5(p, labels=y)


@case("labels_float.h5", "hdf5", ("/labels", "labels must be integers, got float64"))
def _labels_float(p: Path) -> None:
    """float labels"""
    write_h5(p, labels=arrays()[1].astype(np.float64))


@case("labels_strings.h5", "hdf5", ("/labels", "labels must be integers"))
def _labels_str(p: Path) -> None:
    """class names stored as labels"""
    write_h5(p, labels=np.array([f"c{i}" for i in arrays()[1]], dtype="S4"))


@case("labels_group.h5", "hdf5", ("/labels", "is a group, expected a dataset"))
def _labels_group(p: Path) -> None:
    """/labels is a group"""
    write_h5(p, labels=None, extra=lambda f: f.create_group("labels"))


@case("binary_labels_not_01.h5", "hdf5",
      ("/labels", "not 0 or 1 (single-logit binary classifier)"))
def _binary(p: Path) -> None:
    """one logit per sample (N,) with labels 0, 1 and 2"""
    z, _ = arrays()
    write_h5(p, logits=z[:, 0], labels=np.arange(N) % 3)


@case("binary_n1_labels_not_01.h5", "hdf5",
      ("/labels", "not 0 or 1 (single-logit binary classifier)"))
def _binary_n1(p: Path) -> None:
    """one logit per sample as (N, 1) with a label -1"""
    z, _ = arrays()
    y = np.arange(N) % 2
    y[7] = -1
    write_h5(p, logits=z[:, :1], labels=y)


@case("labels_all_ignored.h5", "hdf5", ("/labels", "every label equals ignore_index=255"))
def _all_ignored(p: Path) -> None:
    """dense labels that are all the ignore value"""
    rng = np.random.default_rng(5)

    def labels(f: h5py.File) -> None:
        ds = f.create_dataset("labels", data=np.full((N, 2, 2), 255, np.int64))
        ds.attrs["ignore_index"] = 255

    write_h5(p, logits=rng.normal(size=(N, K, 2, 2)).astype(np.float32), labels=None,
             extra=labels)


# --------------------------------------------------------------------------------------------
# /sample_ids, /class_names, /scores, /fit_mask


def _ids(n: int = N) -> np.ndarray:
    return np.array([f"s{i:03d}" for i in range(n)], dtype=object)


@case("duplicate_ids.h5", "hdf5", ("/sample_ids", "1 duplicated sample id(s)", "'s004'"))
def _dup_ids(p: Path) -> None:
    """two rows with the same sample id"""
    ids = _ids()
    ids[9] = ids[4]
    write_h5(p, sample_ids=ids.astype("S"))


@case("ids_wrong_length.h5", "hdf5", ("/sample_ids", "shape (19,) does not match (20,)"))
def _ids_len(p: Path) -> None:
    """19 ids for 20 rows"""
    write_h5(p, sample_ids=_ids(19).astype("S"))


@case("ids_not_strings.h5", "hdf5", ("/sample_ids", "must hold strings, got int64"))
def _ids_int(p: Path) -> None:
    """integer sample ids in HDF5 (must be strings)"""
    write_h5(p, sample_ids=np.arange(N, dtype=np.int64))


@case("ids_bad_utf8.h5", "hdf5", ("/sample_ids", "not valid utf-8"))
def _ids_utf8(p: Path) -> None:
    """sample ids that are not UTF-8"""
    ids = np.array([b"s%03d\xff" % i for i in range(N)], dtype="S6")
    write_h5(p, sample_ids=ids)


@case("class_names_wrong_length.h5", "hdf5", ("/class_names", "shape (3,) does not match (4,)"))
def _names_len(p: Path) -> None:
    """3 class names for K = 4"""
    write_h5(p, class_names=np.array([b"a", b"b", b"c"]))


@case("scores_nan.h5", "hdf5", ("/scores/msp", "1 NaN confidence(s)"))
def _scores_nan(p: Path) -> None:
    """a stored score with a NaN"""
    s = np.linspace(0, 1, N)
    s[11] = np.nan
    write_h5(p, scores__msp=s)


@case("scores_wrong_length.h5", "hdf5", ("/scores/msp", "has 19 rows; /logits has 20"))
def _scores_len(p: Path) -> None:
    """a stored score one row short"""
    write_h5(p, scores__msp=np.linspace(0, 1, N - 1))


@case("scores_2d.h5", "hdf5", ("/scores/msp", "must be a 1-D float array"))
def _scores_2d(p: Path) -> None:
    """a stored score of shape (N, 2)"""
    write_h5(p, scores__msp=np.zeros((N, 2)))


@case("scores_not_group.h5", "hdf5", ("/scores", "must be a group"))
def _scores_ds(p: Path) -> None:
    """/scores is a dataset, not a group"""
    write_h5(p, scores=np.zeros(N))


@case("fit_mask_wrong_shape.h5", "hdf5", ("/fit_mask", "boolean mask"))
def _fit_mask(p: Path) -> None:
    """a /fit_mask of the wrong length"""
    write_h5(p, fit_mask=np.zeros(N + 1, dtype=bool))


# --------------------------------------------------------------------------------------------
# links and layouts that read outside the file


def _target(folder: Path, name: str) -> Path:
    """A valid lsfix file next to the case: what a link would read."""
    z, y = arrays(seed=9)
    target = folder / name
    write_h5(target, logits=z, labels=y)
    return target


@case("external_link.h5", "hdf5", ("/logits", "is an external link to"))
def _ext_link(p: Path) -> None:
    """/logits is an HDF5 external link to another (existing) file"""
    _target(p.parent, "external_link_target.h5")
    write_h5(p, logits=None,
             extra=lambda f: f.__setitem__("logits", h5py.ExternalLink(
                 "external_link_target.h5", "/logits")))


@case("external_link_abs.h5", "hdf5", ("/logits", "is an external link to"))
def _ext_link_abs(p: Path) -> None:
    """/logits is an external link to an absolute path that does not exist"""
    write_h5(p, logits=None, extra=lambda f: f.__setitem__(
        "logits", h5py.ExternalLink("/nonexistent/secret.h5", "/logits")))


@case("external_link_labels.h5", "hdf5", ("/labels", "is an external link to"))
def _ext_labels(p: Path) -> None:
    """/labels is an external link"""
    _target(p.parent, "external_labels_target.h5")
    write_h5(p, labels=None, extra=lambda f: f.__setitem__(
        "labels", h5py.ExternalLink("external_labels_target.h5", "/labels")))


@case("external_link_scores.h5", "hdf5", ("/scores", "is an external link to"))
def _ext_scores(p: Path) -> None:
    """the /scores group is an external link"""
    target = p.parent / "external_scores_target.h5"
    with h5py.File(target, "w") as f:
        f.create_dataset("scores/msp", data=np.linspace(0, 1, N))
    write_h5(p, extra=lambda f: f.__setitem__(
        "scores", h5py.ExternalLink(target.name, "/scores")))


@case("virtual_dataset.h5", "hdf5", ("/logits", "is a virtual dataset"))
def _vds(p: Path) -> None:
    """/logits is a virtual dataset mapping another file"""
    src = p.parent / "virtual_source.h5"
    z, _ = arrays(seed=8)
    with h5py.File(src, "w") as f:
        f.create_dataset("data", data=z)

    def vds(f: h5py.File) -> None:
        layout = h5py.VirtualLayout(shape=(N, K), dtype=np.float32)
        layout[:] = h5py.VirtualSource(src.name, "data", shape=(N, K))
        f.create_virtual_dataset("logits", layout)

    write_h5(p, logits=None, extra=vds)


@case("external_storage.h5", "hdf5", ("/logits", "uses external storage"))
def _ext_storage(p: Path) -> None:
    """/logits stored in an external raw file (HDF5 'external' property)"""
    raw = p.parent / "external_storage.bin"
    z, _ = arrays(seed=7)
    raw.write_bytes(z.tobytes())
    write_h5(p, logits=None, extra=lambda f: f.create_dataset(
        "logits", shape=(N, K), dtype=np.float32, external=[(raw.name, 0, z.nbytes)]))


@case("soft_link.h5", "hdf5", ("/logits", "is a soft link"))
def _soft(p: Path) -> None:
    """/logits is a soft link to another dataset in the file"""
    z, _ = arrays()
    write_h5(p, logits=None, extra=lambda f: (f.create_dataset("raw", data=z),
                                              f.__setitem__("logits", h5py.SoftLink("/raw"))))


# --------------------------------------------------------------------------------------------
# .npy / .npz


def _object_array(p: Path) -> np.ndarray:
    arr = np.empty(2, dtype=object)
    arr[0] = Payload(marker_for(p))
    arr[1] = "x"
    return arr


@case("object_array.npz", "npz", ("/logits", "object arrays are refused (allow_pickle"),
      tags=("pickle",))
def _npz_obj(p: Path) -> None:
    """an .npz whose logits are a pickled object array with a code-running payload"""
    _npz(p, logits=_object_array(p), labels=np.zeros(2, np.int64))


@case("object_array.npy", "npy", "object arrays are refused (allow_pickle", tags=("pickle",))
def _npy_obj(p: Path) -> None:
    """an .npy holding a pickled object array with a code-running payload"""
    with open(p, "wb") as fh:
        np.save(fh, _object_array(p), allow_pickle=True)


@case("npz_no_logits.npz", "npz", "no 'logits' array")
def _npz_no_logits(p: Path) -> None:
    """an .npz with labels only"""
    _npz(p, labels=arrays()[1])


@case("npz_n_mismatch.npz", "npz", ("/labels", "shape (19,) does not match logits"))
def _npz_n(p: Path) -> None:
    """20 rows of logits, 19 labels"""
    z, y = arrays()
    _npz(p, logits=z, labels=y[:19])


@case("npz_labels_float.npz", "npz", ("/labels", "labels must be integers, got float64"))
def _npz_float(p: Path) -> None:
    """float labels"""
    z, y = arrays()
    _npz(p, logits=z, labels=y.astype(np.float64))


@case("npz_nan.npz", "npz", ("/logits", "non-finite logit value(s)"))
def _npz_nan(p: Path) -> None:
    """NaN logits"""
    _npz(p, logits=_with(np.nan), labels=arrays()[1])


@case("npz_duplicate_ids.npz", "npz", ("/sample_ids", "duplicated sample id(s)"))
def _npz_dup(p: Path) -> None:
    """repeated sample ids"""
    z, y = arrays()
    ids = np.array([f"s{i % 10}" for i in range(N)])
    _npz(p, logits=z, labels=y, sample_ids=ids)


@case("npz_truncated.npz", "npz", "not a readable zip archive")
def _npz_trunc(p: Path) -> None:
    """the first 200 bytes of an .npz"""
    z, y = arrays()
    _npz(p, logits=z, labels=y)
    p.write_bytes(p.read_bytes()[:200])


@case("npy_int.npy", "npy", "logits must be floating point, got int64")
def _npy_int(p: Path) -> None:
    """integer logits in an .npy"""
    with open(p, "wb") as fh:
        np.save(fh, np.ones((N, K), dtype=np.int64))


@case("npy_truncated.npy", "npy", "truncated")
def _npy_trunc(p: Path) -> None:
    """an .npy cut in the middle of its data"""
    with open(p, "wb") as fh:
        np.save(fh, arrays()[0])
    p.write_bytes(p.read_bytes()[:200])


@case("npy_bad_header.npy", "npy", "not a valid .npy header")
def _npy_header(p: Path) -> None:
    """the .npy magic followed by a header that is not a Python literal"""
    header = b"{'descr': __import__('os').system('true'), }".ljust(118) + b"\n"
    p.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)


# --------------------------------------------------------------------------------------------
# .pt / .pth (torch.save) and plain pickles


@case("pickle_object.pt", "torch", ("refused: the pickle in this torch.save file names the "
                                    "global", "never unpickles arbitrary objects"),
      tags=("pickle", "torch"))
def _pt_obj(p: Path) -> None:
    """torch.save (zip) of a dict whose logits entry is a code-running object"""
    import torch

    torch.save({"logits": Payload(marker_for(p)), "labels": torch.zeros(2)}, p)


@case("pickle_legacy.pth", "torch", "refused by torch.load(weights_only=True)",
      tags=("pickle", "torch"))
def _pt_legacy(p: Path) -> None:
    """legacy (non-zip) torch.save of a code-running object"""
    import torch

    torch.save(Payload(marker_for(p)), p, _use_new_zipfile_serialization=False)


@case("plain_pickle.pt", "torch", "is a plain pickle, not a torch.save file", tags=("pickle",))
def _plain_pickle(p: Path) -> None:
    """pickle.dumps of a code-running object, named .pt"""
    p.write_bytes(pickle.dumps(Payload(marker_for(p)), protocol=4))


@case("pt_string.pt", "torch", "holds a str", tags=("torch",))
def _pt_str(p: Path) -> None:
    """torch.save of a string"""
    import torch

    torch.save("not logits", p)


@case("pt_truncated.pt", "torch", "truncated or corrupt", tags=("torch",))
def _pt_trunc(p: Path) -> None:
    """the first 300 bytes of a torch.save file"""
    import torch

    torch.save({"logits": torch.zeros(N, K)}, p)
    p.write_bytes(p.read_bytes()[:300])


@case("pt_labels_out_of_range.pt", "torch", ("/labels", "not in [0, 4)"), tags=("torch",))
def _pt_labels(p: Path) -> None:
    """a {'logits', 'labels'} dict with a label equal to K"""
    import torch

    z, y = arrays()
    y[0] = K
    torch.save({"logits": torch.from_numpy(z), "labels": torch.from_numpy(y)}, p)


@case("pt_not_torch.pt", "torch", "is neither a zip archive nor a legacy torch pickle")
def _pt_text(p: Path) -> None:
    """text named .pt"""
    p.write_text("logits go here\n")


@case("zip_neither.npz", "npz", "is a zip archive but neither an .npz")
def _zip_neither(p: Path) -> None:
    """a zip archive with a README in it"""
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("README.txt", "hello")


# --------------------------------------------------------------------------------------------
# .csv / .tsv


def _table(p: Path, text: str | bytes) -> None:
    p.write_bytes(text.encode() if isinstance(text, str) else text)


@case("missing_column.csv", "csv", "missing column 'logit_1'")
def _csv_missing(p: Path) -> None:
    """logit_0 and logit_2 but no logit_1"""
    _table(p, "logit_0,logit_2,label\n0.1,0.2,0\n0.3,0.1,2\n")


@case("text_in_number.csv", "csv", ("line 3, column 'logit_1'", "'abc' is not a number"))
def _csv_text(p: Path) -> None:
    """text in a logit column"""
    _table(p, "logit_0,logit_1,label\n0.1,0.2,0\n0.3,abc,1\n")


@case("empty_cell.csv", "csv", ("line 2, column 'logit_0'", "empty cell"))
def _csv_empty(p: Path) -> None:
    """an empty logit cell"""
    _table(p, "logit_0,logit_1,label\n,0.2,0\n0.3,0.1,1\n")


@case("float_label.csv", "csv", ("column 'label'", "'1.5' is not an integer label"))
def _csv_float_label(p: Path) -> None:
    """a float label"""
    _table(p, "logit_0,logit_1,label\n0.1,0.2,0\n0.3,0.1,1.5\n")


@case("label_out_of_range.csv", "csv", ("column 'label'", "label 5 is not in [0, 2)"))
def _csv_label_range(p: Path) -> None:
    """a label outside [0, K)"""
    _table(p, "logit_0,logit_1,label\n0.1,0.2,0\n0.3,0.1,5\n")


@case("binary_label_2.csv", "csv", "not 0 or 1 (single-logit binary classifier)")
def _csv_binary(p: Path) -> None:
    """one logit column (binary) with a label 2"""
    _table(p, "logit_0,label\n0.1,0\n-0.3,2\n")


@case("csv_nan.csv", "csv", ("column 'logit_0'", "'nan' is not finite"))
def _csv_nan(p: Path) -> None:
    """a nan logit"""
    _table(p, "logit_0,logit_1,label\nnan,0.2,0\n0.3,0.1,1\n")


@case("csv_inf.csv", "csv", ("column 'logit_1'", "'-inf' is not finite"))
def _csv_inf(p: Path) -> None:
    """a -inf logit"""
    _table(p, "logit_0,logit_1,label\n0.1,-inf,0\n0.3,0.1,1\n")


@case("header_only.csv", "csv", "no data rows")
def _csv_header(p: Path) -> None:
    """a header and nothing else (zero rows)"""
    _table(p, "logit_0,logit_1,label\n")


@case("empty_table.csv", "csv", "empty table")
def _csv_blank(p: Path) -> None:
    """blank lines only"""
    _table(p, "\n\n")


@case("ragged.tsv", "tsv", ("line 3", "2 field(s), the header has 3"))
def _tsv_ragged(p: Path) -> None:
    """a row with a missing field"""
    _table(p, "logit_0\tlogit_1\tlabel\n0.1\t0.2\t0\n0.3\t0.1\n")


@case("not_utf8.csv", "csv", "not UTF-8 text")
def _csv_latin1(p: Path) -> None:
    """Latin-1 bytes"""
    _table(p, "logit_0,logit_1,label,sample_id\n0.1,0.2,0,caf\xe9\n".encode("latin-1"))


@case("unknown_columns.csv", "csv", "neither a logits table")
def _csv_unknown(p: Path) -> None:
    """columns of neither layout"""
    _table(p, "prob,target\n0.9,1\n0.2,0\n")


@case("duplicate_ids.csv", "csv", ("column 'sample_id'", "sample id 'a' is repeated"))
def _csv_dup(p: Path) -> None:
    """a repeated sample id"""
    _table(p, "logit_0,logit_1,label,sample_id\n0.1,0.2,0,a\n0.3,0.1,1,b\n0.2,0.2,1,a\n")


@case("scores_bad_correct.csv", "csv", ("column 'correct'", "'2' is not 0/1 or true/false"))
def _score_table(p: Path) -> None:
    """a confidence/correct table with correct = 2"""
    _table(p, "confidence,correct\n0.9,1\n0.4,2\n")


@case("scores_missing_correct.tsv", "tsv", "missing column 'correct'")
def _score_table_missing(p: Path) -> None:
    """a score table without its correct column"""
    _table(p, "confidence\tsample_id\n0.9\ta\n0.4\tb\n")


@case("unbalanced_quote.csv", "csv", "line")
def _csv_quote(p: Path) -> None:
    """a quoted cell that never closes"""
    _table(p, 'logit_0,logit_1,label\n"0.1,0.2,0\n0.3,0.1,1\n')


# --------------------------------------------------------------------------------------------
# not a case: a file the HDF5 C library loops on forever


def write_corrupt_global_heap(path: Path) -> None:
    """A valid lsfix file whose global heap (where variable-length strings such as the
    ``lsfix_schema`` attribute live) has its free-space object's size zeroed. libhdf5 2.0.0
    loops forever in ``H5HG__cache_heap_deserialize`` when it reads any such string: no
    Python code runs meanwhile, so neither lsfix nor Ctrl-C can stop it (found by
    ``test_fuzz.py``; see ``test_kill.py::test_a_read_stuck_in_libhdf5_still_ends_on_sigterm``).
    Kept out of :func:`cases`: it would hang the sweep."""
    write_h5(path)
    data = bytearray(path.read_bytes())
    start = data.find(b"GCOL")
    pos = start + 16
    while True:
        index = int.from_bytes(data[pos : pos + 2], "little")
        size = int.from_bytes(data[pos + 8 : pos + 16], "little")
        if index == 0:  # the free-space object
            break
        pos += 16 + (size + 7) // 8 * 8
    data[pos + 8 : pos + 16] = bytes(8)
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------


def cases() -> list[Case]:
    """Every registered case, in definition order."""
    return [c for c, _ in _REGISTRY]


def write_corpus(folder: str | Path, *, with_torch: bool | None = None) -> list[Case]:
    """Write every case into ``folder`` (created) and ``manifest.json``; return the cases.

    Cases tagged ``torch`` are skipped when torch is not importable (``with_torch=None``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if with_torch is None:
        try:
            import torch  # noqa: F401
        except ImportError:
            with_torch = False
        else:
            with_torch = True
    made = []
    for c, build in _REGISTRY:
        if "torch" in c.tags and not with_torch:
            continue
        build(folder / c.name)
        made.append(c)
    manifest = [{**asdict(c), "fragments": list(c.fragments), "tags": list(c.tags)}
                for c in made]
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 prog="python -m tests.hardening.corpus")
    ap.add_argument("outdir", nargs="?", help="folder to write the corpus into")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args(argv)
    if args.list:
        for c in cases():
            print(f"{c.name}\t{c.reader}\texit {c.exit}\t{' | '.join(c.fragments)}")
        return 0
    if not args.outdir:
        ap.error("give OUTDIR (or --list)")
    made = write_corpus(args.outdir)
    print(f"wrote {len(made)} cases to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

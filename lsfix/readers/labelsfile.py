"""``--labels FILE``: labels kept apart from the logits, read with cost bounded by the file.

``FILE.npy`` (one array), ``FILE.npz`` (key ``labels``/``y``/``y_true``/``targets``/``label``,
or the array named after a colon: ``FILE.npz:arr_1`` of ``np.savez(f, logits, labels)``),
``FILE.txt`` (integers or class names separated by blanks or newlines; ``np.savetxt``), or
``FILE.csv``/``FILE.tsv``: the column ``label``/``y_true``/``target``/... (see
:data:`LABEL_COLUMNS`), a single column, or the column named after a colon:
``table.csv:species``. Nothing is unpickled.

Every file is untrusted. Memory follows the real data, never what a header or a token claims:

* ``.npy``/``.npz`` go through the bounded array reader of :mod:`lsfix.readers.foreign` (the declared
  shape is checked against the bytes present; a deflated member may expand at most
  :data:`lsfix.readers.untrusted.MAX_EXPANSION` times beyond its floor); every zip and zlib failure
  (not a zip, bad CRC, bad deflate stream) is one line naming the file.
* text and tables are read in blocks; a cell longer than :data:`MAX_CELL` characters is
  refused (a name of a million characters would otherwise widen every cell of a numpy string
  array to it); integers are converted block by block into ``int64``; class names are kept
  once each (codes into a vocabulary of at most :data:`MAX_NAMES` names).

Error messages quote at most :data:`lsfix.safetext.QUOTE_LIMIT` characters of any value.
"""

from __future__ import annotations

import array
import csv
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from lsfix.errors import InputError, LsfixError
from lsfix.readers.foreign import is_number
from lsfix.safetext import clip, quote

LABEL_COLUMNS = ("label", "labels", "y", "y_true", "target", "targets", "true_label", "class")
NPZ_KEYS = ("labels", "y", "y_true", "targets", "label")
#: Longest cell (characters) of a text or table labels file.
MAX_CELL = 4096
#: Most distinct class names a labels file may hold.
MAX_NAMES = 1_000_000
#: Bytes read per block of a text labels file.
BLOCK = 1 << 20


@dataclass(frozen=True)
class ClassNames:
    """Labels given as class names: ``codes[i]`` indexes ``vocab`` (each name held once)."""

    codes: np.ndarray
    vocab: list[str]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    def first(self) -> str:
        return self.vocab[int(self.codes[0])] if self.codes.size else ""


class _Cells:
    """Integers while every cell is one; class names (codes + vocabulary) from the first
    cell that is not. Fed in blocks, so memory follows the labels, not the file's text."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ints: list[np.ndarray] = []
        self.codes: array.array[int] | None = None
        self.vocab: dict[str, int] = {}
        self.seen = 0  # cells fed so far
        self.odd: dict[int, str] = {}  # integer cells not written as str(int) ("007", "+3")

    def feed(self, cells: list[str]) -> None:
        for c in cells:
            if len(c) > MAX_CELL:
                raise InputError(f"a cell of {len(c)} characters ({quote(c)}); labels are "
                                 f"integers or class names of at most {MAX_CELL}",
                                 file=self.name)
        if self.codes is None:
            try:
                arr = np.fromiter((int(c) for c in cells), dtype=np.int64, count=len(cells))
            except ValueError:
                self._to_names()
            except OverflowError:
                big = next(c for c in cells if _too_big(c))
                raise InputError(f"label {quote(big)} is out of the int64 range",
                                 file=self.name) from None
            else:
                for i, c in enumerate(cells):  # kept in case names follow: "007" stays "007"
                    if c != str(int(arr[i])):
                        self.odd[self.seen + i] = c
                self.ints.append(arr)
                self.seen += len(cells)
                return
        assert self.codes is not None
        for c in cells:
            code = self.vocab.get(c)
            if code is None:
                if len(self.vocab) >= MAX_NAMES:
                    raise InputError(f"more than {MAX_NAMES} distinct class names",
                                     file=self.name)
                code = self.vocab[c] = len(self.vocab)
            self.codes.append(code)

    def _to_names(self) -> None:
        self.codes = array.array("q")
        done, self.ints = self.ints, []
        at = 0
        for block in done:  # integers seen before the first name are names too ("3")
            self.feed_names([self.odd.get(at + i, str(int(v))) for i, v in enumerate(block)])
            at += block.shape[0]
        self.odd.clear()

    def feed_names(self, cells: list[str]) -> None:
        assert self.codes is not None
        for c in cells:
            code = self.vocab.get(c)
            if code is None:
                code = self.vocab[c] = len(self.vocab)
            self.codes.append(code)

    def result(self) -> np.ndarray | ClassNames:
        if self.codes is None:
            return np.concatenate(self.ints) if self.ints else np.zeros(0, np.int64)
        vocab = [""] * len(self.vocab)
        for k, v in self.vocab.items():
            vocab[v] = k
        return ClassNames(np.frombuffer(self.codes, dtype=np.int64).copy(), vocab)


def _too_big(cell: str) -> bool:
    try:
        v = int(cell)
    except ValueError:
        return False
    return not (-(1 << 63) <= v < (1 << 63))


def read_labels_file(spec: str, dense_shape: tuple[int, ...] | None = None
                     ) -> tuple[np.ndarray | ClassNames, str]:
    """Labels from ``--labels FILE``: ``(labels, display name)``.

    The labels are an ``int64`` array, or :class:`ClassNames` (mapped onto the input's class
    names by the caller). ``dense_shape`` ``(N, H, W)``: the labels of dense predictions; an
    array of exactly that shape (``.npy``/``.npz``) is flattened in the rows' order (image by
    image, then row-major pixels). Any other shape than one column is refused.
    """
    from lsfix.streams import display_name, note_input

    path, column = spec, None
    if not Path(spec).exists() and ":" in spec:
        path, column = spec.rsplit(":", 1)
    name = display_name(spec)
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file (--labels)", file=display_name(path))
    note_input(path, display_name(path))  # an output of this command may never replace it
    suffix = p.suffix.lower()
    if column is not None and suffix not in (".npz", ".csv", ".tsv"):
        raise InputError(f"{quote(':' + column)} names an array of an .npz or a column of a "
                         f".csv/.tsv; {display_name(p.name)} holds one list of labels (drop "
                         f"{quote(':' + column)})", file=display_name(path))
    try:
        with open(p, "rb") as fh:
            if suffix == ".npy":
                arr: np.ndarray | ClassNames = _npy(fh, name)
            elif suffix == ".npz":  # FILE.npz:KEY: arr_1 of np.savez(f, logits, labels)
                arr = _npz(fh, name if column is None else display_name(path), column)
            elif suffix in (".csv", ".tsv"):
                arr = _table(fh, name, "\t" if suffix == ".tsv" else ",", column)
            else:
                arr = _text(fh, name)
    except LsfixError:
        raise
    except MemoryError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, EOFError, zipfile.BadZipFile,
            zlib.error, NotImplementedError, KeyError, csv.Error) as exc:
        raise InputError(f"unreadable labels file ({_describe(exc)})", file=name) from None
    return _checked(arr, name, dense_shape), name


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {clip(text, 120)}" if text else type(exc).__name__


def _checked(arr: np.ndarray | ClassNames, name: str, dense_shape: tuple[int, ...] | None
             ) -> np.ndarray | ClassNames:
    if isinstance(arr, ClassNames):
        return arr
    if arr.ndim > 1 and dense_shape is not None and arr.shape == tuple(dense_shape):
        arr = arr.reshape(-1)  # (N, H, W): the pixel rows' order
    if arr.ndim != 1:
        also = f" or {tuple(dense_shape)} (N, H, W)" if dense_shape is not None else ""
        raise InputError(f"labels must be one column{also}, got shape {arr.shape}", file=name)
    if arr.dtype.kind in "US":
        cells = _Cells(name)
        step = 1 << 16
        for i in range(0, arr.shape[0], step):
            part = arr[i:i + step]
            cells.feed([bytes(c).decode("utf-8") if arr.dtype.kind == "S" else str(c)
                        for c in part])
        return cells.result()
    if arr.dtype.kind == "f":
        if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise InputError("labels must be integers (or class names), got non-integral "
                             "numbers", file=name)
        if arr.size and (arr.min() < -(2.0 ** 63) or arr.max() >= 2.0 ** 63):
            raise InputError("labels are out of the int64 range", file=name)
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iub":
        raise InputError(f"labels must be integers or class names, got {arr.dtype}", file=name)
    return arr


# --------------------------------------------------------------------------------------------
# arrays


def _npy(fh: IO[bytes], name: str) -> np.ndarray:
    from lsfix.readers.npfiles import _npy_data, _npy_header

    size = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    try:
        hdr = _npy_header(fh)
    except (ValueError, TypeError, SyntaxError, EOFError) as exc:
        raise InputError(f"not a valid .npy header ({_describe(exc)})", file=name) from None
    return _npy_data(fh, hdr, size - fh.tell(), name, "")


def _npz(fh: IO[bytes], name: str, key: str | None = None) -> np.ndarray:
    """The labels array of an ``.npz``: ``key`` (``FILE.npz:KEY``), else the first of
    :data:`NPZ_KEYS` it holds."""
    from lsfix.readers import untrusted
    from lsfix.readers.npfiles import _npy_data, _npy_header

    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"not a readable .npz (zip) archive ({_describe(exc)}); truncated or "
                         "corrupt?", file=name) from None
    with zf:
        untrusted.check_zip(zf, file=name)  # overlapping members: a zip bomb
        members = {m[:-4]: m for m in zf.namelist() if m.endswith(".npy")}
        held = ", ".join(quote(k, 40) for k in list(members)[:8])
        held += ", ..." if len(members) > 8 else ""
        if key is not None:
            if key not in members:
                raise InputError(f"has no array {quote(key, 40)} (it holds "
                                 f"{held or 'nothing'})", file=name)
        else:
            key = next((k for k in NPZ_KEYS if k in members), None)
        if key is None:
            raise InputError(f"no labels array (looked for labels, y, y_true, targets; it "
                             f"holds {held or 'nothing'}: name one as {name}:KEY)", file=name)
        info = zf.getinfo(members[key])
        untrusted.check_expansion(info.compress_size, info.file_size, file=name,
                                  dataset=f"/{key}")
        try:
            with zf.open(info) as fp:
                hdr = _npy_header(fp)
                return _npy_data(fp, hdr, info.file_size - fp.tell(), name, f"/{key}")
        except LsfixError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # zlib/zipfile/numpy errors of a corrupt member
            raise InputError(f"unreadable array ({_describe(exc)})", file=name,
                             dataset=f"/{key}") from None


# --------------------------------------------------------------------------------------------
# text and tables


def _text(fh: IO[bytes], name: str) -> np.ndarray | ClassNames:
    """Cells separated by ASCII blanks, read :data:`BLOCK` bytes at a time."""
    cells = _Cells(name)
    carry = b""
    first = True
    while True:
        block = fh.read(BLOCK)
        if first:
            block = block.removeprefix(b"\xef\xbb\xbf")
            first = False
        if not block:
            break
        data = carry + block
        parts = data.split()
        if data[-1:].isspace() or not parts:
            carry = b""
        else:
            carry = parts.pop()
        if len(carry) > 4 * MAX_CELL:
            raise InputError(f"a cell of more than {MAX_CELL} characters "
                             f"({quote(carry[:MAX_CELL].decode('utf-8', 'replace'))}); labels "
                             f"are integers or class names of at most {MAX_CELL}", file=name)
        cells.feed([c.decode("utf-8") for c in parts])
    if carry:
        cells.feed([carry.decode("utf-8")])
    return cells.result()


def _table(fh: IO[bytes], name: str, delimiter: str, column: str | None
           ) -> np.ndarray | ClassNames:
    """One column of a CSV/TSV, streamed (only that column's cells are kept)."""
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    old = csv.field_size_limit()
    csv.field_size_limit(MAX_CELL)
    try:
        rd = csv.reader(text, delimiter=delimiter, strict=True)
        try:
            header = next(r for r in rd if r)
        except StopIteration:
            raise InputError("empty table", file=name) from None
        except csv.Error as exc:
            raise InputError(f"line {rd.line_num}: {clip(exc, 120)}", file=name) from None
        header = [c.strip() for c in header]
        shown = ", ".join(quote(h, 40) for h in header[:12]) + (", ..." if len(header) > 12
                                                                  else "")
        cells = _Cells(name)
        pending: list[str] = []
        if column is not None:
            if column not in header:
                raise InputError(f"no column {quote(column)}; columns: {shown}", file=name)
            j = header.index(column)
        elif len(header) == 1:
            j = 0
            if is_number(header[0]):
                pending.append(header[0])
        else:
            found = [h for h in header if h.lower() in LABEL_COLUMNS]
            if len(found) != 1:
                raise InputError(f"which column holds the labels? name it FILE:COLUMN (columns: "
                                 f"{shown})", file=name)
            j = header.index(found[0])
        try:
            for row in rd:
                if not row:
                    continue
                pending.append(row[j].strip() if j < len(row) else "")
                if len(pending) >= 1 << 16:
                    cells.feed(pending)
                    pending = []
        except csv.Error as exc:
            raise InputError(f"line {rd.line_num}: {clip(exc, 120)} (cells are at most "
                             f"{MAX_CELL} characters)", file=name) from None
        cells.feed(pending)
        text.detach()
        return cells.result()
    finally:
        csv.field_size_limit(old)


def class_name_codes(labels: ClassNames, classes: list[str], *, file: str, input_name: str
                     ) -> np.ndarray:
    """``labels`` as class indices of ``classes`` (exit 3 naming the first unknown name)."""
    index = {c: i for i, c in enumerate(classes)}
    lookup = np.empty(len(labels.vocab), dtype=np.int64)
    for code, cname in enumerate(labels.vocab):
        i = index.get(cname)
        if i is None:
            listed = ", ".join(quote(c, 40) for c in classes[:5])
            raise InputError(f"class {quote(cname)} is not one of {clip(input_name)}'s classes "
                             f"({listed}{', ...' if len(classes) > 5 else ''})", file=file)
        lookup[code] = i
    return lookup[labels.codes]


__all__ = ["ClassNames", "LABEL_COLUMNS", "MAX_CELL", "MAX_NAMES", "class_name_codes",
           "read_labels_file"]

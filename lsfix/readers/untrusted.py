"""Checks for values read from files: attributes, JSON documents, header fields.

Nothing read from a file is used before it has been checked for type and range here. Each
check raises :class:`~lsfix.errors.InputError` (exit 3) naming the file and the key
(``file.h5:/ attribute 'lsfix_shard': 'start' must be an integer, got inf``); none of them can
raise anything else (no ``OverflowError`` from ``int(inf)``, no ``RecursionError`` from JSON
nested 100,000 deep, no ``MemoryError`` from a 10^9-element list).

Limits on JSON read from files (:func:`loads`): at most :data:`MAX_JSON_BYTES` bytes and
:data:`MAX_JSON_DEPTH` levels of nesting. ``NaN``, ``Infinity`` and numbers that overflow
(``1e999``) parse as float NaN/inf, as Python's ``json`` does (files written by lsfix before
0.x hold ``NaN`` for an undefined AURC); every reader then checks each value it uses with
:func:`integer`, :func:`expect` or a range check, which refuse them where a number must be
finite.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from lsfix.errors import InputError

MAX_JSON_BYTES = 16 << 20
MAX_JSON_DEPTH = 64


def nesting_depth(text: str, limit: int) -> int:
    """Bracket nesting depth of a JSON text (strings skipped), counting up to ``limit + 1``."""
    depth = best = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best = depth
                if best > limit:
                    return best
        elif ch in "]}":
            depth -= 1
    return best


def loads(raw: Any, *, file: str, key: str, dataset: str | None = "/") -> Any:
    """Parse JSON read from ``file`` (attribute or document ``key``), strictly.

    Raises
    ------
    InputError
        Not text, not UTF-8, too large, nested deeper than :data:`MAX_JSON_DEPTH`, or invalid
        JSON.
    """
    where = f"attribute {key!r}" if dataset is not None else key
    if isinstance(raw, np.ndarray) and raw.shape == ():
        raw = raw[()]
    if isinstance(raw, np.bytes_ | bytes):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{where} is not valid UTF-8", file=file, dataset=dataset) from None
    if not isinstance(raw, str):
        raise InputError(f"{where} must be a JSON string, got {type(raw).__name__}",
                         file=file, dataset=dataset)
    if len(raw) > MAX_JSON_BYTES:
        raise InputError(f"{where} is {len(raw)} characters of JSON; the limit is "
                         f"{MAX_JSON_BYTES}", file=file, dataset=dataset)
    if nesting_depth(raw, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise InputError(f"{where} is nested more than {MAX_JSON_DEPTH} levels deep",
                         file=file, dataset=dataset)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = str(exc).split("\n")[0][:80]
        raise InputError(f"{where} is not valid JSON ({reason})", file=file,
                         dataset=dataset) from None


def expect(value: Any, kind: type | tuple[type, ...], *, file: str, key: str,
           dataset: str | None = "/") -> Any:
    """``value`` if it is a ``kind`` (dict, list, str ...), else an :class:`InputError`."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
        return value
    names = {dict: "a JSON object", list: "a JSON list", str: "a string", int: "an integer",
             float: "a number"}
    want = " or ".join(names.get(k, k.__name__) for k in kinds)
    raise InputError(f"{key} must be {want}, got {_show(value)}", file=file, dataset=dataset)


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) \
        else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def integer(value: Any, *, file: str, key: str, lo: int | None = None, hi: int | None = None,
            dataset: str | None = "/") -> int:
    """An integer in ``[lo, hi]`` from an attribute or JSON value.

    Accepts Python/numpy integers (any width: a uint64 above 2^63 keeps its value), integral
    finite floats and 0-d/1-element arrays of them; refuses booleans, NaN, inf, strings and
    fractions with an :class:`InputError` naming ``file`` and ``key``.
    """
    v = value
    if isinstance(v, np.ndarray):
        if v.size != 1:
            raise InputError(f"{key} must be one integer, got an array of shape {v.shape}",
                             file=file, dataset=dataset)
        v = v.reshape(-1)[0]
    if isinstance(v, bool | np.bool_):
        raise InputError(f"{key} must be an integer, got {bool(v)}", file=file, dataset=dataset)
    if isinstance(v, int | np.integer):
        out = int(v)
    elif isinstance(v, float | np.floating):
        f = float(v)
        if not math.isfinite(f) or f != int(f):
            raise InputError(f"{key} must be an integer, got {f!r}", file=file, dataset=dataset)
        out = int(f)
    else:
        raise InputError(f"{key} must be an integer, got {_show(v)}", file=file, dataset=dataset)
    if (lo is not None and out < lo) or (hi is not None and out > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        raise InputError(f"{key} = {out} is outside [{lo_s}, {hi_s}]", file=file,
                         dataset=dataset)
    return out


def text(value: Any, *, file: str, key: str, dataset: str | None = "/",
         limit: int = 4096) -> str:
    """A short string attribute (bytes decoded as UTF-8)."""
    v = value
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, bytes | np.bytes_):
        try:
            v = bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{key} is not valid UTF-8", file=file, dataset=dataset) from None
    if not isinstance(v, str):
        raise InputError(f"{key} must be a string, got {_show(v)}", file=file, dataset=dataset)
    if len(v) > limit:
        raise InputError(f"{key} is {len(v)} characters long; the limit is {limit}",
                         file=file, dataset=dataset)
    return v


def flag(value: Any, *, file: str, key: str, dataset: str | None = "/") -> bool:
    """A boolean attribute (numpy bool or the integers 0/1)."""
    v = value
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(-1)[0]
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer) and int(v) in (0, 1):
        return bool(v)
    raise InputError(f"{key} must be true or false, got {_show(v)}", file=file, dataset=dataset)


#: Compressed data may expand at most this many times ...
MAX_EXPANSION = 100
#: ... once it is larger than this many bytes (smaller data may expand freely).
EXPANSION_FLOOR = 64 << 20


def check_expansion(stored: int, expanded: int, *, file: str, dataset: str | None) -> None:
    """Refuse compressed data that would expand more than :data:`MAX_EXPANSION` times beyond
    :data:`EXPANSION_FLOOR` bytes (a "zip bomb": 1 MB of deflated zeros is 1 GB of logits).
    Real logits compress about 1.1-3 times."""
    if expanded > EXPANSION_FLOOR and expanded > MAX_EXPANSION * max(1, stored):
        raise InputError(
            f"{stored} stored bytes expand to {expanded} ({expanded // max(1, stored)}x); "
            f"lsfix reads compressed data expanding at most {MAX_EXPANSION}x beyond "
            f"{EXPANSION_FLOOR >> 20} MiB (a compression bomb?)", file=file, dataset=dataset)


#: Most members of a zip archive (``.npz``, torch.save) lsfix reads.
MAX_ZIP_MEMBERS = 100_000


def check_zip(archive: Any, error: Any = None, *, file: str = "", dataset: str | None = None
              ) -> None:
    """Refuse a zip archive whose members overlap (one stored stream shared by many members:
    a zip bomb that Python before 3.11.8/3.12.2 does not detect) or that has more than
    :data:`MAX_ZIP_MEMBERS` members. ``error``: the exception class to raise with a message
    (default :class:`~lsfix.errors.InputError` naming ``file``)."""
    def refuse(msg: str) -> None:
        if error is None:
            raise InputError(msg, file=file, dataset=dataset)
        raise error(msg)

    infos = archive.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        refuse(f"a zip archive of {len(infos)} members (the limit is {MAX_ZIP_MEMBERS})")
    spans = sorted((i.header_offset, 30 + len(i.orig_filename.encode("utf-8", "replace"))
                    + i.compress_size, i.orig_filename) for i in infos)
    end = getattr(archive, "start_dir", None)
    for (start, length, name), nxt in zip(spans, [*spans[1:], None], strict=False):
        limit = nxt[0] if nxt is not None else end
        if start < 0 or (limit is not None and start + length > limit):
            refuse(f"zip member {name[:60]!r} overlaps the next one (a zip bomb?)")





#: Largest JSON document lsfix reads from a file (``--params``, ``--threshold-params``).
MAX_JSON_FILE = 16 << 20


def read_json(path: str) -> Any:
    """A JSON document in a file the user named, read strictly (:func:`loads`: size, nesting,
    NaN/Infinity refused; :class:`InputError` naming the file, exit 3)."""
    from lsfix import streams

    name = streams.display_name(path)
    try:
        with open(path, "rb") as fh:
            streams.note_input(path)
            data = fh.read(MAX_JSON_FILE + 1)
    except FileNotFoundError:
        raise InputError("no such file", file=name) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", file=name) from None
    if len(data) > MAX_JSON_FILE:
        raise InputError(f"is larger than {MAX_JSON_FILE} bytes; not a fit file", file=name)
    return loads(data, file=name, key="JSON document", dataset=None)


__all__ = ["MAX_JSON_FILE", "read_json", "check_expansion", "check_zip", "MAX_ZIP_MEMBERS", "loads", "expect", "integer", "text", "flag", "nesting_depth",
           "MAX_JSON_DEPTH", "MAX_JSON_BYTES", "MAX_EXPANSION", "EXPANSION_FLOOR"]

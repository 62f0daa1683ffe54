"""Row sources: logits read in bounded chunks of rows, as float64, checked finite.

A *row source* is anything with ``shape == (n, k)`` and ``rows(start, stop) -> ndarray`` of
shape ``(stop - start, k)`` and dtype float64. :class:`ArrayRows` wraps an in-memory array or
any object that slices like one (an ``h5py.Dataset``), so the numeric core never needs to know
where the logits live. Binary classifiers with one logit ``z`` are read as the two logits
``(0, z)``; dense outputs ``(N, K, *spatial)`` are read pixel-major as ``(N * prod(spatial), K)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from lsfix.errors import InputError

#: Elements of float64 per working chunk (2 MiB per temporary array). Small enough that
#: temporaries are recycled by the allocator instead of being mapped fresh from the kernel
#: (glibc's mmap threshold is 32 MiB), and that a chunk's passes stay in cache.
CHUNK_ELEMENTS = 1 << 18


class RowSource(Protocol):
    """Protocol for chunked float64 access to an ``(n, k)`` logit matrix."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def rows(self, start: int, stop: int) -> np.ndarray: ...


def chunk_rows_for(k: int, chunk_elements: int = CHUNK_ELEMENTS) -> int:
    """Rows per chunk so that one float64 chunk holds about ``chunk_elements`` values."""
    return max(1, chunk_elements // max(1, k))


class ArrayRows:
    """Row source over an array-like of shape ``(N,)``, ``(N, K)`` or ``(N, K, *spatial)``.

    Parameters
    ----------
    data : array-like
        ``numpy.ndarray`` or an object with ``shape``, ``dtype`` and numpy-style slicing
        (``h5py.Dataset``). Never copied as a whole.
    name : str
        ``file:/dataset`` used in error messages.
    check_finite : bool
        Raise :class:`InputError` naming the count and first row of non-finite logits when a
        chunk holds NaN or +-inf (the rest of the data is scanned to count them).
    """

    def __init__(self, data: Any, name: str = "logits", *, check_finite: bool = True) -> None:
        shape = tuple(int(s) for s in data.shape)
        if len(shape) == 0:
            raise InputError(f"logits must have shape (N, K); got a scalar {shape}", file=name)
        self._data = data
        self._name = name
        self._check = check_finite
        self.binary = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
        self.spatial: tuple[int, ...] = tuple(shape[2:])
        self.n_items = shape[0]
        self._pixels = int(np.prod(self.spatial)) if self.spatial else 1
        k = 2 if self.binary else shape[1]
        self._shape = (self.n_items * self._pixels, k)
        self._cached: np.ndarray | None = None  # the last dense image read (stored dtype)
        self._cached_item = -1
        chunks = getattr(data, "chunks", None)  # h5py storage layout
        self.storage_rows: int | None = (
            int(chunks[0]) * self._pixels if chunks and self._pixels == 1 else None
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def raw_dtype(self) -> np.dtype[Any]:
        """The stored dtype of the logits (native byte order)."""
        dt = np.dtype(self._data.dtype)
        return dt.newbyteorder("=") if dt.kind == "f" else dt

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Read stored rows ``start:stop`` of a plain ``(N, K)`` source into ``out`` (shape
        ``(stop - start, K)``, :attr:`raw_dtype`) without allocating: ``read_direct`` when
        the data has it (``h5py.Dataset``), else a copy from the slice."""
        direct = getattr(self._data, "read_direct", None)
        if direct is not None:
            direct(out, np.s_[start:stop], np.s_[0 : stop - start])
        else:
            np.copyto(out, self._data[start:stop], casting="same_kind")

    def drop_cache(self) -> None:
        """Forget the dense image kept by :meth:`rows` (e.g. after a look at the first rows)."""
        self._cached, self._cached_item = None, -1

    def read_image_into(self, item: int, out: np.ndarray) -> None:
        """Read item ``item`` of a dense source, ``(K, *spatial)`` in its stored layout and
        :attr:`raw_dtype`, into ``out`` without allocating (``read_direct`` when the data
        has it). Not checked for finite values (:meth:`check_finite_block` does that)."""
        direct = getattr(self._data, "read_direct", None)
        if direct is not None:
            direct(out, np.s_[item], None)
        else:
            np.copyto(out, self._data[item], casting="same_kind")

    def check_finite_block(self, start: int, raw: np.ndarray) -> None:
        """Raise the non-finite error for a block read by :meth:`read_into` (no-op when
        every value is finite)."""
        self._finite(raw, start)

    def _raw(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._data[start:stop], dtype=np.float64)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the ``(n, k)`` view, float64."""
        if self._pixels == 1:
            raw = self._raw(start, stop)
            self._finite(raw, start)
            if self.binary:
                z = raw.reshape(-1)
                out = np.zeros((z.shape[0], 2), dtype=np.float64)
                out[:, 1] = z
                return out
            return raw
        # dense: rows are pixels. Each image is read whole, once, in the file's own layout
        # (K, *spatial) and kept until a row of another image is asked for, so a pass over
        # the rows reads every image exactly once, whatever the chunk size.
        k = self._shape[1]
        out = np.empty((stop - start, k), dtype=np.float64)
        pos = start
        while pos < stop:
            item, off = divmod(pos, self._pixels)
            take = min(stop - pos, self._pixels - off)
            image = self._image(item).reshape(k, self._pixels)
            out[pos - start : pos - start + take] = image[:, off : off + take].T
            pos += take
        return out

    def _image(self, item: int) -> np.ndarray:
        """Item ``item`` of a dense source, ``(K, *spatial)`` in its stored dtype (cached)."""
        if self._cached_item != item:
            self._cached = None  # free the previous image before reading the next
            raw = np.asarray(self._data[item : item + 1])[0]
            self._finite(raw[None], item)
            self._cached, self._cached_item = raw, item
        assert self._cached is not None
        return self._cached

    def _finite(self, raw: np.ndarray, first_item: int) -> None:
        if not self._check:
            return
        bad = ~np.isfinite(raw)
        if not bad.any():
            return
        per_row = bad.reshape(bad.shape[0], -1).any(axis=1)
        first = first_item + int(np.argmax(per_row))
        count = int(bad.sum())
        step = max(1, chunk_rows_for(int(np.prod(raw.shape[1:])) or 1))
        pos = first_item + raw.shape[0]
        while pos < self.n_items:
            nxt = min(self.n_items, pos + step)
            count += int((~np.isfinite(self._raw(pos, nxt))).sum())
            pos = nxt
        raise InputError(
            f"{count} non-finite logit value(s) (NaN or inf); first in row {first}", file=self._name
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole ``(n, k)`` float64 view in memory (``np.asarray(rows)``)."""
        out = self.rows(0, self._shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, rows)`` over the whole source in bounded chunks."""
        yield from iter_chunks(self, chunk_rows)


def whole_chunks(rows: int, storage_rows: int | None) -> int:
    """``rows`` rounded down to a multiple of the storage chunk rows (at least one chunk), so
    no HDF5 chunk is read twice; unchanged when the storage layout is unknown."""
    if not storage_rows:
        return rows
    return max(storage_rows, (rows // storage_rows) * storage_rows)


def iter_chunks(src: RowSource, chunk_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, float64 rows)`` chunks covering ``src``.

    Without ``chunk_rows``, a chunk holds about :data:`CHUNK_ELEMENTS` values, rounded to a
    multiple of the storage chunk rows when the source says it has them (``storage_rows``).
    """
    n, k = src.shape
    step = chunk_rows or whole_chunks(chunk_rows_for(k), getattr(src, "storage_rows", None))
    for start in range(0, n, step):
        yield start, src.rows(start, min(n, start + step))


def as_rows(logits: Any, name: str = "logits") -> RowSource:
    """Return ``logits`` as a row source (already one, or wrap an array-like)."""
    if hasattr(logits, "rows") and hasattr(logits, "shape"):
        return logits  # type: ignore[no-any-return]
    if not _slices_like_numpy(logits):
        logits = np.asarray(logits)
    return ArrayRows(logits, name)


def _slices_like_numpy(x: Any) -> bool:
    """True for what :class:`ArrayRows` may slice as it is: a numpy array, an ``h5py.Dataset``
    or another object with a numpy ``dtype``, a ``shape`` and positional ``[start:stop]``.
    A pandas object (label-based indexing, no single ``dtype`` for a DataFrame), a torch
    tensor (a torch dtype), a list: converted with ``np.asarray`` first."""
    if isinstance(x, np.ndarray):
        return True
    if type(x).__module__.split(".")[0] == "pandas":
        return False
    try:
        np.dtype(x.dtype)
    except (AttributeError, TypeError):
        return False
    return hasattr(x, "shape") and hasattr(x, "__getitem__")

"""Row blocks: one pass over ``(N, K)`` logits, read in storage-aligned blocks into reused
buffers, with each block cut into cache-sized *pieces* that worker threads compute.

Why threads help here: numpy releases the GIL inside its ufunc loops, and h5py releases it
while HDF5 reads, so on a machine with ``T`` cores the pieces of one block are computed ``T``
at a time while the main thread reads the next block into the other of two buffers.

Why the numbers cannot depend on it: a piece function is a pure function of its rows (and of
scratch buffers it overwrites before reading), every row's result is computed from that row
alone, and results are written to disjoint slices of the output arrays. The same rows give the
same bits with 1 thread or 64, in any block or piece size (tests/core/test_rowblocks.py).

Sizes:

* a *block* is about :data:`BLOCK_ELEMENTS` stored values, a whole multiple of the storage
  chunk rows when the source has them (an HDF5 chunk is never read twice);
* a *piece* is about :data:`PIECE_ELEMENTS` values, so that a float64 work copy of it
  (1 MiB) stays in a core's L2 cache through the several passes a score makes over it.

Threads: ``LSFIX_THREADS`` (an integer 1–256) when set, else the CPUs this process may run on,
at most 8. ``LSFIX_THREADS=1`` computes everything in the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from lsfix.core.source import whole_chunks
from lsfix.errors import UsageError

#: Stored values per block read (16 MiB of float32).
BLOCK_ELEMENTS = 1 << 22
#: Values per piece (a 1 MiB float64 work copy: measured 3–6 % less CPU than 512 KiB).
PIECE_ELEMENTS = 1 << 17
#: Rows per piece never go below this (very wide K): per-call overhead stays small.
MIN_PIECE_ROWS = 8
#: Default thread cap.
MAX_DEFAULT_THREADS = 8

#: ``make_scratch(piece_rows)`` builds one thread's scratch for pieces of at most that many rows.
#: ``piece(z, start, scratch) -> bool``: compute rows ``start : start + len(z)`` from ``z``
#: (stored dtype); return True when the piece holds a non-finite value (nothing is written
#: then; the main thread raises the input error for the block).
PieceFn = Callable[[np.ndarray, int, Any], bool]


def thread_count() -> int:
    """Worker threads for a pass: ``LSFIX_THREADS`` if set (checked), else min(CPUs, 8)."""
    text = os.environ.get("LSFIX_THREADS")
    if text is not None and text.strip() != "":
        t = text.strip()
        value = int(t) if t.isascii() and t.isdigit() and len(t) <= 3 else 0
        if not 1 <= value <= 256:
            shown = repr(t[:20] + ("..." if len(t) > 20 else ""))
            raise UsageError(f"LSFIX_THREADS must be an integer from 1 to 256; got {shown}")
        return value
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


def piece_rows_for(k: int, elements: int = PIECE_ELEMENTS) -> int:
    return max(MIN_PIECE_ROWS, elements // max(1, k))


def block_rows_for(k: int, storage_rows: int | None, piece_rows: int,
                   elements: int = BLOCK_ELEMENTS) -> int:
    """Rows per block: about ``elements`` values, a multiple of the storage chunk rows (when
    known), and at least one piece."""
    return whole_chunks(max(piece_rows, elements // max(1, k)), storage_rows)


class _Scratch(threading.local):
    """Per-thread scratch, made on first use by the factory given to :func:`run_pieces`."""

    value: Any = None


def run_pieces(src: Any, piece: PieceFn, make_scratch: Callable[[int], Any], *,
               threads: int | None = None, block_elements: int = BLOCK_ELEMENTS,
               piece_elements: int = PIECE_ELEMENTS) -> None:
    """Call ``piece`` on every piece of ``src`` (an :class:`~lsfix.core.source.ArrayRows`
    over plain ``(N, K)`` logits: ``read_into``, ``raw_dtype``, ``storage_rows``,
    ``check_finite_block``).

    A non-finite value reported by a piece makes the main thread call
    ``src.check_finite_block`` on that block, in block order, which raises the input error
    naming the first bad row of the file; pieces of later blocks still running are waited
    for before it propagates.
    """
    n, k = src.shape
    if n == 0:
        return
    p_rows = min(n, piece_rows_for(k, piece_elements))
    b_rows = min(n, block_rows_for(k, src.storage_rows, p_rows, block_elements))
    t = thread_count() if threads is None else threads
    if t <= 1 or n <= p_rows:
        _run_inline(src, piece, make_scratch(p_rows), n, b_rows, p_rows)
        return
    local = _Scratch()

    def task(block: np.ndarray, start: int, first: int, stop: int) -> bool:
        if local.value is None:
            local.value = make_scratch(p_rows)
        bad = False
        for p in range(first, stop, p_rows):
            bad |= piece(block[p : min(stop, p + p_rows)], start + p, local.value)
        return bad

    buffers = [np.empty((b_rows, k), dtype=src.raw_dtype) for _ in range(2)]
    pending: list[tuple[int, int, list[Future[bool]]] | None] = [None, None]
    with ThreadPoolExecutor(max_workers=t, thread_name_prefix="lsfix-rows") as pool:
        try:
            for number, start in enumerate(range(0, n, b_rows)):
                slot = number % 2
                _settle(src, buffers[slot], pending[slot])
                pending[slot] = None
                stop = min(n, start + b_rows)
                block = buffers[slot][: stop - start]
                src.read_into(start, stop, block)
                futures = [pool.submit(task, block, start, first, last)
                           for first, last in _shares(stop - start, p_rows, t)]
                pending[slot] = (start, stop, futures)
            first = (len(range(0, n, b_rows))) % 2  # the older of the two slots
            for slot in (first, 1 - first):
                _settle(src, buffers[slot], pending[slot])
                pending[slot] = None
        finally:
            for entry in pending:  # an error left work running: let it finish first
                if entry is not None:
                    for f in entry[2]:
                        f.cancel()
                    for f in entry[2]:
                        if not f.cancelled():
                            f.exception()


def _shares(rows: int, p_rows: int, t: int) -> list[tuple[int, int]]:
    """Split ``rows`` into at most ``t`` contiguous runs of whole pieces (one task each)."""
    pieces = -(-rows // p_rows)
    per = -(-pieces // t)
    return [(i * per * p_rows, min(rows, (i + 1) * per * p_rows))
            for i in range(t) if i * per * p_rows < rows]


def _settle(src: Any, buffer: np.ndarray,
            entry: tuple[int, int, list[Future[bool]]] | None) -> None:
    if entry is None:
        return
    start, stop, futures = entry
    if any([f.result() for f in futures]):  # list: wait for all before raising
        src.check_finite_block(start, buffer[: stop - start])


def _run_inline(src: Any, piece: PieceFn, scratch: Any, n: int, b_rows: int,
                p_rows: int) -> None:
    buffer = np.empty((b_rows, src.shape[1]), dtype=src.raw_dtype)
    for start in range(0, n, b_rows):
        stop = min(n, start + b_rows)
        block = buffer[: stop - start]
        src.read_into(start, stop, block)
        bad = False
        for p in range(0, stop - start, p_rows):
            bad |= piece(block[p : p + p_rows], start + p, scratch)
        if bad:
            src.check_finite_block(start, block)


#: ``piece(flat, slot, a, b, scratch) -> bool``: compute pixels ``a:b`` of the image in
#: ``flat`` (``(K, pixels)``, stored dtype) into the outputs of buffer ``slot``; True when a
#: value was not finite (see :data:`PieceFn`).
ImagePieceFn = Callable[[np.ndarray, int, int, int, Any], bool]


def run_image_pieces(n_items: int, shape: tuple[int, ...], dtype: Any,
                     read: Callable[[int, np.ndarray], None], piece: ImagePieceFn,
                     make_scratch: Callable[[int], Any],
                     finish: Callable[[int, int, np.ndarray, bool], None], *,
                     piece_pixels: int, threads: int | None = None) -> None:
    """One pass over the images of a dense source, the dense twin of :func:`run_pieces`.

    Each image (``shape`` = ``(K, *spatial)``, ``dtype`` as stored) is read whole by
    ``read(item, out)`` into one of two buffers; its pixels are cut into pieces of
    ``piece_pixels`` that the worker threads compute (``piece``, writing to the outputs of
    that buffer's ``slot``, 0 or 1), while the main thread calls ``finish(item, slot, image,
    bad)`` on the image before and reads the next. ``finish`` runs in image order, in the
    calling thread, after every piece of that image is done. The threads change nothing but
    the time: each pixel's values come from that pixel alone, written to disjoint slices.
    """
    k = int(shape[0])
    pixels = int(np.prod(shape[1:], dtype=np.int64))
    if n_items == 0:
        return
    p_pix = max(1, min(pixels, int(piece_pixels)))
    t = thread_count() if threads is None else threads
    buffers = [np.empty(shape, dtype=dtype) for _ in range(1 if t <= 1 else 2)]
    if t <= 1 or pixels <= p_pix:
        scratch = make_scratch(p_pix)
        image = buffers[0]
        flat = image.reshape(k, pixels)
        for item in range(n_items):
            read(item, image)
            bad = False
            for a in range(0, pixels, p_pix):
                bad |= piece(flat, 0, a, min(pixels, a + p_pix), scratch)
            finish(item, 0, image, bad)
        return
    local = _Scratch()

    def task(slot: int, first: int, stop: int) -> bool:
        if local.value is None:
            local.value = make_scratch(p_pix)
        flat = buffers[slot].reshape(k, pixels)
        bad = False
        for a in range(first, stop, p_pix):
            bad |= piece(flat, slot, a, min(stop, a + p_pix), local.value)
        return bad

    pending: list[tuple[int, list[Future[bool]]] | None] = [None, None]

    def settle(slot: int) -> None:
        entry = pending[slot]
        pending[slot] = None
        if entry is not None:
            item, futures = entry
            bad = any([f.result() for f in futures])  # list: wait for all
            finish(item, slot, buffers[slot], bad)

    with ThreadPoolExecutor(max_workers=t, thread_name_prefix="lsfix-images") as pool:
        try:
            for item in range(n_items):
                slot = item % 2
                settle(slot)  # image item - 2: its buffer is free again
                read(item, buffers[slot])
                pending[slot] = (item, [pool.submit(task, slot, first, last)
                                        for first, last in _shares(pixels, p_pix, t)])
                settle(1 - slot)  # image item - 1, while this one is computed
            settle((n_items - 1) % 2)
        finally:
            for entry in pending:  # an error left work running: let it finish first
                if entry is not None:
                    for f in entry[1]:
                        f.cancel()
                    for f in entry[1]:
                        if not f.cancelled():
                            f.exception()

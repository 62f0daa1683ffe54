"""``--scheduler``: scores and tie blocks computed by Dask, merged exactly.

``curve``, ``score``, ``normalise`` and ``audit`` take ``--scheduler``:

``sync`` (default)
    One process, the code path of :mod:`lsfix.core`. Dask is not imported.
``threads`` / ``processes``
    Dask's local schedulers (a thread pool, or a pool of worker processes) on this machine.
``tcp://HOST:PORT`` (or ``ws://HOST:PORT``, or a bare ``HOST:PORT``)
    The tasks run on the workers of an existing ``dask.distributed`` cluster. The address is
    checked before Dask is imported (:func:`check_scheduler`; ``tls://``, ``wss://`` and
    ``inproc://`` are refused in one line) and the scheduler must answer within
    ``--scheduler-timeout`` seconds (10 by default; :func:`connect`).

What is split, and how the pieces are merged (``docs/dask.md`` has the long form):

* **Scores** (:func:`compute_scores`): the rows of ``/logits`` are cut into partitions of
  whole items (images for dense files), aligned to the HDF5 storage chunks. A task opens the
  file itself (by path, through :func:`lsfix.readers.h5safe.open_local`: the local-only rule holds on
  every worker, and the workers must see the file under the same path), checks the shape and
  dtype it was promised, and runs :func:`lsfix.core.compute_scores` on its rows. Every row is
  computed by the same kernel as in one process, so the concatenated scores are identical.
  A task computes with one thread (Dask supplies the parallelism); ``sync`` uses the row-block
  threads of :mod:`lsfix.core.rowblocks` instead.
  Logits that are not in a named HDF5 file (``.npz``, ``.pt``, tables, stdin) are shipped to
  the tasks as raw slices in their stored dtype.
* **Metrics** (:func:`evaluate`): a sample sort (:mod:`lsfix.core.partition`). Splitters
  taken from a strided sample cut the confidences into value ranges; each row partition's
  tie blocks are cut by range (map tasks) and merged per range (reduce tasks); the ranges'
  blocks concatenated from the top are exactly the blocks of the one-process path, so every
  metric, in every convention, is bit-identical.
* Bootstrap intervals, p-tuning on fit rows, temperature fitting and the label-smoothing
  estimate stay in the client process: a bootstrap replicate draws its resample from one
  seeded stream after the previous replicate's, so splitting replicates over workers would
  change the numbers.

The scores, correctness and labels stay in the client's memory (that is lsfix's data model):
Dask buys parallel reading, scoring and sorting, not a larger ``n`` than the client holds.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core import Metrics, ScoreSpec, metrics_from_blocks
from lsfix.core import compute_scores as _core_compute_scores
from lsfix.core import evaluate as _core_evaluate
from lsfix.core.metrics import Blocks, _as_inputs, _check_convention
from lsfix.core.partition import (
    SAMPLE_PER_RANGE,
    choose_splitters,
    concat_blocks,
    merge_blocks,
    partial_blocks,
    strided_sample,
)
from lsfix.core.scores import SCORES
from lsfix.core.source import ArrayRows
from lsfix.errors import InputError, MissingDependency, UsageError

#: The schedulers that are not addresses.
LOCAL_SCHEDULERS = ("sync", "threads", "processes")
#: Logit values per score partition (about 64 MiB of float32).
PARTITION_ELEMENTS = 1 << 24
#: Confidences per metric partition (rows of one map task).
METRIC_PARTITION_ROWS = 1 << 22

#: Address schemes ``--scheduler`` connects to. ``tls://`` and ``wss://`` need a security
#: context lsfix has no options for; ``inproc://`` reaches only a scheduler inside this
#: process; ``ucx://`` needs ucx-py: each is refused in one line before Dask is imported.
SCHEMES = ("tcp", "ws")
_UNSUPPORTED = {
    "tls": "needs a TLS security context, which lsfix cannot be given; use tcp://",
    "wss": "needs a TLS security context, which lsfix cannot be given; use ws:// or tcp://",
    "inproc": "reaches only a scheduler inside this same process; use tcp://HOST:PORT",
    "ucx": "needs ucx-py (not installed); use tcp://HOST:PORT",
}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
#: Seconds ``--scheduler ADDRESS`` waits for the scheduler by default.
DEFAULT_CONNECT_TIMEOUT = 10.0


def check_scheduler(value: str) -> str:
    """Validate ``--scheduler`` without importing Dask: ``sync``, ``threads``, ``processes``
    or an address ``[tcp://|ws://]HOST:PORT`` (HOST a host name, an IPv4 address or a
    bracketed IPv6 address; PORT 1-65535); :class:`UsageError` naming what is wrong
    otherwise."""
    if value in LOCAL_SCHEDULERS:
        return value
    shown = quote_value(value)
    usage = ("--scheduler must be sync, threads, processes or a dask.distributed address like "
             f"tcp://host:8786, got {shown}")
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "tcp", value
    if scheme in _UNSUPPORTED:
        if scheme != "ucx" or not _have("ucp"):
            raise UsageError(f"--scheduler {shown}: {scheme}:// {_UNSUPPORTED[scheme]}")
    elif scheme not in SCHEMES:
        raise UsageError(usage)
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port.isascii() or not port.isdigit() or len(port) > 5:
        raise UsageError(usage)
    if not 1 <= int(port) <= 65535:
        raise UsageError(f"--scheduler {shown}: port {int(port)} is not in 1-65535")
    if host.startswith("["):
        import ipaddress

        try:
            if not host.endswith("]"):
                raise ValueError
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UsageError(f"--scheduler {shown}: {quote_value(host)} is not an IPv6 "
                             "address in brackets") from None
    elif not _HOSTNAME.match(host):
        raise UsageError(f"--scheduler {shown}: {quote_value(host)} is not a host name or "
                         "IPv4 address (an IPv6 address goes in brackets: [::1]:8786)")
    return value


def quote_value(value: str) -> str:
    from lsfix.safetext import quote

    return quote(value, 60)


def _have(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def connect(address: str, timeout: float) -> tuple[Any, int]:
    """A ``distributed.Client`` on ``address`` and its worker threads, within ``timeout``
    seconds however the other end behaves (silent, garbage, refusing): a
    :class:`~lsfix.errors.RuntimeFailure` in one line otherwise, never a traceback or a hang.

    The client is made in a helper thread the caller waits on for at most ``timeout`` + 2 s
    (Dask's own timeout does not cover every stage of its handshake)."""
    import threading

    from lsfix.errors import RuntimeFailure

    try:
        from distributed import Client
    except ImportError:
        raise MissingDependency(f"--scheduler {address} needs dask.distributed: pip install "
                                "'lsfix[dask]'") from None
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            _probe(address, timeout)  # garbage or silence ends here, before a Client exists
            client = Client(address, timeout=f"{timeout}s", set_as_default=False)
            box["client"] = client
            box["workers"] = max(1, sum(client.nthreads().values()))
        except BaseException as exc:  # noqa: BLE001 - reported in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=work, name="lsfix-dask-connect", daemon=True)
    t.start()
    t.join(timeout + 2.0)
    from lsfix.safetext import clip

    shown = clip(address, 80)  # checked by check_scheduler: host, port and scheme only
    if t.is_alive() or ("client" not in box and "error" not in box):
        raise RuntimeFailure(f"--scheduler {shown}: no answer from a Dask scheduler within "
                             f"{timeout:g} s (--scheduler-timeout); is the address right?")
    if isinstance(box.get("error"), TimeoutError):
        raise RuntimeFailure(f"--scheduler {shown}: no answer from a Dask scheduler within "
                             f"{timeout:g} s (--scheduler-timeout); is the address right?")
    if isinstance(box.get("error"), MemoryError | ValueError | TypeError | KeyError):
        raise RuntimeFailure(f"--scheduler {shown}: the other end does not speak Dask's "
                             "protocol (is it a Dask scheduler?)")
    if "error" in box:
        exc = box["error"]
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise RuntimeFailure(f"--scheduler {shown}: cannot reach the Dask scheduler "
                             f"({type(exc).__name__}: {clip(text, 120)})")
    return box["client"], int(box["workers"])


#: Largest first message a Dask scheduler sends (its handshake is a few hundred bytes).
_HANDSHAKE_BYTES = 1 << 20


def _raw_probe(hostport: str, timeout: float) -> None:
    """Read a TCP scheduler's handshake with plain sockets: Dask's own reader allocates
    whatever length the first 8 bytes announce (a garbage answer asks for exabytes)."""
    import socket
    import struct
    import time

    host, _, port = hostport.rpartition(":")
    host = host[1:-1] if host.startswith("[") else host
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:

        def read(n: int) -> bytes:
            got = b""
            while len(got) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no handshake")
                sock.settimeout(left)
                chunk = sock.recv(n - len(got))
                if not chunk:
                    raise ConnectionError("the connection closed before Dask's handshake")
                got += chunk
            return got

        (size,) = struct.unpack("<Q", read(8))
        if not 0 < size <= _HANDSHAKE_BYTES:
            raise ValueError("not Dask's protocol")
        read(size)


def _probe(address: str, timeout: float) -> None:
    """Ask ``address`` who it is over Dask's own protocol, within ``timeout`` seconds: a
    ``distributed.Client`` that fails half-way leaves a finaliser that prints a traceback,
    so the Client is made only once a scheduler has answered."""
    import asyncio

    from distributed.comm import connect as comm_connect

    if address.startswith("tcp://") or "://" not in address:
        _raw_probe(address.split("://")[-1], timeout)

    async def ask() -> Any:
        comm = await comm_connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    reply = asyncio.run(asyncio.wait_for(ask(), timeout))
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        raise ConnectionError("the other end is not a Dask scheduler")


# --------------------------------------------------------------------------------------------
# the runner: one scheduler for one command


class Runner:
    """Runs lists of ``dask.delayed`` tasks on one scheduler; see the module docstring."""

    def __init__(self, scheduler: str, timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        check_scheduler(scheduler)
        if scheduler == "sync":
            raise UsageError("the sync scheduler needs no Runner")
        try:
            import dask
        except ImportError:
            raise MissingDependency(f"--scheduler {scheduler} needs Dask: pip install "
                                    "'lsfix[dask]'") from None
        self.scheduler = scheduler
        self._dask = dask
        self.client: Any = None
        if scheduler in ("threads", "processes"):
            self.workers = max(1, os.cpu_count() or 1)
        else:
            self.client, self.workers = connect(scheduler, timeout)

    def delayed(self, fn: Any) -> Any:
        return self._dask.delayed(fn, pure=False)

    def put(self, value: Any) -> Any:
        """A large argument: scattered to the cluster once (distributed), else as is."""
        if self.client is not None:
            return self.client.scatter(value, hash=False)
        return value

    def compute(self, tasks: Sequence[Any]) -> list[Any]:
        if not tasks:
            return []
        if self.client is not None:
            futures = self.client.compute(list(tasks))
            return list(self.client.gather(futures))
        return list(self._dask.compute(*tasks, scheduler=self.scheduler,
                                       num_workers=self.workers))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


@contextlib.contextmanager
def scheduler(value: str | None, timeout: float = DEFAULT_CONNECT_TIMEOUT
              ) -> Iterator[Runner | None]:
    """A :class:`Runner` for ``value`` (closed at the end of the block); ``sync`` (or ``None``)
    yields ``None`` and imports nothing. Pass it as ``runner=`` (or set
    ``Predictions.runner``) where the work should run there. ``timeout``: seconds to reach a
    distributed scheduler."""
    if value is None or value == "sync":
        yield None
        return
    runner = Runner(value, timeout)
    try:
        yield runner
    finally:
        runner.close()


# --------------------------------------------------------------------------------------------
# scores over row partitions


@dataclass(frozen=True)
class FileLogits:
    """Where a task finds the logits: an HDF5 file by path (opened local-only on the
    worker) and the shape and dtype the client saw, checked there."""

    path: str
    dataset: str
    shape: tuple[int, ...]
    dtype: str


class _Window:
    """Items ``[i0, i1)`` of an array-like, sliced like an array (what :class:`ArrayRows`
    wraps)."""

    def __init__(self, data: Any, i0: int, i1: int) -> None:
        self._data = data
        self._i0 = i0
        self.shape = (i1 - i0, *tuple(int(s) for s in data.shape[1:]))
        self.dtype = data.dtype
        self.ndim = len(self.shape)
        self.chunks = getattr(data, "chunks", None)

    def _shift(self, key: Any) -> slice:
        start, stop, _ = key.indices(self.shape[0])
        return slice(self._i0 + start, self._i0 + stop)

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, slice):
            raise TypeError("a window is read by row slices")
        return self._data[self._shift(key)]

    def __len__(self) -> int:
        return self.shape[0]

    def read_direct(self, dest: np.ndarray, source_sel: Any = None, dest_sel: Any = None
                    ) -> None:
        direct = getattr(self._data, "read_direct", None)
        sel = self._shift(source_sel)
        if direct is None:
            target = dest if dest_sel is None else dest[dest_sel]
            np.copyto(target, self._data[sel], casting="same_kind")
        else:
            direct(dest, sel, dest_sel)


def _file_of(src: ArrayRows) -> FileLogits | None:
    """The HDF5 file behind a row source, when it is a named file on disk."""
    data = getattr(src, "_data", None)
    ds = getattr(data, "_ds", None)  # lsfix.readers.logitsfile.CheckedDataset
    if ds is None:
        return None
    try:
        f = ds.file
        if f.driver == "fileobj":  # stdin or a pipe read into memory
            return None
        path = os.path.abspath(f.filename)
    except (AttributeError, ValueError, OSError):
        return None
    if not os.path.isfile(path):
        return None
    return FileLogits(path, ds.name, tuple(int(s) for s in ds.shape), np.dtype(ds.dtype).str)


def _score_task(where: Any, i0: int, i1: int, specs: list[ScoreSpec],
                labels: np.ndarray | None) -> dict[str, np.ndarray]:
    """Scores of items ``[i0, i1)`` (runs on a worker)."""
    if isinstance(where, FileLogits):
        from lsfix.readers import h5safe
        from lsfix.readers.logitsfile import CheckedDataset, check_local

        f = h5safe.open_local(where.path, where.path)
        try:
            check_local(f, where.dataset, where.path)
            ds = f[where.dataset]
            if tuple(ds.shape) != where.shape or np.dtype(ds.dtype).str != where.dtype:
                raise InputError(f"changed while lsfix read it: shape {ds.shape} dtype "
                                 f"{ds.dtype}, expected {where.shape} {where.dtype}",
                                 file=where.path, dataset=where.dataset)
            data = CheckedDataset(ds, where.path, where.dataset)
            rows = ArrayRows(_Window(data, i0, i1), f"{where.path}:{where.dataset}")
            return _core_compute_scores(rows, specs, labels=labels, threads=1)
        finally:
            f.close()
    rows = ArrayRows(where, "logits")  # a raw slice in its stored dtype
    return _core_compute_scores(rows, specs, labels=labels, threads=1)


def item_partitions(n_items: int, item_elements: int, workers: int,
                    storage_items: int | None = None) -> list[tuple[int, int]]:
    """Cut ``n_items`` items into ``[i0, i1)`` ranges: at least ``2 * workers`` of them
    (when there are that many items), each at most about :data:`PARTITION_ELEMENTS` values,
    boundaries on multiples of the storage chunk (``storage_items``) when chunks are smaller
    than a partition."""
    parts = max(min(n_items, 2 * workers),
                math.ceil(n_items * max(1, item_elements) / PARTITION_ELEMENTS))
    per = math.ceil(n_items / max(1, parts))
    if storage_items and storage_items < per:
        per = math.ceil(per / storage_items) * storage_items
    return [(i, min(n_items, i + per)) for i in range(0, n_items, per)]


def compute_scores(logits: Any, specs: Sequence[ScoreSpec], *,
                   labels: np.ndarray | None = None,
                   runner: Runner | None = None) -> dict[str, np.ndarray]:
    """:func:`lsfix.core.compute_scores` on ``runner`` (identical results); in one process
    when it is ``None`` or the logits are not an :class:`ArrayRows`."""
    specs = list(specs)
    if runner is None or not isinstance(logits, ArrayRows) or not specs and labels is None:
        return _core_compute_scores(logits, specs, labels=labels)
    for s in specs:  # the same refusals as the core, before any task runs
        if s.param is None and SCORES[s.family].param is not None \
                and SCORES[s.family].default is None:
            return _core_compute_scores(logits, specs, labels=labels)
    n, _ = logits.shape
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise InputError(f"labels shape {labels.shape} does not match logits rows ({n},)")
    pixels = n // max(1, logits.n_items)
    chunks = getattr(getattr(logits, "_data", None), "chunks", None)
    item_elems = int(np.prod(logits._data.shape[1:]) or 1)
    parts = item_partitions(logits.n_items, item_elems, runner.workers,
                            int(chunks[0]) if chunks else None)
    where = _file_of(logits)
    tasks = []
    task = runner.delayed(_score_task)
    for i0, i1 in parts:
        lab = None if labels is None else runner.put(labels[i0 * pixels : i1 * pixels])
        src: Any = where if where is not None else runner.put(
            np.asarray(logits._data[i0:i1]))  # raw, stored dtype
        tasks.append(task(src, i0, i1, specs, lab))
    results = runner.compute(tasks)
    out = {key: np.concatenate([r[key] for r in results]) for key in results[0]}
    return out


# --------------------------------------------------------------------------------------------
# tie blocks by sample sort


def _map_task(c: np.ndarray, y: np.ndarray, splitters: np.ndarray) -> list[Blocks]:
    return partial_blocks(c, y, splitters)


def _reduce_task(*parts: Blocks) -> Blocks:
    return merge_blocks(parts)


def tie_blocks(confidence: Any, correct: Any, *, runner: Runner | None = None,
               partition_rows: int | None = None) -> Blocks:
    """Tie blocks by a sample sort on ``runner`` (in one process when ``None``). Equal to
    :func:`lsfix.core.tie_blocks` (:mod:`lsfix.core.partition`)."""
    from lsfix.core.metrics import _blocks

    c, y = _as_inputs(confidence, correct)
    if runner is None:
        return _blocks(c, y)
    n = c.shape[0]
    rows = partition_rows or max(1, min(METRIC_PARTITION_ROWS, math.ceil(n / (2 * runner.workers))))
    cuts = list(range(0, n, rows)) + [n]
    n_ranges = max(1, min(len(cuts) - 1, 2 * runner.workers))  # reduce tasks
    splitters = choose_splitters(strided_sample(c, SAMPLE_PER_RANGE * n_ranges), n_ranges)
    split = runner.put(splitters)
    mtask, rtask = runner.delayed(_map_task), runner.delayed(_reduce_task)
    mapped = [mtask(runner.put(c[a:b]), runner.put(y[a:b]), split)
              for a, b in zip(cuts, cuts[1:], strict=False)]
    reduced = [rtask(*[m[j] for m in mapped]) for j in range(splitters.shape[0] + 1)]
    return concat_blocks(runner.compute(reduced)[::-1])


def evaluate(confidence: Any, correct: Any, *, convention: str = "lsfix",
             coverages: tuple[float, ...] | list[float] = (),
             risks: tuple[float, ...] | list[float] = (),
             runner: Runner | None = None) -> Metrics:
    """:func:`lsfix.core.evaluate` with the tie blocks from :func:`tie_blocks` on ``runner``
    (bit-identical); :func:`lsfix.core.evaluate` itself when it is ``None``."""
    if runner is None:
        return _core_evaluate(confidence, correct, convention=convention,
                              coverages=coverages, risks=risks)
    _check_convention(convention)
    b = tie_blocks(confidence, correct, runner=runner)
    return metrics_from_blocks(b, convention=convention, coverages=coverages, risks=risks)

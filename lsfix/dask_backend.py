"""Scores on Dask: the rows of an HDF5 logits file split into partitions, scored in parallel.

Optional (``pip install 'lsfix[dask]'``). ``--scheduler`` takes:

``sync``
    the default: no Dask, today's single process;
``threads`` / ``processes``
    Dask's local schedulers on this machine;
``ADDRESS``
    a running ``dask.distributed`` scheduler (``tcp://host:8786``); its workers must see the
    file at the same path (a shared file system).

Each partition is a range of whole storage chunks (whole images for dense files). A task opens
the file itself through lsfix's local-only reader (only the file the user named), scores its
rows with the same code as the local path and returns them; the partitions are joined in row
order. Every score is a function of its own row alone, so the numbers are identical to
``sync`` (``tests/test_dask.py`` compares them bit for bit, on a 2-worker ``LocalCluster``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsfix.errors import MissingDependency, UsageError

LOCAL = ("sync", "threads", "processes")
#: Logit values per partition (float32: 128 MB).
PARTITION_ELEMENTS = 1 << 25


def check_scheduler(spec: str) -> str:
    """Validate ``--scheduler``; Dask must be importable for anything but ``sync``."""
    if spec == "sync":
        return spec
    if spec not in LOCAL and "://" not in spec and ":" not in spec:
        raise UsageError(f"--scheduler must be sync, threads, processes or a dask.distributed "
                         f"address like tcp://host:8786, got {spec!r}")
    try:
        import dask  # noqa: F401
    except ImportError:
        raise MissingDependency("--scheduler needs Dask: pip install 'lsfix[dask]'") from None
    if spec not in LOCAL:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise MissingDependency("--scheduler ADDRESS needs dask.distributed: pip install "
                                    "'lsfix[dask]'") from None
    return spec


class _RowRange:
    """Rows ``start:stop`` of an array-like (an ``h5py.Dataset``), sliced lazily."""

    def __init__(self, data: Any, start: int, stop: int) -> None:
        self._data, self._start = data, start
        self.shape = (stop - start, *data.shape[1:])
        self.dtype = data.dtype
        self.ndim = data.ndim
        self.chunks = getattr(data, "chunks", None)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            first, rest = key[0], key[1:]
        else:
            first, rest = key, ()
        a, b, _ = first.indices(self.shape[0])
        return self._data[(slice(self._start + a, self._start + b), *rest)]

    def read_direct(self, dest: np.ndarray, source_sel: Any, dest_sel: Any) -> None:
        a, b, _ = source_sel.indices(self.shape[0])
        self._data.read_direct(dest, np.s_[self._start + a : self._start + b], dest_sel)


def _score_part(path: str, items: tuple[int, int], specs: list[tuple[str, float | None]],
                with_labels: bool) -> dict[str, np.ndarray]:
    """Score the items ``items`` of ``path`` (runs on a worker)."""
    from lsfix.core import ScoreSpec, compute_scores
    from lsfix.core.source import ArrayRows
    from lsfix.inputs import read_predictions

    with read_predictions(path, need_logits=True) as pred:
        assert pred.logits is not None
        part = ArrayRows(_RowRange(pred.logits.data, *items), pred.logits.name)
        per_item = pred.logits.shape[0] // pred.logits.n_items
        labels = None
        if with_labels and pred.labels is not None:
            labels = pred.labels[items[0] * per_item : items[1] * per_item]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # as the CLI
            return compute_scores(part, [ScoreSpec(f, p) for f, p in specs], labels=labels)


def partitions(n_items: int, item_elements: int, chunk_items: int | None) -> list[tuple[int, int]]:
    """Item ranges of about :data:`PARTITION_ELEMENTS` values, whole storage chunks each."""
    per = max(1, PARTITION_ELEMENTS // max(1, item_elements))
    if chunk_items:
        per = max(chunk_items, per // chunk_items * chunk_items)
    return [(s, min(n_items, s + per)) for s in range(0, n_items, per)]


def compute_scores_dask(path: str, pred: Any, specs: list[Any], *, labels: bool,
                        scheduler: str) -> dict[str, np.ndarray]:
    """:func:`lsfix.core.compute_scores` of the file at ``path`` on Dask (same result)."""
    import dask

    src = pred.logits
    raw = src.data
    item_elements = int(np.prod(raw.shape[1:])) if raw.ndim > 1 else 1
    chunks = getattr(raw, "chunks", None)
    parts = partitions(src.n_items, item_elements, int(chunks[0]) if chunks else None)
    plain = [(s.family, s.param) for s in specs]
    tasks = [dask.delayed(_score_part)(path, p, plain, labels) for p in parts]
    if scheduler in LOCAL:
        results = dask.compute(*tasks, scheduler=scheduler)
    else:
        from distributed import Client

        with Client(scheduler) as client:
            results = dask.compute(*tasks, scheduler=client)
    keys = list(results[0])
    return {k: np.concatenate([r[k] for r in results]) for k in keys}


__all__ = ["check_scheduler", "compute_scores_dask", "partitions"]

"""``--scheduler``: Dask gives the numbers of the local path, bit for bit."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import typer.testing

pytest.importorskip("dask", reason="the dask extra (pip install 'lsfix[dask]') is not installed")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

from lsfix import dask_backend  # noqa: E402
from lsfix.cli.app import app  # noqa: E402
from lsfix.schema import set_root_attrs  # noqa: E402

SCORES = ["msp", "energy", "logit_margin", "pnorm:3"]


def _run(*args: object, input: bytes | None = None) -> typer.testing.Result:
    res = typer.testing.CliRunner().invoke(app, [str(a) for a in args], input=input,
                                           prog_name="lsfix")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"traceback: {res.stderr}") from res.exception
    return res


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Several partitions: 2^25 values per partition is shrunk for the test."""
    path = tmp_path_factory.mktemp("dask") / "big.h5"
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(3000, 7)) * 4).astype(np.float32)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z, chunks=(100, 7))
        f.create_dataset("labels", data=rng.integers(0, 7, 3000))
    return path


@pytest.fixture
def small_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_backend, "PARTITION_ELEMENTS", 700 * 3)  # 300 rows: 10 parts


def _scores(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f["scores"][k][()] for k in f["scores"]} | {"correct": f["correct"][()]}


def _score(big: Path, out: Path, *extra: object) -> dict[str, np.ndarray]:
    args = [x for s in SCORES for x in ("-m", s)]
    res = _run("score", big, *args, "-o", out, *extra)
    assert res.exit_code == 0, res.stderr
    return _scores(out)


def test_partitions_are_whole_chunks(small_partitions: None) -> None:
    parts = dask_backend.partitions(3000, 7, 100)
    assert parts[0] == (0, 300) and parts[-1][1] == 3000 and len(parts) == 10
    assert all(a % 100 == 0 for a, _ in parts)


def test_threads_equal_sync(big: Path, tmp_path: Path, small_partitions: None) -> None:
    # (processes: bench/bench_dask.py; a monkeypatched partition size does not reach them)
    want = _score(big, tmp_path / "sync.h5")
    got = _score(big, tmp_path / "d.h5", "--scheduler", "threads")
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_two_worker_local_cluster_equals_sync(big: Path, tmp_path: Path,
                                              small_partitions: None) -> None:
    want = _score(big, tmp_path / "sync.h5")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        got = _score(big, tmp_path / "d.h5", "--scheduler", cluster.scheduler_address)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_bad_scheduler_is_a_usage_error(big: Path) -> None:
    res = _run("score", big, "--scheduler", "fast")
    assert res.exit_code == 2
    assert "--scheduler must be sync, threads, processes" in res.stderr


def test_stdin_cannot_be_scheduled(big: Path) -> None:
    res = _run("score", "-", "--scheduler", "threads", input=big.read_bytes())
    assert res.exit_code == 2
    assert "--scheduler needs an HDF5 logits file given by its path" in res.stderr

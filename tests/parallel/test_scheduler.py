"""``--scheduler``: Dask on threads, processes and a 2-worker ``distributed.LocalCluster``
gives numbers identical to the one-process path (compared exactly, never approximately)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer.testing

from lsfix.evaluation import scheduler as parallel
from lsfix.cli.app import app
from lsfix.core import (
    CONVENTIONS,
    ScoreSpec,
    compute_scores,
    evaluate,
    metrics_from_blocks,
    parse_score,
    tie_blocks,
)
from lsfix.errors import MissingDependency, UsageError
from lsfix.readers.entry import read as read_predictions
from lsfix.readers.logitsfile import new_file, set_root_attrs

LSFIX = str(Path(sys.executable).parent / "lsfix")
SPECS = [parse_score(s) for s in ("msp", "max_logit", "logit_margin", "softmax_margin",
                                  "neg_entropy", "gini", "energy:2", "msp_ts:1.5", "pnorm:0",
                                  "pnorm:3")]


def _logits(n: int = 500, k: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)).astype(np.float32)
    z[np.arange(n), y] += 1.0
    z[: n // 5] = np.round(z[: n // 5])  # many tied confidences
    return z, y


def _dense(path: Path, n: int = 3, k: int = 19, h: int = 16, w: int = 32) -> None:
    """3 images of 19x16x32 with label-255 pixels, chunked one image per chunk."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, k, (n, h, w)).astype(np.uint8)
    y[:, :2, :] = 255
    z = rng.normal(size=(n, k, h, w)).astype(np.float32)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=z, chunks=(1, k, h, w))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(255)


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    z, y = _logits()
    p = tmp_path / "plain.h5"
    new_file(p, z, labels=y)
    return p


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype
        assert np.array_equal(a[key], b[key]), key  # bit for bit (no NaN in scores)


# --------------------------------------------------------------------------------------------
# without Dask: the tasks themselves


@pytest.mark.parametrize("cuts", [[0, 500], [0, 1, 2, 500], [0, 37, 256, 499, 500],
                                  list(range(0, 501, 50))])
def test_scores_of_any_row_partition_equal_one_pass(plain: Path, cuts: list[int]) -> None:
    pred = read_predictions(str(plain))
    assert pred.logits is not None and pred.labels is not None
    want = compute_scores(pred.logits, SPECS, labels=pred.labels)
    want_msp = compute_scores(pred.logits, [ScoreSpec("msp")], labels=pred.labels)
    where = parallel._file_of(pred.logits)
    assert where is not None and where.path == str(plain.resolve())
    for specs, ref in ((SPECS, want), ([ScoreSpec("msp")], want_msp)):  # msp: streaming kernel
        parts = [parallel._score_task(where, a, b, specs, pred.labels[a:b])
                 for a, b in zip(cuts, cuts[1:], strict=False)]
        _same({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, ref)
    pred.close()


def test_dense_scores_per_image_partition_equal_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "dense.h5"
    _dense(path)
    pred = read_predictions(str(path))
    assert pred.logits is not None and pred.labels is not None
    px = 16 * 32
    want = compute_scores(pred.logits, SPECS, labels=pred.labels)
    where = parallel._file_of(pred.logits)
    parts = [parallel._score_task(where, i, i + 1, SPECS, pred.labels[i * px:(i + 1) * px])
             for i in range(3)]
    _same({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, want)
    pred.close()


def test_partitions_cover_every_item_once_on_storage_chunk_boundaries() -> None:
    parts = parallel.item_partitions(1000, 10, 2, storage_items=64)
    assert parts[0][0] == 0 and parts[-1][1] == 1000
    assert all(a == b for (_, a), (b, _) in zip(parts, parts[1:], strict=False))
    assert all(a % 64 == 0 for a, _ in parts) and len(parts) >= 2
    assert parallel.item_partitions(3, 19 * 16 * 32, 2) == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize("value", ["sync", "threads", "processes", "tcp://127.0.0.2:8786",
                                   "scheduler.example.org:8786", "ws://h:1", "[::1]:8786",
                                   "tcp://[fe80::1]:65535"])
def test_scheduler_values_accepted(value: str) -> None:
    assert parallel.check_scheduler(value) == value


@pytest.mark.parametrize("value", ["", "thread", "tcp://host", "rm -rf /", "http://x"])
def test_scheduler_values_refused(value: str) -> None:
    with pytest.raises(UsageError, match="--scheduler must be sync, threads, processes"):
        parallel.check_scheduler(value)


def test_bad_scheduler_is_a_usage_error_on_one_line(plain: Path) -> None:
    res = typer.testing.CliRunner().invoke(app, ["curve", str(plain), "--scheduler", "nope"],
                                           prog_name="lsfix")
    assert res.exit_code == 2
    assert res.stderr == ("lsfix curve: error: --scheduler must be sync, threads, processes or "
                          "a dask.distributed address like tcp://host:8786, got 'nope'\n")


def test_sync_never_imports_dask(plain: Path) -> None:
    code = ("import sys\nfrom lsfix.cli import main\n"
            "sys.argv = ['lsfix', 'curve', sys.argv[1], '-f', 'json', '-o', sys.argv[2]]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
            "assert not bad, bad\n")
    out = plain.with_suffix(".json")
    subprocess.run([sys.executable, "-c", code, str(plain), str(out)], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert json.loads(out.read_text())["results"]


def test_missing_dask_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask -> ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'lsfix\[dask\]'"):
        parallel.Runner("threads")


# --------------------------------------------------------------------------------------------
# with Dask

needs_dask = pytest.mark.skipif(importlib.util.find_spec("dask") is None,
                                reason="Dask is not installed (pip install 'lsfix[dask]')")


@needs_dask
def test_threads_scores_and_blocks_equal_sync(plain: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setattr(parallel, "PARTITION_ELEMENTS", 7 * 40)  # 13 partitions of 40 rows
    pred = read_predictions(str(plain))
    want = compute_scores(pred.logits, SPECS, labels=pred.labels)
    with parallel.scheduler("threads") as runner:
        assert runner is not None
        got = parallel.compute_scores(pred.logits, SPECS, labels=pred.labels, runner=runner)
        _same(got, want)
        for name in ("msp", parse_score("pnorm:3").name, "max_logit"):
            c, y = want[name], want["_correct"]
            for rows in (3, 7, 100, 10_000):
                b = parallel.tie_blocks(c, y, partition_rows=rows, runner=runner)
                ref = tie_blocks(c, y)
                assert b.size.tolist() == ref.size.tolist()
                assert b.errors.tolist() == ref.errors.tolist()
            for cv in CONVENTIONS:
                kw = {"coverages": (0.5, 0.9), "risks": (0.05, 0.3)}
                assert repr(metrics_from_blocks(b, convention=cv, **kw)) == repr(
                    evaluate(c, y, convention=cv, **kw))
    assert not hasattr(parallel, "active")  # the runner is an argument, never module state
    pred.close()


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LSFIX, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                          timeout=300)


def _scores_of(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {f"scores/{k}": f["scores"][k][()] for k in f["scores"]}
        out["correct"] = f["correct"][()]
        if "fit_mask" in f:
            out["fit_mask"] = f["fit_mask"][()]
    return out


def _compare_commands(where: Path, data: Path, dense: Path, scheduler: str) -> None:
    """curve / score / normalise / audit with ``scheduler`` against sync."""
    jobs = [
        ("curve", [data, "-s", "msp", "-s", "pnorm:2", "-s", "gini", "-b", "20",
                   "--coverage", "0.5", "--risk", "0.2", "-c", "xia", "-f", "json"]),
        ("curve", [dense, "-s", "msp", "-s", "energy", "-f", "json"]),
        ("audit", [data, "-b", "20", "-f", "json"]),
    ]
    for cmd, args in jobs:
        a, b = _cli(cmd, *args), _cli(cmd, *args, "--scheduler", scheduler)
        assert a.returncode == 0, a.stderr
        assert b.returncode == 0, b.stderr
        assert a.stdout == b.stdout  # every printed number, to the last digit
    for cmd, args in (("score", ["-m", "msp", "-m", "neg_entropy"]),
                      ("normalise", ["--fit-fraction", "0.3", "--seed", "4"])):
        for src in (data, dense):
            outs = []
            for extra in ([], ["--scheduler", scheduler]):
                out = where / f"{cmd}-{src.stem}-{len(extra)}.h5"
                res = _cli(cmd, src, *args, "-o", out, *extra)
                assert res.returncode == 0, res.stderr
                outs.append(_scores_of(out))
            _same(outs[0], outs[1])


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    z, y = _logits(n=3000, k=10, seed=5)
    data = tmp_path / "data.h5"
    new_file(data, z, labels=y)
    dense = tmp_path / "dense.h5"
    _dense(dense)
    return data, dense


CLUSTER = """
import sys, time, warnings
warnings.simplefilter("ignore")
import distributed
lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                              protocol="tcp", host="127.0.0.1", dashboard_address=None)
print(lc.scheduler_address, flush=True)
sys.stdin.read()  # until the test closes our stdin
lc.close()
"""


@pytest.fixture
def cluster() -> Iterator[str]:
    """A 2-worker LocalCluster in its own process (an "existing cluster": pytest's
    warnings-as-errors must not reach its event loop), reachable over tcp."""
    pytest.importorskip("distributed",
                        reason="dask.distributed is not installed (pip install 'lsfix[dask]')")
    proc = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.1:"), address
        yield address
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@needs_dask
def test_local_cluster_of_two_workers_gives_identical_numbers(
        files: tuple[Path, Path], cluster: str, tmp_path: Path) -> None:
    assert cluster.startswith("tcp://127.0.0.1:")
    _compare_commands(tmp_path, *files, scheduler=cluster)


@needs_dask
def test_processes_scheduler_gives_identical_numbers(files: tuple[Path, Path]) -> None:
    data, _ = files
    args = [data, "-s", "msp", "-s", "max_logit", "--coverage", "0.8", "-f", "json"]
    a, b = _cli("curve", *args), _cli("curve", *args, "--scheduler", "processes")
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    assert a.stdout == b.stdout


@needs_dask
def test_unreachable_cluster_is_one_line_exit_1(plain: Path) -> None:
    res = _cli("curve", plain, "--scheduler", "tcp://127.0.0.1:9")
    assert res.returncode == 1
    assert res.stderr.startswith("lsfix curve: error: --scheduler tcp://127.0.0.1:9: cannot "
                                 "reach the Dask scheduler")
    assert len(res.stderr.splitlines()) == 1

"""``torchrun --nproc-per-node 2`` on the CPU (gloo).

The merged file equals a single-process run row for row.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = [pytest.mark.torch, pytest.mark.slow]

from typer.testing import CliRunner  # noqa: E402

from lsfix.cli import app  # noqa: E402
from lsfix.readers.entry import read as read_predictions  # noqa: E402

from .conftest import ROOT, subprocess_env  # noqa: E402

N = 203  # odd on purpose: the ranks get 101 and 102 rows


def _extract_args(data: Path, weights: Path, out: Path) -> list[str]:
    return ["extract", "lsfix_test_nets:Net(k=10)", str(data), "-o", str(out), "--weights",
            str(weights), "-b", "16", "--device", "cpu", "-q"]


def test_torchrun_two_ranks_equals_single_process(tmp_path: Path, net_weights: Path) -> None:
    rng = np.random.default_rng(7)
    data = tmp_path / "data.npz"
    np.savez(data, images=rng.integers(0, 256, (N, 10, 10), dtype=np.uint8),
             labels=rng.integers(0, 10, N), class_names=np.array([f"c{i}" for i in range(10)]))
    single = tmp_path / "single.h5"
    res = CliRunner().invoke(app, _extract_args(data, net_weights, single))
    assert res.exit_code == 0, res.output

    merged = tmp_path / "merged.h5"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "lsfix", *_extract_args(data, net_weights, merged), "--keep-shards"]
    proc = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr
    shards = [tmp_path / "merged.rank0-of-2.h5", tmp_path / "merged.rank1-of-2.h5"]
    assert all(s.is_file() for s in shards)

    with read_predictions(str(merged)) as m, read_predictions(str(single)) as s:
        assert list(m.sample_ids) == list(s.sample_ids) == [str(i) for i in range(N)]
        np.testing.assert_array_equal(m.labels, s.labels)
        np.testing.assert_allclose(np.asarray(m.raw_logits), np.asarray(s.raw_logits),
                                   rtol=1e-6, atol=1e-6)
        assert m.class_names == s.class_names
        prov = m.provenance
    assert prov["world_size"] == 2
    assert [r["rows"] for r in prov["ranks"]] == [[0, 101], [101, N]]

    # the shards, joined again by `lsfix merge` (in any order), give the same file
    again = tmp_path / "again.h5"
    res = CliRunner().invoke(app, ["merge", str(shards[1]), str(shards[0]), "-o", str(again)])
    assert res.exit_code == 0, res.output
    with read_predictions(str(again)) as a, read_predictions(str(merged)) as m:
        np.testing.assert_array_equal(np.asarray(a.raw_logits), np.asarray(m.raw_logits))
        assert list(a.sample_ids) == list(m.sample_ids)
    # a missing shard is refused
    res = CliRunner().invoke(app, ["merge", str(shards[0]), "-o", str(tmp_path / "bad.h5")])
    assert res.exit_code == 3
    assert "rows 101..202 are missing (give all 2 shards)" in res.stderr

"""Shared fixtures of the extract tests: tiny models, small datasets, a CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

#: the full release from Debian's ``dataset-fashion-mnist`` package (optional)
FASHION = Path("/usr/share/datasets/fashion-mnist")
#: 4,000 training + 1,000 test images of the same release, shipped (see its README)
FASHION_SUBSET = ROOT / "tests" / "data" / "fmnist_subset"
#: photos of Debian's ``darknet`` package (optional)
DARKNET = Path("/usr/share/darknet/data")
NEEDS_FASHION = ("needs Debian's dataset-fashion-mnist package (apt-get install "
                 "dataset-fashion-mnist) for the full 70,000-image release")
NEEDS_DARKNET = "needs the photos of Debian's darknet package (apt-get install darknet)"


def subprocess_env() -> dict[str, str]:
    """Environment for ``python -m lsfix`` subprocesses: repo and test nets importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    env.pop("LOCAL_RANK", None)
    return env


@pytest.fixture(autouse=True)
def _no_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture()
def net_weights(tmp_path: Path) -> Path:
    """State dict of ``lsfix_test_nets:Net(k=10)`` (seeded)."""
    import lsfix_test_nets
    import torch

    torch.manual_seed(0)
    path = tmp_path / "net.pt"
    torch.save(lsfix_test_nets.Net(k=10).state_dict(), path)
    return path


@pytest.fixture()
def small_npz(tmp_path: Path) -> Path:
    """120 uint8 images (N, 12, 12) with labels in 0..9 and class names."""
    rng = np.random.default_rng(1)
    path = tmp_path / "small.npz"
    np.savez(path, images=rng.integers(0, 256, (120, 12, 12), dtype=np.uint8),
             labels=rng.integers(0, 10, 120), class_names=np.array([f"c{i}" for i in range(10)]))
    return path

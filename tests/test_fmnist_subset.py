"""The shipped Fashion-MNIST subset: the files its README lists, real rows of the release."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("make_fmnist_subset",
                                               HERE / "data" / "make_fmnist_subset.py")
assert _spec is not None and _spec.loader is not None
_maker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_maker)
FILES, cut = _maker.FILES, _maker.cut
SUBSET = HERE / "data" / "fmnist_subset"
FULL = Path("/usr/share/datasets/fashion-mnist")


def _idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(tuple(dims))


def test_readme_sums_match_the_files() -> None:
    readme = (SUBSET / "README.md").read_text(encoding="utf-8")
    shipped = readme.split("gives these exact files", 1)[1]
    sums = dict((n, h) for h, n in re.findall(r"^([0-9a-f]{64})  (\S+)$", shipped, re.M))
    assert set(sums) == set(FILES)
    for name, digest in sums.items():
        assert hashlib.sha256((SUBSET / name).read_bytes()).hexdigest() == digest, name
    assert (SUBSET / "LICENSE").read_text(encoding="utf-8").startswith("The MIT License")


def test_subset_is_small() -> None:
    total = sum(p.stat().st_size for p in SUBSET.iterdir())
    assert total < 2_500_000, f"tests/data/fmnist_subset holds {total / 1e6:.2f} MB"


def test_subset_shapes_and_classes() -> None:
    x, y = _idx(SUBSET / "train-images-idx3-ubyte.gz"), _idx(SUBSET / "train-labels-idx1-ubyte.gz")
    assert x.shape == (4000, 28, 28) and y.shape == (4000,)
    assert np.bincount(y, minlength=10).min() >= 300  # every class well represented
    xt, yt = _idx(SUBSET / "t10k-images-idx3-ubyte.gz"), _idx(SUBSET / "t10k-labels-idx1-ubyte.gz")
    assert xt.shape == (1000, 28, 28) and set(yt.tolist()) == set(range(10))
    assert 40 < x.mean() < 110  # real clothing images, not noise or zeros (~73 for the release)


def test_cut_keeps_header_and_rows() -> None:
    raw = b"\0\0\x08\x03" + np.array([3, 2, 2], ">u4").tobytes() + bytes(range(12))
    assert cut(raw, 2) == b"\0\0\x08\x03" + np.array([2, 2, 2], ">u4").tobytes() + bytes(range(8))
    with pytest.raises(ValueError, match="only 3 rows"):
        cut(raw, 4)


@pytest.mark.parametrize("name", sorted(FILES))
def test_subset_rows_equal_the_full_release(name: str) -> None:
    if not (FULL / name).is_file():
        pytest.skip("needs Debian's dataset-fashion-mnist package (apt-get install "
                    "dataset-fashion-mnist) to compare with the full release")
    full, sub = _idx(FULL / name), _idx(SUBSET / name)
    np.testing.assert_array_equal(sub, full[: len(sub)])

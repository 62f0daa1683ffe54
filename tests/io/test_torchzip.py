"""``.pt`` files read without torch (:mod:`lsfix.readers.torchzip`): the same arrays as torch.load,
nothing imported, nothing run, nothing read outside a storage."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lsfix.readers import torchzip
torch = pytest.importorskip("torch", reason="needs torch to write .pt files "
                                            "(pip install 'lsfix[extract]')")


def _saved(obj: object) -> zipfile.ZipFile:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return zipfile.ZipFile(buf)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.int64, torch.int32, torch.int16, torch.int8,
                                   torch.uint8, torch.bool])
def test_every_dtype_equals_torch(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    t = (torch.randn(5, 3, generator=g) * 10).to(dtype)
    got = torchzip.load(_saved({"t": t}))["t"]
    ref = t.float().numpy() if dtype == torch.bfloat16 else t.numpy()
    np.testing.assert_array_equal(got, ref)
    assert got.shape == (5, 3)


def test_views_offsets_and_containers() -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {"tr": base.t(), "sl": base[1:, ::2], "zero": torch.zeros(0, 3), "pair": (base[0],
           base[:, 1]), "n": 3, "s": "x", "lst": ["a", "b"]}
    got = torchzip.load(_saved(obj))
    np.testing.assert_array_equal(got["tr"], base.t().numpy())
    np.testing.assert_array_equal(got["sl"], base[1:, ::2].numpy())
    assert got["zero"].shape == (0, 3)
    np.testing.assert_array_equal(got["pair"][1], base[:, 1].numpy())
    assert (got["n"], got["s"], got["lst"]) == (3, "x", ["a", "b"])


def test_reading_a_pt_input_does_not_import_torch(tmp_path: Path) -> None:
    z = torch.randn(50, 4)
    torch.save({"logits": z, "labels": torch.arange(50) % 4}, tmp_path / "x.pt")
    code = ("import sys; from lsfix.readers.entry import read as read_predictions; "
            f"p = read_predictions({str(tmp_path / 'x.pt')!r}); "
            "print(p.logits.shape, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.split() == ["(50,", "4)", "False"]


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.getcwd, ())


def test_other_globals_are_refused_not_called() -> None:
    with pytest.raises(torchzip.Refused, match="the global posix.getcwd"):
        torchzip.load(_saved({"logits": _Evil()}))


def _with_pickle(zf: zipfile.ZipFile, data: bytes) -> zipfile.ZipFile:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as new:
        for info in zf.infolist():
            new.writestr(info.filename, data if info.filename.endswith("data.pkl")
                         else zf.read(info.filename))
    out.seek(0)
    return zipfile.ZipFile(out)


def test_a_tensor_reaching_outside_its_storage_is_refused() -> None:
    zf = _saved(torch.zeros(4))
    data = zf.read("archive/data.pkl")
    # storage offset 0 -> 3 (BININT1 after the persistent id), size (4,) kept: elements 3..6
    bad = data.replace(b"QK\x00K\x04\x85", b"QK\x03K\x04\x85", 1)
    assert bad != data
    with pytest.raises(torchzip.Refused, match="reaching element 6 of a storage of 4"):
        torchzip.load(_with_pickle(zf, bad))


def test_a_storage_larger_than_its_bytes_is_refused() -> None:
    zf = _saved(torch.zeros(4))
    data = zf.read("archive/data.pkl")
    bad = data.replace(b"K\x04t", b"M\x10'" + b"t", 1)  # numel 4 -> 10000
    assert bad != data
    with pytest.raises(torchzip.Refused, match="bytes for 10000 elements"):
        torchzip.load(_with_pickle(zf, bad))


def test_a_view_claiming_more_than_its_storage_is_refused() -> None:
    """stride 0: a 4-element storage read as 10**9 elements would expand in memory."""
    zf = _saved(torch.zeros(4))
    data = zf.read("archive/data.pkl")
    # size (4,) -> (1000000000,), stride (1,) -> (0,)
    bad = data.replace(b"K\x04\x85", b"J\x00\xca\x9a;\x85", 1).replace(b"K\x01\x85",
                                                                          b"K\x00\x85", 1)
    assert bad != data
    bomb = torchzip.load(_with_pickle(zf, bad))
    assert isinstance(bomb, torchzip.ViewOverStorage)  # never expanded
    assert (bomb.shape, bomb.claimed, bomb.stored) == ((10**9,), 4 * 10**9, 16)

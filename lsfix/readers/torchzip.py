"""Read tensors from a ``torch.save`` zip file without importing torch (and without running code).

``torch.save`` (zip format, torch >= 1.6) writes a zip archive ``<name>/data.pkl`` (a pickle of
the saved object in which every tensor is a call ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, requires_grad, hooks)`` and every storage a *persistent id*
``("storage", torch.<Type>Storage, key, location, numel)``), the raw bytes of each storage in
``<name>/data/<key>``, and ``<name>/byteorder``. Importing torch costs seconds; this module
reads the same files with numpy in milliseconds.

The unpickler is restricted like ``torch.load(weights_only=True)``, only tighter: the pickle
may name exactly these globals, each mapped to a local function, never to the real one —

* ``torch._utils._rebuild_tensor_v2`` → a numpy array viewed from the storage bytes (offset,
  size and stride checked against the storage: no read outside it);
* ``torch.<Float|Double|Half|BFloat16|Long|Int|Short|Char|Byte|Bool>Storage`` → a dtype;
* ``collections.OrderedDict`` → ``dict``.

Any other global raises :class:`Refused` (nothing is imported or called). Features torch
itself supports but this reader does not (sparse or quantized tensors, parameters, other
storage types) raise :class:`Unsupported`, and the caller may fall back to
``torch.load(weights_only=True)`` when torch is installed. Cost is bounded by the archive's
real bytes: a storage is read only when a tensor uses it, and its size is checked against the
zip member's before reading.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

import numpy as np

#: storage class name -> (numpy dtype, bytes per element); bfloat16 is widened to float32
STORAGES = {
    "FloatStorage": ("<f4", 4), "DoubleStorage": ("<f8", 8), "HalfStorage": ("<f2", 2),
    "BFloat16Storage": ("bf16", 2), "LongStorage": ("<i8", 8), "IntStorage": ("<i4", 4),
    "ShortStorage": ("<i2", 2), "CharStorage": ("i1", 1), "ByteStorage": ("u1", 1),
    "BoolStorage": ("?", 1),
}


class Refused(Exception):
    """The pickle names something that is not a tensor or a plain container."""


class Unsupported(Exception):
    """A torch feature this reader does not implement (torch.load may read it)."""


class ViewOverStorage:
    """A tensor that claims more elements than its storage holds (zero or overlapping
    strides): never expanded; the reader refuses it naming the entry it was found under."""

    def __init__(self, shape: tuple[int, ...], claimed: int, stored: int,
                 dtype: np.dtype) -> None:
        self.shape, self.claimed, self.stored, self.dtype = shape, claimed, stored, dtype
        self.ndim = len(shape)


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class _Storage:
    def __init__(self, dtype: str, itemsize: int, key: str, numel: int) -> None:
        self.dtype, self.itemsize, self.key, self.numel = dtype, itemsize, key, numel
        self.array: np.ndarray | None = None


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> np.ndarray:
    if not isinstance(storage, _Storage):
        raise Unsupported("a tensor without a plain storage")
    try:
        offset = int(offset)
        size = tuple(int(s) for s in size)
        stride = tuple(int(s) for s in stride)
    except (TypeError, ValueError):
        raise Refused("a tensor with a malformed size or stride") from None
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size) \
            or any(s < 0 for s in stride):
        raise Refused("a tensor with a malformed size or stride")
    if storage.array is None:
        raise Unsupported("storage not loaded")
    base = storage.array
    if 0 in size:
        return np.zeros(size, dtype=base.dtype)
    numel = 1
    for n in size:
        numel *= n
    if numel > base.shape[0]:  # zero or overlapping strides: a small file, a huge array
        return ViewOverStorage(size, numel * base.itemsize, base.shape[0] * base.itemsize,
                               base.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= base.shape[0]:
        raise Refused(f"a tensor reaching element {last} of a storage of {base.shape[0]}")
    item = base.itemsize
    view = np.lib.stride_tricks.as_strided(base[offset:], shape=size,
                                           strides=tuple(s * item for s in stride),
                                           writeable=False)
    return np.array(view)  # a compact copy, detached from the storage


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, little: bool) -> None:
        super().__init__(io.BytesIO(data))
        self._zip, self._prefix, self._little = archive, prefix, little
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if module == "torch" and name in STORAGES:
            return _StorageType(name)
        if module.startswith("torch"):
            raise Unsupported(f"{module}.{name}")
        raise Refused(f"the global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise Refused("an unknown persistent id")
        _, stype, key, _location, numel = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str):
            raise Unsupported("a storage of an unsupported type")
        if key in self._storages:
            return self._storages[key]
        dtype, itemsize = STORAGES[stype.name]
        member = f"{self._prefix}data/{key}"
        try:
            info = self._zip.getinfo(member)
        except KeyError:
            raise Refused(f"a storage {key!r} missing from the archive") from None
        if not isinstance(numel, int) or numel < 0 or info.file_size < numel * itemsize:
            raise Refused(f"storage {key!r}: {info.file_size} bytes for {numel} elements")
        _refuse_bomb(info)
        raw = self._zip.read(member)[: numel * itemsize]
        st = _Storage(dtype, itemsize, key, numel)
        if dtype == "bf16":  # bfloat16: the high half of a float32
            u = np.frombuffer(raw, dtype="<u2" if self._little else ">u2").astype(np.uint32)
            st.array = (u << 16).view(np.float32)
        else:
            dt = np.dtype(dtype)
            if not self._little and dt.itemsize > 1:
                dt = dt.newbyteorder(">")
            st.array = np.frombuffer(raw, dtype=dt)
        self._storages[key] = st
        return st


def _refuse_bomb(info: zipfile.ZipInfo) -> None:
    """A deflated member expanding past lsfix's limit (:func:`lsfix.readers.untrusted.check_expansion`;
    torch.save stores members uncompressed)."""
    from lsfix.readers.untrusted import EXPANSION_FLOOR, MAX_EXPANSION

    if info.file_size > EXPANSION_FLOOR and info.file_size > MAX_EXPANSION * max(
            1, info.compress_size):
        raise Refused(f"member {info.filename!r}: {info.compress_size} stored bytes expand to "
                      f"{info.file_size} (a compression bomb?)")


def is_torch_zip(archive: zipfile.ZipFile) -> str | None:
    """The record prefix (``"archive/"``) when ``archive`` is a torch.save file, else None."""
    for n in archive.namelist():
        if n.endswith("data.pkl") and n.count("/") == 1:
            return n[: -len("data.pkl")]
    return None


def load(archive: zipfile.ZipFile) -> Any:
    """The object ``torch.save`` stored, with tensors as numpy arrays.

    Raises :class:`Refused`, :class:`Unsupported`, or pickle/zip errors for corrupt bytes.
    """
    prefix = is_torch_zip(archive)
    if prefix is None:
        raise Unsupported("no data.pkl record")
    little = True
    if f"{prefix}byteorder" in archive.namelist():
        order = archive.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
        if order not in ("little", "big"):
            raise Refused(f"byteorder {order[:20]!r}")
        little = order == "little"
    _refuse_bomb(archive.getinfo(f"{prefix}data.pkl"))
    data = archive.read(f"{prefix}data.pkl")
    return _Unpickler(data, archive, prefix, little).load()


__all__ = ["Refused", "STORAGES", "Unsupported", "ViewOverStorage", "is_torch_zip", "load"]

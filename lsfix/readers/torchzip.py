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
storage types) raise :class:`Unsupported`; the file is then refused too (the file never
chooses ``torch.load`` as its parser). Objects the pickle can reach are sealed: ``BUILD``
cannot set attributes on them.

Cost is bounded by the archive's real bytes, never by what the pickle claims:

* the zip's members may not overlap (:func:`lsfix.readers.untrusted.check_zip`);
* ``byteorder`` is read 16 bytes at most, ``data.pkl`` at most :data:`MAX_PICKLE_BYTES`;
* the pickle is parsed once without building anything (:func:`_prescan`): at most
  :data:`MAX_OPS` opcodes and memo indices below :data:`MAX_MEMO` (the C unpickler sizes its
  memo by the largest index);
* a size or stride must be a tuple of at most :data:`MAX_DIMS` ints; the element count is
  multiplied out only until it passes the storage's;
* a storage member is decompressed only as far as the tensor needs, and every read counts
  against one expansion budget for the whole archive; a storage key names one storage type.
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


#: Largest ``data.pkl`` read (bytes): a pickle of a few tensors is a few KB.
MAX_PICKLE_BYTES = 64 << 20
#: Most pickle opcodes executed (each creates at most one object).
MAX_OPS = 4_000_000
#: Largest memo index a pickle may use (the C unpickler allocates its memo up to the index).
MAX_MEMO = 1_000_000
#: Most dimensions of a tensor.
MAX_DIMS = 64
#: Longest ``byteorder`` record read.
_BYTEORDER_BYTES = 16


class _Sealed:
    """Objects the pickle can reach are sealed: ``BUILD`` (which sets attributes from the
    pickle's state) is refused on them."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise Refused("a BUILD on a reader object")


class _StorageType(_Sealed):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Storage(_Sealed):
    __slots__ = ("dtype", "itemsize", "key", "numel", "member")

    def __init__(self, dtype: str, itemsize: int, key: str, numel: int, member: str) -> None:
        self.dtype, self.itemsize, self.key, self.numel = dtype, itemsize, key, numel
        self.member = member

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(np.float32) if self.dtype == "bf16" else np.dtype(self.dtype)


class _Dict(_Sealed):
    """``collections.OrderedDict``: a plain ``dict``."""

    __slots__ = ()

    def __call__(self, *args: Any) -> dict[Any, Any]:
        if args:
            raise Refused("an OrderedDict built from arguments")
        return {}


def _ints(value: Any, what: str) -> tuple[int, ...]:
    """A tuple of non-negative ints (``bool``, strings and other iterables refused)."""
    if not isinstance(value, tuple) or len(value) > MAX_DIMS or not all(
            type(v) is int for v in value):
        raise Refused(f"a tensor whose {what} is not a tuple of at most {MAX_DIMS} integers")
    if any(v < 0 for v in value):
        raise Refused(f"a tensor with a negative {what}")
    return value


class _Reader:
    """The archive's members, read only as far as a tensor needs, within one expansion
    budget for the whole archive (the rule of :func:`lsfix.readers.untrusted.check_expansion`
    applied to the sums over every read)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.zip = archive
        self.little = True
        self.expanded = 0
        self.stored = 0

    def read(self, member: str, nbytes: int) -> bytes:
        info = self.zip.getinfo(member)
        if nbytes > info.file_size:
            raise Refused(f"member {member[:80]!r}: {info.file_size} bytes, {nbytes} needed")
        # the share of the member's stored bytes this read uses, against the archive's budget
        share = info.compress_size if info.file_size == 0 else -(
            -info.compress_size * nbytes // info.file_size)
        self.expanded += nbytes
        self.stored += max(1, share)
        _refuse_expansion(self.stored, self.expanded, f"member {member[:80]!r}")
        with self.zip.open(info) as fh:
            data = fh.read(nbytes)
        if len(data) != nbytes:
            raise Refused(f"member {member[:80]!r} is truncated")
        return data

    def array(self, st: _Storage, stop: int) -> np.ndarray:
        """Elements ``[0, stop)`` of storage ``st`` (only those bytes are decompressed)."""
        raw = self.read(st.member, stop * st.itemsize)
        if st.dtype == "bf16":  # bfloat16: the high half of a float32
            u = np.frombuffer(raw, dtype="<u2" if self.little else ">u2").astype(np.uint32)
            return (u << 16).view(np.float32)
        dt = np.dtype(st.dtype)
        if not self.little and dt.itemsize > 1:
            dt = dt.newbyteorder(">")
        return np.frombuffer(raw, dtype=dt)


class _RebuildTensor(_Sealed):
    """``torch._utils._rebuild_tensor_v2``: a numpy array read from the storage's member
    (offset, size and stride checked against the storage first: no read outside it)."""

    __slots__ = ("reader",)

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def __call__(self, storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> Any:
        if not isinstance(storage, _Storage):
            raise Unsupported("a tensor without a plain storage")
        if type(offset) is not int or offset < 0:
            raise Refused("a tensor with a malformed size or stride")
        size = _ints(size, "size")
        stride = _ints(stride, "stride")
        if len(size) != len(stride):
            raise Refused("a tensor with a malformed size or stride")
        dtype = storage.np_dtype
        if 0 in size:
            return np.zeros(size, dtype=dtype)
        numel = 1
        for n in size:  # early exit: a product past the storage's is not multiplied out
            numel *= n
            if numel > storage.numel:  # zero or overlapping strides: a small file, huge array
                return ViewOverStorage(size, _claimed(size) * dtype.itemsize,
                                       storage.numel * dtype.itemsize, dtype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= storage.numel:
            raise Refused(f"a tensor reaching element {last} of a storage of {storage.numel}")
        base = self.reader.array(storage, last + 1)
        view = np.lib.stride_tricks.as_strided(base[offset:], shape=size,
                                               strides=tuple(s * base.itemsize for s in stride),
                                               writeable=False)
        return np.array(view)  # a compact copy, detached from the bytes read


def _claimed(size: tuple[int, ...]) -> int:
    """The element count ``size`` claims, capped at 2**80 (never multiplied out further)."""
    numel = 1
    for n in size:
        numel = min(numel * n, 1 << 80)
    return numel


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, reader: _Reader, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self._reader, self._prefix = reader, prefix
        self._storages: dict[str, _Storage] = {}
        self._rebuild = _RebuildTensor(reader)
        self._dict = _Dict()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild
        if (module, name) == ("collections", "OrderedDict"):
            return self._dict
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
        dtype, itemsize = STORAGES[stype.name]
        cached = self._storages.get(key)
        if cached is not None:
            if (cached.dtype, cached.numel) != (dtype, numel):
                raise Refused(f"storage {key[:40]!r} named as two different storages")
            return cached
        member = f"{self._prefix}data/{key}"
        try:
            info = self._reader.zip.getinfo(member)
        except KeyError:
            raise Refused(f"a storage {key[:40]!r} missing from the archive") from None
        if type(numel) is not int or numel < 0 or info.file_size < numel * itemsize:
            raise Refused(f"storage {key[:40]!r}: {info.file_size} bytes for "
                          f"{str(numel)[:40]} elements")
        _refuse_bomb(info)
        st = _Storage(dtype, itemsize, key, numel, member)
        self._storages[key] = st
        return st


def _refuse_expansion(stored: int, expanded: int, what: str) -> None:
    from lsfix.readers.untrusted import EXPANSION_FLOOR, MAX_EXPANSION

    if expanded > EXPANSION_FLOOR and expanded > MAX_EXPANSION * max(1, stored):
        raise Refused(f"{what[:80]}: {stored} stored bytes expand to {expanded} (a "
                      "compression bomb?)")


def _refuse_bomb(info: zipfile.ZipInfo) -> None:
    """A deflated member expanding past lsfix's limit (:func:`lsfix.readers.untrusted.check_expansion`;
    torch.save stores members uncompressed)."""
    _refuse_expansion(info.compress_size, info.file_size, f"member {info.filename[:80]!r}")


def _prescan(data: bytes) -> None:
    """Parse the pickle once without building anything (cost bounded by its bytes): at most
    :data:`MAX_OPS` opcodes, memo indices below :data:`MAX_MEMO`."""
    import pickletools

    ops = memo = 0
    try:
        for op, arg, _pos in pickletools.genops(data):
            ops += 1
            if ops > MAX_OPS:
                raise Refused(f"a pickle of more than {MAX_OPS} operations")
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"):
                if not (isinstance(arg, int) and 0 <= arg < MAX_MEMO):
                    raise Refused(f"a pickle memo index {str(arg)[:20]} (the limit is "
                                  f"{MAX_MEMO})")
            elif op.name == "MEMOIZE":
                memo += 1
                if memo > MAX_MEMO:
                    raise Refused(f"a pickle memo of more than {MAX_MEMO} entries")
    except ValueError as exc:  # pickletools: a malformed opcode or argument
        raise pickle.UnpicklingError(str(exc)[:120]) from None


def is_torch_zip(archive: zipfile.ZipFile) -> str | None:
    """The record prefix (``"archive/"``) when ``archive`` is a torch.save file, else None:
    exactly one ``<folder>/data.pkl`` (see :func:`has_pickle` for the readers' test)."""
    found = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1
             and len(n) > len("/data.pkl")]
    return found[0][: -len("data.pkl")] if len(found) == 1 else None


def has_pickle(archive: zipfile.ZipFile) -> bool:
    """Whether any member is named like a pickle record (``data.pkl`` anywhere): such an
    archive is read as a torch.save file or refused, never as an ``.npz``."""
    return any(n == "data.pkl" or n.endswith("/data.pkl") for n in archive.namelist())


def load(archive: zipfile.ZipFile) -> Any:
    """The object ``torch.save`` stored, with tensors as numpy arrays.

    Raises :class:`Refused`, :class:`Unsupported`, or pickle/zip errors for corrupt bytes.
    """
    from lsfix.readers.untrusted import check_zip

    check_zip(archive, Refused)
    prefix = is_torch_zip(archive)
    if prefix is None:
        raise Refused("a data.pkl that is not the one <folder>/data.pkl record of torch.save")
    reader = _Reader(archive)
    names = set(archive.namelist())
    if f"{prefix}byteorder" in names:
        with archive.open(f"{prefix}byteorder") as fh:
            raw = fh.read(_BYTEORDER_BYTES + 1)
        order = raw.decode("ascii", "replace").strip()
        if len(raw) > _BYTEORDER_BYTES or order not in ("little", "big"):
            raise Refused(f"byteorder {order[:20]!r}")
        reader.little = order == "little"
    info = archive.getinfo(f"{prefix}data.pkl")
    if info.file_size > MAX_PICKLE_BYTES:
        raise Refused(f"a data.pkl of {info.file_size} bytes (the limit is {MAX_PICKLE_BYTES})")
    _refuse_bomb(info)
    with archive.open(info) as fh:
        data = fh.read(MAX_PICKLE_BYTES + 1)
    if len(data) > MAX_PICKLE_BYTES:
        raise Refused(f"a data.pkl of more than {MAX_PICKLE_BYTES} bytes")
    _prescan(data)
    return _Unpickler(data, reader, prefix).load()


__all__ = ["MAX_DIMS", "MAX_MEMO", "MAX_OPS", "MAX_PICKLE_BYTES", "Refused", "STORAGES",
           "Unsupported", "ViewOverStorage", "has_pickle", "is_torch_zip", "load"]

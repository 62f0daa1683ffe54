"""Datasets for ``lsfix extract``: image folders, array files, IDX files, torchvision datasets.

Dataset specs
-------------
``FOLDER``
    ImageFolder layout (``FOLDER/<class>/<image>``: class names from the sub-folders, sorted;
    labels are their indices) or a flat folder of images (no labels). Sample ids are the
    paths relative to ``FOLDER``.
``FILE.npy`` / ``FILE.npz`` / ``FILE.h5``
    Images ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)``, vectors ``(N, D)``, token ids
    ``(N, L)`` (an integer array other than uint8: passed to the model as int64, unscaled) or
    sequences ``(N, L, D)`` (``--layout nld``; a 3-D float array is otherwise read as
    single-channel images, and the run says so), with optional labels ``(N,)`` (or
    ``(N, H, W)`` for dense models). Keys are found by name (images: ``images``, ``x``,
    ``inputs``, ``data``; labels: ``labels``, ``y``, ``targets``; also ``sample_ids``/``ids``
    and ``class_names``) or given with ``--images-key`` / ``--labels-key``. uint8 arrays are
    images (scaled by 1/255); float arrays are used as stored.
``idx:PREFIX``
    Raw IDX files (MNIST family), gzipped or not: ``PREFIX-images-idx3-ubyte[.gz]`` and
    ``PREFIX-labels-idx1-ubyte[.gz]``, e.g. ``idx:/usr/share/datasets/fashion-mnist/t10k``.
``torchvision:FashionMNIST|MNIST|KMNIST|CIFAR10|CIFAR100|ImageNet`` with ``--root``
    torchvision's own layout under ``--root``; for the MNIST family, IDX files lying directly
    in ``--root`` (Debian's ``dataset-fashion-mnist``) are found too. Nothing is downloaded
    unless ``--download``. ``--split`` picks ``test`` (default) / ``train`` (``val`` for
    ImageNet).

Every dataset yields ``(image, label, index)``; ``label`` is -1 when there are none.
Batches are ``(images, labels, indices)`` tensors. Array-backed datasets fetch whole batches
at once (``__getitems__``), which keeps a ``DataLoader`` near the speed of slicing a tensor.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lsfix.errors import InputError, MissingDependency, UsageError
from lsfix.extract.preprocess import Preprocess

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff",
                  ".webp", ".gif")
IMAGE_KEYS = ("images", "image", "x", "X", "inputs", "input", "data")
LABEL_KEYS = ("labels", "label", "y", "Y", "targets", "target")
ID_KEYS = ("sample_ids", "ids", "names", "filenames")
CLASS_KEYS = ("class_names", "classes")
TORCHVISION_SETS = ("FashionMNIST", "MNIST", "KMNIST", "CIFAR10", "CIFAR100", "ImageNet")
MNIST_FAMILY = ("FashionMNIST", "MNIST", "KMNIST")


@dataclass
class DataSource:
    """A dataset, described: build a torch ``Dataset`` with :meth:`make`, ids with :meth:`ids`.

    Attributes
    ----------
    size : int
        Number of samples (after ``--limit``).
    label_shape : tuple of int or None
        ``()`` for one class label per sample, ``(H, W)`` for dense labels, ``None``: no labels.
    in_memory : bool
        Fetching is a cheap array slice (``--workers auto`` then uses none).
    """

    kind: str
    spec: str
    root: str
    size: int
    class_names: list[str] | None
    label_shape: tuple[int, ...] | None
    input_dtype: str
    layout: str | None
    in_memory: bool
    _factory: Callable[[Preprocess], Any]
    _ids: Callable[[np.ndarray], list[str]]
    extra: dict[str, Any] = field(default_factory=dict)
    #: one-line notes on how the input was read (printed by ``lsfix extract``)
    notes: list[str] = field(default_factory=list)

    def make(self, pre: Preprocess, start: int = 0, stop: int | None = None) -> Any:
        """A torch ``Dataset`` over rows ``start .. stop`` (indices stay global)."""
        ds = self._factory(pre)
        stop = self.size if stop is None else stop
        if start == 0 and stop == len(ds):
            return ds
        return RangeView(ds, start, stop)

    def ids(self, indices: np.ndarray) -> list[str]:
        """Sample ids of the given global indices."""
        return self._ids(np.asarray(indices, dtype=np.int64))

    def record(self) -> dict[str, Any]:
        """Provenance entry."""
        rec = {"spec": self.spec, "kind": self.kind, "root": self.root, "size": self.size,
               "classes": len(self.class_names) if self.class_names else None,
               "labels": self.label_shape is not None, "input_dtype": self.input_dtype,
               "layout": self.layout}
        rec.update(self.extra)
        return rec


# -------------------------------------------------------------------------- torch datasets


def collate(items: Any) -> Any:
    """Stack ``(image, label, index)`` items; pass through batches made by ``__getitems__``."""
    import torch

    if isinstance(items, tuple) and len(items) == 3 and isinstance(items[0], torch.Tensor):
        return items
    xs, ys, idx = zip(*items, strict=True)
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) > 1:
        a, b = sorted(shapes)[:2]
        raise InputError(
            f"images in one batch have different sizes after preprocessing ({a[-2]}x{a[-1]} "
            f"and {b[-2]}x{b[-1]}); give --resize and --crop (or --resize HxW)")
    return (torch.stack(xs), torch.as_tensor(ys, dtype=torch.int64),
            torch.as_tensor(idx, dtype=torch.int64))


class RangeView:
    """Rows ``start .. stop`` of a dataset; items keep their global index."""

    def __init__(self, ds: Any, start: int, stop: int) -> None:
        self.ds, self.start, self.stop = ds, int(start), int(stop)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> Any:
        return self.ds[self.start + int(i)]

    def __getitems__(self, idx: Sequence[int]) -> Any:
        return self.ds.__getitems__([self.start + int(i) for i in idx])


class ImageFiles:
    """Image files decoded with PIL, one per item."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int] | None, pre: Preprocess,
                 display_root: str) -> None:
        self.paths = list(paths)
        self.labels = None if labels is None else list(labels)
        self.pre = pre
        self.display_root = display_root

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        from PIL import Image, UnidentifiedImageError

        path = self.paths[i]
        try:
            with Image.open(path) as img:
                img.load()
                x = self.pre.host_pil(img)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise InputError(f"cannot decode image ({str(exc).splitlines()[0]})",
                             file=path) from None
        y = -1 if self.labels is None else self.labels[i]
        return x, y, i

    def __getitems__(self, idx: Sequence[int]) -> Any:
        return [self[i] for i in idx]


class ArrayImages:
    """Images in an array (numpy, memory-mapped npy, or an HDF5 dataset opened per process)."""

    def __init__(self, opener: Callable[[], Any], n: int, layout: str,
                 labels: np.ndarray | None, pre: Preprocess, name: str) -> None:
        self._opener = opener
        self._arr: Any = None
        self._pid: int | None = None
        self.n = n
        self.layout = layout
        self.labels = labels
        self.pre = pre
        self.name = name
        #: read contiguous uint8/float32 batches straight into pinned memory (CUDA, no workers)
        self.pin = False

    def __len__(self) -> int:
        return self.n

    def _pinned_block(self, arr: Any, a: int, b: int) -> Any:
        """Copy rows ``a:b`` once, into page-locked memory; ``None`` if that does not apply."""
        import torch

        pre = self.pre
        if (pre.resize is not None or pre.crop is not None
                or self.layout not in ("NCHW", "NHW", "ND")
                or np.dtype(arr.dtype) not in (np.dtype(np.uint8), np.dtype(np.float32))):
            return None
        c = 1 if self.layout == "NHW" else (arr.shape[1] if self.layout == "NCHW" else None)
        if pre.channels is not None and c is not None and c != pre.channels:
            return None
        tdt = torch.uint8 if np.dtype(arr.dtype) == np.uint8 else torch.float32
        shape = (b - a, 1, *arr.shape[1:]) if self.layout == "NHW" else (b - a, *arr.shape[1:])
        out = torch.empty(shape, dtype=tdt, pin_memory=True)
        view = out.numpy()
        np.copyto(view[:, 0] if self.layout == "NHW" else view, arr[a:b])
        if tdt == torch.float32 and not np.isfinite(view).all():
            return None  # let the checked path name the sample
        return out

    def _array(self) -> Any:
        pid = os.getpid()
        if self._arr is None or self._pid != pid:
            self._arr = self._opener()
            self._pid = pid
        return self._arr

    def __getitem__(self, i: int) -> Any:
        x, y, idx = self.__getitems__([i])
        return x[0], int(y[0]), int(idx[0])

    def __getitems__(self, idx: Sequence[int]) -> Any:
        import torch

        ix = np.asarray(idx, dtype=np.int64)
        arr = self._array()
        contiguous = bool(ix.size) and bool(np.all(np.diff(ix) == 1))
        if self.pin and contiguous:
            x = self._pinned_block(arr, int(ix[0]), int(ix[-1]) + 1)
            if x is not None:
                return x, self._labels_of(ix), torch.from_numpy(ix)
        if contiguous:
            block = np.asarray(arr[int(ix[0]): int(ix[-1]) + 1])
        else:
            order = np.argsort(ix, kind="stable")
            block = np.asarray(arr[np.sort(ix)]) if isinstance(arr, np.ndarray) else \
                np.stack([np.asarray(arr[int(j)]) for j in np.sort(ix)])
            inv = np.empty_like(order)
            inv[order] = np.arange(order.size)
            block = block[inv]
        if block.dtype.kind == "f":
            finite = np.isfinite(block)
            if not finite.all():
                bad = int(ix[np.argmax(~finite.reshape(finite.shape[0], -1).all(axis=1))])
                raise InputError(f"sample {bad} has non-finite values (NaN or inf)",
                                 file=self.name)
            block = block.astype(np.float32, copy=False)
        elif self.layout == "NL":  # token ids: int64 for embedding layers, never scaled
            block = block.astype(np.int64, copy=False)
        elif block.dtype != np.uint8:
            block = block.astype(np.float32)
        if self.layout == "NHW":
            block = block[:, None]
        elif self.layout == "NHWC":
            block = block.transpose(0, 3, 1, 2)
        block = np.ascontiguousarray(block)
        if not block.flags.writeable:  # a slice of a read-only memory map
            block = block.copy()
        x = torch.from_numpy(block)
        if x.ndim == 4:
            x = self.pre.host_batch(x)
        return x, self._labels_of(ix), torch.from_numpy(ix)

    def _labels_of(self, ix: np.ndarray) -> Any:
        import torch

        if self.labels is None:
            return torch.full((ix.size,), -1, dtype=torch.int64)
        return torch.from_numpy(np.asarray(self.labels[ix], dtype=np.int64))


# -------------------------------------------------------------------------- helpers


def _scan_folder(root: Path) -> tuple[list[str], list[int] | None, list[str] | None]:
    def is_img(p: Path) -> bool:
        return p.suffix.lower() in IMG_EXTENSIONS and not p.name.startswith(".")

    entries = sorted(root.iterdir(), key=lambda p: p.name)
    subdirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    loose = [p for p in entries if p.is_file() and is_img(p)]
    if subdirs and loose:
        raise InputError(
            f"has both image files ({loose[0].name}, ...) and sub-folders ({subdirs[0].name}, "
            "...); use an ImageFolder layout (one sub-folder per class) or a flat folder of "
            "images", file=str(root))
    if loose:
        return [str(p) for p in loose], None, None
    paths: list[str] = []
    labels: list[int] = []
    classes = [d.name for d in subdirs]
    for ci, d in enumerate(subdirs):
        found = []
        for dirpath, dirnames, filenames in os.walk(d, followlinks=True):
            dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
            for fn in sorted(filenames):
                p = Path(dirpath) / fn
                if is_img(p):
                    found.append(str(p))
        paths.extend(found)
        labels.extend([ci] * len(found))
    if not paths:
        raise InputError("holds no images (looked for "
                         f"{', '.join(IMG_EXTENSIONS[:5])}, ...)", file=str(root))
    return paths, labels, classes


def _pick_key(keys: Sequence[str], wanted: Sequence[str], given: str | None, what: str,
              name: str, required: bool) -> str | None:
    if given is not None:
        if given not in keys:
            raise InputError(f"has no {what} key {given!r} (keys: {', '.join(keys)})", file=name)
        return given
    for k in wanted:
        if k in keys:
            return k
    if required:
        if len(keys) == 1:
            return keys[0]
        raise InputError(f"cannot tell which key holds the {what} (keys: {', '.join(keys)}); "
                         f"give --{what}-key", file=name)
    return None


#: --layout values and the array rank each one reads
LAYOUTS = {"NCHW": 4, "NHWC": 4, "NHW": 3, "NLD": 3, "ND": 2, "NL": 2}


def _layout_of(shape: tuple[int, ...], name: str, forced: str | None,
               dtype: np.dtype | None = None) -> str:
    if forced and forced.upper() in LAYOUTS:
        lay = forced.upper()
        if LAYOUTS[lay] != len(shape):
            raise InputError(f"--layout {forced}: needs a {LAYOUTS[lay]}-D array, the data is "
                             f"{len(shape)}-D {shape}", file=name)
        if lay == "NL" and dtype is not None and dtype.kind not in "iu":
            raise InputError(f"--layout nl: token ids must be integers, got {dtype}", file=name)
        return lay
    if len(shape) == 2:
        if dtype is not None and dtype.kind in "iu" and dtype != np.uint8:
            return "NL"
        return "ND"
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4:
        if forced:
            return forced.upper()
        c_first, c_last = shape[1] in (1, 3, 4), shape[3] in (1, 3, 4)
        if c_last and not c_first:
            return "NHWC"
        return "NCHW"
    raise InputError(f"images have shape {shape}; expected (N, H, W), (N, C, H, W), "
                     "(N, H, W, C), (N, D), (N, L) token ids or (N, L, D) sequences", file=name)


def _check_labels(labels: Any, n: int, image_shape: tuple[int, ...], name: str, key: str
                  ) -> tuple[np.ndarray, tuple[int, ...]]:
    lab = np.asarray(labels)
    if lab.dtype.kind == "b":
        lab = lab.astype(np.int64)
    if lab.dtype.kind not in ("i", "u"):
        raise InputError(f"labels must be integers, got {lab.dtype}", file=name, dataset=key)
    if lab.shape[0] != n:
        raise InputError(f"{lab.shape[0]} labels for {n} images", file=name, dataset=key)
    return lab.astype(np.int64), tuple(lab.shape[1:])


def _strings(values: Any) -> list[str]:
    out = []
    for v in np.asarray(values).reshape(-1):
        out.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
    return out


def _default_ids(prefix: str) -> Callable[[np.ndarray], list[str]]:
    return lambda ix: [f"{prefix}{int(i)}" for i in ix]


# -------------------------------------------------------------------------- readers


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (gzipped or not) into a numpy array."""
    name = str(path)
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(name, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read IDX file ({exc})", file=name) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise InputError("not an IDX file (bad magic number)", file=name)
    dtypes: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
              0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in dtypes or ndim == 0:
        raise InputError(f"unsupported IDX type 0x{code:02x} / {ndim} dims", file=name)
    dims = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    dtype = np.dtype(dtypes[code])
    count = int(np.prod(dims))
    body = data[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise InputError(f"holds {len(body)} bytes of data, expected {count * dtype.itemsize} "
                         f"for shape {dims}; truncated?", file=name)
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(prefix: Path, part: str) -> Path | None:
    for cand in (f"{prefix}-{part}", f"{prefix}-{part}.gz", f"{prefix}.{part}",
                 f"{prefix}.{part}.gz"):
        if Path(cand).is_file():
            return Path(cand)
    return None


def _array_source(kind: str, spec: str, root: str, images: Any, labels: Any,
                  class_names: list[str] | None, ids: Any, *, name: str, limit: int | None,
                  layout: str | None, opener: Callable[[], Any] | None = None,
                  label_key: str = "labels", id_prefix: str = "",
                  extra: dict[str, Any] | None = None) -> DataSource:
    """``images`` is an array or anything with ``shape`` and ``dtype`` (then ``opener``)."""
    shape = tuple(int(s) for s in images.shape)
    n_all = shape[0]
    if n_all == 0:
        raise InputError("holds zero samples", file=name)
    dt = np.dtype(images.dtype)
    lay = _layout_of(shape, name, layout, dt)
    notes = []
    if lay == "NL" and not layout:
        notes.append(f"{name}: {shape} {dt} array read as token ids (N, L), passed as int64 "
                     "unscaled; --layout nd reads it as feature vectors")
    elif lay == "NHW" and not layout and dt.kind == "f":
        notes.append(f"{name}: {shape} float array read as single-channel images (N, H, W); "
                     "--layout nld reads it as sequences (N, L, D) for a text/sequence model")
    lab = None
    label_shape: tuple[int, ...] | None = None
    if labels is not None:
        lab, label_shape = _check_labels(labels, n_all, shape, name, label_key)
    n = n_all if limit is None else min(limit, n_all)
    id_list = None if ids is None else _strings(ids)
    if id_list is not None and len(id_list) != n_all:
        raise InputError(f"{len(id_list)} sample ids for {n_all} images", file=name)
    if dt.kind not in ("u", "i", "f", "b"):
        raise InputError(f"images have dtype {dt}; expected uint8 or float", file=name)
    open_fn = opener if opener is not None else ConstOpener(images)

    def factory(pre: Preprocess) -> Any:
        return ArrayImages(open_fn, n, lay, lab, pre, name)

    def id_fn(ix: np.ndarray) -> list[str]:
        if id_list is not None:
            return [id_list[int(i)] for i in ix]
        return [f"{id_prefix}{int(i)}" for i in ix]

    return DataSource(kind, spec, root, n, class_names, label_shape,
                      "uint8" if dt == np.uint8 else str(dt), lay, True, factory, id_fn,
                      extra=extra or {}, notes=notes)


@dataclass
class _ShapeDtype:
    shape: tuple[int, ...]
    dtype: Any


class ConstOpener:
    """Opener of an in-memory array."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def __call__(self) -> Any:
        return self.arr


class NpyOpener:
    """Opener of a memory-mapped ``.npy`` file (re-mapped in each worker process)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> Any:
        return np.load(self.path, mmap_mode="r", allow_pickle=False)


class H5Opener:
    """Opener of an HDF5 dataset (opened anew in each worker process)."""

    def __init__(self, path: str, key: str) -> None:
        self.path, self.key = path, key

    def __call__(self) -> Any:
        from lsfix.readers import h5safe
        return h5safe.open_local(self.path, self.path)[self.key]


def open_dataset(spec: str, *, root: str | None = None, split: str | None = None,
                 download: bool = False, images_key: str | None = None,
                 labels_key: str | None = None, layout: str | None = None,
                 limit: int | None = None) -> DataSource:
    """Describe the dataset named by ``spec`` (see the module docstring)."""
    if limit is not None and limit <= 0:
        raise UsageError(f"--limit {limit}: must be positive")
    if layout is not None and layout.upper() not in LAYOUTS:
        raise UsageError(f"--layout {layout!r}: choose {', '.join(x.lower() for x in LAYOUTS)}")
    if spec.startswith("torchvision:"):
        return _torchvision_dataset(spec, root, split, download, limit)
    if spec.startswith("idx:"):
        return _idx_dataset(spec, Path(spec[4:]), limit, class_names=None, id_prefix=None)
    p = Path(spec)
    if not p.exists():
        raise InputError("no such file or folder", file=spec)
    if p.is_dir():
        paths, labels, classes = _scan_folder(p)
        if limit is not None:
            paths, labels = paths[:limit], (labels[:limit] if labels is not None else None)
        rel = [os.path.relpath(x, p).replace(os.sep, "/") for x in paths]
        absroot = str(p.resolve())

        def factory(pre: Preprocess) -> Any:
            return ImageFiles(paths, labels, pre, absroot)

        return DataSource("image folder" if classes is not None else "flat image folder",
                          spec, absroot, len(paths), classes,
                          () if labels is not None else None, "uint8", None, False, factory,
                          lambda ix: [rel[int(i)] for i in ix],
                          extra={"files": len(paths)})
    suffix = p.suffix.lower()
    absname = str(p.resolve())
    if suffix == ".npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot read .npy ({str(exc).splitlines()[0]})", file=spec) from None
        if images_key or labels_key:
            raise UsageError("--images-key/--labels-key apply to .npz and .h5 files; a .npy "
                             "file holds images only")
        return _array_source("npy", spec, absname, arr, None, None, None, name=spec,
                             limit=limit, layout=layout, opener=NpyOpener(absname))
    if suffix == ".npz":
        try:
            npz = np.load(p, allow_pickle=False)
            keys = list(npz.keys())
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot read .npz ({str(exc).splitlines()[0]})", file=spec) from None
        ik = _pick_key(keys, IMAGE_KEYS, images_key, "images", spec, True)
        lk = _pick_key([k for k in keys if k != ik], LABEL_KEYS, labels_key, "labels", spec,
                       False)
        idk = _pick_key(keys, ID_KEYS, None, "ids", spec, False)
        ck = _pick_key(keys, CLASS_KEYS, None, "classes", spec, False)
        try:
            images = npz[ik]
            labels = npz[lk] if lk else None
            ids = npz[idk] if idk else None
            classes = _strings(npz[ck]) if ck else None
        except ValueError as exc:
            raise InputError(f"cannot read arrays ({str(exc).splitlines()[0]}; object arrays "
                             "are refused)", file=spec) from None
        finally:
            npz.close()  # every array above is read into memory
        return _array_source("npz", spec, absname, images, labels, classes, ids, name=spec,
                             limit=limit, layout=layout, label_key=lk or "labels",
                             extra={"images_key": ik, "labels_key": lk})
    if suffix in (".h5", ".hdf5", ".he5"):
        import h5py

        from lsfix.readers import h5safe
        try:
            with h5safe.open_local(str(p), spec) as f:
                keys = [k for k in f if isinstance(f[k], h5py.Dataset)]
                ik = _pick_key(keys, IMAGE_KEYS, images_key, "images", spec, True)
                lk = _pick_key([k for k in keys if k != ik], LABEL_KEYS, labels_key, "labels",
                               spec, False)
                idk = _pick_key(keys, ID_KEYS, None, "ids", spec, False)
                ck = _pick_key(keys, CLASS_KEYS, None, "classes", spec, False)
                ds = f[ik]
                shape, dtype = ds.shape, ds.dtype
                labels = f[lk][()] if lk else None
                ids = f[idk][()] if idk else None
                classes = _strings(f[ck][()]) if ck else None
        except OSError as exc:
            raise InputError(f"cannot read HDF5 ({str(exc).split('(')[0].strip()})", file=spec
                             ) from None
        assert ik is not None

        meta = np.empty((0,), dtype=dtype)  # carries the dtype; the shape comes next
        return _array_source("h5", spec, absname, _ShapeDtype(shape, meta.dtype), labels,
                             classes, ids, name=spec, limit=limit, layout=layout,
                             opener=H5Opener(absname, ik),
                             label_key=lk or "labels", extra={"images_key": ik,
                                                              "labels_key": lk})
    if suffix == ".gz" or "idx" in p.name:
        return _idx_dataset(spec, p, limit, class_names=None, id_prefix=None)
    raise InputError("unknown dataset type; give a folder, .npy, .npz, .h5, idx:PREFIX or "
                     "torchvision:NAME", file=spec)


def _idx_dataset(spec: str, prefix: Path, limit: int | None, *,
                 class_names: list[str] | None, id_prefix: str | None) -> DataSource:
    images_file: Path | None
    if prefix.is_file():  # an images file named directly
        images_file = prefix
        stem = prefix.name.split("-images")[0] if "-images" in prefix.name else None
        labels_file = _find_idx(prefix.parent / stem, "labels-idx1-ubyte") if stem else None
        base = stem or prefix.name
    else:
        images_file = _find_idx(prefix, "images-idx3-ubyte")
        labels_file = _find_idx(prefix, "labels-idx1-ubyte")
        base = prefix.name
        if images_file is None:
            raise InputError(f"no IDX images file {prefix}-images-idx3-ubyte[.gz]",
                             file=spec)
    images = read_idx(images_file)
    labels = read_idx(labels_file) if labels_file is not None else None
    return _array_source("idx", spec, str(images_file.resolve()), images, labels, class_names,
                         None, name=str(images_file), limit=limit, layout=None,
                         id_prefix=id_prefix if id_prefix is not None else f"{base}/",
                         extra={"labels_file": str(labels_file) if labels_file else None})


def _torchvision_dataset(spec: str, root: str | None, split: str | None, download: bool,
                         limit: int | None) -> DataSource:
    name = spec.split(":", 1)[1]
    canon = {s.lower(): s for s in TORCHVISION_SETS}.get(name.lower())
    if canon is None:
        raise UsageError(f"DATASET {spec}: choose one of "
                         f"{', '.join('torchvision:' + s for s in TORCHVISION_SETS)}")
    if root is None:
        raise UsageError(f"DATASET {spec} needs --root DIR (where the dataset lies)")
    try:
        import torchvision.datasets as tvd
    except ImportError:
        raise MissingDependency(f"DATASET {spec} needs torchvision: pip install torchvision"
                                ) from None
    rootp = Path(root)
    if not rootp.is_dir() and not download:
        raise InputError("no such folder (--root)", file=root)
    split = (split or ("val" if canon == "ImageNet" else "test")).lower()
    if canon == "ImageNet":
        if split not in ("val", "train"):
            raise UsageError(f"--split {split}: ImageNet has train and val")
        if download:
            raise UsageError("ImageNet cannot be downloaded; place it under --root")
        try:
            ds = tvd.ImageNet(str(rootp), split=split)
        except (RuntimeError, OSError) as exc:
            raise InputError(f"cannot open ImageNet {split} ({str(exc).splitlines()[0]}); it "
                             "needs the devkit archive, or pass the folder "
                             f"{rootp / split} directly as an ImageFolder", file=root) from None
        paths = [s[0] for s in ds.samples]
        labels = [int(s[1]) for s in ds.samples]
        if limit is not None:
            paths, labels = paths[:limit], labels[:limit]
        classes = [c[0] if isinstance(c, tuple) else str(c) for c in ds.classes]
        base = str((rootp / split).resolve())
        rel = [os.path.relpath(x, base).replace(os.sep, "/") for x in paths]

        def factory(pre: Preprocess) -> Any:
            return ImageFiles(paths, labels, pre, base)

        return DataSource("torchvision:ImageNet", spec, str(rootp.resolve()), len(paths),
                          classes, (), "uint8", None, False, factory,
                          lambda ix: [rel[int(i)] for i in ix], extra={"split": split})
    if split not in ("test", "train"):
        raise UsageError(f"--split {split}: {canon} has train and test")
    train = split == "train"
    cls = getattr(tvd, canon)
    classes_attr = list(getattr(cls, "classes", []) or []) or None
    if canon in MNIST_FAMILY:
        # Debian / plain layout: IDX files right in --root
        pre = "train" if train else "t10k"
        for folder in (rootp, rootp / canon / "raw", rootp / "raw"):
            if _find_idx(folder / pre, "images-idx3-ubyte") is not None:
                src = _idx_dataset(spec, folder / pre, limit, class_names=classes_attr,
                                   id_prefix=f"{split}/")
                src.kind = f"torchvision:{canon}"
                src.root = str(rootp.resolve())
                src.extra["split"] = split
                return src
    try:
        ds = cls(str(rootp), train=train, download=download)
    except RuntimeError as exc:
        hint = "" if download else "; pass --download to fetch it"
        raise InputError(f"{canon} not found under --root ({str(exc).splitlines()[0]}){hint}",
                         file=root) from None
    data = ds.data
    images = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
    targets = ds.targets
    arr_labels = targets.numpy() if hasattr(targets, "numpy") else np.asarray(targets)
    arr_classes = [str(c) for c in getattr(ds, "classes", [])] or None
    return _array_source(f"torchvision:{canon}", spec, str(rootp.resolve()), images, arr_labels,
                         arr_classes, None, name=f"{root} ({canon})", limit=limit, layout=None,
                         id_prefix=f"{split}/", extra={"split": split})

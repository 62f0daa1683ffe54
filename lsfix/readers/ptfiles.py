"""``torch.save`` inputs (``.pt``/``.pth``), read without torch by :mod:`lsfix.readers.torchzip`
(never ``torch.load`` for a zip file); the legacy pickle format only with torch's
``weights_only`` loader. Dispatched from :mod:`lsfix.readers.foreign`."""

from __future__ import annotations

import io
import warnings
import zipfile
from typing import Any

import numpy as np

from lsfix.errors import InputError, LsfixError, MissingDependency
from lsfix.readers.foreign import _EXTRACT_HINT, _describe
from lsfix.readers.npfiles import _from_named_arrays
from lsfix.readers.predictions import Predictions, predictions_from_arrays

# --------------------------------------------------------------------------------------------
# torch.save files


def _read_torch(src: str | io.BytesIO, name: str, ignore_index: int | None) -> Predictions:
    try:
        import torch
    except ImportError:
        raise MissingDependency(
            f"{name}: reading a torch.save file needs torch; {_EXTRACT_HINT}"
        ) from None
    if isinstance(src, io.BytesIO):
        src.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(src, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # UnpicklingError, RuntimeError (miniz), EOFError, ...
        text = str(exc)
        if "Weights only load failed" in text:
            raise InputError(
                f"refused by torch.load(weights_only=True): {_weights_only_reason(text)}; "
                "lsfix never unpickles arbitrary objects (save plain tensors, e.g. "
                "torch.save({'logits': logits, 'labels': labels}, path))",
                file=name,
            ) from None
        raise InputError(f"unreadable torch.save file ({_describe(exc)}); truncated or corrupt?",
                         file=name) from None

    return _from_torch_object(obj, name, ignore_index)


def _torch_zip_without_torch(zf: zipfile.ZipFile, name: str) -> Any:
    """The object of a torch.save zip read by :mod:`lsfix.readers.torchzip` (no torch import). A
    feature that reader does not support is refused too: the file never chooses
    ``torch.load`` as its parser (only ``extract --trust-pickle`` hands files to torch)."""
    from lsfix.readers import torchzip

    try:
        return torchzip.load(zf)
    except torchzip.Refused as exc:
        raise InputError(
            f"refused: the pickle in this torch.save file names {exc}, not only tensors and "
            "plain containers; lsfix never unpickles arbitrary objects (save plain tensors, "
            "e.g. torch.save({'logits': logits, 'labels': labels}, path))",
            file=name,
        ) from None
    except torchzip.Unsupported as exc:
        raise InputError(
            f"holds {str(exc)[:80]}, which lsfix's tensor reader does not read (it never hands "
            "a data file to torch.load); save plain dense tensors, e.g. torch.save({'logits': "
            "logits.detach().cpu(), 'labels': labels}, path)", file=name) from None
    except (LsfixError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # pickle, zip, zlib, struct errors of corrupt bytes
        raise InputError(f"unreadable torch.save file ({_describe(exc)}); truncated or corrupt?",
                         file=name) from None


def _from_torch_object(obj: Any, name: str, ignore_index: int | None) -> Predictions:
    """Predictions from what a torch.save file held (tensors as torch or numpy arrays)."""
    if _is_array(obj):
        pred = predictions_from_arrays(name, _to_numpy(obj, name, ""), dataset_names=("", ""),
                                       ignore_index=ignore_index)
        pred.foreign_format = "torch"
        return pred
    if isinstance(obj, dict):
        values = {k: v for k, v in obj.items() if isinstance(k, str)}
        meta = {k: _torch_meta(v) for k, v in values.items()}
        return _from_named_arrays(name, "torch", meta,
                                  lambda k: _to_numpy(values[k], name, f"/{k}"), what="entry",
                                  ignore_index=ignore_index)
    if isinstance(obj, (list, tuple)) and len(obj) in (1, 2):
        logits = _to_numpy(obj[0], name, "[0]")
        labels = _to_numpy(obj[1], name, "[1]") if len(obj) == 2 else None
        pred = predictions_from_arrays(name, logits, labels=labels, dataset_names=("[0]", "[1]"),
                                       ignore_index=ignore_index)
        pred.foreign_format = "torch"
        return pred
    shape = f" of {len(obj)} items" if isinstance(obj, (list, tuple)) else ""
    raise InputError(
        f"holds a {type(obj).__name__}{shape}; expected a tensor of logits, a dict with "
        "'logits' (and 'labels'), or a (logits, labels) pair",
        file=name,
    )


def _weights_only_reason(text: str) -> str:
    """The one informative sentence of torch's multi-paragraph weights-only error."""
    for para in (p.strip() for p in text.split("\n\n")):
        if not para or para.startswith(("Weights only load failed", "Check the documentation")):
            continue
        marker = "WeightsUnpickler error:"
        if marker in para:
            para = para.split(marker, 1)[1].strip()
        line = para.split("\n", 1)[0].strip().rstrip(".")
        return line if len(line) <= 200 else line[:197] + "..."
    return "unsupported content"


def _is_array(value: Any) -> bool:
    """A numpy array, or a torch tensor (checked without importing torch)."""
    from lsfix.readers.torchzip import ViewOverStorage

    if isinstance(value, np.ndarray | ViewOverStorage):
        return True
    return type(value).__module__.startswith("torch") and type(value).__name__ in (
        "Tensor", "Parameter")


def _torch_meta(value: Any) -> tuple[str, int]:
    from lsfix.readers.torchzip import ViewOverStorage

    if isinstance(value, np.ndarray | ViewOverStorage):
        return (value.dtype.kind, value.ndim)
    if _is_array(value):
        return ("f" if value.is_floating_point() else "other", value.dim())
    return ("other", 0)


def _to_numpy(value: Any, name: str, where: str) -> np.ndarray:
    """A tensor, numpy array or list of numbers/strings as a numpy array."""
    from lsfix.readers.torchzip import ViewOverStorage

    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, ViewOverStorage):
        raise InputError(
            f"tensor of shape {value.shape} ({value.claimed} bytes) is a view over only "
            f"{value.stored} stored bytes (zero or overlapping strides); lsfix reads only data "
            "stored in the file", file=name, dataset=where)
    if _is_array(value):
        import torch

        try:
            t = value.detach()
            if t.layout == torch.strided:
                # a view may claim far more elements than its storage holds (stride 0, or
                # overlapping strides): a 1 KB file could expand to terabytes in numpy
                stored = t.untyped_storage().nbytes()
                claimed = t.numel() * t.element_size()
                if claimed > stored:
                    raise InputError(
                        f"tensor of shape {tuple(t.shape)} ({claimed} bytes) is a view over "
                        f"only {stored} stored bytes (zero or overlapping strides); lsfix "
                        "reads only data stored in the file", file=name, dataset=where)
            if t.layout != torch.strided:
                t = t.to_dense()
            if t.is_quantized:
                t = t.dequantize()
            if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32,
                                                         torch.float64):
                t = t.to(torch.float32)  # bfloat16, float8: numpy has no such dtype
            return t.resolve_conj().resolve_neg().cpu().numpy()
        except InputError:
            raise
        except (RuntimeError, TypeError, ValueError) as exc:
            raise InputError(f"tensor cannot be read as an array ({_describe(exc)})",
                             file=name, dataset=where) from None
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool))
                                                for v in value):
        arr = np.asarray(value)
        if arr.dtype.kind in "biufU":
            return arr
    raise InputError(f"holds a {type(value).__name__}, expected a tensor", file=name,
                     dataset=where)



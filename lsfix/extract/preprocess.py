"""Preprocessing: what is named on the command line, or taken from the model's weights metadata.

The pipeline is split in two so that images travel to the device as ``uint8`` (a quarter of
the bytes of float32) and the arithmetic runs where the model runs:

* host side (DataLoader workers): decode, channel conversion, resize, center crop -> uint8
  ``(C, H, W)`` tensors (float arrays stay float);
* device side (:meth:`Preprocess.device_fn`): to float, ``/255`` for uint8 sources, then
  ``(x - mean) / std`` as one fused multiply-add, then channels-last when asked.

:meth:`Preprocess.record` is what goes into the output's ``/logits`` ``transforms`` attribute
and into the provenance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lsfix.errors import UsageError

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def parse_size(text: str | None, option: str) -> tuple[int, ...] | None:
    """``"256"`` -> ``(256,)`` (shorter side), ``"224x192"`` -> ``(224, 192)`` (height x width)."""
    if text is None or str(text).strip() == "":
        return None
    s = str(text).strip().lower()
    m = re.fullmatch(r"(\d+)(?:[x,](\d+))?", s)
    if not m:
        raise UsageError(f"{option} {text!r}: expected N or HxW, e.g. 256 or 224x224")
    vals = tuple(int(g) for g in m.groups() if g is not None)
    if any(v <= 0 for v in vals):
        raise UsageError(f"{option} {text!r}: sizes must be positive")
    return vals


def parse_floats(text: str | None, option: str) -> tuple[float, ...] | None:
    """``"0.485,0.456,0.406"`` -> a tuple of floats (one value is broadcast to every channel)."""
    if text is None or str(text).strip() == "":
        return None
    try:
        vals = tuple(float(v) for v in str(text).replace(" ", "").split(",") if v != "")
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected comma-separated numbers, "
                         "e.g. 0.485,0.456,0.406") from None
    if not vals:
        raise UsageError(f"{option} {text!r}: no values")
    if option == "--std" and any(v <= 0 for v in vals):
        raise UsageError(f"{option} {text!r}: values must be > 0")
    return vals


@dataclass
class Preprocess:
    """Image preprocessing, recorded in the output.

    Attributes
    ----------
    channels : {1, 3} or None
        Convert images to this many channels (``None`` keeps the source's: RGB for photos).
    resize : tuple of int or None
        ``(n,)`` resizes the shorter side to ``n`` keeping the aspect; ``(h, w)`` resizes exactly.
    crop : tuple of (int, int) or None
        Center crop ``(h, w)``.
    mean, std : tuple of float or None
        Normalisation on the ``[0, 1]`` scale (uint8 sources are divided by 255 first).
    """

    channels: int | None = None
    resize: tuple[int, ...] | None = None
    crop: tuple[int, int] | None = None
    interpolation: str = "bilinear"
    antialias: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    source: str = "command line"
    overridden: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise UsageError(f"--interpolation {self.interpolation!r}: choose one of "
                             f"{', '.join(INTERPOLATIONS)}")
        if self.channels not in (None, 1, 3):
            raise UsageError(f"--channels {self.channels}: choose 1 or 3")
        if self.crop is not None and len(self.crop) == 1:
            self.crop = (self.crop[0], self.crop[0])
        if (self.mean is None) != (self.std is None):
            raise UsageError("--mean and --std go together; give both (or neither)")

    @property
    def is_identity(self) -> bool:
        return (self.channels is None and self.resize is None and self.crop is None
                and self.mean is None)

    # ------------------------------------------------------------------ host side
    def _interp(self) -> Any:
        from torchvision.transforms import InterpolationMode

        return {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR,
                "bicubic": InterpolationMode.BICUBIC}[self.interpolation]

    def host_pil(self, img: Any) -> Any:
        """PIL image -> uint8 tensor ``(C, H, W)`` after mode conversion, resize and crop.

        Same arithmetic as torchvision's ``Resize``/``CenterCrop`` on PIL images (PIL's
        filters antialias), without importing torchvision.
        """
        import numpy as np
        import torch
        from PIL import Image

        mode = {1: "L", 3: "RGB", None: "RGB"}[self.channels]
        if img.mode != mode:
            img = img.convert(mode)
        if self.resize is not None:
            w, h = img.size
            if len(self.resize) == 1:
                short, long = (w, h) if w <= h else (h, w)
                new_short, new_long = self.resize[0], int(self.resize[0] * long / short)
                nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
            else:
                nh, nw = self.resize[0], self.resize[1]
            if (nw, nh) != (w, h):
                resample = {"nearest": Image.Resampling.NEAREST,
                            "bilinear": Image.Resampling.BILINEAR,
                            "bicubic": Image.Resampling.BICUBIC}[self.interpolation]
                img = img.resize((nw, nh), resample=resample)
        if self.crop is not None:
            w, h = img.size
            ch, cw = self.crop
            if (cw, ch) != (w, h):
                left = int(round((w - cw) / 2.0))
                top = int(round((h - ch) / 2.0))
                img = img.crop((left, top, left + cw, top + ch))  # zero-pads when too small
        arr = np.array(img, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

    def host_batch(self, x: Any) -> Any:
        """Batched tensor ``(N, C, H, W)`` (uint8 or float) -> channel conversion, resize, crop."""
        import torch

        if x.ndim != 4:
            return x
        c = x.shape[1]
        if self.channels is not None and c != self.channels:
            if c == 1 and self.channels == 3:
                x = x.expand(-1, 3, -1, -1)
            elif c == 3 and self.channels == 1:
                w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(1, 3, 1, 1)
                y = (x.to(torch.float32) * w).sum(dim=1, keepdim=True)
                x = y.round_().clamp_(0, 255).to(torch.uint8) if x.dtype == torch.uint8 else y
            else:
                raise UsageError(f"--channels {self.channels}: cannot convert images with "
                                 f"{c} channels")
        if self.resize is not None or self.crop is not None:
            import torchvision.transforms.v2.functional as F

            if self.resize is not None:
                x = F.resize(x, list(self.resize), interpolation=self._interp(),
                             antialias=self.antialias)
            if self.crop is not None:
                x = F.center_crop(x, list(self.crop))
        return x.contiguous()

    # ------------------------------------------------------------------ device side
    def device_fn(self, device: Any, *, channels_last: bool) -> Any:
        """Return ``f(x) -> float32 tensor`` that scales and normalises a batch on ``device``."""
        import torch

        cache: dict[tuple[int, bool], Any] = {}
        mean, std = self.mean, self.std

        def coeffs(c: int, is_uint8: bool) -> tuple[Any, Any] | None:
            key = (c, is_uint8)
            if key in cache:
                return cache[key]  # type: ignore[no-any-return]
            scale = 1.0 / 255.0 if is_uint8 else 1.0
            res: Any
            if mean is None or std is None:
                res = (scale, None) if is_uint8 else None
            else:
                m = list(mean) * c if len(mean) == 1 else list(mean)
                s = list(std) * c if len(std) == 1 else list(std)
                if len(m) != c or len(s) != c:
                    raise UsageError(
                        f"--mean/--std have {len(m)}/{len(s)} values but the images have {c} "
                        f"channel(s); give {c} values (or --channels {len(m)})")
                mt = torch.tensor(m, dtype=torch.float32, device=device)
                st = torch.tensor(s, dtype=torch.float32, device=device)
                a = (scale / st).view(1, c, 1, 1)
                b = (-mt / st).view(1, c, 1, 1)
                res = (a, b)
            cache[key] = res
            return res  # type: ignore[no-any-return]

        def fn(x: Any) -> Any:
            if not x.is_floating_point() and x.dtype not in (torch.uint8, torch.bool):
                if mean is not None:
                    raise UsageError("--mean/--std apply to images; the dataset gives token ids "
                                     f"{tuple(x.shape)}")
                return x.to(torch.int64)  # token ids (N, L): unscaled, for embedding layers
            is_uint8 = x.dtype == torch.uint8
            if x.ndim == 4:
                co = coeffs(int(x.shape[1]), is_uint8)
            else:
                if mean is not None:
                    raise UsageError("--mean/--std need image inputs (N, C, H, W); the dataset "
                                     f"gives {tuple(x.shape)}")
                co = (1.0 / 255.0, None) if is_uint8 else None
            x = x.to(torch.float32)
            if co is not None:
                a, b = co
                x = x * a if b is None else torch.addcmul(b, x, a)
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return x

        return fn

    # ------------------------------------------------------------------ record
    def record(self, *, input_dtype: str | None = None, layout: str | None = None
               ) -> dict[str, Any]:
        """JSON-ready description (written to ``/logits`` ``transforms`` and provenance)."""
        steps: list[str] = []
        if layout:
            steps.append(f"read {layout}")
        if self.channels is not None:
            steps.append(f"convert to {'RGB' if self.channels == 3 else 'grayscale'}")
        if self.resize is not None:
            what = (f"shorter side to {self.resize[0]}" if len(self.resize) == 1
                    else f"to {self.resize[0]}x{self.resize[1]}")
            steps.append(f"resize {what} ({self.interpolation}"
                         f"{', antialias' if self.antialias else ''})")
        if self.crop is not None:
            steps.append(f"center crop {self.crop[0]}x{self.crop[1]}")
        if layout == "NL":
            steps.append("token ids as int64 (not scaled)")
        elif input_dtype in (None, "uint8"):
            steps.append("to float32, divide by 255")
        else:
            steps.append("to float32 (values as stored)")
        if self.mean is not None:
            steps.append(f"normalize mean={list(self.mean)} std={list(self.std or ())}")
        return {
            "source": self.source,
            "overridden": list(self.overridden),
            "channels": self.channels,
            "resize": list(self.resize) if self.resize else None,
            "crop": list(self.crop) if self.crop else None,
            "interpolation": self.interpolation,
            "antialias": self.antialias,
            "scale": (1.0 / 255.0) if input_dtype in (None, "uint8") else 1.0,
            "mean": list(self.mean) if self.mean else None,
            "std": list(self.std) if self.std else None,
            "input_dtype": input_dtype,
            "steps": steps,
        }


def merge_preprocess(meta: Preprocess | None, cli: dict[str, Any]) -> Preprocess:
    """Command-line values override the weights' metadata field by field.

    ``cli`` maps field names (``resize``, ``crop``, ``mean``, ``std``, ``interpolation``,
    ``channels``) to values or ``None`` (not given).
    """
    given = {k: v for k, v in cli.items() if v is not None}
    if meta is None:
        return Preprocess(**given, source="command line" if given else "none")
    values: dict[str, Any] = {
        "channels": meta.channels, "resize": meta.resize, "crop": meta.crop,
        "interpolation": meta.interpolation, "antialias": meta.antialias,
        "mean": meta.mean, "std": meta.std,
    }
    overridden = sorted(k for k, v in given.items() if values.get(k) != v)
    values.update(given)
    return Preprocess(**values, source=meta.source, overridden=overridden)

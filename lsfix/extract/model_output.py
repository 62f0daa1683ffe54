"""What the model returns: the logits tensor picked out of dicts, tuples and model-output
objects (``--output-key``)."""

from __future__ import annotations

from typing import Any

from lsfix.errors import RuntimeFailure, UsageError
from lsfix.extract.device import torch_module


def select_output(out: Any, key: str | None) -> Any:
    torch = torch_module()
    if isinstance(out, torch.Tensor):
        if key is not None:
            raise UsageError(f"--output-key {key}: the model returns a single tensor")
        return out
    if isinstance(out, dict) or (hasattr(out, "keys") and hasattr(out, "__getitem__")):
        keys = list(out.keys())
        if key is not None:
            if key not in keys:
                raise UsageError(f"--output-key {key!r}: model output has keys {keys}")
            return out[key]
        for k in ("out", "logits"):
            if k in keys:
                return out[k]
        if len(keys) == 1:
            return out[keys[0]]
        raise RuntimeFailure(f"the model returns a dict with keys {keys}; pick one with "
                             "--output-key")
    if isinstance(out, tuple | list):
        if key is not None:
            try:
                return out[int(key)]
            except (ValueError, IndexError):
                raise UsageError(f"--output-key {key!r}: the model returns a {type(out).__name__}"
                                 f" of {len(out)}; give an index 0..{len(out) - 1}") from None
        raise RuntimeFailure(f"the model returns a {type(out).__name__} of {len(out)} items; "
                             "pick the logits with --output-key 0 (or another index)")
    if hasattr(out, "logits"):
        return out.logits
    raise RuntimeFailure(f"the model returns a {type(out).__name__}, not a tensor of logits")

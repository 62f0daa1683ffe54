"""torch and the device: importing torch with a clear error, choosing the device, IEEE float32
under ``--amp off``, and how many DataLoader workers feed it."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lsfix.errors import MissingDependency, RuntimeFailure, UsageError

if TYPE_CHECKING:
    from lsfix.extract.datasets import DataSource
    from lsfix.extract.options import ExtractOptions


def torch_module() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependency("lsfix extract needs torch: pip install 'lsfix[extract]'"
                                ) from None
    return torch


def resolve_device(spec: str, local_rank: int = 0) -> Any:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` -> ``torch.device`` (checked)."""
    torch = torch_module()
    s = (spec or "auto").strip().lower()
    if s == "auto":
        s = "cuda" if torch.cuda.is_available() else "cpu"
    if s == "cpu":
        return torch.device("cpu")
    if s == "cuda" or s.startswith("cuda:"):
        if not torch.cuda.is_available():
            why = "built without CUDA" if not torch.version.cuda else "no GPU visible"
            raise RuntimeFailure(f"--device {spec}: CUDA is not available (torch "
                                 f"{torch.__version__}, {why})")
        if s == "cuda":
            idx = local_rank % torch.cuda.device_count()
        else:
            try:
                idx = int(s.split(":", 1)[1])
            except ValueError:
                raise UsageError(f"--device {spec!r}: expected cuda:N") from None
            if not 0 <= idx < torch.cuda.device_count():
                raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} GPU(s) "
                                 "visible")
        return torch.device("cuda", idx)
    raise UsageError(f"--device {spec!r}: choose auto, cpu, cuda or cuda:N")


def device_name(device: Any) -> str:
    torch = torch_module()
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'' if n == 1 else 's'})"


@contextlib.contextmanager
def fp32_mode(torch: Any, device: Any, amp: str) -> Iterator[dict[str, Any]]:
    """``--amp off`` on CUDA means IEEE float32: TF32 off for matmul and convolutions."""
    info: dict[str, Any] = {}
    if device.type != "cuda":
        yield info
        return
    saved: list[tuple[Any, str, Any]] = []
    want_ieee = amp == "off"
    try:
        try:
            targets = [(torch.backends.cuda.matmul, "fp32_precision"),
                       (torch.backends.cudnn.conv, "fp32_precision")]
            for obj, attr in targets:
                saved.append((obj, attr, getattr(obj, attr)))
                if want_ieee:
                    setattr(obj, attr, "ieee")
            info["fp32_precision"] = "ieee" if want_ieee else "library default"
        except AttributeError:  # torch < 2.9
            for obj, attr in ((torch.backends.cuda.matmul, "allow_tf32"),
                              (torch.backends.cudnn, "allow_tf32")):
                saved.append((obj, attr, getattr(obj, attr)))
                if want_ieee:
                    setattr(obj, attr, False)
            info["fp32_precision"] = "ieee" if want_ieee else "library default"
        saved.append((torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark))
        torch.backends.cudnn.benchmark = True
        yield info
    finally:
        for obj, attr, val in reversed(saved):
            with contextlib.suppress(Exception):
                setattr(obj, attr, val)


def default_workers(opts: ExtractOptions, src: DataSource, device: Any) -> int:
    if opts.workers is not None:
        return opts.workers
    if src.in_memory:
        return 0
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cpus - 1))
    return max(1, min(4, cpus // 2))

"""Model loading for ``lsfix extract``: TorchScript files, ``module:factory``, torchvision, timm.

Model specs
-----------
``FILE``
    A TorchScript archive (``torch.jit.save``). A file made by ``torch.save(model)`` (a
    pickled ``nn.Module``) loads only with ``--trust-pickle``; a bare state dict is refused
    with a hint to name its model code.
``package.module:factory`` or ``package.module:Class.method('arg', key=1)``
    Import ``package.module`` (the current folder is on the import path), call the factory
    with the given *literal* arguments, and load ``--weights FILE`` into the result.
``torchvision:NAME`` / ``torchvision:NAME(num_classes=10)``
    A torchvision builder. ``--weights`` is a weights tag (``DEFAULT``, ``IMAGENET1K_V1``;
    the default is ``DEFAULT``) read from the torch hub cache, a state-dict file, or ``none``
    (random initialisation). Tagged weights bring their preprocessing and class names.
``timm:NAME`` / ``timm:NAME(kwargs)``
    A timm model: pretrained weights from the local Hugging Face cache (offline unless
    ``--download``), a state-dict file, or ``none``.

Weights files are always read with ``torch.load(..., weights_only=True)``, which refuses to run
code; ``trust_pickle=True`` (``--trust-pickle``) switches to full pickle for files you trust.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import os
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsfix.errors import MissingDependency, RuntimeFailure, UsageError
from lsfix.extract.preprocess import Preprocess

_FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*\s*(\(.*\))?\s*$", re.S)
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")
TRUST_PICKLE_WARNING = (
    "--trust-pickle: loading {path} with full pickle; a pickle file can run any code on this "
    "machine when loaded; use it only for files from a source you trust"
)


@dataclass
class LoadedModel:
    """A model ready for inference plus what is known about it."""

    module: Any
    kind: str
    spec: str
    weights: str | None = None
    weights_sha256: str | None = None
    state_dict_sha256: str | None = None
    preprocess: Preprocess | None = None
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    trust_pickle: bool = False

    def record(self) -> dict[str, Any]:
        """Provenance entry."""
        mod = self.module
        try:
            n_params = int(sum(p.numel() for p in mod.parameters()))
        except Exception:  # noqa: BLE001 - scripted modules without parameters()
            n_params = None
        return {
            "spec": self.spec,
            "kind": self.kind,
            "class": f"{type(mod).__module__}.{type(mod).__qualname__}",
            "parameters": n_params,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "state_dict_sha256": self.state_dict_sha256,
            "trust_pickle": self.trust_pickle,
        }


# ------------------------------------------------------------------------------------ helpers


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def state_dict_sha256(module: Any) -> str | None:
    """Hex sha256 over a module's state dict (sorted names, dtypes, shapes and raw bytes).

    Two models with the same architecture and weights hash equal however they were loaded
    (TorchScript, factory + state dict, ...); this is what ``--resume`` compares.
    """
    import torch

    try:
        sd = module.state_dict()
    except Exception:  # noqa: BLE001
        return None
    h = hashlib.sha256()
    for key in sorted(sd):
        t = sd[key]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach()
        if t.is_quantized:
            t = t.int_repr()
        t = t.to("cpu").contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        try:
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
        except (RuntimeError, TypeError):
            h.update(t.reshape(-1).to(torch.float64).numpy().tobytes())
    return h.hexdigest()


def parse_call(text: str, what: str) -> tuple[str, list[Any], dict[str, Any]]:
    """``"a.b('x', k=1)"`` -> ``("a.b", ["x"], {"k": 1})``; only literal arguments are allowed."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w.\-]*)\s*(?:\((.*)\))?\s*", text, re.S)
    if not m:
        raise UsageError(f"{what} {text!r}: expected NAME or NAME(literal, key=literal)")
    name, inner = m.group(1), m.group(2)
    if inner is None or inner.strip() == "":
        return name, [], {}
    try:
        call = ast.parse(f"_f({inner})", mode="eval").body
    except SyntaxError:
        raise UsageError(f"{what} {text!r}: cannot parse the arguments") from None
    assert isinstance(call, ast.Call)
    try:
        args = []
        for a in call.args:
            if isinstance(a, ast.Starred):
                raise ValueError("*args")
            args.append(ast.literal_eval(a))
        kwargs = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise ValueError("**kwargs")
            kwargs[kw.arg] = ast.literal_eval(kw.value)
    except ValueError:
        raise UsageError(f"{what} {text!r}: arguments must be Python literals "
                         "(numbers, strings, True/False/None, lists, dicts)") from None
    return name, args, kwargs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("Error(s) in loading"):
            return line
    return text.splitlines()[0]


@contextlib.contextmanager
def _stdout_to_stderr() -> Any:
    """Model code that prints must not pollute stdout (which may carry HDF5 for ``-o -``)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def load_weights_file(path: str | os.PathLike[str], *, trust_pickle: bool,
                      warn: Callable[[str], None]) -> Any:
    """Read a weights file: ``weights_only=True`` unless ``trust_pickle`` (then warn)."""
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise RuntimeFailure(f"{path}: weights file not found")
    if p.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise MissingDependency(f"{path}: reading .safetensors needs the safetensors "
                                    "package (pip install safetensors)") from None
        try:
            return load_file(str(p), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own types
            raise RuntimeFailure(f"{path}: cannot read safetensors ({_first_line(exc)})") from None
    if trust_pickle:
        warn(TRUST_PICKLE_WARNING.format(path=path))
    try:
        return torch.load(str(p), map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError:
        raise RuntimeFailure(
            f"{path}: not a plain weights file: it holds pickled Python objects, and loading "
            "those can run arbitrary code (torch.load weights_only=True refused it). If you "
            "trust where the file comes from, pass --trust-pickle"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile,
            AttributeError, ModuleNotFoundError, ImportError) as exc:
        raise RuntimeFailure(f"{path}: cannot load weights ({_first_line(exc)})") from None


def _unwrap_state_dict(obj: Any, path: str) -> dict[str, Any]:
    import torch

    def tensors_only(d: Any) -> bool:
        return isinstance(d, Mapping) and len(d) > 0 and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())

    if tensors_only(obj):
        sd = dict(obj)
    elif isinstance(obj, Mapping) and any(tensors_only(obj.get(k)) for k in _STATE_DICT_KEYS):
        key = next(k for k in _STATE_DICT_KEYS if tensors_only(obj.get(k)))
        sd = dict(obj[key])
    else:
        kind = type(obj).__name__
        keys = list(obj)[:5] if isinstance(obj, Mapping) else []
        raise RuntimeFailure(f"{path}: holds a {kind}{' with keys ' + str(keys) if keys else ''}"
                             ", not a state dict of tensors")
    for prefix in ("module.", "_orig_mod."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _strip_model_prefix(sd: dict[str, Any], module: Any) -> dict[str, Any]:
    """``model.``-prefixed keys (Lightning modules holding the network as ``self.model``, as the
    paper's notebooks save them) are unwrapped like ``module.`` — but only when every key has
    the prefix and the module's own keys do not (a network whose first child is itself named
    ``model`` keeps its keys)."""
    prefix = "model."
    if not sd or not all(k.startswith(prefix) for k in sd):
        return sd
    own = list(module.state_dict().keys())
    if own and all(k.startswith(prefix) for k in own):
        return sd
    return {k[len(prefix):]: v for k, v in sd.items()}


def load_into(module: Any, obj: Any, path: str) -> None:
    """Load a state dict (possibly wrapped in a checkpoint dict) into ``module``, strictly."""
    sd = _strip_model_prefix(_unwrap_state_dict(obj, path), module)
    try:
        result = module.load_state_dict(sd, strict=False)
    except RuntimeError as exc:
        raise RuntimeFailure(f"{path}: weights do not fit the model ({_first_line(exc)})"
                             ) from None
    missing = list(getattr(result, "missing_keys", []) or [])
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]!r}")
        raise RuntimeFailure(f"{path}: weights do not fit the model: {'; '.join(parts)}")


# ------------------------------------------------------------------------------------ loaders


def load_model(spec: str, *, weights: str | None = None, trust_pickle: bool = False,
               download: bool = False, warn: Callable[[str], None] = lambda m: None
               ) -> LoadedModel:
    """Load the model named by ``spec`` (see the module docstring) on the CPU, in eval mode."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingDependency("lsfix extract needs torch: pip install 'lsfix[extract]'"
                                ) from None
    spec = spec.strip()
    if not spec:
        raise UsageError("MODEL is empty")
    with _stdout_to_stderr():
        if spec.startswith("torchvision:"):
            lm = _load_torchvision(spec, weights, trust_pickle, download, warn)
        elif spec.startswith("timm:"):
            lm = _load_timm(spec, weights, trust_pickle, download, warn)
        elif Path(spec).is_file():
            lm = _load_file(spec, weights, trust_pickle, warn)
        elif Path(spec).exists():
            raise RuntimeFailure(f"{spec}: model path is a folder, not a model file")
        elif _FACTORY_RE.match(spec):
            lm = _load_factory(spec, weights, trust_pickle, warn)
        elif "/" in spec or os.sep in spec or Path(spec).suffix in (".pt", ".pth", ".ts",
                                                                     ".jit", ".pkl", ".bin"):
            raise RuntimeFailure(f"{spec}: model file not found")
        else:
            raise UsageError(
                f"MODEL {spec!r} is not a file and not a model spec; use FILE (TorchScript), "
                "package.module:factory, torchvision:NAME or timm:NAME")
    lm.trust_pickle = trust_pickle
    lm.module.eval()
    if lm.state_dict_sha256 is None:
        lm.state_dict_sha256 = state_dict_sha256(lm.module)
    return lm


def _load_file(spec: str, weights: str | None, trust_pickle: bool,
               warn: Callable[[str], None]) -> LoadedModel:
    import torch

    path = Path(spec)
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():
                # torch >= 2.9 calls TorchScript deprecated; the user chose this format
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated",
                                        category=FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError, OSError) as exc:
            raise RuntimeFailure(f"{spec}: cannot load TorchScript ({_first_line(exc)})"
                                 ) from None
        lm = LoadedModel(module, "torchscript", spec, weights=str(path),
                         weights_sha256=sha256_file(path))
        if weights and weights.lower() != "none":
            load_into(module, load_weights_file(weights, trust_pickle=trust_pickle, warn=warn),
                      weights)
            lm.weights, lm.weights_sha256 = weights, sha256_file(weights)
        return lm
    # not TorchScript: a torch.save file (state dict or pickled module)
    if weights:
        raise UsageError(f"--weights: {spec} is not TorchScript; to load weights into a model "
                         "name its code: package.module:factory --weights FILE")
    try:
        obj = load_weights_file(path, trust_pickle=trust_pickle, warn=warn)
    except RuntimeFailure as exc:
        if "pickled Python objects" in str(exc):
            raise RuntimeFailure(
                f"{spec}: not TorchScript; it holds a pickled Python object (a whole model "
                "saved with torch.save?). Loading it can run arbitrary code; pass --trust-pickle "
                "only if you trust its source, or save it with torch.jit.script(model).save(...)"
            ) from None
        raise
    if isinstance(obj, torch.nn.Module):
        return LoadedModel(obj, "pickle", spec, weights=str(path),
                           weights_sha256=sha256_file(path))
    if isinstance(obj, Mapping):
        raise RuntimeFailure(
            f"{spec}: holds weights only (a state dict), not a model; name the model code and "
            f"pass the file as weights: lsfix extract package.module:factory --weights {spec} "
            "(or torchvision:NAME --weights FILE)")
    raise RuntimeFailure(f"{spec}: holds a {type(obj).__name__}, not a model")


def _load_factory(spec: str, weights: str | None, trust_pickle: bool,
                  warn: Callable[[str], None]) -> LoadedModel:
    import torch

    module_name, _, rest = spec.partition(":")
    attr, args, kwargs = parse_call(rest, "MODEL")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        mod = importlib.import_module(module_name)
    except ImportError as exc:
        raise RuntimeFailure(f"MODEL {spec}: cannot import {module_name!r} ({_first_line(exc)})"
                             ) from None
    except Exception as exc:  # noqa: BLE001 - user module failing at import
        raise RuntimeFailure(f"MODEL {spec}: importing {module_name!r} raised "
                             f"{type(exc).__name__}: {_first_line(exc)}") from None
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RuntimeFailure(f"MODEL {spec}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise RuntimeFailure(f"MODEL {spec}: {attr!r} is not callable")
    try:
        module = obj(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any error in user code
        raise RuntimeFailure(f"MODEL {spec}: the factory raised {type(exc).__name__}: "
                             f"{_first_line(exc)}") from None
    if not isinstance(module, torch.nn.Module):
        raise RuntimeFailure(f"MODEL {spec}: the factory returned a {type(module).__name__}, "
                             "not a torch.nn.Module")
    lm = LoadedModel(module, "factory", spec)
    if weights is None:
        warn(f"no --weights for {spec}: using the weights the factory set up")
    elif weights.lower() == "none":
        lm.weights = "none"
    else:
        load_into(module, load_weights_file(weights, trust_pickle=trust_pickle, warn=warn),
                  weights)
        lm.weights, lm.weights_sha256 = weights, sha256_file(weights)
    return lm


def _preprocess_from_torchvision(w: Any) -> Preprocess | None:
    try:
        t = w.transforms()
    except Exception:  # noqa: BLE001 - some weights have no preset
        return None
    interp = getattr(t, "interpolation", None)
    interp_name = str(getattr(interp, "value", "bilinear") or "bilinear").lower()
    if interp_name not in ("nearest", "bilinear", "bicubic"):
        interp_name = "bilinear"
    resize = getattr(t, "resize_size", None)
    crop = getattr(t, "crop_size", None)
    mean = getattr(t, "mean", None)
    std = getattr(t, "std", None)
    return Preprocess(
        channels=3,
        resize=tuple(int(v) for v in resize) if resize else None,
        crop=(int(crop[0]), int(crop[-1])) if crop else None,
        interpolation=interp_name,
        antialias=bool(getattr(t, "antialias", True) if getattr(t, "antialias", True)
                       is not None else True),
        mean=tuple(float(v) for v in mean) if mean is not None else None,
        std=tuple(float(v) for v in std) if std is not None else None,
        source=f"torchvision weights {type(w).__name__}.{w.name}",
    )


def _hub_cache_file(url: str) -> Path:
    from urllib.parse import urlparse

    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _load_torchvision(spec: str, weights: str | None, trust_pickle: bool, download: bool,
                      warn: Callable[[str], None]) -> LoadedModel:
    import torch

    try:
        import torchvision.models as tvm
        import torchvision.models._api as tv_api
    except ImportError:
        raise MissingDependency(f"MODEL {spec} needs torchvision: pip install torchvision"
                                ) from None
    name, args, kwargs = parse_call(spec.split(":", 1)[1], "MODEL")
    try:
        builder = tvm.get_model_builder(name)
    except ValueError:
        import difflib

        near = difflib.get_close_matches(name, tvm.list_models(), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise UsageError(f"MODEL {spec}: torchvision has no model {name!r}{hint}") from None

    def build(**extra: Any) -> Any:
        try:
            return builder(*args, **kwargs, **extra)
        except (RuntimeFailure, UsageError):
            raise
        except Exception as exc:  # noqa: BLE001 - builder errors (bad kwargs, ...)
            raise RuntimeFailure(f"MODEL {spec}: torchvision could not build it "
                                 f"({type(exc).__name__}: {_first_line(exc)})") from None

    if weights is not None and weights.lower() == "none":
        warn(f"--weights none: {spec} has random weights; its logits mean nothing")
        return LoadedModel(build(weights=None), "torchvision", spec, weights="none")
    if weights is not None and (Path(weights).exists() or "/" in weights
                                or Path(weights).suffix in (".pt", ".pth", ".safetensors")):
        module = build(weights=None)
        load_into(module, load_weights_file(weights, trust_pickle=trust_pickle, warn=warn),
                  weights)
        return LoadedModel(module, "torchvision", spec, weights=weights,
                           weights_sha256=sha256_file(weights))
    # a weights tag from torchvision's registry, read from the local hub cache
    tag = weights or "DEFAULT"
    try:
        enum = tvm.get_model_weights(name)
    except (ValueError, KeyError):
        raise UsageError(f"MODEL {spec}: torchvision has no weights registry for {name!r}; "
                         "give --weights FILE or --weights none") from None
    short = tag.split(".")[-1]
    try:
        w = enum.DEFAULT if short == "DEFAULT" else enum[short]
    except KeyError:
        tags = ", ".join(["DEFAULT", *[m.name for m in enum]])
        raise UsageError(f"--weights {tag!r}: not a file and not a weights tag of {name} "
                         f"(tags: {tags})") from None
    used: list[Path] = []

    def cached_load(url: str, *a: Any, **kw: Any) -> Any:
        path = _hub_cache_file(url)
        if not path.is_file():
            if not download:
                raise RuntimeFailure(
                    f"weights {type(w).__name__}.{w.name} for {name} are not in the torch hub "
                    f"cache ({path}); pass --download to fetch them once, or give "
                    "--weights FILE")
            path.parent.mkdir(parents=True, exist_ok=True)
            m = re.search(r"-([a-f0-9]{6,})\.", path.name)
            try:
                torch.hub.download_url_to_file(url, str(path),
                                               hash_prefix=m.group(1) if m else None,
                                               progress=False)
            except Exception as exc:  # noqa: BLE001 - network errors of any type
                raise RuntimeFailure(f"cannot download {url} ({_first_line(exc)})") from None
        used.append(path)
        return load_weights_file(path, trust_pickle=False, warn=warn)

    original = tv_api.load_state_dict_from_url
    tv_api.load_state_dict_from_url = cached_load
    try:
        module = build(weights=w)
    finally:
        tv_api.load_state_dict_from_url = original
    cats = w.meta.get("categories") if isinstance(getattr(w, "meta", None), dict) else None
    return LoadedModel(
        module, "torchvision", spec, weights=f"{type(w).__name__}.{w.name}",
        weights_sha256=sha256_file(used[0]) if used else None,
        preprocess=_preprocess_from_torchvision(w),
        class_names=[str(c) for c in cats] if cats else None,
    )


def _load_timm(spec: str, weights: str | None, trust_pickle: bool, download: bool,
               warn: Callable[[str], None]) -> LoadedModel:
    if not download:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import timm
    except ImportError:
        raise MissingDependency(f"MODEL {spec} needs timm: pip install timm") from None
    name, args, kwargs = parse_call(spec.split(":", 1)[1], "MODEL")
    if args:
        raise UsageError(f"MODEL {spec}: timm models take keyword arguments only")

    def create(model_name: str, pretrained: bool) -> Any:
        try:
            return timm.create_model(model_name, pretrained=pretrained, **kwargs)
        except Exception as exc:  # noqa: BLE001 - timm/hub errors of many types
            msg = _first_line(exc)
            if pretrained and not download:
                msg += ("; pretrained weights must be in the local Hugging Face cache (pass "
                        "--download to fetch them, or --weights FILE)")
            raise RuntimeFailure(f"MODEL {spec}: timm could not create it ({msg})") from None

    if weights is not None and weights.lower() == "none":
        warn(f"--weights none: {spec} has random weights; its logits mean nothing")
        return LoadedModel(create(name, False), "timm", spec, weights="none")
    if weights is not None and (Path(weights).exists() or "/" in weights
                                or Path(weights).suffix in (".pt", ".pth", ".safetensors")):
        module = create(name, False)
        load_into(module, load_weights_file(weights, trust_pickle=trust_pickle, warn=warn),
                  weights)
        return LoadedModel(module, "timm", spec, weights=weights,
                           weights_sha256=sha256_file(weights))
    model_name = name if weights in (None, "DEFAULT") else f"{name.split('.')[0]}.{weights}"
    module = create(model_name, True)
    pre = None
    try:
        cfg = timm.data.resolve_model_data_config(module)
        _, h, wdt = cfg["input_size"]
        crop_pct = float(cfg.get("crop_pct") or 1.0)
        interp = str(cfg.get("interpolation") or "bilinear")
        pre = Preprocess(
            channels=3,
            resize=(int(h / crop_pct),) if h == wdt else (int(h / crop_pct),
                                                           int(wdt / crop_pct)),
            crop=(int(h), int(wdt)),
            interpolation=interp if interp in ("nearest", "bilinear", "bicubic") else "bilinear",
            mean=tuple(float(v) for v in cfg["mean"]),
            std=tuple(float(v) for v in cfg["std"]),
            source=f"timm pretrained_cfg of {model_name}",
        )
    except Exception:  # noqa: BLE001 - older timm versions
        pre = None
    sha = None
    try:
        file = getattr(module, "pretrained_cfg", {}).get("file")
        if file and Path(file).is_file():
            sha = sha256_file(file)
    except Exception:  # noqa: BLE001
        sha = None
    return LoadedModel(module, "timm", spec, weights=f"timm pretrained {model_name}",
                       weights_sha256=sha, preprocess=pre)

"""The extraction loop: device and AMP, DataLoader, chunked writing, resume, torchrun shards.

Speed habits (each measured in ``bench/bench_extract.py``): ``torch.inference_mode``; the model
in eval mode; uint8 images travel to the device and are scaled/normalised there in one fused
multiply-add; pinned host memory and non-blocking copies on CUDA; the next batch is fetched
(DataLoader workers, or a prefetch thread when there are none) while the device computes the
current one, and the logits of batch *i* are written to HDF5 while batch *i+1* runs; channels
last on CUDA; cuDNN autotuning for fixed input sizes.

Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) each rank extracts a contiguous
slice of the dataset into ``OUT.rank{r}-of-{w}.h5``; after a collective status check rank 0
joins the shards into ``OUT`` in dataset order (:func:`lsfix.extract.writer.merge_shards`).
gloo is used on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lsfix import __version__
from lsfix.errors import InputError, LsfixError, MissingDependency, RuntimeFailure, UsageError
from lsfix.extract.datasets import DataSource, collate, open_dataset
from lsfix.extract.models import LoadedModel, load_model
from lsfix.extract.preprocess import Preprocess, merge_preprocess
from lsfix.extract.writer import (
    ChunkedWriter,
    FileState,
    inspect_output,
    merge_shards,
    shard_path,
)

AMP_MODES = ("off", "bf16", "fp16")
OUT_DTYPES = ("float32", "float16", "float64")
#: seconds ranks wait for each other at the end (a slow rank may still be extracting)
DIST_TIMEOUT_S = float(os.environ.get("LSFIX_DIST_TIMEOUT", 6 * 3600))


@dataclass
class ExtractOptions:
    """Everything ``lsfix extract`` takes; see ``lsfix extract --help`` for each option."""

    model: str
    dataset: str
    output: str
    weights: str | None = None
    trust_pickle: bool = False
    root: str | None = None
    split: str | None = None
    download: bool = False
    images_key: str | None = None
    labels_key: str | None = None
    layout: str | None = None
    limit: int | None = None
    resize: tuple[int, ...] | None = None
    crop: tuple[int, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None
    channels: int | None = None
    class_names: str | None = None
    labels: bool = True
    ignore_index: int | None = None
    output_key: str | None = None
    batch_size: int = 64
    workers: int | None = None
    device: str = "auto"
    amp: str = "off"
    dtype: str = "float32"
    channels_last: bool | None = None
    resume: bool = False
    overwrite: bool = False
    merge: bool = True
    keep_shards: bool = False
    sync_every: float = 1.0
    quiet: bool = False
    progress: bool | None = None
    history_entry: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    warn: Callable[[str], None] = field(default=lambda m: None, repr=False)
    note: Callable[[str], None] = field(default=lambda m: None, repr=False)


@dataclass
class ExtractResult:
    """What a run did."""

    output: str
    rows: int
    rows_this_run: int = 0
    shape: tuple[int, ...] | None = None
    wall_time_s: float = 0.0
    loop_time_s: float = 0.0
    device: str = "cpu"
    already_complete: bool = False
    rank: int = 0
    world: int = 1
    merged: bool = False
    shards: list[str] = field(default_factory=list)
    #: seconds of the loop spent waiting for data, running the model (to the host), writing
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        """Rows per second of the inference loop (this run's rows only)."""
        return self.rows_this_run / self.loop_time_s if self.loop_time_s > 0 else 0.0


@dataclass
class DistInfo:
    """torchrun's environment."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistInfo:
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise UsageError("RANK/WORLD_SIZE/LOCAL_RANK must be integers (set by torchrun)"
                             ) from None
        if world < 1 or not 0 <= rank < world:
            raise UsageError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world}")
        return cls(rank, world, local)


# ----------------------------------------------------------------------------------- helpers


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependency("lsfix extract needs torch: pip install 'lsfix[extract]'"
                                ) from None
    return torch


def resolve_device(spec: str, local_rank: int = 0) -> Any:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` -> ``torch.device`` (checked)."""
    torch = _torch()
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
    torch = _torch()
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'' if n == 1 else 's'})"


def read_class_names(spec: str | None) -> list[str] | None:
    """``--class-names FILE`` (one name a line) or ``imagenet`` (torchvision's 1000 names)."""
    if spec is None:
        return None
    if spec.lower() == "imagenet":
        try:
            from torchvision.models._meta import _IMAGENET_CATEGORIES
        except ImportError:
            raise MissingDependency("--class-names imagenet needs torchvision") from None
        return [str(c) for c in _IMAGENET_CATEGORIES]
    p = Path(spec)
    if not p.is_file():
        raise InputError("no such file (--class-names)", file=spec)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read class names ({exc})", file=spec) from None
    names = [ln.strip() for ln in lines if ln.strip()]
    if not names:
        raise InputError("holds no class names", file=spec)
    return names


def _select_output(out: Any, key: str | None) -> Any:
    torch = _torch()
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


def _prefetch(it: Iterator[Any], depth: int = 2,
              stage: Callable[[Any], Any] | None = None) -> Iterator[Any]:
    """Fetch ahead in a thread; ``stage(batch)`` (pin, upload) runs in that thread too.

    Used on CUDA: the thread reads the next batches, pins them and starts their host-to-device
    copies on a side stream while the main thread runs the model.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        try:
            for item in it:
                if stage is not None:
                    item = stage(item)
                if not put(("ok", item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(("err", exc))
            return
        put(("ok", done))

    t = threading.Thread(target=worker, name="lsfix-prefetch", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "err":
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


def _clean_worker_error(exc: LsfixError) -> LsfixError:
    """DataLoader workers re-raise with a traceback in the message; keep the last line."""
    msg = str(exc)
    if "Original Traceback" not in msg:
        return exc
    last = [ln for ln in msg.strip().splitlines() if ln.strip()][-1]
    if ": " in last:
        last = last.split(": ", 1)[1]
    new = type(exc).__new__(type(exc))
    LsfixError.__init__(new, last)
    return new


@contextlib.contextmanager
def _fp32_mode(torch: Any, device: Any, amp: str) -> Iterator[dict[str, Any]]:
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


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (torchrun, schedulers) stops the run like Ctrl-C: rows so far are committed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _progress(enabled: bool, total: int, done: int, label: str) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    prog = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} images/s"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    )
    prog.start()
    task = prog.add_task(label, total=total, completed=done, rate="-")
    return prog, task


# ----------------------------------------------------------------------------------- main


def run_extract(opts: ExtractOptions) -> ExtractResult:
    """Run ``lsfix extract``; see :class:`ExtractOptions`.

    Raises
    ------
    LsfixError
        Usage errors (2), bad input data (3), model/runtime failures (1).
    KeyboardInterrupt
        On Ctrl-C or SIGTERM; committed rows stay in the output for ``--resume``.
    """
    t0 = time.perf_counter()
    torch = _torch()
    _check_options(opts)
    dist = DistInfo.from_env()
    if dist.world > 1 and opts.output == "-":
        raise UsageError("-o -: under torchrun the output must be a file")
    device = resolve_device(opts.device, dist.local_rank)
    pg = False
    if dist.world > 1:
        import torch.distributed as tdist

        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            tdist.init_process_group(backend=backend,
                                     timeout=_dt.timedelta(seconds=DIST_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - rendezvous errors of many types
            raise RuntimeFailure(f"torchrun: cannot join the process group ({backend}): "
                                 f"{str(exc).splitlines()[0]}") from None
        pg = True
    try:
        return _run(opts, dist, device, t0)
    except LsfixError as exc:
        if dist.world > 1 and dist.rank != 0:
            new = type(exc).__new__(type(exc))
            LsfixError.__init__(new, f"rank {dist.rank}: {exc}")
            raise new from None
        raise
    finally:
        if pg:
            import torch.distributed as tdist

            with contextlib.suppress(Exception):
                tdist.destroy_process_group()


def _check_options(o: ExtractOptions) -> None:
    if o.amp not in AMP_MODES:
        raise UsageError(f"--amp {o.amp!r}: choose {', '.join(AMP_MODES)}")
    if o.dtype not in OUT_DTYPES:
        raise UsageError(f"--dtype {o.dtype!r}: choose {', '.join(OUT_DTYPES)}")
    if o.batch_size <= 0:
        raise UsageError(f"--batch-size {o.batch_size}: must be positive")
    if o.workers is not None and o.workers < 0:
        raise UsageError(f"--workers {o.workers}: must be 0 or more")
    if o.sync_every < 0:
        raise UsageError(f"--sync-every {o.sync_every}: must be 0 or more")
    if o.resume and o.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; give one")
    if o.resume and o.output == "-":
        raise UsageError("--resume needs -o FILE (stdout cannot be resumed)")


def _all_ok(ok: bool, dist: DistInfo) -> bool:
    """Collective AND of ``ok`` over ranks (True without torchrun)."""
    if dist.world == 1:
        return ok
    import torch
    import torch.distributed as tdist

    t = torch.tensor([1 if ok else 0], dtype=torch.int64)
    if tdist.get_backend() == "nccl":
        t = t.cuda()
    tdist.all_reduce(t, op=tdist.ReduceOp.MIN)
    return bool(int(t.item()))


def _plan_output(opts: ExtractOptions, dist: DistInfo) -> tuple[str, str, FileState | None]:
    """Return (this rank's target path, mode 'new'|'resume'|'done'|'complete', final state)."""
    out = opts.output
    if out == "-":
        return out, "new", None
    if not Path(out).parent.is_dir() and str(Path(out).parent) not in ("", "."):
        raise RuntimeFailure(f"{out}: folder {str(Path(out).parent)!r} does not exist")
    final = inspect_output(out, strict=opts.resume)  # --resume: local-only, sound attrs
    if final is not None:
        extract_file = final.is_lsfix and final.job is not None
        if opts.resume and final.is_lsfix and final.complete:
            return out, "complete", final
        if not opts.resume and not opts.overwrite:
            if extract_file and not final.complete:
                total = f" of {final.rows_total}" if final.rows_total is not None else ""
                raise UsageError(
                    f"{out}: an interrupted extract is there ({final.rows_done}{total} rows); "
                    "pass --resume to continue it or --overwrite to start over")
            raise UsageError(f"{out}: exists; pass --overwrite to replace it")
        if opts.resume and dist.world == 1 and not extract_file:
            raise UsageError(f"{out}: is not an lsfix extract output; cannot resume it "
                             "(use --overwrite to replace it)")
    if dist.world == 1:
        if opts.resume and final is not None:
            return out, "resume", final
        return out, "new", final
    target = str(shard_path(out, dist.rank, dist.world))
    st = inspect_output(target, strict=opts.resume)
    if st is None:
        return target, "new", final
    if not opts.resume and not opts.overwrite:
        raise UsageError(f"{target}: a shard of an earlier run is there; pass --resume to "
                         "continue it or --overwrite to start over")
    if opts.resume:
        if not (st.is_lsfix and st.job is not None):
            raise UsageError(f"{target}: is not an lsfix extract shard; cannot resume it")
        return target, ("done" if st.complete else "resume"), final
    return target, "new", final


def _run(opts: ExtractOptions, dist: DistInfo, device: Any, t0: float) -> ExtractResult:
    torch = _torch()
    warn = opts.warn if dist.rank == 0 else (lambda m: None)
    note = opts.note if (dist.rank == 0 and not opts.quiet) else (lambda m: None)
    setup_error: BaseException | None = None
    try:
        target, mode, _final = _plan_output(opts, dist)
        lm = load_model(opts.model, weights=opts.weights, trust_pickle=opts.trust_pickle,
                        download=opts.download, warn=warn) if mode != "complete" else None
        src = open_dataset(opts.dataset, root=opts.root, split=opts.split,
                           download=opts.download, images_key=opts.images_key,
                           labels_key=opts.labels_key, layout=opts.layout,
                           limit=opts.limit) if mode != "complete" else None
    except (LsfixError, KeyboardInterrupt) as exc:
        setup_error = exc
    if not _all_ok(setup_error is None, dist):
        if setup_error is not None:
            raise setup_error
        raise RuntimeFailure("another rank failed while loading the model or dataset; see its "
                             "error above")
    if mode == "complete":
        note(f"lsfix extract: {opts.output} is already complete; nothing to do")
        return ExtractResult(opts.output, _final.rows_done if _final else 0,  # type: ignore[union-attr]
                             already_complete=True, rank=dist.rank, world=dist.world)
    assert lm is not None and src is not None

    pre = merge_preprocess(lm.preprocess, {
        "resize": opts.resize, "crop": opts.crop, "mean": opts.mean, "std": opts.std,
        "interpolation": opts.interpolation, "channels": opts.channels})
    if not src.in_memory and pre.channels is None:
        pre.channels = 3  # image files are decoded as RGB unless --channels 1
    if not src.in_memory and pre.mean is None:
        warn("no --mean/--std given and the model carries none: images are only scaled to "
             "[0, 1]")
    transforms = pre.record(input_dtype=src.input_dtype, layout=src.layout)
    class_names_cli = read_class_names(opts.class_names)

    n = src.size
    start, stop = (dist.rank * n) // dist.world, ((dist.rank + 1) * n) // dist.world
    shard = None
    if dist.world > 1:
        shard = {"rank": dist.rank, "world": dist.world, "start": start, "stop": stop,
                 "total": n}
    job = {
        "model": lm.kind, "model_sha256": lm.state_dict_sha256, "weights": lm.weights,
        "dataset": src.kind, "dataset_root": src.root, "dataset_size": n,
        "split": src.extra.get("split"), "transforms": transforms, "amp": opts.amp,
        "dtype": opts.dtype, "labels": opts.labels, "output_key": opts.output_key,
        "class_names": opts.class_names, "ignore_index": opts.ignore_index, "shard": shard,
    }
    history_entry = opts.history_entry
    if history_entry is None:
        from lsfix.schema import command_line

        history_entry = command_line()
    prov_base = {
        "tool": "lsfix extract",
        "model": lm.record(),
        "dataset": src.record(),
        "transforms": transforms,
        "amp": opts.amp,
        "dtype": opts.dtype,
        "batch_size": opts.batch_size,
        "torch_version": str(torch.__version__),
        "torchvision_version": _version_of("torchvision"),
        "timm_version": _version_of("timm") if lm.kind == "timm" else None,
        "lsfix_version": __version__,
        "python_version": platform.python_version(),
        "shard": shard,
    }
    for key, value in opts.meta.items():
        prov_base.setdefault(key, value)

    if opts.output == "-":
        from lsfix.io import atomic_output, refuse_binary_to_tty

        refuse_binary_to_tty("-")
        with atomic_output("-", suffix=".h5") as tmp:
            res = _extract_into(str(tmp), "new", opts, dist, device, lm, src, pre, job,
                                prov_base, history_entry, class_names_cli, start, stop, t0,
                                warn, note)
        res.output = "-"
        return res
    res = _extract_into(target, mode, opts, dist, device, lm, src, pre, job, prov_base,
                        history_entry, class_names_cli, start, stop, t0, warn, note)
    if dist.world == 1:
        return res
    ok = _all_ok(True, dist)
    shards = [str(shard_path(opts.output, r, dist.world)) for r in range(dist.world)]
    res.shards = shards
    if not ok:
        raise RuntimeFailure("another rank failed; shards are kept for --resume")
    if dist.rank == 0 and opts.merge:
        merge_shards(shards, opts.output)
        res.merged = True
        res.output = opts.output
        res.rows = n
        if not opts.keep_shards:
            for s in shards:
                with contextlib.suppress(OSError):
                    os.unlink(s)
        note(f"lsfix extract: merged {dist.world} shards into {opts.output} ({n} rows)")
    elif dist.rank == 0:
        note(f"lsfix extract: shards left unmerged: {' '.join(shards)}; join them with "
             f"lsfix merge {' '.join(shards)} -o {opts.output}")
    return res


def _version_of(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _extract_into(target: str, mode: str, opts: ExtractOptions, dist: DistInfo, device: Any,
                  lm: LoadedModel, src: DataSource, pre: Preprocess, job: dict[str, Any],
                  prov_base: dict[str, Any], history_entry: str,
                  class_names_cli: list[str] | None, start: int, stop: int, t0: float,
                  warn: Callable[[str], None], note: Callable[[str], None]) -> ExtractResult:
    torch = _torch()
    rows_total = stop - start
    if mode == "done":
        st = inspect_output(target)
        return ExtractResult(target, st.rows_done if st else rows_total, device=str(device),
                             rank=dist.rank, world=dist.world)
    if mode == "resume":
        writer = ChunkedWriter.resume(target, job=job, rows_total=rows_total,
                                      expected_ids=lambda ix: src.ids(np.asarray(ix) + start),
                                      sync_every=opts.sync_every)
        history = [*writer.history(), history_entry]
        if writer.rows_done:
            note(f"lsfix extract: resuming {target} at row {writer.rows_done} of {rows_total}")
    else:
        writer = ChunkedWriter.create(target, job=job, rows_total=rows_total,
                                      provenance=prov_base, history=[history_entry],
                                      shard=job.get("shard"), sync_every=opts.sync_every)
        history = [history_entry]
    done0 = writer.rows_done
    loop_time = 0.0
    try:
        channels_last = (device.type == "cuda") if opts.channels_last is None else \
            opts.channels_last
        writer.begin_segment({
            "device": device_name(device), "workers": _workers(opts, src, device),
            "batch_size": opts.batch_size, "channels_last": channels_last,
        }, offset=start, t0=t0)
        model = lm.module.to(device)
        if channels_last:
            with contextlib.suppress(Exception):
                model = model.to(memory_format=torch.channels_last)
        device_pre = pre.device_fn(device, channels_last=channels_last)
        timings: dict[str, float] = {}
        with _fp32_mode(torch, device, opts.amp) as fp32_info:
            if done0 < rows_total:
                loop_time = _loop(model, src, pre, device, device_pre, writer, opts, dist,
                                  class_names_cli, start + done0, stop, warn, timings)
        segs = writer.update_segment(
            loop_time_s=round(loop_time, 3),
            loop_breakdown_s={k: round(v, 3) for k, v in timings.items() if k != "loop_s"},
            images_per_s=round((stop - start - done0) / loop_time, 1) if loop_time else None,
            **fp32_info)
        prov = dict(prov_base)
        prov.update({
            "device": device_name(device),
            "channels_last": channels_last,
            "segments": segs,
            "wall_time_s": round(sum(float(s.get("wall_time_s") or 0) for s in segs), 3),
            "resumed": done0 > 0 or any(int(sg["rows"][0]) > start for sg in segs),
            "rows": rows_total,
            **fp32_info,
        })
        shape = writer.logits_shape()
        writer.finish(prov, history)
    except BaseException:
        writer.close()
        if mode == "new" and writer.rows_done == 0:
            with contextlib.suppress(OSError):
                os.unlink(target)  # nothing worth resuming: leave no file behind
        raise
    res = ExtractResult(target, rows_total, rows_this_run=rows_total - done0, shape=shape,
                        wall_time_s=time.perf_counter() - t0, loop_time_s=loop_time,
                        device=str(device), rank=dist.rank, world=dist.world, timings=timings)
    if loop_time > 5 and timings.get("data_wait_s", 0) > 0.3 * loop_time:
        warn(f"the model waited for data {timings['data_wait_s'] / loop_time:.0%} of the time; "
             f"more --workers (now {_workers(opts, src, device)}) may help")
    if dist.world == 1 or dist.rank == 0:
        where = "<stdout>" if opts.output == "-" else target
        rate = f", {res.images_per_s:.0f} images/s" if loop_time > 0 else ""
        note(f"lsfix extract: wrote {where}: {rows_total} rows, logits {shape} {opts.dtype} "
             f"in {res.wall_time_s:.1f} s ({res.rows_this_run} this run{rate} on "
             f"{device_name(device)})")
    return res


def _workers(opts: ExtractOptions, src: DataSource, device: Any) -> int:
    if opts.workers is not None:
        return opts.workers
    if src.in_memory:
        return 0
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cpus - 1))
    return max(1, min(4, cpus // 2))


def _loop(model: Any, src: DataSource, pre: Preprocess, device: Any, device_pre: Any,
          writer: ChunkedWriter, opts: ExtractOptions, dist: DistInfo,
          class_names_cli: list[str] | None, begin: int, end: int,
          warn: Callable[[str], None], timings: dict[str, float]) -> float:
    """Run the model over rows ``begin .. end`` and append to ``writer``; returns loop seconds.

    ``timings`` receives ``data_wait_s`` (waiting for the next batch), ``gpu_wait_s`` (waiting
    for the device to finish a batch), ``write_s`` (HDF5), ``compute_s`` (the rest) and
    ``loop_s``.
    """
    timings.update(data_wait_s=0.0, gpu_wait_s=0.0, write_s=0.0)
    torch = _torch()
    from torch.utils.data import DataLoader

    ds = src.make(pre, begin, end)
    workers = _workers(opts, src, device)
    cuda = device.type == "cuda"
    loader = DataLoader(
        ds, batch_size=opts.batch_size, shuffle=False, num_workers=workers,
        collate_fn=collate, pin_memory=cuda and workers > 0, drop_last=False,
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=False,
    )
    copy_stream = torch.cuda.Stream(device) if cuda else None
    if cuda and workers == 0:
        base = getattr(ds, "ds", ds)  # under a RangeView
        if hasattr(base, "pin"):
            base.pin = True

    def stage(batch: Any) -> Any:
        """In the prefetch thread: pin, then copy to the GPU on the side stream."""
        x, y, idx = batch
        if not x.is_pinned():
            x = x.pin_memory()
        with torch.cuda.stream(copy_stream):
            xd = x.to(device, non_blocking=True)
            ev = torch.cuda.Event()
            ev.record(copy_stream)
        return xd, ev, y, idx, int(x.shape[0])
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(opts.amp)
    out_dtype = {"float32": torch.float32, "float16": torch.float16,
                 "float64": torch.float64}[opts.dtype]
    np_dtype = np.dtype(opts.dtype)
    state: dict[str, Any] = {"labels": None, "k": None}
    if writer.has_logits:
        shape = writer.logits_shape()
        assert shape is not None
        state["k"] = shape[1]
        state["labels"] = "/labels" in writer.f

    def first_batch(out: Any, x: Any) -> None:
        if out.ndim not in (2, 4):
            raise RuntimeFailure(
                f"the model output has shape {tuple(out.shape)} for input "
                f"{tuple(x.shape)}; lsfix extract needs (N, K) class logits or (N, K, H, W) "
                "dense logits (pick another output with --output-key)")
        if out.shape[0] != x.shape[0]:
            raise RuntimeFailure(f"the model returned {out.shape[0]} rows for a batch of "
                                 f"{x.shape[0]} inputs")
        k = int(out.shape[1])
        item = tuple(int(s) for s in out.shape[1:])
        if writer.has_logits:
            writer.init_datasets(item, np_dtype, label_shape=None, transforms={},
                                 class_names=None, ignore_index=None)  # checks the shape
            return
        names = class_names_cli
        if names is not None and len(names) != k:
            raise InputError(f"{len(names)} class names for a model with K={k} logits",
                             file=opts.class_names)
        if names is None and src.class_names is not None and len(src.class_names) == k:
            names = src.class_names
        label_shape = src.label_shape if opts.labels else None
        if label_shape is not None:
            if src.class_names is not None and len(src.class_names) != k:
                warn(f"the dataset has {len(src.class_names)} classes but the model gives K={k} "
                     "logits: its labels do not index the model's classes; /labels not written")
                label_shape = None
            elif out.ndim == 4 and label_shape == ():
                warn("dense model output with one label per image: /labels not written")
                label_shape = None
            elif out.ndim == 4 and tuple(label_shape) != item[1:]:
                raise InputError(
                    f"dense labels have shape {label_shape} per sample but the model's logits "
                    f"are {item[1:]} per sample; pass --no-labels to extract without them",
                    file=src.spec)
            elif out.ndim == 2 and label_shape != ():
                raise InputError(f"labels have shape {label_shape} per sample but the model "
                                 "gives one row of class logits per sample; pass --no-labels",
                                 file=src.spec)
        state["labels"] = label_shape is not None
        state["k"] = k
        writer.init_datasets(item, np_dtype, label_shape=label_shape,
                             transforms=json.loads(json.dumps(pre.record(
                                 input_dtype=src.input_dtype, layout=src.layout))),
                             class_names=names, ignore_index=opts.ignore_index)

    def finish(pending: tuple[Any, Any, Any, Any]) -> None:
        host, event, y, idx = pending
        if event is not None:
            t_sync = time.perf_counter()
            event.synchronize()
            timings["gpu_wait_s"] += time.perf_counter() - t_sync
        arr = host.numpy()
        if not np.isfinite(arr).all():
            bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
            first = int(idx[int(np.argmax(bad))])
            hint = " (--amp fp16 overflows easily: try --amp bf16 or off)" \
                if opts.amp == "fp16" else (" (--dtype float16 overflows: use float32)"
                                            if opts.dtype == "float16" else "")
            raise RuntimeFailure(
                f"the model produced non-finite logits (NaN or inf) for {int(bad.sum())} "
                f"sample(s) of a batch, first {src.ids(np.array([first]))[0]!r} (index "
                f"{first}){hint}; {writer.rows_written} rows before it are kept")
        idx_np = idx.numpy()
        labels = None
        if state["labels"]:
            labels = y.numpy()
            k = state["k"]
            ok = (labels >= 0) & (labels < k)
            if opts.ignore_index is not None:
                ok |= labels == opts.ignore_index
            if not ok.all():
                flat = ok.reshape(ok.shape[0], -1).all(axis=1)
                j = int(np.argmax(~flat))
                bad_val = labels[j][~ok[j]].reshape(-1)[0] if labels.ndim > 1 else labels[j]
                raise InputError(f"label {int(bad_val)} of sample "
                                 f"{src.ids(idx_np[j:j + 1])[0]!r} is outside the model's "
                                 f"classes 0..{k - 1}", file=src.spec)
        t_w = time.perf_counter()
        writer.append(arr, labels, src.ids(idx_np))
        timings["write_s"] += time.perf_counter() - t_w

    show = opts.progress if opts.progress is not None else (
        not opts.quiet and sys.stderr is not None and sys.stderr.isatty() and dist.rank == 0)
    prog = _progress(bool(show), end - begin, 0, "extract")
    t_loop = time.perf_counter()
    processed = 0
    try:
        with torch.inference_mode(), _sigterm_as_interrupt():
            amp_ctx = (torch.autocast(device_type=device.type, dtype=amp_dtype)
                       if amp_dtype is not None else contextlib.nullcontext())
            it: Iterator[Any] = iter(loader)
            if cuda:
                it = _prefetch(it, depth=3, stage=stage)
            pending = None
            while True:
                t_wait = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    break
                except LsfixError as exc:
                    raise _clean_worker_error(exc) from None
                timings["data_wait_s"] += time.perf_counter() - t_wait
                if cuda:
                    xd, ev, y, idx, nb = batch
                    stream = torch.cuda.current_stream(device)
                    stream.wait_event(ev)
                    xd.record_stream(stream)
                else:
                    xd, y, idx = batch
                    nb = int(xd.shape[0])
                xd = device_pre(xd)
                try:
                    with amp_ctx:
                        out = model(xd)
                except (RuntimeError, TypeError, ValueError, IndexError) as exc:
                    text = str(exc).strip()
                    why = text.splitlines()[0] if text else type(exc).__name__
                    raise RuntimeFailure(
                        f"the model failed on a batch of shape {tuple(xd.shape)}: {why}; check "
                        "--resize/--crop/--channels against what the model expects") from None
                out = _select_output(out, opts.output_key)
                if processed == 0:
                    first_batch(out, xd)
                out = out.detach().to(out_dtype)
                if cuda:
                    host = torch.empty(out.shape, dtype=out_dtype, pin_memory=True)
                    host.copy_(out, non_blocking=True)
                    event = torch.cuda.Event()
                    event.record()
                else:
                    host, event = out.contiguous(), None
                if pending is not None:
                    finish(pending)
                pending = (host, event, y, idx)
                processed += nb
                if prog is not None:
                    el = time.perf_counter() - t_loop
                    prog[0].update(prog[1], completed=processed,
                                   rate=f"{processed / el:,.0f}" if el > 0 else "-")
            if pending is not None:
                finish(pending)
            t_w = time.perf_counter()
            writer.commit()
            timings["write_s"] += time.perf_counter() - t_w
    finally:
        if prog is not None:
            prog[0].stop()
        elapsed = time.perf_counter() - t_loop
        timings["loop_s"] = elapsed
        timings["compute_s"] = max(0.0, elapsed - timings["data_wait_s"] - timings["write_s"])
    return time.perf_counter() - t_loop

"""The inference loop: batches from the DataLoader (prefetched and uploaded on a side stream on
CUDA), the model under ``inference_mode`` and autocast, the output checked on the first batch
and every batch's logits and labels appended to the writer while the next batch runs.

Speed habits (each measured in ``bench/bench_extract.py``): uint8 images travel to the device
and are scaled/normalised there in one fused multiply-add; pinned host memory and
non-blocking copies on CUDA; the logits of batch *i* are written while batch *i+1* runs.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from lsfix.errors import InputError, LsfixError, RuntimeFailure
from lsfix.extract.datasets import DataSource, collate
from lsfix.extract.device import default_workers, torch_module
from lsfix.extract.distributed import DistInfo
from lsfix.extract.model_output import select_output
from lsfix.extract.options import ExtractOptions
from lsfix.extract.preprocess import Preprocess
from lsfix.extract.writer import ChunkedWriter


def prefetch(it: Iterator[Any], depth: int = 2,
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


def clean_worker_error(exc: LsfixError) -> LsfixError:
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
def sigterm_as_interrupt() -> Iterator[None]:
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


def progress_bar(enabled: bool, total: int, done: int, label: str) -> Any:
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


def run_loop(model: Any, src: DataSource, pre: Preprocess, device: Any, device_pre: Any,
          writer: ChunkedWriter, opts: ExtractOptions, dist: DistInfo,
          class_names_cli: list[str] | None, begin: int, end: int,
          warn: Callable[[str], None], timings: dict[str, float]) -> float:
    """Run the model over rows ``begin .. end`` and append to ``writer``; returns loop seconds.

    ``timings`` receives ``data_wait_s`` (waiting for the next batch), ``gpu_wait_s`` (waiting
    for the device to finish a batch), ``write_s`` (HDF5), ``compute_s`` (the rest) and
    ``loop_s``.
    """
    timings.update(data_wait_s=0.0, gpu_wait_s=0.0, write_s=0.0)
    torch = torch_module()
    from torch.utils.data import DataLoader

    ds = src.make(pre, begin, end)
    workers = default_workers(opts, src, device)
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
        state["k"] = 2 if len(shape) == 2 and shape[1] == 1 else shape[1]  # binary: 0/1
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
        binary = out.ndim == 2 and k == 1  # one logit z: a sigmoid model, read as (0, z)
        n_classes = 2 if binary else k
        if binary and not writer.has_logits:
            note = opts.note if (dist.rank == 0 and not opts.quiet) else (lambda m: None)
            note("lsfix extract: one logit per sample: a binary (sigmoid) model, stored as "
                 "(N, 1) and read as the logits (0, z); labels are 0/1")
        if writer.has_logits:
            writer.init_datasets(item, np_dtype, label_shape=None, transforms={},
                                 class_names=None, ignore_index=None)  # checks the shape
            return
        names = class_names_cli
        if names is not None and len(names) != n_classes:
            what = "a single-logit binary model (2 classes)" if binary else \
                f"a model with K={k} logits"
            raise InputError(f"{len(names)} class names for {what}", file=opts.class_names)
        if names is None and src.class_names is not None and len(src.class_names) == n_classes:
            names = src.class_names
        label_shape = src.label_shape if opts.labels else None
        if label_shape is not None:
            if src.class_names is not None and len(src.class_names) != n_classes:
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
        state["k"] = n_classes
        writer.init_datasets(item, np_dtype, label_shape=label_shape,
                             transforms=json.loads(json.dumps(pre.record(
                                 input_dtype=src.input_dtype, layout=src.layout))),
                             class_names=names, ignore_index=opts.ignore_index,
                             n_classes=n_classes)

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
    prog = progress_bar(bool(show), end - begin, 0, "extract")
    t_loop = time.perf_counter()
    processed = 0
    try:
        with torch.inference_mode(), sigterm_as_interrupt():
            amp_ctx = (torch.autocast(device_type=device.type, dtype=amp_dtype)
                       if amp_dtype is not None else contextlib.nullcontext())
            it: Iterator[Any] = iter(loader)
            if cuda:
                it = prefetch(it, depth=3, stage=stage)
            pending = None
            while True:
                t_wait = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    break
                except LsfixError as exc:
                    raise clean_worker_error(exc) from None
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
                    hint = ("--resize/--crop/--channels" if xd.ndim == 4 else "--layout")
                    if src.layout == "NHW" and xd.ndim == 4:
                        hint += " (or --layout nld if the array holds (N, L, D) sequences)"
                    raise RuntimeFailure(
                        f"the model failed on a batch of shape {tuple(xd.shape)}: {why}; check "
                        f"{hint} against what the model expects") from None
                out = select_output(out, opts.output_key)
                if out.ndim == 1:  # (N,): one logit per sample, stored as (N, 1)
                    out = out.unsqueeze(1)
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

"""``lsfix extract`` end to end: plan the output, load the model and the dataset, record the
job and its provenance, run the loop into a new or resumed file, and under ``torchrun`` join
the shards.

The parts live in their own modules: :mod:`~lsfix.extract.options` (what was asked),
:mod:`~lsfix.extract.device` (torch, device, float32 mode), :mod:`~lsfix.extract.distributed`
(torchrun), :mod:`~lsfix.extract.output_plan` (new / resume / done), :mod:`~lsfix.extract.loop`
(the inference loop), :mod:`~lsfix.extract.model_output` (the logits in what the model returns)
and :mod:`~lsfix.extract.writer` (the HDF5 file).

Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) each rank extracts a contiguous
slice of the dataset into ``OUT.rank{r}-of-{w}.h5``; after a collective status check rank 0
joins the shards into ``OUT`` in dataset order (:func:`lsfix.extract.writer.merge_shards`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lsfix import __version__
from lsfix.errors import InputError, LsfixError, MissingDependency, RuntimeFailure, UsageError
from lsfix.extract.datasets import DataSource, open_dataset
from lsfix.extract.device import (
    default_workers,
    device_name,
    fp32_mode,
    resolve_device,
    torch_module,
)
from lsfix.extract.distributed import DistInfo, all_ranks_ok, process_group
from lsfix.extract.loop import run_loop
from lsfix.extract.models import LoadedModel, load_model
from lsfix.extract.options import ExtractOptions, ExtractResult, check_options
from lsfix.extract.output_plan import plan_output
from lsfix.extract.preprocess import Preprocess, merge_preprocess
from lsfix.extract.writer import ChunkedWriter, inspect_output, merge_shards, shard_path

__all__ = ["DistInfo", "ExtractOptions", "ExtractResult", "read_class_names", "run_extract"]


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
    torch_module()
    check_options(opts)
    dist = DistInfo.from_env()
    if dist.world > 1 and opts.output == "-":
        raise UsageError("-o -: under torchrun the output must be a file")
    device = resolve_device(opts.device, dist.local_rank)
    with process_group(dist, device):
        try:
            return _run(opts, dist, device, t0)
        except LsfixError as exc:
            if dist.world > 1 and dist.rank != 0:
                new = type(exc).__new__(type(exc))
                LsfixError.__init__(new, f"rank {dist.rank}: {exc}")
                raise new from None
            raise


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


def _run(opts: ExtractOptions, dist: DistInfo, device: Any, t0: float) -> ExtractResult:
    torch = torch_module()
    warn = opts.warn if dist.rank == 0 else (lambda m: None)
    note = opts.note if (dist.rank == 0 and not opts.quiet) else (lambda m: None)
    setup_error: BaseException | None = None
    try:
        target, mode, _final = plan_output(opts, dist)
        lm = load_model(opts.model, weights=opts.weights, trust_pickle=opts.trust_pickle,
                        download=opts.download, warn=warn) if mode != "complete" else None
        src = open_dataset(opts.dataset, root=opts.root, split=opts.split,
                           download=opts.download, images_key=opts.images_key,
                           labels_key=opts.labels_key, layout=opts.layout,
                           limit=opts.limit) if mode != "complete" else None
    except (LsfixError, KeyboardInterrupt) as exc:
        setup_error = exc
    if not all_ranks_ok(setup_error is None, dist):
        if setup_error is not None:
            raise setup_error
        raise RuntimeFailure("another rank failed while loading the model or dataset; see its "
                             "error above")
    if mode == "complete":
        note(f"lsfix extract: {opts.output} is already complete; nothing to do")
        return ExtractResult(opts.output, _final.rows_done if _final else 0,  # type: ignore[union-attr]
                             already_complete=True, rank=dist.rank, world=dist.world)
    assert lm is not None and src is not None
    for line in src.notes:
        note(f"lsfix extract: {line}")

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
        from lsfix.readers.logitsfile import command_line

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
        "torchvision_version": version_of("torchvision"),
        "timm_version": version_of("timm") if lm.kind == "timm" else None,
        "lsfix_version": __version__,
        "python_version": platform.python_version(),
        "shard": shard,
    }
    for key, value in opts.meta.items():
        prov_base.setdefault(key, value)

    if opts.output == "-":
        from lsfix.streams import atomic_output, refuse_binary_to_tty

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
    ok = all_ranks_ok(True, dist)
    shards = [str(shard_path(opts.output, r, dist.world)) for r in range(dist.world)]
    res.shards = shards
    if not ok:
        raise RuntimeFailure("another rank failed; shards are kept for --resume")
    if dist.rank == 0 and opts.merge:
        merge_shards(shards, opts.output, history_entry="")
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


def version_of(dist: str) -> str | None:
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
    torch = torch_module()
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
            "device": device_name(device), "workers": default_workers(opts, src, device),
            "batch_size": opts.batch_size, "channels_last": channels_last,
        }, offset=start, t0=t0)
        model = lm.module.to(device)
        if channels_last:
            with contextlib.suppress(Exception):
                model = model.to(memory_format=torch.channels_last)
        device_pre = pre.device_fn(device, channels_last=channels_last)
        timings: dict[str, float] = {}
        with fp32_mode(torch, device, opts.amp) as fp32_info:
            if done0 < rows_total:
                loop_time = run_loop(model, src, pre, device, device_pre, writer, opts, dist,
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
             f"more --workers (now {default_workers(opts, src, device)}) may help")
    if dist.world == 1 or dist.rank == 0:
        where = "<stdout>" if opts.output == "-" else target
        unit = "images" if src.layout not in ("NL", "NLD", "ND") else "rows"  # text, vectors
        rate = f", {res.images_per_s:.0f} {unit}/s" if loop_time > 0 else ""
        note(f"lsfix extract: wrote {where}: {rows_total} rows, logits {shape} {opts.dtype} "
             f"in {res.wall_time_s:.1f} s ({res.rows_this_run} this run{rate} on "
             f"{device_name(device)})")
    return res

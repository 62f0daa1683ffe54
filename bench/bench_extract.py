"""Throughput of ``lsfix extract`` against a bare ``model(x)`` loop, same model, same inputs.

Both run in this one process, alternately, on the same torchvision model (random weights,
seeded) and the same images:

* **bare**: the images, already converted to normalised float32 tensors and already on the
  device, fed batch by batch to ``model(x)`` under ``torch.inference_mode`` (and autocast when
  ``--amp``); nothing is read, copied or written. This is the ceiling.
* **extract**: :func:`lsfix.extract.runner.run_extract` on a ``.npy`` file of the uint8 images:
  DataLoader, host-to-device copies, normalisation on the device, NaN checks, the HDF5 appends
  and commits, the progress bookkeeping. Its images/s is rows / loop time (the model load and
  file creation are reported separately as end-to-end images/s).

The figure of merit is ``extract / bare`` images/s (target >= 0.90 on the CPU). The two sides
alternate ``--repeats`` times; two ratios are reported because a shared machine is noisy: the
median of the per-pair wall-clock ratios (the headline) and best against best.

Usage::

    python bench/bench_extract.py                      # CPU, ~1 min on 2 cores
    python bench/bench_extract.py --device cuda --amp bf16 --model resnet50 --size 224 \\
        --n 8192 --batch-size 256
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--amp", default="off", choices=("off", "bf16", "fp16"))
    ap.add_argument("--model", default="resnet18", help="torchvision model name")
    ap.add_argument("--size", type=int, default=64, help="square input size")
    ap.add_argument("--n", type=int, default=512, help="images per run")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None,
                    help="extract DataLoader workers (default: extract's own choice)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, object]:
    a = _args(argv)
    import torch
    import torchvision

    from lsfix.extract.device import fp32_mode as _fp32_mode
    from lsfix.extract.device import resolve_device
    from lsfix.extract.runner import ExtractOptions, run_extract

    device = resolve_device(a.device)
    cuda = device.type == "cuda"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (a.n, 3, a.size, a.size), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    torch.manual_seed(0)
    model = torchvision.models.get_model(a.model, weights=None).eval()
    tmp = Path(tempfile.mkdtemp(prefix="lsfix-bench-"))
    weights = tmp / "weights.pt"
    data = tmp / "images.npy"
    torch.save(model.state_dict(), weights)
    np.save(data, images)

    bare_model = model.to(device)
    if cuda:
        bare_model = bare_model.to(memory_format=torch.channels_last)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    x_all = torch.from_numpy(images).to(device)  # converted on the device: faster on CUDA
    x_all = (x_all.float() / 255 - m.to(device)) / s.to(device)
    if cuda:
        x_all = x_all.contiguous(memory_format=torch.channels_last)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.amp)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    def bare() -> float:
        sync()
        t = time.perf_counter()
        # the same float32 rules as extract (--amp off: IEEE fp32, no TF32; cuDNN autotuning)
        with torch.inference_mode(), _fp32_mode(torch, device, a.amp):
            ctx = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype
                   else contextlib.nullcontext())
            with ctx:
                for i in range(0, a.n, a.batch_size):
                    out = bare_model(x_all[i:i + a.batch_size]).float()
            out.cpu()  # like extract, the logits end up on the host
        sync()
        return a.n / (time.perf_counter() - t)

    timings: list[dict[str, float]] = []

    def extract(k: int) -> tuple[float, float]:
        out = tmp / f"out{k}.h5"
        t = time.perf_counter()
        res = run_extract(ExtractOptions(
            model=f"torchvision:{a.model}", dataset=str(data), output=str(out),
            weights=str(weights), batch_size=a.batch_size, device=str(device), amp=a.amp,
            mean=mean, std=std, workers=a.workers, quiet=True, overwrite=True,
            history_entry="bench"))
        wall = time.perf_counter() - t
        timings.append(res.timings)
        out.unlink()
        return res.images_per_s, a.n / wall

    # warm up both paths (allocator, cuDNN autotuning, oneDNN primitive caches)
    with torch.inference_mode(), _fp32_mode(torch, device, a.amp):
        bare_model(x_all[: a.batch_size])
    extract(-1)
    bare_runs, ex_runs, e2e_runs = [], [], []
    for k in range(a.repeats):
        # alternate the order so that a slow spell does not always hit the same side
        for side in (("bare", "extract") if k % 2 == 0 else ("extract", "bare")):
            if side == "bare":
                bare_runs.append(bare())
            else:
                ips, e2e = extract(k)
                ex_runs.append(ips)
                e2e_runs.append(e2e)
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()

    best_bare, best_ex, best_e2e = max(bare_runs), max(ex_runs), max(e2e_runs)
    pair_ratio = float(np.median([e / b for e, b in zip(ex_runs, bare_runs, strict=True)]))
    result: dict[str, object] = {
        "device": (torch.cuda.get_device_name(device) if cuda
                   else f"cpu {platform.processor() or platform.machine()}, "
                        f"{torch.get_num_threads()} threads"),
        "torch": torch.__version__, "model": a.model, "input": [3, a.size, a.size],
        "n": a.n, "batch_size": a.batch_size, "amp": a.amp, "workers": a.workers,
        "bare_images_per_s": round(best_bare, 1),
        "extract_images_per_s": round(best_ex, 1),
        "extract_end_to_end_images_per_s": round(best_e2e, 1),
        "ratio": round(pair_ratio, 3),
        "ratio_best_vs_best": round(best_ex / best_bare, 3),
        "ratio_end_to_end": round(best_e2e / best_bare, 3),
        "runs": {"bare": [round(v, 1) for v in bare_runs],
                 "extract": [round(v, 1) for v in ex_runs]},
        "extract_loop_breakdown_s": {k: round(v, 3) for k, v in timings[-1].items()},
    }
    print(f"{result['device']} | {a.model} {a.size}x{a.size} | n={a.n} batch={a.batch_size} "
          f"amp={a.amp} workers={a.workers}")
    print(f"  bare model(x) loop : {best_bare:10.1f} images/s (best of {a.repeats})")
    print(f"  lsfix extract      : {best_ex:10.1f} images/s (best of {a.repeats})")
    print(f"  extract end to end : {best_e2e:10.1f} images/s (incl. model load, file setup)")
    print(f"  ratio extract/bare : {pair_ratio:.3f} median of pairs, "
          f"{best_ex / best_bare:.3f} best vs best, "
          f"{best_e2e / best_bare:.3f} end to end")
    last = timings[-1]
    own = (last.get("data_wait_s", 0.0) + last.get("write_s", 0.0)) / max(last["loop_s"], 1e-9)
    result["extract_own_share_of_loop"] = round(own, 4)
    print("  extract loop (last run): " + ", ".join(f"{k} {v:.2f}" for k, v in last.items())
          + f"; waiting for data + writing = {own:.1%} of the loop")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    elif os.environ.get("OUT"):
        Path(os.environ["OUT"], f"bench_{device.type}_{a.amp}.json").write_text(
            json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

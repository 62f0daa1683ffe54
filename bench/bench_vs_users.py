"""lsfix against what users run instead, side by side in one run (issue 20).

    python bench/bench_vs_users.py --folder SCRATCH --images 4 --n 1000000 \\
        --n 10000000 --peers PEERS --out vs_users.json

Run it with an interpreter that also has scikit-learn, torch and (optionally)
torch-uncertainty installed (a scratch environment: see bench/README.md, "Issue 20"); every
peer that cannot be imported is reported as missing, never replaced.

**Scoring a dense file** (``--images`` x 19 x 1024 x 2048 float32, uint8 labels, 255 on
~12.6 % of the pixels; bench_cityscapes's generator), each a subprocess under GNU ``time``
(wall seconds, peak RSS):

* ``h5py + numpy``: the script a user writes: read ``/logits`` and ``/labels`` whole, float32
  softmax, ``max``/``argmax``, drop ignored pixels, AURC as the mean risk over a descending
  ``argsort`` (ties in sort order), AUROC by scikit-learn;
* ``torch``: the same with ``torch.from_numpy``, ``torch.softmax(dim=1).max(1)``,
  ``torch.sort``/``cumsum`` (CPU);
* ``lsfix curve F -s msp -f json``: exact float64 msp, out of core, every metric in one pass.

From each tool's peak RSS per image, the largest number of such images it can hold in the RAM
this machine has available now (``MemAvailable``) is printed (an extrapolation: nothing is run
near the limit on a shared machine). lsfix's is not bounded by RAM (flat RSS); its limit is
the temporary disk (24 B per pixel at most).

**Metrics on in-memory arrays** (``--n`` rows of MSP-like confidences with ties, 80 %
correct), best of ``--repeats``: lsfix (``lsfix.core.evaluate`` in the fd-shifts and
torch-uncertainty conventions, every metric), torch-uncertainty's ``AURC`` (torchmetrics
``update``/``compute``), fd-shifts' ``StatsCache(...).aurc`` (its module files taken unchanged
from the repository at ``FD_SHIFTS_COMMIT`` into ``--peers``, run as its code runs; under
numpy 2 ``np.trapz``, which it calls, is aliased to its new name ``np.trapezoid``), and
scikit-learn's ``roc_auc_score`` against lsfix's AUROC; with the values and their
differences.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cityscapes import make  # noqa: E402

LSFIX = Path(sys.executable).parent / "lsfix"
if not LSFIX.exists():  # a scratch environment for the peers: the lsfix on PATH
    import shutil

    LSFIX = Path(shutil.which("lsfix") or "lsfix")
GNU_TIME = "/usr/bin/time"
FD_SHIFTS_COMMIT = "c4467aec134e99691359da209f811d91283fc1e3"

NUMPY_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import h5py, numpy as np
    t0 = time.perf_counter()
    with h5py.File(sys.argv[1], "r") as f:
        z = f["logits"][()]                      # (N, K, H, W) float32
        y = f["labels"][()]
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    p = z / z.sum(axis=1, keepdims=True)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    keep = y != 255
    conf, correct = conf[keep], pred[keep] == y[keep]
    order = np.argsort(-conf)
    risk = np.cumsum(~correct[order]) / np.arange(1, conf.size + 1)
    aurc = float(risk.mean())
    try:
        from sklearn.metrics import roc_auc_score
        auroc = float(roc_auc_score(correct, conf))
    except ImportError:
        auroc = None
    print(json.dumps({"aurc": aurc, "auroc": auroc, "n": int(conf.size),
                      "seconds": time.perf_counter() - t0}))
""")

TORCH_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import h5py, numpy as np, torch
    t0 = time.perf_counter()
    with h5py.File(sys.argv[1], "r") as f:
        z = torch.from_numpy(f["logits"][()])
        y = torch.from_numpy(f["labels"][()].astype(np.int64))
    conf, pred = torch.softmax(z, dim=1).max(dim=1)
    del z
    keep = y != 255
    conf, correct = conf[keep], pred[keep] == y[keep]
    order = torch.sort(conf, descending=True).indices
    err = (~correct[order]).double()
    risk = torch.cumsum(err, 0) / torch.arange(1, conf.numel() + 1, dtype=torch.float64)
    print(json.dumps({"aurc": float(risk.mean()), "n": int(conf.numel()),
                      "seconds": time.perf_counter() - t0}))
""")


def timed(cmd: list[str], folder: Path) -> tuple[dict, float, float]:
    rss = folder / f"rss-{os.getpid()}"
    t0 = time.perf_counter()
    out = subprocess.run([GNU_TIME, "-f", "%M", "-o", str(rss), *cmd], capture_output=True,
                         text=True)
    wall = time.perf_counter() - t0
    if out.returncode:
        return {"error": out.stderr.strip()[-300:]}, wall, float("nan")
    peak = int(rss.read_text().split()[-1]) / 1e6
    rss.unlink()
    return json.loads(out.stdout), wall, peak


def mem_available() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1e6
    return float("nan")


def dense_part(folder: Path, images: int, repeats: int) -> dict:
    path = folder / f"users-{images}x19x1024x2048.h5"
    if not path.exists():
        make(path, images, 19, 1024, 2048, "float32")
    out: dict = {"images": images, "file_gb": round(path.stat().st_size / 1e9, 3),
                 "mem_available_gb": round(mem_available(), 1)}
    tools = {
        "h5py + numpy": [sys.executable, "-c", NUMPY_SCRIPT, str(path)],
        "torch": [sys.executable, "-c", TORCH_SCRIPT, str(path)],
        "lsfix curve": [str(LSFIX), "curve", str(path), "-s", "msp", "-f", "json"],
    }
    try:
        for name, cmd in tools.items():
            walls, peaks, res = [], [], {}
            for _ in range(repeats):
                res, wall, peak = timed(cmd, folder)
                walls.append(wall)
                peaks.append(peak)
            if "results" in res:
                r = res["results"][0]
                res = {"aurc": r["aurc"], "auroc": r["auroc"], "n": r["n"]}
            per_image = max(peaks) / images
            out[name] = {"best_s": round(min(walls), 2),
                         "median_s": round(float(np.median(walls)), 2),
                         "peak_rss_gb": round(max(peaks), 3), **res}
            if name != "lsfix curve":
                out[name]["max_images_in_ram"] = int(out["mem_available_gb"] // per_image)
            print(f"  {name:14s} best {min(walls):7.2f} s  peak RSS {max(peaks):6.2f} GB  "
                  f"{json.dumps(res)}", flush=True)
    finally:
        path.unlink(missing_ok=True)
    return out


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    correct = rng.random(n) < 0.8
    conf = np.where(correct, rng.beta(8, 1.5, n), rng.beta(3, 2, n))
    conf = np.round(conf, 4)  # MSP-like: ties
    conf[rng.random(n) < 0.1] = 1.0
    return conf, correct


def best(fn, repeats: int) -> tuple[float, object]:
    times, val = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        val = fn()
        times.append(time.perf_counter() - t0)
    return min(times), val


def metrics_part(n: int, peers: Path | None, repeats: int) -> dict:
    from lsfix.core import evaluate

    conf, correct = _data(n)
    out: dict = {"n": n, "distinct": int(np.unique(conf).size)}
    for cv in ("fd-shifts", "torch-uncertainty"):
        t, m = best(lambda cv=cv: evaluate(conf, correct, convention=cv), repeats)
        out[f"lsfix ({cv})"] = {"s": round(t, 3), "aurc": m.aurc, "auroc": m.auroc}
    try:
        from sklearn.metrics import roc_auc_score

        t, v = best(lambda: roc_auc_score(correct, conf), repeats)
        import sklearn

        out["scikit-learn roc_auc_score"] = {"s": round(t, 3), "auroc": float(v),
                                             "version": sklearn.__version__}
    except ImportError as exc:
        out["scikit-learn roc_auc_score"] = {"missing": str(exc)}
    try:
        import torch
        import torch_uncertainty
        from torch_uncertainty.metrics import AURC

        def tu() -> float:
            c = torch.from_numpy(conf)
            p0 = 0.5 + c / 2  # the MSP of a two-class row: ranks exactly like conf
            m = AURC()
            m.update(torch.stack([p0, 1 - p0], dim=-1),
                     torch.from_numpy((~correct).astype(np.int64)))
            return float(m.compute())

        t, v = best(tu, repeats)
        out["torch-uncertainty AURC"] = {"s": round(t, 3), "aurc": v,
                                         "version": getattr(torch_uncertainty, "__version__",
                                                            "?")}
    except ImportError as exc:
        out["torch-uncertainty AURC"] = {"missing": str(exc)}
    if peers is not None:
        sys.path.insert(0, str(peers))
        try:
            import warnings

            if not hasattr(np, "trapz"):  # numpy 2 renamed it (same function); fd-shifts
                np.trapz = np.trapezoid  # noqa: NPY201  (fd-shifts pins numpy < 2)
            from fd_shifts.analysis import metrics as fd

            warnings.simplefilter("ignore")
            t, v = best(lambda: fd.StatsCache(conf, correct.astype(np.int64), 20).aurc, repeats)
            out["fd-shifts StatsCache.aurc"] = {"s": round(t, 3), "aurc": float(v),
                                                "commit": FD_SHIFTS_COMMIT}
        except ImportError as exc:
            out["fd-shifts StatsCache.aurc"] = {"missing": str(exc)}
    for k, v in out.items():
        if isinstance(v, dict):
            print(f"  n={n:,} {k:30s} {json.dumps(v)}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, required=True)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dense-repeats", type=int, default=2)
    ap.add_argument("--peers", type=Path, help="folder holding fd_shifts/analysis (see doc)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--no-dense", action="store_true", help="only the metrics on arrays")
    args = ap.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    head = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                       f"{mem_available():.1f} GB available, load {os.getloadavg()[0]:.1f}",
            "python": platform.python_version(), "numpy": np.__version__}
    print(head, flush=True)
    result = {**head, "dense": None if args.no_dense else dense_part(args.folder, args.images,
                                                                      args.dense_repeats),
              "metrics": [metrics_part(n, args.peers, args.repeats)
                          for n in (args.n or [1_000_000])]}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

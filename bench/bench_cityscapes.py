"""The paper's segmentation experiment at Cityscapes-val size, end to end (issue 20).

    nice -n 10 python bench/bench_cityscapes.py --folder SCRATCH        # 500 images
    python bench/bench_cityscapes.py --images 32 --dtype float32 --folder DIR       # issue 17
    python bench/bench_cityscapes.py --images 12 --height 128 --width 256 --check   # small

Writes a file shaped like Cityscapes val (``--images`` x 19 x 1024 x 2048 logits, float16 by
default: 40 GB for 500 images; uint8 labels, 255 on ~12.6 % of the pixels: the bottom 9 %
of every image, as the ego vehicle, and 4 % of the segments) in ``lsfix extract``'s dense
layout (1 MiB slabs of every class of their pixels), then times, one after the other:

* ``read``: one read of ``/logits`` image by image (``read_direct`` into one buffer);
* ``curve (exact)``: ``lsfix curve F -s msp`` (every pixel, out of core);
* ``curve (paper)``: ``-s msp -s pnorm_raw:8 --subsample-pixels 5000/12 --bootstrap 1000
  --bootstrap-unit image`` (un-centred pNorm, p = 8, as the paper's code for Cityscapes);
* ``compare (exact)``: ``lsfix compare F G -s msp`` where ``G`` is a hard link to ``F`` (the
  same logits under another name: two full files do not fit the disk with their temporary
  files; each is read and evaluated in full, and paired by the bootstrap like two models);
* ``compare (paper)``: ``compare F G`` with the paper's options as ``curve (paper)``;
* ``audit (paper)``: ``lsfix audit F --subsample-pixels 5000/12 --bootstrap 1000
  --bootstrap-unit image`` (p tuned on the drawn pixels of 20 % of the images).

Each command is a subprocess under GNU ``time`` (wall seconds, peak RSS); a thread polls the
``--tmpdir`` folder every 0.2 s for the peak temporary disk. ``--check`` compares every
number with the in-memory path computed in this process (only for files that fit in
memory). The logits are generated: a few noise images (float16/32, N(0, 1.5)) rolled per
image, plus 2.5 at a predicted class that is wrong on 15 % of the segments.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np

from lsfix.extract.writer import item_chunks
from lsfix.readers.logitsfile import set_root_attrs

LSFIX = Path(sys.executable).parent / "lsfix"
GNU_TIME = "/usr/bin/time"
PAPER = ["--subsample-pixels", "5000/12", "--seed", "0", "--bootstrap", "1000",
         "--bootstrap-unit", "image"]


def make(path: Path, n: int, k: int, h: int, w: int, dtype: str, seed: int = 0) -> None:
    """The generated file (module docstring), image by image."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    pool = [(rng.normal(size=(k, h, w)) * 1.5).astype(dt) for _ in range(3)]
    gh, gw = 16, 32
    rh, rw = -(-h // gh), -(-w // gw)
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        z = f.create_dataset("logits", shape=(n, k, h, w), dtype=dt,
                             chunks=item_chunks((k, h, w), dt.itemsize, 1))
        y = f.create_dataset("labels", shape=(n, h, w), dtype=np.uint8, chunks=(1, h, w))
        y.attrs["ignore_index"] = np.int64(255)
        for i in range(n):
            seg = rng.integers(0, k, (gh, gw)).astype(np.uint8)
            wrong = rng.random((gh, gw)) < 0.15
            pred_seg = np.where(wrong, rng.integers(0, k, (gh, gw)), seg).astype(np.intp)
            lab = np.repeat(np.repeat(seg, rh, 0), rw, 1)[:h, :w].copy()
            pred = np.repeat(np.repeat(pred_seg, rh, 0), rw, 1)[:h, :w]
            ign = np.repeat(np.repeat(rng.random((gh, gw)) < 0.04, rh, 0), rw, 1)[:h, :w]
            lab[ign] = 255
            lab[int(h * 0.91):] = 255
            img = np.roll(pool[i % 3], (i * 7919) % (h * w)) if i >= 3 else pool[i].copy()
            top = np.take_along_axis(img, pred[None], axis=0)
            np.put_along_axis(img, pred[None], top + dt.type(2.5), axis=0)
            z[i] = img
            y[i] = lab


def read_once(path: Path) -> float:
    """Seconds for one read of ``/logits``, image by image, in a fresh process."""
    code = ("import sys, time, h5py, numpy as np\n"
            "t0 = time.perf_counter()\n"
            "with h5py.File(sys.argv[1], 'r') as f:\n"
            "    ds = f['logits']\n"
            "    buf = np.empty(ds.shape[1:], ds.dtype)\n"
            "    for i in range(ds.shape[0]):\n"
            "        ds.read_direct(buf, np.s_[i], np.s_[...])\n"
            "print(time.perf_counter() - t0)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip())


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def run(label: str, args: list[str], tmpdir: Path) -> dict:
    """One lsfix command under GNU time, with the peak size of ``tmpdir`` polled."""
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _tree_bytes(tmpdir))

    thread = threading.Thread(target=poll, daemon=True)
    rss_file = tmpdir.parent / f"rss-{os.getpid()}"
    cmd = [GNU_TIME, "-f", "%e %M", "-o", str(rss_file), str(LSFIX), *args]
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    load = os.getloadavg()[0]
    thread.start()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"{label} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    _, rss_kb = rss_file.read_text().split()[-2:]
    rss_file.unlink()
    left = list(tmpdir.iterdir())
    return {"label": label, "cmd": "lsfix " + " ".join(args), "wall_s": round(wall, 2),
            "peak_rss_gb": round(int(rss_kb) / 1e6, 3), "peak_tmp_gb": round(peak[0] / 1e9, 3),
            "load_before": round(load, 2), "left_in_tmpdir": len(left),
            "json": json.loads(proc.stdout), "stderr": proc.stderr.strip()[-500:]}


def check(path: Path, out: dict) -> dict:
    """Every number of the runs against the in-memory path, in this process."""
    from lsfix.core import paired_bootstrap
    from lsfix.evaluation.audit import audit
    from lsfix.evaluation.dense import apply_subsample, image_of_rows
    from lsfix.evaluation.drawn import gather
    from lsfix.evaluation.inmemory import eval_mask, evaluate_file
    from lsfix.output.report import metrics_dict
    from lsfix.readers.entry import read as load

    def same(got: dict, metrics) -> bool:
        want = metrics_dict(metrics, percent=False)
        return all(repr(got[k]) == repr(v) for k, v in want.items() if k in got)

    res = {}
    exact = evaluate_file(load(str(path)), ["msp"])[0].metrics
    res["curve (exact)"] = same(out["curve (exact)"]["json"]["results"][0], exact)
    res["compare (exact)"] = all(same(r, exact) for r in out["compare (exact)"]["json"]["results"])
    pred = load(str(path))
    apply_subsample(pred, "5000/12", 0)
    clusters = image_of_rows(pred, "x")
    want = evaluate_file(pred, ["msp", "pnorm_raw:8"], n_boot=1000, seed=0, clusters=clusters)
    got = out["curve (paper)"]["json"]["results"]
    res["curve (paper)"] = all(same(g, w.metrics) and g["ci"]["aurc"]["low"] == w.ci["aurc"].low
                               and g["ci"]["aurc"]["high"] == w.ci["aurc"].high
                               for g, w in zip(got, want, strict=True))
    cl = clusters[eval_mask(pred)]
    pairs = [paired_bootstrap(w.confidence, w.correct, w.confidence, w.correct, n_boot=1000,
                              seed=0, clusters=cl) for w in want]
    cp = out["compare (paper)"]["json"]
    res["compare (paper)"] = (
        all(same(g, w.metrics) for g, w in zip(cp["results"], want + want, strict=True))
        and [(p["difference"], p["low"], p["high"]) for p in cp["paired"]]
        == [(q.estimate, q.low, q.high) for q in pairs])
    d = gather(load(str(path), defer_dense_labels=True), "5000/12", 0)
    full = load(str(path))
    apply_subsample(full, "5000/12", 0)
    mask = eval_mask(full)
    same_rows = (np.array_equal(d.rows, np.flatnonzero(mask))
                 and np.array_equal(np.asarray(d.pred.logits), np.asarray(full.logits)[mask]))
    a = audit(d.pred, seed=0, n_boot=1000, bootstrap_unit="image", images=d.images,
              n_images=full.n // int(np.prod(full.logits.spatial)))
    ap = out["audit (paper)"]["json"]["paired_pnorm_minus_msp"]
    res["audit (paper)"] = same_rows and (ap["difference"], ap["low"], ap["high"]) == (
        a.paired.estimate, a.paired.low, a.paired.high)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    ap.add_argument("--folder", type=Path, required=True,
                    help="where the file and the temporary folder go (removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the file")
    ap.add_argument("--check", action="store_true", help="compare with the in-memory path")
    ap.add_argument("--skip", action="append", default=[], help="a run label to skip")
    ap.add_argument("--out", type=Path, help="write every figure as JSON here")
    args = ap.parse_args()
    n, k, h, w = args.images, 19, args.height, args.width
    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / f"cityscapes-{n}x{k}x{h}x{w}-{args.dtype}.h5"
    tmpdir = args.folder / "tmp"
    tmpdir.mkdir(exist_ok=True)
    figures: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "shape": [n, k, h, w], "dtype": args.dtype, "runs": {}}
    try:
        if not path.exists():
            t0 = time.perf_counter()
            make(path, n, k, h, w, args.dtype)
            figures["write_s"] = round(time.perf_counter() - t0, 1)
        figures["file_gb"] = round(path.stat().st_size / 1e9, 2)
        with h5py.File(path, "r") as f:
            y = f["labels"]
            ign = sum(int((y[i] == 255).sum()) for i in range(n))
        figures["ignored_share"] = round(ign / (n * h * w), 4)
        print(f"{path.name}: {figures['file_gb']} GB, {n * h * w:,} pixels, "
              f"{figures['ignored_share']:.1%} ignored", flush=True)
        figures["read_s"] = round(read_once(path), 2)
        print(f"read once: {figures['read_s']} s", flush=True)
        f_ = str(path)
        twin = path.with_name(path.stem + "-twin.h5")  # a hard link: another name, no disk
        if not twin.exists():
            os.link(path, twin)
        g_ = str(twin)
        plan = [
            ("curve (exact)", ["curve", f_, "-s", "msp", "-f", "json"]),
            ("curve (paper)", ["curve", f_, "-s", "msp", "-s", "pnorm_raw:8", *PAPER,
                               "-f", "json"]),
            ("compare (exact)", ["compare", f_, g_, "-s", "msp", "-f", "json"]),
            ("compare (paper)", ["compare", f_, g_, "-s", "msp", "-s", "pnorm_raw:8", *PAPER,
                                 "-f", "json"]),
            ("audit (paper)", ["audit", f_, *PAPER, "-f", "json"]),
        ]
        for label, cmd in plan:
            if label in args.skip:
                continue
            r = run(label, cmd, tmpdir)
            r["ratio_to_read"] = round(r["wall_s"] / figures["read_s"], 1)
            figures["runs"][label] = r
            print(f"{label:16s} {r['wall_s']:8.1f} s  {r['ratio_to_read']:6.1f}x read  "
                  f"peak RSS {r['peak_rss_gb']:.3f} GB  peak tmp {r['peak_tmp_gb']:.2f} GB  "
                  f"load {r['load_before']}  left {r['left_in_tmpdir']}", flush=True)
            if args.out:  # after every run: a long run stopped early keeps what it measured
                args.out.write_text(json.dumps(figures, indent=1, default=str))
        if args.check:
            figures["check"] = check(path, figures["runs"])
            print("same as the in-memory path:", figures["check"], flush=True)
    finally:
        path.with_name(path.stem + "-twin.h5").unlink(missing_ok=True)
        if not args.keep:
            path.unlink(missing_ok=True)
        shutil.rmtree(tmpdir, ignore_errors=True)
    for r in figures["runs"].values():
        r["json"] = {k: r["json"][k] for k in ("results", "paired", "n_eval",
                                                 "paired_pnorm_minus_msp", "n_ignored",
                                                 "n_not_drawn") if k in r["json"]}
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()

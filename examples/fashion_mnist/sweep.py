"""The α sweep: label smoothing α ∈ {0, 0.05, 0.1, 0.2, 0.3, 0.4} × two architectures × seeds.

Xia et al.'s central figure: selective-classification quality (AURC of MSP) gets worse as the
label-smoothing α grows while accuracy barely moves, and MaxLogit-pNorm recovers it. This
script repeats that on real Fashion-MNIST, on CPU, with the project's own tools.

For every (architecture, α, seed) it

1. trains a model (``train.py``: Adam lr 1e-3, cosine decay, batch 128, one torch thread,
   deterministic) — ``cnn`` (``net.build``, 5 epochs) or ``mlp`` (``net.build_mlp``, 15
   epochs) — on training rows 0..49999;
2. runs ``lsfix extract`` (a subprocess, as a user would) over the held-out validation split
   (training rows 50000..59999) and the official 10k test split, recording the α with
   ``--meta training.label_smoothing=α``.

Then (``report``) for each model: test error, %AURC (``xia`` convention ×100, as the paper
prints it) of MSP and of MaxLogit-pNorm with p tuned on the validation file
(``lsfix.tune_pnorm``: grid 0–9, ``lsfix``-convention AURC objective, MSP kept when no worse —
exactly what ``lsfix normalise --fit VAL`` does), and the chosen p; per (architecture, α) the
mean over seeds with a 95 % t-interval over seeds; a figure with those intervals.

Optional extra models for the label-smoothing detector's failure analysis (``--variants``):
cross-entropy CNNs with heavy (coupled, Adam) weight decay.

Everything goes to ``--out`` (default ``build/fmnist_sweep``, git-ignored); the run is
resumable: a model whose ``val.h5`` and ``test.h5`` exist is skipped, a model whose
``model.pt`` exists is not retrained.

Usage, from the repository root::

    python -m examples.fashion_mnist.sweep run --variants          # train + extract
    python -m examples.fashion_mnist.sweep report --plot docs/img/fmnist_alpha_sweep.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from examples.fashion_mnist.common import lsfix, rel, write_class_names, write_val_npz
from examples.fashion_mnist.net import ARCHS, MEAN, STD
from examples.fashion_mnist.train import DATA_DIR, train

ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
EPOCHS = {"cnn": 5, "mlp": 15}
#: Extra models for the detector's failure analysis: (tag, arch, α, weight decay, seed).
VARIANTS = (("wd5e-3", "cnn", 0.0, 5e-3, 0), ("wd5e-2", "cnn", 0.0, 5e-2, 0),
            ("wd5e-3", "mlp", 0.0, 5e-3, 0))


def model_name(arch: str, alpha: float, seed: int, tag: str = "") -> str:
    return f"{arch}_a{alpha:g}_s{seed}" + (f"_{tag}" if tag else "")


def _floats(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s.strip()]


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def extract(arch: str, weights: Path, dataset: str, out: Path, classes: Path,
            meta: dict[str, float | str]) -> float:
    """``lsfix extract`` one split of one model (float32 logits, provenance ``meta``)."""
    metas: list[str] = []
    for k, v in meta.items():
        metas += ["--meta", f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"]
    return lsfix("extract", ARCHS[arch][1], "--weights", rel(weights), dataset, "-o", rel(out),
                 "--mean", f"{MEAN:.4f}", "--std", f"{STD:.4f}", "--class-names", rel(classes),
                 "--device", "cpu", "-b", "500", "--overwrite", "-q", *metas)


def run_one(out: Path, arch: str, alpha: float, seed: int, epochs: int, *, classes: Path,
            val_npz: Path, test_ds: str, data_dir: str, weight_decay: float = 0.0,
            tag: str = "", limit: int | None = None) -> None:
    name = model_name(arch, alpha, seed, tag)
    mdir = out / name
    val, test = mdir / "val.h5", mdir / "test.h5"
    if val.exists() and test.exists():
        print(f"== {name}: done, skipped", file=sys.stderr, flush=True)
        return
    print(f"== {name}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    cfg = {"arch": arch, "label_smoothing": alpha, "seed": seed, "epochs": epochs,
           "weight_decay": weight_decay}
    rec_path = mdir / "training.json"
    rec = json.loads(rec_path.read_text()) if rec_path.exists() else None
    if rec is None or not (mdir / "model.pt").exists() or any(
            rec.get(k) != v for k, v in cfg.items()):
        rec = train(alpha, seed, epochs, mdir, data_dir=data_dir, limit=limit, arch=arch,
                    weight_decay=weight_decay)
    t1 = time.perf_counter()
    meta: dict[str, float | str] = {"training.label_smoothing": alpha, "training.arch": arch,
                                    "training.epochs": float(epochs), "training.seed":
                                    float(seed)}
    if weight_decay:
        meta["training.weight_decay"] = weight_decay
    extract(arch, mdir / "model.pt", rel(val_npz), mdir / "val.tmp.h5", classes, meta)
    extract(arch, mdir / "model.pt", test_ds, mdir / "test.tmp.h5", classes, meta)
    (mdir / "val.tmp.h5").replace(val)
    (mdir / "test.tmp.h5").replace(test)
    timing = {"train_s": rec["wall_seconds"], "extract_s": round(time.perf_counter() - t1, 2),
              "total_s": round(time.perf_counter() - t0, 2)}
    (mdir / "timing.json").write_text(json.dumps(timing) + "\n")
    print(f"   {name}: train {timing['train_s']:.0f} s, extract {timing['extract_s']:.0f} s",
          file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    classes = write_class_names(out / "classes.txt")
    val_npz = out / "fmnist_val.npz"
    if not val_npz.exists():
        write_val_npz(out / "fmnist_val.tmp.npz", args.data_dir).replace(val_npz)
    test_ds = f"idx:{Path(args.data_dir) / 't10k'}"
    common = {"classes": classes, "val_npz": val_npz, "test_ds": test_ds,
              "data_dir": args.data_dir, "limit": args.train_limit}
    # seeds outermost: a sweep cut short still has whole seeds
    for seed in args.seeds:
        for arch in args.archs:
            for alpha in args.alphas:
                run_one(out, arch, alpha, seed, EPOCHS[arch], **common)
    if args.variants:
        for tag, arch, alpha, wd, seed in VARIANTS:
            run_one(out, arch, alpha, seed, EPOCHS[arch], weight_decay=wd, tag=tag, **common)
    wall = time.perf_counter() - t_start
    print(f"sweep wall time this invocation: {wall:.0f} s", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------
# report


@dataclass
class Result:
    name: str
    arch: str
    alpha: float
    seed: int
    tag: str
    error: float  # test error, %
    aurc_msp: float  # %AURC xia
    aurc_pnorm: float  # %AURC xia, p tuned on val
    p: str  # chosen p or "MSP"
    train_s: float
    extract_s: float


def evaluate_model(mdir: Path) -> Result:
    import lsfix
    from lsfix.readers.entry import read_predictions

    rec = json.loads((mdir / "training.json").read_text())
    timing = json.loads((mdir / "timing.json").read_text())
    with read_predictions(str(mdir / "val.h5")) as pv:
        zv, yv = np.asarray(pv.logits, dtype=np.float64), np.asarray(pv.labels)
    with read_predictions(str(mdir / "test.h5")) as pt:
        zt, yt = np.asarray(pt.logits, dtype=np.float64), np.asarray(pt.labels)
    fit = lsfix.tune_pnorm(zv, yv, split={"kind": "file", "file": "val.h5"})
    correct = lsfix.correctness(zt, yt)
    msp = lsfix.msp(zt)
    pn = fit.score(zt)
    tag = mdir.name.split("_", 3)[3] if mdir.name.count("_") >= 3 else ""
    return Result(
        name=mdir.name, arch=rec.get("arch", "cnn"), alpha=float(rec["label_smoothing"]),
        seed=int(rec["seed"]), tag=tag, error=100 * (1 - float(correct.mean())),
        aurc_msp=100 * lsfix.evaluate(msp, correct, convention="xia").aurc,
        aurc_pnorm=100 * lsfix.evaluate(pn, correct, convention="xia").aurc,
        p="MSP" if fit.p is None else f"{fit.p:g}",
        train_s=float(timing["train_s"]), extract_s=float(timing["extract_s"]))


def load_results(out: Path) -> list[Result]:
    """Evaluate every finished model under ``out`` (cached in ``out/NAME/result.json``)."""
    results = []
    for mdir in sorted(p for p in out.iterdir() if p.is_dir()):
        if not ((mdir / "val.h5").exists() and (mdir / "test.h5").exists()
                and (mdir / "timing.json").exists()):
            continue
        cache = mdir / "result.json"
        if cache.exists() and cache.stat().st_mtime >= (mdir / "test.h5").stat().st_mtime:
            results.append(Result(**json.loads(cache.read_text())))
            continue
        r = evaluate_model(mdir)
        cache.write_text(json.dumps(asdict(r)) + "\n")
        results.append(r)
    return results


# two-sided 95 % Student t quantiles by degrees of freedom
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228}


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval over seeds (nan-wide for a single seed)."""
    a = np.asarray(values, dtype=np.float64)
    m = float(a.mean())
    if a.size < 2:
        return m, math.nan, math.nan
    half = _T975.get(a.size - 1, 1.96) * float(a.std(ddof=1)) / math.sqrt(a.size)
    return m, m - half, m + half


def _fmt_ci(values: list[float], nd: int) -> str:
    m, lo, hi = mean_ci(values)
    if math.isnan(lo):
        return f"{m:.{nd}f}"
    return f"{m:.{nd}f} [{lo:.{nd}f}, {hi:.{nd}f}]"


def table(results: list[Result]) -> str:
    """The sweep table (markdown): per architecture and α, mean [95 % t-interval over seeds];
    differences are paired by seed (same test images, same seed's CE model)."""
    main = [r for r in results if not r.tag]
    lines = [
        "| arch | α | seeds | error % | %AURC MSP | %AURC pNorm (p tuned on val) | "
        "MSP − CE MSP (same seed) | pNorm − MSP (same model) | p chosen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ce = {(r.arch, r.seed): r for r in main if r.alpha == 0}
    for arch in ARCHS:
        for alpha in sorted({r.alpha for r in main if r.arch == arch}):
            rs = sorted((r for r in main if r.arch == arch and r.alpha == alpha),
                        key=lambda r: r.seed)
            vs_ce = [r.aurc_msp - ce[(arch, r.seed)].aurc_msp for r in rs
                     if (arch, r.seed) in ce]
            lines.append(
                f"| {arch} | {alpha:g} | {len(rs)} | {_fmt_ci([r.error for r in rs], 2)} | "
                f"{_fmt_ci([r.aurc_msp for r in rs], 3)} | "
                f"{_fmt_ci([r.aurc_pnorm for r in rs], 3)} | "
                f"{_fmt_ci(vs_ce, 3) if vs_ce and alpha else '—'} | "
                f"{_fmt_ci([r.aurc_pnorm - r.aurc_msp for r in rs], 3)} | "
                f"{','.join(r.p for r in rs)} |")
    return "\n".join(lines) + "\n"


def per_run_table(results: list[Result]) -> str:
    lines = ["| model | arch | α | seed | variant | error % | %AURC MSP | %AURC pNorm | p | "
             "train s | extract s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r.tag, r.arch, r.alpha, r.seed)):
        lines.append(f"| {r.name} | {r.arch} | {r.alpha:g} | {r.seed} | {r.tag or '-'} | "
                     f"{r.error:.2f} | {r.aurc_msp:.3f} | {r.aurc_pnorm:.3f} | {r.p} | "
                     f"{r.train_s:.0f} | {r.extract_s:.0f} |")
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path) -> None:
    """One column per architecture. Top: %AURC of MSP and of tuned pNorm vs α (test error on
    a second axis). Bottom: the same, paired with the same seed's cross-entropy model
    (%AURC − CE's MSP %AURC), which removes the seed-to-seed spread. Points are means over
    seeds, bars 95 % t-intervals over seeds. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = [r for r in results if not r.tag]
    archs = [a for a in ARCHS if any(r.arch == a for r in main)]
    fig, axes = plt.subplots(2, len(archs), figsize=(5.4 * len(archs), 7.2), squeeze=False,
                             sharex=True)
    series = (("aurc_msp", "MSP", "C3", "o", -0.003),
              ("aurc_pnorm", "MaxLogit-pNorm (p tuned on val)", "C0", "s", 0.003))
    for col, arch in enumerate(archs):
        ax, dax = axes[0][col], axes[1][col]
        alphas = sorted({r.alpha for r in main if r.arch == arch})
        ce = {r.seed: r.aurc_msp for r in main if r.arch == arch and r.alpha == 0}
        for attr, label, color, marker, dx in series:
            for target, paired in ((ax, False), (dax, True)):
                stats = []
                for a in alphas:
                    rs = [r for r in main if r.arch == arch and r.alpha == a
                          and (not paired or r.seed in ce)]
                    vals = [getattr(r, attr) - (ce[r.seed] if paired else 0.0) for r in rs]
                    stats.append(mean_ci(vals) if vals else (math.nan,) * 3)
                m = np.array([st[0] for st in stats])
                lo = np.array([st[1] for st in stats])
                hi = np.array([st[2] for st in stats])
                err = np.nan_to_num(np.vstack([m - lo, hi - m]))
                target.errorbar(np.array(alphas) + dx, m, yerr=err, color=color,
                                marker=marker, capsize=3, label=label)
        n_seeds = len({r.seed for r in main if r.arch == arch})
        ax.set_title(f"Fashion-MNIST {arch} ({EPOCHS[arch]} epochs, {n_seeds} seed"
                     f"{'s' if n_seeds != 1 else ''})")
        ax.set_ylabel("%AURC (xia ×100), test")
        ax2 = ax.twinx()
        errs = [np.mean([r.error for r in main if r.arch == arch and r.alpha == a])
                for a in alphas]
        ax2.plot(alphas, errs, color="0.5", ls=":", marker=".", label="test error % (right)")
        ax2.set_ylabel("test error %", color="0.4")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="best")
        dax.axhline(0.0, color="0.6", lw=0.8)
        dax.set_ylabel("%AURC − same seed's CE MSP %AURC")
        dax.set_xlabel("label smoothing α")
        dax.legend(fontsize=7, loc="best")
    fig.text(0.5, 0.005, "points: mean over seeds; bars: 95 % t-interval over seeds "
             "(bottom row paired by seed)", ha="center", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)


def cmd_report(args: argparse.Namespace) -> int:
    results = load_results(Path(args.out))
    if not results:
        print(f"no finished models under {args.out}", file=sys.stderr)
        return 1
    t = table(results)
    pr = per_run_table(results)
    tot_train = sum(r.train_s for r in results)
    tot_ext = sum(r.extract_s for r in results)
    foot = (f"{len(results)} models; training {tot_train:.0f} s, lsfix extract "
            f"{tot_ext:.0f} s (sum of per-model wall times, one torch thread each)")
    print(t)
    print(pr)
    print(foot)
    if args.markdown:
        p = Path(args.markdown)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(t + "\n" + pr + "\n" + foot + "\n")
        tmp.replace(p)
    if args.plot:
        plot(results, Path(args.plot))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train and extract (resumable)")
    r.add_argument("--out", default="build/fmnist_sweep")
    r.add_argument("--alphas", type=_floats, default=list(ALPHAS))
    r.add_argument("--archs", type=lambda s: s.split(","), default=list(ARCHS))
    r.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    r.add_argument("--variants", action="store_true",
                   help="also the heavy-weight-decay CE models (detector failure analysis)")
    r.add_argument("--data-dir", default=str(DATA_DIR))
    r.add_argument("--train-limit", type=int, default=None, metavar="N",
                   help="train on the first N images only (smoke tests)")
    r.set_defaults(func=cmd_run)
    p = sub.add_parser("report", help="tables and figure from finished models")
    p.add_argument("--out", default="build/fmnist_sweep")
    p.add_argument("--markdown", default="", help="write the tables here too")
    p.add_argument("--plot", default="", help="write the figure here (PNG)")
    p.set_defaults(func=cmd_report)
    args = ap.parse_args(argv)
    for a in getattr(args, "archs", []):
        if a not in ARCHS:
            ap.error(f"--archs: unknown architecture {a!r} (choose from {', '.join(ARCHS)})")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

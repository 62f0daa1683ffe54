"""Reproduce Xia et al.'s label-smoothing result at Fashion-MNIST scale, on CPU.

For each seed and each setting — cross-entropy (CE, α = 0), label smoothing α = 0.1 and
α = 0.2 — train the CNN of ``net.py`` (``train.py``), then with the project's own CLI:
``lsfix extract`` the held-out validation split (training rows 50000..59999) and the official
10k test split, ``lsfix score -m msp``, ``lsfix normalise --fit VAL`` (MaxLogit-pNorm, p tuned
on the validation split, MSP fallback). Evaluate on the test split and print:

* per setting × seed: test error, %AURC (``xia`` convention ×100, as the paper prints it) and
  the ``lsfix``-convention AURC, for MSP and for tuned pNorm, and the chosen p;
* per setting: mean ± sd over seeds;
* paired LS − CE differences (same seed index, same test images): the per-seed estimate with
  a paired bootstrap interval (``lsfix.paired_bootstrap``, resampling test images), and the
  mean ± sd over seeds;
* for seed 0, ``lsfix compare`` of CE and LS 0.2 with an RC plot and the mechanism plots
  (``--plot docs/img/fmnist_rc.png --explain``).

Usage, from the repository root::

    python -m examples.fashion_mnist.reproduce                 # seeds 0,1,2; 5 epochs
    python -m examples.fashion_mnist.reproduce --seeds 0,1,2,3,4 --epochs 5

Nothing here is tuned toward the paper's outcome: the architecture, optimiser and epochs were
fixed for CPU speed before any LS result was seen, every setting uses the same recipe, and p
is tuned on validation data only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from examples.fashion_mnist.common import (
    LABELS,
    REPO,
    SETTINGS,
    extract,
    rel,
    score_and_normalise,
    write_class_names,
    write_val_npz,
)
from examples.fashion_mnist.train import DATA_DIR, DEFAULTS, train

PAPER = ("Xia et al. (ICLR 2025), ImageNet ResNet-50, MSP: CE 23.0 % error / 6.53 %AURC, "
         "LS 22.5 / 7.55, LS + logit normalisation 6.22")


@dataclass
class Run:
    tag: str
    alpha: float
    seed: int
    test: Path
    accuracy: float
    xia_msp: float
    xia_pnorm: float
    lsfix_msp: float
    lsfix_pnorm: float
    p: str
    train_acc: float
    train_s: float
    conf_msp: np.ndarray
    conf_pnorm: np.ndarray
    correct: np.ndarray


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: expected e.g. 0,1,2") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: distinct non-negative integers")
    return seeds


def _load(tag: str, alpha: float, seed: int, test: Path, rec: dict) -> Run:
    import lsfix
    from lsfix.readers.entry import read_predictions

    with read_predictions(str(test)) as pred:
        correct = lsfix.correctness(pred.logits, pred.labels)
        msp, pn = np.asarray(pred.scores["msp"]), np.asarray(pred.scores["pnorm"])
        params = pred.score_attrs["pnorm"]["params"]
    p = "MSP" if params.get("fallback_msp") else f"{params.get('p'):g}"
    return Run(tag, alpha, seed, test, float(correct.mean()),
               100 * lsfix.evaluate(msp, correct, convention="xia").aurc,
               100 * lsfix.evaluate(pn, correct, convention="xia").aurc,
               lsfix.evaluate(msp, correct, convention="lsfix").aurc,
               lsfix.evaluate(pn, correct, convention="lsfix").aurc,
               p, rec["final_train_accuracy"], rec["wall_seconds"], msp, pn, correct)


def _ms(values: list[float], fmt: str) -> str:
    a = np.asarray(values, dtype=np.float64)
    sd = float(a.std(ddof=1)) if a.size > 1 else math.nan
    sd_fmt = fmt.lstrip("+")
    return f"{a.mean():{fmt}} ± {sd:{sd_fmt}}" if a.size > 1 else f"{a.mean():{fmt}}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="default 0,1,2")
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--work", default="build/fmnist_repro",
                    help="weights and logits (default build/fmnist_repro, git-ignored); "
                         "models whose training.json matches are reused")
    ap.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap replicates")
    ap.add_argument("--plot", default="docs/img/fmnist_rc.png",
                    help="RC plot of CE vs LS 0.2 for the first seed ('' = none)")
    ap.add_argument("--data-dir", default=str(DATA_DIR))
    ap.add_argument("--train-limit", type=int, default=None, metavar="N",
                    help="train on the first N images only (smoke tests)")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    work = REPO / args.work
    work.mkdir(parents=True, exist_ok=True)
    classes = write_class_names(work / "classes.txt")
    val_npz = write_val_npz(work / "fmnist_val.npz", args.data_dir)
    test_ds = f"idx:{Path(args.data_dir) / 't10k'}"

    runs: dict[tuple[str, int], Run] = {}
    t_train = t_lsfix = 0.0
    for seed in args.seeds:
        for tag, alpha in SETTINGS:
            name = f"{tag}_s{seed}"
            print(f"== {LABELS[tag]} (α={alpha:g}), seed {seed}", file=sys.stderr, flush=True)
            mdir = work / name
            rec = _reuse(mdir, alpha, seed, args.epochs, args.train_limit)
            if rec is None:
                rec = train(alpha, seed, args.epochs, mdir, data_dir=args.data_dir,
                            limit=args.train_limit)
                t_train += rec["wall_seconds"]
            else:
                print(f"  reusing {rel(mdir)}/model.pt", file=sys.stderr)
            val, raw, test = (work / f"{name}_val.h5", work / f"{name}_test.raw.h5",
                              work / f"{name}_test.h5")
            t_lsfix += extract(mdir / "model.pt", rel(val_npz), val, classes, alpha)
            t_lsfix += extract(mdir / "model.pt", test_ds, raw, classes, alpha)
            t_lsfix += score_and_normalise(raw, val, test, work)
            raw.unlink(missing_ok=True)
            runs[(tag, seed)] = _load(tag, alpha, seed, test, rec)
    val_npz.unlink(missing_ok=True)

    print("# Fashion-MNIST: cross-entropy vs label smoothing, MSP vs tuned MaxLogit-pNorm")
    print(f"# {len(args.seeds)} seeds ({','.join(map(str, args.seeds))}), {args.epochs} "
          f"epochs, test = official 10k split, p tuned on validation rows 50000..59999")
    print("# %AURC = xia convention ×100 (the paper's); AURC = lsfix convention (mean "
          "selective risk over k=1..n)")
    print()
    print("## Per run")
    hdr = (f"{'setting':<7} {'seed':>4} {'train acc':>9} {'test acc':>8} {'error %':>7} "
           f"{'%AURC MSP':>9} {'%AURC pNorm':>11} {'AURC MSP':>9} {'AURC pNorm':>10} "
           f"{'p':>4}")
    print(hdr)
    print("-" * len(hdr))
    for tag, _ in SETTINGS:
        for seed in args.seeds:
            r = runs[(tag, seed)]
            print(f"{LABELS[tag]:<7} {seed:>4} {r.train_acc:>9.4f} {r.accuracy:>8.4f} "
                  f"{100 * (1 - r.accuracy):>7.2f} {r.xia_msp:>9.3f} {r.xia_pnorm:>11.3f} "
                  f"{r.lsfix_msp:>9.5f} {r.lsfix_pnorm:>10.5f} {r.p:>4}")
    print()
    print(f"## Mean ± sd over {len(args.seeds)} seeds")
    hdr = (f"{'setting':<7} {'error %':>13} {'%AURC MSP':>15} {'%AURC pNorm':>15} "
           f"{'AURC MSP':>17} {'AURC pNorm':>17}  p chosen")
    print(hdr)
    print("-" * len(hdr))
    for tag, _ in SETTINGS:
        rs = [runs[(tag, s)] for s in args.seeds]
        print(f"{LABELS[tag]:<7} {_ms([100 * (1 - r.accuracy) for r in rs], '.2f'):>13} "
              f"{_ms([r.xia_msp for r in rs], '.3f'):>15} "
              f"{_ms([r.xia_pnorm for r in rs], '.3f'):>15} "
              f"{_ms([r.lsfix_msp for r in rs], '.5f'):>17} "
              f"{_ms([r.lsfix_pnorm for r in rs], '.5f'):>17}  "
              f"{','.join(r.p for r in rs)}")
    print()
    _deltas(runs, args.seeds, args.bootstrap)
    print()
    print(f"# for context, {PAPER}")

    if args.plot:
        s0 = args.seeds[0]
        plot = REPO / args.plot
        plot.parent.mkdir(parents=True, exist_ok=True)
        print()
        print(f"## lsfix compare, seed {s0}: CE vs LS 0.2 (xia convention, ×100)")
        sys.stdout.flush()
        cmd = [sys.executable, "-m", "lsfix", "compare", rel(runs[("ce", s0)].test),
               rel(runs[("ls02", s0)].test), "-s", "msp", "-s", "pnorm", "--convention",
               "xia", "--percent", "--bootstrap", str(args.bootstrap), "-f", "table",
               "--plot", rel(plot), "--explain"]
        print("$ lsfix " + " ".join(cmd[3:]))
        sys.stdout.flush()
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
        res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        print(res.stdout.rstrip())
        if res.returncode != 0:
            print(f"(lsfix compare failed with exit {res.returncode}: {res.stderr.strip()})")
        elif res.stderr.strip():
            print(res.stderr.strip(), file=sys.stderr)

    wall = time.perf_counter() - t_start
    print()
    print(f"# wall time {wall:.0f} s (training {t_train:.0f} s for "
          f"{sum(1 for _ in runs)} models, lsfix extract/score/normalise {t_lsfix:.0f} s)")
    return 0


def _deltas(runs: dict[tuple[str, int], Run], seeds: list[int], n_boot: int) -> None:
    import lsfix

    comparisons = [
        # (label, baseline (tag, score), candidate (tag, score))
        ("LS 0.1 − CE, MSP", ("ce", "msp"), ("ls01", "msp")),
        ("LS 0.2 − CE, MSP", ("ce", "msp"), ("ls02", "msp")),
        ("LS 0.1 pNorm − CE MSP", ("ce", "msp"), ("ls01", "pnorm")),
        ("LS 0.2 pNorm − CE MSP", ("ce", "msp"), ("ls02", "pnorm")),
        ("LS 0.2 pNorm − LS 0.2 MSP", ("ls02", "msp"), ("ls02", "pnorm")),
        ("CE pNorm − CE MSP", ("ce", "msp"), ("ce", "pnorm")),
    ]
    print(f"## Paired differences (candidate − baseline, same seed, same 10k test images); "
          f"[95 % paired bootstrap, {n_boot} replicates]")
    print("# %AURC xia ×100; negative = candidate ranks its errors better")
    for label, (ta, sa), (tb, sb) in comparisons:
        diffs, err_diffs = [], []
        cells = []
        for seed in seeds:
            a, b = runs[(ta, seed)], runs[(tb, seed)]
            ca = a.conf_msp if sa == "msp" else a.conf_pnorm
            cb = b.conf_msp if sb == "msp" else b.conf_pnorm
            d = lsfix.paired_bootstrap(ca, a.correct, cb, b.correct, n_boot=n_boot, seed=seed,
                                       convention="xia")
            diffs.append(100 * d.estimate)
            err_diffs.append(100 * (b.accuracy - a.accuracy) * -1)
            cells.append(f"s{seed}: {100 * d.estimate:+.3f} [{100 * d.low:+.3f}, "
                         f"{100 * d.high:+.3f}]")
        print(f"{label:<27} Δ%AURC {_ms(diffs, '+.3f'):>16}   Δerror % "
              f"{_ms(err_diffs, '+.2f'):>13}")
        print(f"{'':<27} " + "  ".join(cells))


def _reuse(mdir: Path, alpha: float, seed: int, epochs: int, limit: int | None
           ) -> dict | None:
    """The saved training record when ``mdir`` holds the same run (α, seed, epochs)."""
    f = mdir / "training.json"
    if not (f.is_file() and (mdir / "model.pt").is_file()):
        return None
    try:
        rec = json.loads(f.read_text())
    except json.JSONDecodeError:
        return None
    same = (rec.get("label_smoothing") == alpha and rec.get("seed") == seed
            and rec.get("epochs") == epochs
            and rec.get("train_rows") == f"train[0:{limit or 50000}]"
            and rec.get("batch_size") == DEFAULTS["batch_size"])
    return rec if same else None


if __name__ == "__main__":
    raise SystemExit(main())

"""Validate the label-smoothing detector (``lsfix.core.ceiling``) on the α sweep.

Reads the models that ``sweep.py run`` finished under ``--out`` (their ``test.h5``/``val.h5``
logits and ``training.json``) and prints markdown:

* ``candidates``: the candidate statistics measured side by side (how the default was
  chosen): median / mode of the gap to the mean of the other logits, median of the gap to the
  runner-up, median over correctly classified rows only, median of the pooled gaps to each
  other logit; and the candidate concentration measures (spread (q90 − q50)/q50, the
  share of gaps within ±15 % of the median, the flatness sd(other logits)/gap);
* ``validate``: α̂ with its bootstrap interval against the true α, per model and per
  (architecture, α): bias, interval coverage, false-positive rate on CE models; behaviour
  under temperature-scaled logits, heavy weight decay, and synthetic K = 1000 logits; a
  figure (``--plot``).

Usage, from the repository root::

    python -m examples.fashion_mnist.ls_detection candidates
    python -m examples.fashion_mnist.ls_detection validate \\
        --plot docs/img/ls_detection.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lsfix.core.ceiling import (
    SPREAD_THRESHOLD,
    alpha_from_ceiling,
    ceiling_from_alpha,
    estimate_label_smoothing,
    logit_gaps,
)


def models(out: Path) -> list[tuple[str, dict, Path]]:
    """(name, training record, folder) of every finished model under ``out``."""
    found = []
    for mdir in sorted(p for p in out.iterdir() if p.is_dir()):
        if (mdir / "test.h5").exists() and (mdir / "val.h5").exists():
            rec = json.loads((mdir / "training.json").read_text())
            found.append((mdir.name, rec, mdir))
    return found


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from lsfix.readers.entry import read_predictions

    with read_predictions(str(path)) as p:
        return np.asarray(p.logits, dtype=np.float64), np.asarray(p.labels)


def _variant(rec: dict) -> str:
    return f"wd {rec['weight_decay']:g}" if rec.get("weight_decay") else ""


# ------------------------------------------------------------------------------------------
# candidates


def candidate_row(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    k = z.shape[1]
    g = logit_gaps(z)
    gn = logit_gaps(z, to="next")
    correct = z.argmax(1) == y
    top = z.argmax(1)
    each = (z.max(1)[:, None] - z)[np.arange(k)[None, :] != top[:, None]]
    others_sd = np.sqrt(np.maximum(((z ** 2).sum(1) - z.max(1) ** 2) / (k - 1)
                                   - ((z.sum(1) - z.max(1)) / (k - 1)) ** 2, 0))
    med = float(np.median(g))
    return {
        "median": alpha_from_ceiling(med, k),
        "mode": estimate_label_smoothing(z, statistic="mode", n_boot=0).alpha,
        "median_correct": alpha_from_ceiling(float(np.median(g[correct])), k),
        "median_next": alpha_from_ceiling(float(np.median(gn)), k),
        "median_each": alpha_from_ceiling(float(np.median(each)), k),
        "spread": float(np.quantile(g, 0.9) / med - 1),
        "share15": float(np.mean(np.abs(g / med - 1) < 0.15)),
        "flatness": float(np.median(others_sd[g > 0] / g[g > 0])),
    }


def cmd_candidates(args: argparse.Namespace) -> int:
    rows = []
    for name, rec, mdir in models(Path(args.out)):
        z, y = load(mdir / f"{args.split}.h5")
        r = candidate_row(z, y)
        r.update(name=name, arch=rec.get("arch", "cnn"), alpha=rec["label_smoothing"],
                 variant=_variant(rec))
        rows.append(r)
        print(f"  {name}", file=sys.stderr, flush=True)
    stats = ("median", "mode", "median_correct", "median_next", "median_each")
    conc = ("spread", "share15", "flatness")
    print(f"## Candidate statistics on the {args.split} split: mean α̂ over seeds "
          "(bias = mean α̂ − α)\n")
    print("| arch | α | variant | models | " + " | ".join(stats) + " | "
          + " | ".join(conc) + " |")
    print("|---|---|---|---|" + "---|" * (len(stats) + len(conc)))
    keys = sorted({(r["arch"], r["alpha"], r["variant"]) for r in rows},
                  key=lambda t: (t[2], t[0], t[1]))
    for arch, alpha, var in keys:
        rs = [r for r in rows if (r["arch"], r["alpha"], r["variant"]) == (arch, alpha, var)]
        cells = [f"{np.mean([r[s] for r in rs]):.4f}" for s in stats]
        cc = [f"{min(r[c] for r in rs):.3f}–{max(r[c] for r in rs):.3f}" for c in conc]
        print(f"| {arch} | {alpha:g} | {var or '-'} | {len(rs)} | " + " | ".join(cells)
              + " | " + " | ".join(cc) + " |")
    print()
    ls = [r for r in rows if r["alpha"] > 0 and not r["variant"]]
    print("| statistic | mean |α̂ − α| over LS models | mean |α̂ − α|/α | max |α̂ − α|/α |")
    print("|---|---|---|---|")
    for s in stats:
        err = np.array([abs(r[s] - r["alpha"]) for r in ls])
        rel = np.array([abs(r[s] - r["alpha"]) / r["alpha"] for r in ls])
        print(f"| {s} | {err.mean():.4f} | {rel.mean():.3f} | {rel.max():.3f} |")
    return 0


# ------------------------------------------------------------------------------------------
# validate


def _fmt_a(e) -> str:
    return f"{e.alpha:.3f} [{e.alpha_low:.3f}, {e.alpha_high:.3f}]"


def synthetic(k: int, alpha: float, n: int, reach: float, seed: int,
              temperature: float = 1.0) -> np.ndarray:
    """Synthetic logits: a share ``reach`` of rows sit at the LS ceiling c(α, K) (jittered
    by 5 %), the rest fall short of it by a uniform fraction; the other logits are N(0, (0.1·gap)²).
    ``α = 0`` mimics cross-entropy: log-normal gaps (median 10, log-sd 0.35)."""
    rng = np.random.default_rng(seed)
    if alpha > 0:
        c = ceiling_from_alpha(alpha, k)
        at = rng.random(n) < reach
        g = np.where(at, c * (1 + 0.05 * rng.standard_normal(n)), c * rng.uniform(0.1, 0.9, n))
    else:
        g = np.exp(np.log(10.0) + 0.35 * rng.standard_normal(n))
    z = rng.standard_normal((n, k)) * (0.1 * g[:, None])
    z -= z.mean(1, keepdims=True)
    y = rng.integers(0, k, n)
    z[np.arange(n), y] = 0.0
    z[np.arange(n), y] = g + (z.sum(1)) / (k - 1)  # gap to the mean of the others = g
    return z / temperature


def _summary_rows(main: list, which: int) -> list[str]:
    out = []
    for arch in ("cnn", "mlp"):
        for alpha in sorted({r[1]["label_smoothing"] for r in main if r[1]["arch"] == arch}):
            es = [r[which] for r in main
                  if r[1]["arch"] == arch and r[1]["label_smoothing"] == alpha]
            a_hat = np.array([e.alpha for e in es])
            cover = sum(e.alpha_low <= alpha <= e.alpha_high for e in es)
            ceil = sum(e.has_ceiling for e in es)
            bias = a_hat.mean() - alpha
            rel = f"{bias / alpha:+.1%}" if alpha else "—"
            out.append(
                f"| {arch} | {alpha:g} | {len(es)} | {ceiling_from_alpha(alpha, 10):.2f} | "
                f"{np.mean([e.ceiling for e in es]):.2f} | {a_hat.mean():.4f} | "
                f"{bias:+.4f} | {rel} | {cover}/{len(es)} | {ceil}/{len(es)} | "
                f"{min(e.spread for e in es):.3f}–{max(e.spread for e in es):.3f} |")
    return out


HEAD = ("| arch | α | models | ceiling c(α) | mean ĉ | mean α̂ | bias | rel. bias | "
        "95 % interval covers α | verdict `ceiling` | spread (min–max) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|")


def cmd_validate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    rows = []
    for name, rec, mdir in models(out):
        z, y = load(mdir / "test.h5")
        correct = z.argmax(1) == y
        e = estimate_label_smoothing(z, correct=correct, n_boot=args.boot)
        e_all = estimate_label_smoothing(z, n_boot=args.boot)
        temps = {t: estimate_label_smoothing(z / t, correct=correct, n_boot=0)
                 for t in (0.5, 2.0)}
        rows.append((name, rec, e, temps, e_all))
        print(f"  {name}: {_fmt_a(e)} {e.verdict}", file=sys.stderr, flush=True)
    main = [r for r in rows if not _variant(r[1])]
    print("## α̂ against the true α (test split, 10,000 rows per model)\n")
    print("Default (what `lsfix audit` reports): median gap over the correctly classified "
          "rows.\n")
    print(HEAD)
    print("\n".join(_summary_rows(main, 2)))
    print("\nFrom the logits alone (no labels): median gap over all rows.\n")
    print(HEAD)
    print("\n".join(_summary_rows(main, 4)))
    ce = [r for r in main if r[1]["label_smoothing"] == 0]
    for which, label in ((2, "correct rows"), (4, "all rows")):
        fp = sum(r[which].has_ceiling for r in ce)
        print(f"\nFalse-positive rate on cross-entropy models ({label}): {fp}/{len(ce)} report "
              f"a ceiling (spread threshold {SPREAD_THRESHOLD}).")
    print("\n## Per model (correct rows; T: the same test logits divided by T)\n")
    print("| model | α | α̂ [95 %] | ĉ | spread [95 %] | verdict | all rows: α̂ [95 %] | "
          "T = 0.5: α̂, verdict | T = 2: α̂, verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rec, e, temps, e_all in rows:
        print(f"| {name} | {rec['label_smoothing']:g} | {_fmt_a(e)} | {e.ceiling:.2f} | "
              f"{e.spread:.3f} [{e.spread_low:.3f}, {e.spread_high:.3f}] | {e.verdict} | "
              f"{_fmt_a(e_all)} | {temps[0.5].alpha:.4f}, {temps[0.5].verdict} | "
              f"{temps[2.0].alpha:.4f}, {temps[2.0].verdict} |")
    print("\n## Synthetic logits (K = 10 and K = 1000, 10,000 rows, all rows used)\n")
    print("| K | α | share of rows at the ceiling | T | α̂ [95 %] | spread | verdict |")
    print("|---|---|---|---|---|---|---|")
    for k in (10, 1000):
        for alpha, reach, t in ((0.0, 0, 1.0), (0.0, 0, 2.0), (0.1, 0.8, 1.0), (0.1, 0.5, 1.0),
                                (0.1, 0.3, 1.0), (0.1, 0.8, 2.0), (0.4, 0.8, 1.0)):
            z = synthetic(k, alpha, 10_000, reach, seed=k, temperature=t)
            e = estimate_label_smoothing(z, n_boot=args.boot)
            print(f"| {k} | {alpha:g} | {reach if alpha else '-'} | {t:g} | {_fmt_a(e)} | "
                  f"{e.spread:.3f} | {e.verdict} |")
    if args.plot:
        plot(main, Path(args.plot))
    return 0


def plot(rows: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for arch, color, dx in (("cnn", "C0", -0.004), ("mlp", "C1", 0.004)):
        rs = [r for r in rows if r[1]["arch"] == arch]
        a = np.array([r[1]["label_smoothing"] for r in rs])
        e = [r[2] for r in rs]
        m = np.array([x.alpha for x in e])
        lo = np.array([x.alpha_low for x in e])
        hi = np.array([x.alpha_high for x in e])
        a1.errorbar(a + dx, m, yerr=[m - lo, hi - m], fmt="o", ms=4, color=color,
                    capsize=2, label=f"{arch} (each seed, 95 % bootstrap)")
        sp = np.array([x.spread for x in e])
        a2.scatter(a + dx, sp, s=14, color=color, label=arch)
    lim = [0, 0.42]
    a1.plot(lim, lim, color="0.5", ls="--", lw=1, label="α̂ = α")
    a1.set_xlabel("true label smoothing α")
    a1.set_ylabel("α̂ (median gap of correct predictions)")
    a1.legend(fontsize=8)
    a1.set_title("α̂ vs α, Fashion-MNIST test logits")
    a2.axhline(SPREAD_THRESHOLD, color="C3", ls=":", label=f"threshold {SPREAD_THRESHOLD}")
    a2.set_xlabel("true label smoothing α")
    a2.set_ylabel("spread (q90 − q50)/q50 of the gaps")
    a2.set_title("concentration: below the line = ceiling")
    a2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("candidates")
    c.add_argument("--out", default="build/fmnist_sweep")
    c.add_argument("--split", default="test", choices=("test", "val"))
    c.set_defaults(func=cmd_candidates)
    v = sub.add_parser("validate")
    v.add_argument("--out", default="build/fmnist_sweep")
    v.add_argument("--boot", type=int, default=1000)
    v.add_argument("--plot", default="")
    v.set_defaults(func=cmd_validate)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

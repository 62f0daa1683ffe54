"""The label-smoothing mechanism made visible from logits (Xia et al., ICLR 2025).

Two views:

1. **Max logit conditioned on MSP.** Samples are sorted by MSP; a sliding window of ``w``
   consecutive samples (separately for correct and for wrong predictions) gives the mean MSP
   (x) and the mean max logit (y). Overlaying a cross-entropy model and a label-smoothing model
   shows where LS pulls the max logit down: most where predictions are likely right (high MSP),
   least where they are likely wrong — which scrambles the confidence ranking.
2. **The gradient term LS adds to the max logit**, ``α·(1 − 1/K − P_err)``, plotted against
   ``P_err`` (the probability that the prediction is wrong) for the file's ``K``: positive
   (suppressing) when ``P_err < 1 − 1/K`` and largest for confident, likely-right predictions.

3. **The logit-gap ceiling**: the histogram of each row's gap between its largest logit and
   the mean of the others, with the ceiling that label smoothing α̂ implies
   (:mod:`lsfix.core.ceiling`) and the ceiling of the α recorded in the provenance.

A single-logit (binary) model trained with BCE label smoothing has targets
``y(1 − α) + α/2``; its loss is ``(1 − α)·BCE(y) + α·BCE(½)``, and the smoothing part's
gradient on the margin ``|z|`` is ``α(σ(|z|) − ½) = α(½ − P_err)`` — the K = 2 case of the same
term. For such files view 1 plots the mean ``|z|`` (the binary confidence margin) instead of the
max logit ``max(0, z)``, which is no confidence there (docs/metrics.md, "Binary models").

:func:`mechanism_curves` and :func:`ls_gradient_term` are numeric (numpy only);
:func:`explain_plots` draws them via :mod:`lsfix.output.plot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsfix.core import compute_scores, parse_score

#: α values drawn when a file's provenance does not record its label smoothing.
DEFAULT_ALPHAS = (0.1, 0.2)


def ls_gradient_term(p_err: np.ndarray, k: int, alpha: float) -> np.ndarray:
    """Extra gradient on the max logit from label smoothing: ``α·(1 − 1/K − P_err)``.

    Parameters
    ----------
    p_err : ndarray
        Probability that the prediction is wrong (``1 − π_max`` for a calibrated model).
    k : int
        Number of classes.
    alpha : float
        Label-smoothing strength.

    Examples
    --------
    >>> ls_gradient_term(np.array([0.0, 0.9]), 10, 0.1).round(3).tolist()
    [0.09, 0.0]
    """
    return alpha * (1.0 - 1.0 / k - np.asarray(p_err, dtype=np.float64))


@dataclass(frozen=True)
class MechanismCurve:
    """Sliding-window means for one file and one group (correct or wrong predictions)."""

    label: str
    msp: np.ndarray
    max_logit: np.ndarray
    n: int


def _window_means(x: np.ndarray, y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    w = min(window, xs.shape[0])
    cx = np.concatenate(([0.0], np.cumsum(xs)))
    cy = np.concatenate(([0.0], np.cumsum(ys)))
    return (cx[w:] - cx[:-w]) / w, (cy[w:] - cy[:-w]) / w


def mechanism_curves(logits: Any, labels: np.ndarray, name: str, *, window: int | None = None,
                     mask: np.ndarray | None = None) -> list[MechanismCurve]:
    """Mean max logit vs mean MSP over sliding windows, for correct and wrong predictions.

    The window is ``max(25, n_group // 40)`` samples unless given.
    """
    from lsfix.core.scores import is_single_logit

    y_score = "logit_margin" if is_single_logit(logits) else "max_logit"  # binary: |z|
    out = compute_scores(logits, [parse_score("msp"), parse_score(y_score)], labels=labels)
    msp_val = np.exp(out["msp"])
    ml = out[y_score]
    correct = out["_correct"]
    if mask is not None:
        msp_val, ml, correct = msp_val[mask], ml[mask], correct[mask]
    curves = []
    for group, sel in (("correct", correct), ("wrong", ~correct)):
        m = int(sel.sum())
        if m < 2:
            continue
        w = window or max(25, m // 40)
        x, y = _window_means(msp_val[sel], ml[sel], min(w, m))
        curves.append(MechanismCurve(f"{name} · {group} (n={m})", x, y, m))
    return curves


def alpha_of(pred: Any) -> float | None:
    """Label smoothing recorded in a file's provenance (``training.label_smoothing``).

    ``None`` unless the value is a number in ``[0, 1]`` (provenance is untrusted input).
    """
    prov = getattr(pred, "provenance", {}) or {}
    if not isinstance(prov, dict):
        return None
    for key in ("training", "model"):
        sub = prov.get(key)
        if isinstance(sub, dict) and "label_smoothing" in sub:
            return _alpha_value(sub["label_smoothing"])
    if "label_smoothing" in prov:
        return _alpha_value(prov["label_smoothing"])
    return None


def _alpha_value(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        a = float(v)
    except ValueError:
        return None
    return a if 0.0 <= a <= 1.0 else None  # also refuses NaN


def explain_plots(preds: Sequence[Any], plot_path: str) -> list[str]:
    """Draw the mechanism, gradient and logit-gap plots next to ``plot_path``; return their
    paths (``STEM.mechanism.EXT``, ``STEM.gradient.EXT``, ``STEM.gaps.EXT``).

    Files without logits or labels are skipped (the mechanism needs both).
    """
    from lsfix.errors import UsageError
    from lsfix.evaluation.inmemory import eval_mask
    from lsfix.output.plot import Line, draw_lines, plot_format

    ext = plot_format(plot_path)
    base = Path(plot_path)
    usable = [p for p in preds if p.logits is not None and p.labels is not None]
    if not usable:
        raise UsageError("--explain needs files with /logits and /labels")
    from lsfix.core.scores import is_single_logit

    binary = all(is_single_logit(p.logits) for p in usable)
    lines: list[Line] = []
    for p in usable:
        alpha = alpha_of(p)
        tag = p.name if alpha is None else f"{p.name} (α={alpha:g})"
        for c in mechanism_curves(p.logits, p.labels, tag, mask=eval_mask(p)):
            lines.append(Line(c.label, c.msp, c.max_logit))
    mech = _sibling(plot_path, base.with_name(f"{base.stem}.mechanism.{ext}"))
    if binary:
        draw_lines(lines, mech, title="|z| vs MSP, one-logit model (sliding-window means)",
                   xlabel="MSP = σ(|z|)", ylabel="mean |z| (the binary confidence margin)")
    else:
        draw_lines(lines, mech, title="Max logit vs MSP (sliding-window means)",
                   xlabel="MSP (max softmax probability; logit scale: 0.9, 0.99, 0.999 "
                          "equally spaced)",
                   ylabel="mean max logit", xscale="logit")
    k = int(usable[0].k)
    recorded = sorted({a for a in (alpha_of(p) for p in usable) if a})
    alphas = recorded or sorted(DEFAULT_ALPHAS)
    assumed = "" if recorded else " (assumed: no α in the files' provenance)"
    p_err = np.linspace(0.0, 1.0, 201)
    grad = _sibling(plot_path, base.with_name(f"{base.stem}.gradient.{ext}"))
    zero = [("zero", np.array([0.0, 1.0]), np.array([0.0, 0.0]))]
    if binary:
        glines = [Line(f"α={a:g}{assumed}, BCE targets y(1−α)+α/2", p_err,
                       ls_gradient_term(p_err, 2, a)) for a in alphas]
        draw_lines(glines, grad, title="Gradient BCE label smoothing adds to |z|: α(½ − P_err)",
                   xlabel="P_err = 1 − σ(|z|)",
                   ylabel="added gradient on |z| (> 0 pushes it down)", extra=zero)
    else:
        glines = [Line(f"α={a:g}{assumed}, K={k}", p_err, ls_gradient_term(p_err, k, a))
                  for a in alphas]
        draw_lines(glines, grad, title="Gradient LS adds to the max logit: α(1 − 1/K − P_err)",
                   xlabel="P_err (probability the prediction is wrong)",
                   ylabel="added gradient on max logit (> 0 pushes it down)", extra=zero)
    gaps = _sibling(plot_path, base.with_name(f"{base.stem}.gaps.{ext}"))
    gap_plot(usable, gaps)
    return [mech, grad, gaps]


def gap_plot(preds: Sequence[Any], path: str) -> None:
    """Histogram of the logit gaps of correctly classified rows, per file, with the implied
    and the recorded-α ceilings."""
    from lsfix.core.ceiling import ceiling_from_alpha, estimate_label_smoothing, logit_gaps
    from lsfix.output.plot import GapSeries, gap_histogram

    series = []
    from lsfix.evaluation.inmemory import correct_of

    for p in preds:
        correct = correct_of(p)
        est = estimate_label_smoothing(p.logits, rows=p.keep, correct=correct, n_boot=0)
        use = correct if p.keep is None else (correct & p.keep)
        g = logit_gaps(p.logits)[use]
        rec = alpha_of(p)
        rec_c = None if not rec else ceiling_from_alpha(rec, est.k)
        if est.has_ceiling:
            what = f"ceiling {est.ceiling:.2f} → α̂ ≈ {est.alpha:.3f}"
        elif est.verdict == "no_ceiling":
            what = f"no ceiling (spread {est.spread:.2f})"
        else:
            what = "undetermined"
        series.append(GapSeries(
            label=f"{p.name}: {what}", gaps=g,
            ceiling=est.ceiling if est.has_ceiling else None,
            ceiling_label=f"α̂ ceiling {est.ceiling:.2f}" if est.has_ceiling else "",
            recorded_ceiling=rec_c,
            recorded_label=f"recorded α={rec:g} ceiling {rec_c:.2f}" if rec_c else ""))
    k = int(preds[0].k or 2) if preds else 2
    gap_histogram(series, path,
                  title=f"Logit gaps of correct predictions (largest − mean of others), K = {k}",
                  xlabel="logit gap (label smoothing α caps it at log(1 + K(1−α)/α))")


def _sibling(plot_path: str, path: Path) -> str:
    """A figure drawn next to ``plot_path``: in the same in-memory sink when it is one."""
    from lsfix.output.plot import FigurePath

    if isinstance(plot_path, FigurePath):
        return plot_path.sibling(str(path))
    return str(path)

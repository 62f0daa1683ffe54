"""Calibration beside ranking: the calibration section of ``curve --calibration`` and of
``audit`` (numbers from :mod:`lsfix.core.calibration`; definitions in docs/calibration.md).

A *variant* is one set of probabilities: the model's own (``T = 1``) and, when a temperature
was fitted, ``softmax(z / T)``. MaxLogit-pNorm changes only the ranking of the rows, never the
probabilities, so it has no calibration of its own: the audit shows that explicitly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsfix.core.bootstrap import Interval
from lsfix.core.calibration import (
    CALIBRATION_METRICS,
    MAX_BINS,
    N_BINS,
    Calibration,
    CalibrationRows,
    ReliabilityBins,
    calibration_bootstrap,
    calibration_metrics,
    calibration_rows,
    reliability_bins,
)
from lsfix.errors import UsageError

#: (key, table header) of the calibration table, in order
CAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("accuracy", "acc"), ("ece", "ECE"), ("ece_mass", "ECE (equal mass)"), ("mce", "MCE"),
    ("nll", "NLL"), ("brier", "Brier"))


@dataclass(frozen=True)
class CalibrationVariant:
    """One variant's calibration, with intervals when bootstrapped."""

    label: str
    metrics: Calibration
    ci: dict[str, Interval] | None
    bins: ReliabilityBins

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"label": self.label, **self.metrics.as_dict()}
        if self.ci is not None:
            d["ci"] = {k: {"low": _num(iv.low), "high": _num(iv.high), "level": iv.level,
                           "n_boot": iv.n_boot, "n_valid": iv.n_valid}
                       for k, iv in self.ci.items()}
        else:
            d["ci"] = None
        return d


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def check_bins(n_bins: int) -> int:
    """``--bins``: an integer in [1, :data:`lsfix.core.calibration.MAX_BINS`]."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) \
            or not 1 <= n_bins <= MAX_BINS:
        raise UsageError(f"--bins must be in [1, {MAX_BINS}], got {str(n_bins)[:40]}")
    return int(n_bins)


def variant(rows: CalibrationRows, label: str, *, n_bins: int = N_BINS, n_boot: int = 0,
            seed: int = 0, level: float = 0.95) -> CalibrationVariant:
    m = calibration_metrics(rows, n_bins)
    ci = (calibration_bootstrap(rows, n_bins, n_boot=n_boot, seed=seed, level=level)
          if n_boot else None)
    return CalibrationVariant(label, m, ci,
                              reliability_bins(rows.confidence, rows.correct, n_bins))


def rows_of(pred: Any, mask: np.ndarray | None, temperature: float = 1.0) -> CalibrationRows:
    """Per-row calibration quantities of ``pred``'s rows ``mask`` (all when None)."""
    if pred.logits is None:
        raise UsageError(f"{pred.name}: calibration needs logits (a scores file or a score "
                         "table holds no probabilities)")
    labels = pred.require_labels("calibration")
    # a row source: a single-logit binary model reads as (0, z), dense files as pixel rows
    rows = calibration_rows(pred.logits, labels, temperature=temperature)
    if mask is None:
        return rows
    return rows.take(np.flatnonzero(mask))


def section(variants: list[CalibrationVariant]) -> dict[str, Any]:
    """The JSON ``calibration`` section."""
    return {"n_bins": variants[0].metrics.n_bins if variants else N_BINS,
            "binning": "equal-width bins j/B, left-closed, confidence 1.0 in its own bin "
                       "(torchmetrics MulticlassCalibrationError); equal-mass: quantile edges "
                       "(netcal ECE equal_intervals=False)",
            "variants": [v.as_dict() for v in variants]}


def cell(v: CalibrationVariant, key: str) -> str:
    from lsfix.output.report import fmt

    value = getattr(v.metrics, key)
    if v.ci is not None and key in v.ci and not math.isnan(v.ci[key].low):
        iv = v.ci[key]
        return f"{fmt(value, 4)} [{fmt(iv.low, 4)}, {fmt(iv.high, 4)}]"
    return fmt(value, 4)


def table_text(variants: list[CalibrationVariant], title: str) -> str:
    """A plain-text table (one row per variant)."""
    import io

    from rich.console import Console
    from rich.table import Table

    from lsfix.safetext import rich_text

    table = Table()
    table.add_column(rich_text("probabilities"), justify="left")
    for _, head in CAL_COLUMNS:
        table.add_column(rich_text(head), justify="right")
    for v in variants:
        table.add_row(rich_text(v.label), *(rich_text(cell(v, k)) for k, _ in CAL_COLUMNS))
    buf = io.StringIO()
    Console(file=buf, width=200, no_color=True, force_terminal=False).print(table)
    nb = variants[0].metrics.n_bins if variants else N_BINS
    return (f"{title}\n{buf.getvalue()}ECE/MCE: {nb} equal-width bins (as torchmetrics); "
            "lower is better for every column but acc\n")


def tsv_rows(variants: list[CalibrationVariant]) -> list[dict[str, Any]]:
    out = []
    for v in variants:
        d: dict[str, Any] = {"probabilities": v.label, "temperature": v.metrics.temperature,
                             "n": v.metrics.n}
        for k in CALIBRATION_METRICS:
            d[k] = getattr(v.metrics, k)
            if v.ci is not None:
                d[f"{k}_low"], d[f"{k}_high"] = v.ci[k].low, v.ci[k].high
        out.append(d)
    return out


def reliability_series(variants: list[CalibrationVariant]) -> list[Any]:
    from lsfix.output.plot import ReliabilitySeries
    from lsfix.output.report import fmt

    out = []
    for v in variants:
        b = v.bins
        nb = v.metrics.n_bins
        # the extra slot of confidence exactly 1.0 joins the last bin for drawing only
        count = b.count[:nb].copy()
        acc, conf = b.accuracy[:nb].copy(), b.confidence[:nb].copy()
        if b.count.shape[0] > nb and b.count[nb] > 0:
            c0, c1 = count[-1], b.count[nb]
            a0 = 0.0 if c0 == 0 else acc[-1] * c0
            f0 = 0.0 if c0 == 0 else conf[-1] * c0
            count[-1] = c0 + c1
            acc[-1] = (a0 + b.accuracy[nb] * c1) / (c0 + c1)
            conf[-1] = (f0 + b.confidence[nb] * c1) / (c0 + c1)
        out.append(ReliabilitySeries(f"{v.label} (ECE {fmt(v.metrics.ece, 3)})", b.edges,
                                     count, acc, conf))
    return out


# --------------------------------------------------------------------------------------------
# audit: accuracy, calibration and selective classification side by side


def side_by_side(msp: Any, msp_ts: Any, pnorm: Any, model: CalibrationVariant,
                 scaled: CalibrationVariant, *, temperature: float, pnorm_label: str
                 ) -> list[dict[str, Any]]:
    """Rows for the audit's side-by-side table: the model (MSP, T = 1), temperature scaling
    (msp_ts) and MaxLogit-pNorm, each with accuracy, ECE, NLL, Brier and AURC. pNorm keeps
    the model's probabilities (its calibration cells repeat the model's, marked so)."""
    def row(name: str, what: str, cal: CalibrationVariant, r: Any, same_probs: bool
            ) -> dict[str, Any]:
        m = cal.metrics
        return {"variant": name, "changes": what, "accuracy": m.accuracy,
                "ece": m.ece, "nll": m.nll, "brier": m.brier, "aurc": r.metrics.aurc,
                "probabilities_unchanged": same_probs}

    return [
        row("model (MSP, T = 1)", "nothing", model, msp, False),
        row(f"temperature T = {temperature:.4g}", "probabilities (calibration); the ranking "
            "only slightly", scaled, msp_ts, False),
        row(pnorm_label, "the ranking only; probabilities are the model's", model, pnorm,
            True),
    ]


def side_by_side_text(rows: list[dict[str, Any]]) -> str:
    from lsfix.output.report import fmt

    m, t, p = rows
    lines = ["accuracy, calibration and selective classification (evaluation rows):"]
    w = max(len(r["variant"]) for r in rows)
    lines.append(f"  {'':<{w}}  {'acc':>8}  {'ECE':>8}  {'NLL':>8}  {'Brier':>8}  {'AURC':>9}")
    for r in rows:
        mark = "*" if r["probabilities_unchanged"] else " "
        lines.append(f"  {r['variant']:<{w}}  {fmt(r['accuracy'], 4):>8}  "
                     f"{fmt(r['ece'], 4):>7}{mark}  {fmt(r['nll'], 4):>7}{mark}  "
                     f"{fmt(r['brier'], 4):>7}{mark}  {fmt(r['aurc'], 4):>9}")
    lines.append("  * pNorm re-ranks rows without changing any probability: its calibration "
                 "is the model's")
    lines.append(f"  T changes ECE by {_signed(t['ece'] - m['ece'])}, NLL by "
                 f"{_signed(t['nll'] - m['nll'])}, AURC by {_signed(t['aurc'] - m['aurc'])}; "
                 f"pNorm changes AURC by {_signed(p['aurc'] - m['aurc'])} and calibration by 0")
    return "\n".join(lines) + "\n"


def _signed(x: float) -> str:
    from lsfix.output.report import fmt

    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return ("+" if x >= 0 else "−") + fmt(abs(x), 3)


@dataclass(frozen=True)
class AuditCalibration:
    """The audit's calibration section: the model's and the temperature-scaled
    probabilities, and the side-by-side rows (:func:`side_by_side`); its text is
    :func:`lsfix.output.audit.calibration_text`."""

    variants: tuple[CalibrationVariant, ...]
    rows: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {**section(list(self.variants)), "side_by_side": list(self.rows)}


def audit_calibration(res: Any, pred: Any, *, n_bins: int = N_BINS, n_boot: int = 0,
                      seed: int = 0, level: float = 0.95) -> AuditCalibration:
    """Calibration of an audit's evaluation rows before and after its fitted temperature,
    and accuracy / calibration / AURC of MSP, msp_ts and pNorm side by side."""
    mask = res.eval_rows
    kw: dict[str, Any] = {"n_bins": n_bins, "n_boot": n_boot, "seed": seed, "level": level}
    model = variant(rows_of(pred, mask), "model (T = 1)", **kw)
    scaled = variant(rows_of(pred, mask, res.temperature), f"T = {res.temperature:.4g}", **kw)
    by = {r.score: r for r in res.results}
    fit = res.fit
    label = ("pNorm (fell back to MSP)" if fit.fallback_msp or fit.p is None
             else f"pNorm p = {fit.p:g}")
    rows = side_by_side(by["msp"], by["msp_ts"], by["pnorm"], model, scaled,
                        temperature=res.temperature, pnorm_label=label)
    return AuditCalibration((model, scaled), tuple(rows))

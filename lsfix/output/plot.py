"""Plots (the only module importing matplotlib; imported lazily by the commands that plot).

Risk-coverage curves: coverage on x, selective risk on y, one line per file × score, legend
naming file, score and AURC. Lines differ in dash pattern and marker as well as colour, so a
grey-scale print stays readable. Large curves are thinned for drawing (at most ~2,000 points,
always keeping both ends); the numbers are never computed from the thinned curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsfix.errors import UsageError
from lsfix.safetext import mpl
from lsfix.streams import atomic_output

FORMATS = ("png", "svg", "pdf")
# Okabe-Ito colour-blind-safe palette, paired with dash patterns and markers for grey-scale.
_COLORS = ("#000000", "#E69F00", "#0072B2", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
_DASHES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class Line:
    """One curve to draw; ``points`` are ``(x, y, label)`` to mark on it (the requested
    risk@coverage and coverage@risk points)."""

    label: str
    x: np.ndarray
    y: np.ndarray
    points: tuple[tuple[float, float, str], ...] = ()


def plot_format(path: str) -> str:
    """The format implied by ``path``'s extension (png, svg or pdf)."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise UsageError(f"plot file {path!r} must end in .png, .svg or .pdf")
    return ext


def thin(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced subset of at most ``max_points`` points, keeping both ends."""
    n = x.shape[0]
    if n <= max_points:
        return x, y
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return x[idx], y[idx]


def _figure():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    # names are data: no label is parsed as mathtext or handed to LaTeX (lsfix.safetext)
    matplotlib.rcParams["text.parse_math"] = False
    matplotlib.rcParams["text.usetex"] = False

    return plt


class FigurePath(str):
    """A figure target held in memory: :func:`save` puts its bytes in ``sink[path]`` instead
    of writing a file (reports embed them, or write them later with the report)."""

    sink: dict[str, bytes]

    def __new__(cls, name: str, sink: dict[str, bytes]) -> FigurePath:
        obj = super().__new__(cls, name)
        obj.sink = sink
        return obj

    def sibling(self, name: str) -> FigurePath:
        """Another figure of the same report, in the same sink."""
        return FigurePath(name, self.sink)


def save(fig, path: str) -> None:  # type: ignore[no-untyped-def]
    """Save a figure atomically; the format follows the extension."""
    fmt = plot_format(path)
    if isinstance(path, FigurePath):
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight",
                    metadata={"Software": None} if fmt == "png" else
                    ({"Date": None} if fmt == "svg" else {"CreationDate": None}))
        path.sink[str(path)] = buf.getvalue()
        return
    with atomic_output(path, suffix=f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight",
                    metadata={"Software": None} if fmt == "png" else
                    ({"Date": None} if fmt == "svg" else {"CreationDate": None}))


def draw_lines(
    lines: Sequence[Line],
    path: str,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    percent_x: bool = False,
    percent_y: bool = False,
    xlim: tuple[float, float] | None = None,
    extra: Sequence[tuple[str, np.ndarray, np.ndarray]] = (),
    xscale: str = "linear",
    zoom: tuple[float, float] | None = None,
) -> None:
    """Draw styled lines (grey-scale-safe) and save to ``path``.

    ``xscale="logit"`` spreads x values near 0 and 1 (MSP close to 1 stays readable).
    ``zoom=(x0, x1)`` adds a second panel over that x range with its own y range (at high
    coverage the lines overlap; the low-coverage end is where rankings differ).
    """
    plt = _figure()
    if zoom is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        axes = [ax]
    else:
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.6),
                                 gridspec_kw={"width_ratios": [1.15, 1.0]})
    labels_of: list[list[tuple[float, float, str]]] = [[] for _ in axes]
    for n_ax, ax in enumerate(axes):
        named: set[str] = set()  # each requested point is labelled once per panel
        for i, line in enumerate(lines):
            x, y = thin(np.asarray(line.x), np.asarray(line.y))
            color = _COLORS[i % len(_COLORS)]
            ax.plot(x, y, color=color, linestyle=_DASHES[i % len(_DASHES)],
                    linewidth=1.8, marker=_MARKERS[i % len(_MARKERS)],
                    markevery=max(1, x.shape[0] // 8), markersize=5,
                    label=mpl(line.label) if n_ax == 0 else None)
            for px, py, plabel in line.points:
                ax.plot([px], [py], marker="o", markersize=9, markerfacecolor="none",
                        markeredgecolor=color, markeredgewidth=1.6, linestyle="none")
                if plabel not in named:
                    named.add(plabel)
                    labels_of[n_ax].append((px, py, plabel))
        for label, ex, ey in extra:
            tx, ty = thin(np.asarray(ex), np.asarray(ey))
            ax.plot(tx, ty, color="#777777", linestyle=(0, (2, 2)), linewidth=1.0,
                    label=mpl(label) if n_ax == 0 else None)
        ax.set_xlabel(mpl(xlabel))
        ax.grid(True, color="#dddddd", linewidth=0.6)
        if xscale != "linear":
            ax.set_xscale(xscale)
            if xscale == "logit":  # 0.5, 0.9, 0.99, 0.999 rather than ½ and 1 − 10⁻³
                from matplotlib.ticker import FixedLocator, FuncFormatter

                ticks = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999]
                ax.xaxis.set_major_locator(FixedLocator(ticks))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        from matplotlib.ticker import PercentFormatter

        if percent_x:
            ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        if percent_y:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes[0].set_ylabel(mpl(ylabel))
    axes[0].set_title(mpl(title))
    if xlim is not None:
        axes[0].set_xlim(*xlim)
    if zoom is not None:
        z = axes[1]
        z.set_xlim(*zoom)
        top = 0.0
        y_from = max(zoom[0], NOISY_START)  # the first accepted rows' noise sets no height
        for line in [*lines, *(Line(lab, ex, ey) for lab, ex, ey in extra)]:
            x, y = np.asarray(line.x), np.asarray(line.y)
            sel = (x >= y_from) & (x <= zoom[1]) & np.isfinite(y)
            if sel.any():
                top = max(top, float(np.max(y[sel])))
        low = top
        for line in lines:
            x, y = np.asarray(line.x), np.asarray(line.y)
            sel = (x >= y_from) & (x <= zoom[1]) & np.isfinite(y)
            if sel.any():
                low = min(low, float(np.min(y[sel])))
        pad = 0.08 * (top - low) if top > low else (0.08 * top or 0.01)
        z.set_ylim(max(0.0, low - pad), top + pad)
        z.set_title(mpl(f"zoom: {zoom[0]:.0%}–{zoom[1]:.0%} (where the curves differ)"
                        if percent_x else f"zoom: {zoom[0]:g}–{zoom[1]:g}"))
    for ax, items in zip(axes, labels_of, strict=True):
        place_labels(ax, items)
    longest = max([len(line.label) for line in lines] + [len(lab) for lab, _, _ in extra] + [0])
    if longest > 45 or len(lines) + len(extra) > 4:  # below the panels: never over the data
        axes[0].legend(fontsize=8, frameon=False, loc="upper left",
                       bbox_to_anchor=(0.0, -0.14), ncol=1)
    else:
        axes[0].legend(fontsize=8, frameon=True)
    save(fig, path)
    plt.close(fig)


def place_labels(ax, items: Sequence[tuple[float, float, str]]) -> None:  # type: ignore[no-untyped-def]
    """Annotate points so that no two labels overprint: each label tries offsets around its
    point, nearest first, and takes the first whose box stays inside the panel and overlaps
    no label placed before it (points outside the panel's limits are not labelled there)."""
    if not items:
        return
    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = []
    offsets = [(-8, 10), (8, 10), (-8, -16), (8, -16), (-8, 24), (8, 24), (-8, -30), (8, -30),
               (-8, 38), (8, 38), (-8, -44), (8, -44)]
    for px, py, text in sorted(items):
        if not (x0 <= px <= x1 and y0 <= py <= y1):
            continue
        ann = None
        for dx, dy in offsets:
            ann = ax.annotate(mpl(text), (px, py), textcoords="offset points", xytext=(dx, dy),
                              fontsize=7, color="#333333", ha="right" if dx < 0 else "left",
                              bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                    "alpha": 0.8})
            box = ann.get_window_extent(renderer)
            inside = (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
                      and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(b) for b in placed):
                break
            ann.remove()
            ann = None
        if ann is None:  # every offset collides: the farthest one, still drawn
            ann = ax.annotate(mpl(text), (px, py), textcoords="offset points", xytext=offsets[-1],
                              fontsize=7, color="#333333", ha="left")
        placed.append(ann.get_window_extent(renderer))


#: the zoom panel covers the coverage range holding this central share of the area between
#: the curves (the part of ΔAURC they disagree on)
ZOOM_SHARE = 0.9


def rc_zoom(lines: Sequence[Line]) -> tuple[float, float] | None:
    """The coverage range where the curves differ: the central :data:`ZOOM_SHARE` of
    ``∫ (max − min of the lines' risks) / (their mean risk) d coverage`` (the mean floored at
    2 % of the largest risk), on a grid of 400 coverages from 0.25 %, widened by a tenth.

    None (no zoom panel) with fewer than two lines, when the curves' areas agree within
    :data:`SAME_AREA` (one curve for every practical purpose), or when the range is more than
    80 % of the axis (the main panel shows it) - unless the first :data:`NOISY_START` of
    coverage (a handful of rows) is more than twice as high as the rest: then the zoom is
    everything past it, at that part's height (an accurate model's flat curves)."""
    if len(lines) < 2:
        return None
    grid = np.linspace(0.0025, 1.0, 400)
    risks = []
    for line in lines:
        x, y = np.asarray(line.x, dtype=np.float64), np.asarray(line.y, dtype=np.float64)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 2:
            continue
        order = np.argsort(x[ok], kind="stable")
        risks.append(np.interp(grid, x[ok][order], y[ok][order]))
    if len(risks) < 2:
        return None
    stack = np.vstack(risks)
    areas = stack.mean(axis=1)  # each curve's area on the grid (its AURC, nearly)
    if areas.max() <= (1.0 + SAME_AREA) * areas.min():
        return None  # the same curve for every practical purpose: nothing to zoom on
    # relative to the curves' level: at high coverage every risk is large and small relative
    # differences look big on the main panel already; the zoom is for where they are hidden
    floor = 0.02 * max(float(stack.max()), 1e-12)
    spread = np.ptp(stack, axis=0) / np.maximum(stack.mean(axis=0), floor)
    total = float(spread.sum())
    if not total > 0:
        return None
    cum = np.cumsum(spread) / total
    tail = (1.0 - ZOOM_SHARE) / 2
    lo = float(grid[int(np.searchsorted(cum, tail))])
    hi = float(grid[min(len(grid) - 1, int(np.searchsorted(cum, 1.0 - tail)))])
    width = max(hi - lo, 0.05)
    lo, hi = max(0.0, lo - 0.1 * width), min(1.0, hi + 0.1 * width)
    if hi - lo <= 0.8:
        return (lo, hi)
    # the curves differ everywhere. On an accurate model the first few accepted rows (a
    # handful of samples: noisy risks) set the main panel's height and flatten the rest;
    # then zoom on everything past them, with the height of that part
    early = grid < NOISY_START
    if stack[:, early].max() > 2.0 * stack[:, ~early].max():
        return (NOISY_START, 1.0)
    return None


#: curves whose areas agree within this relative margin count as one (no zoom panel)
SAME_AREA = 0.005

#: coverage below which a risk-coverage curve is a handful of samples (the y range of the
#: zoom panel ignores it)
NOISY_START = 0.05


def rc_plot(lines: Sequence[Line], path: str, *, title: str = "Risk-coverage curve",
            oracle: tuple[np.ndarray, np.ndarray] | None = None,
            oracle_label: str = "oracle (ideal ranking)") -> None:
    """Risk-coverage curves: coverage (x, %) vs selective risk (y, %), optional oracle, the
    requested points of each line marked (labels never overprint), and a panel zoomed on the
    coverage range where the curves differ (:func:`rc_zoom`; none when they do not)."""
    extra = [(oracle_label, oracle[0], oracle[1])] if oracle is not None else []
    draw_lines(lines, path, title=title,
               xlabel="coverage (share of samples accepted)",
               ylabel="selective risk (error rate among accepted)",
               percent_x=True, percent_y=True, xlim=(0.0, 1.0), extra=extra,
               zoom=rc_zoom(lines))


@dataclass(frozen=True)
class GapSeries:
    """One file's logit gaps for :func:`gap_histogram`, with the ceilings to mark."""

    label: str
    gaps: np.ndarray
    ceiling: float | None = None  #: implied by the estimate (ĉ) when a ceiling was found
    ceiling_label: str = ""
    recorded_ceiling: float | None = None  #: c(α) of the α in the provenance
    recorded_label: str = ""


def gap_histogram(series: Sequence[GapSeries], path: str, *,
                  title: str = "Logit gaps: largest logit − mean of the others",
                  xlabel: str = "logit gap") -> None:
    """Histograms (as step lines, shares per bin) of logit gaps, one per file, with the
    ceiling the estimate implies (dashed) and the one the recorded α implies (dotted), each
    in its file's colour. The x axis stops at the 99.5th percentile of all gaps (the rest are
    counted in the last bin)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    nonempty = [s for s in series if np.asarray(s.gaps).size]
    marks = [v for s in nonempty for v in (s.ceiling, s.recorded_ceiling)
             if v is not None and np.isfinite(v)]
    top = max([float(np.percentile(np.asarray(s.gaps), 99.5)) for s in nonempty] + marks
              + [1e-9]) * 1.05
    edges = np.linspace(0.0, top, 81)
    for i, s in enumerate(nonempty):
        g = np.clip(np.asarray(s.gaps, dtype=np.float64), 0.0, top)
        h, _ = np.histogram(g, bins=edges)
        color = _COLORS[i % len(_COLORS)]
        ax.stairs(h / max(1, g.size), edges, color=color, linewidth=1.6,
                  linestyle=_DASHES[i % len(_DASHES)], label=mpl(s.label))
        if s.ceiling is not None and np.isfinite(s.ceiling):
            ax.axvline(s.ceiling, color=color, linestyle="--", linewidth=1.2,
                       label=mpl(s.ceiling_label or f"ceiling {s.ceiling:.2f}"))
        if s.recorded_ceiling is not None and np.isfinite(s.recorded_ceiling):
            ax.axvline(s.recorded_ceiling, color=color, linestyle=":", linewidth=1.6,
                       label=mpl(s.recorded_label
                                 or f"recorded-α ceiling {s.recorded_ceiling:.2f}"))
    ax.set_xlabel(mpl(xlabel))
    ax.set_ylabel(mpl("share of rows per bin"))
    ax.set_title(mpl(title))
    ax.set_xlim(0.0, top)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.legend(fontsize=7, frameon=True)
    save(fig, path)
    plt.close(fig)


def rank_map_plot(maps: np.ndarray, names: Sequence[str], path: str, *,
                  title: str = "Uncertainty rank per pixel") -> None:
    """One panel per image (at most 12): the uncertainty rank of every pixel
    (:mod:`lsfix.core.rankmap`; 0 = most confident, 1 = least), grey where not evaluated."""
    plt = _figure()
    shown = min(12, maps.shape[0])
    cols = min(4, shown)
    rows = -(-shown // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    cmap = plt.get_cmap("magma").with_extremes(bad="#bbbbbb")
    im = None
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < shown:
            im = ax.imshow(np.ma.masked_invalid(maps[i]), cmap=cmap, vmin=0.0, vmax=1.0,
                           interpolation="nearest")
            ax.set_title(mpl(names[i]), fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8,
                     label="uncertainty rank (0 = most confident)")
    fig.suptitle(mpl(title), fontsize=10)
    try:
        save(fig, path)
    finally:
        plt.close(fig)


@dataclass(frozen=True)
class ReliabilitySeries:
    """One set of probabilities for :func:`reliability_plot`: its equal-width bins
    (:class:`lsfix.core.calibration.ReliabilityBins`) and a legend label (with its ECE)."""

    label: str
    edges: np.ndarray
    count: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray


def reliability_plot(series: Sequence[ReliabilitySeries], path: str, *,
                     title: str = "Reliability diagram") -> None:
    """Reliability diagram: per equal-width confidence bin, accuracy (y) against the bin's
    mean confidence (x), one line per series with markers sized by the bin's share of rows,
    the diagonal (perfect calibration) dashed, and below it the share of rows per bin. A bin
    above the diagonal is under-confident, below it over-confident."""
    plt = _figure()
    fig, (ax, hx) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True,
                                 gridspec_kw={"height_ratios": [3.0, 1.0]})
    ax.plot([0, 1], [0, 1], color="#777777", linestyle=(0, (2, 2)), linewidth=1.0,
            label="perfect calibration")
    nb = len(series[0].edges) - 1 if series else 1
    width = 1.0 / max(nb, 1) / max(1, len(series))
    for i, s in enumerate(series):
        ok = np.asarray(s.count) > 0
        color = _COLORS[i % len(_COLORS)]
        share = np.asarray(s.count, dtype=np.float64) / max(1, int(np.sum(s.count)))
        ax.plot(np.asarray(s.confidence)[ok], np.asarray(s.accuracy)[ok], color=color,
                linestyle=_DASHES[i % len(_DASHES)], linewidth=1.6, label=mpl(s.label))
        ax.scatter(np.asarray(s.confidence)[ok], np.asarray(s.accuracy)[ok], color=color,
                   marker=_MARKERS[i % len(_MARKERS)], s=10 + 120 * share[ok], zorder=3,
                   alpha=0.8)
        e = np.asarray(s.edges)
        left = e[:-1] + i * width
        hx.bar(left, share[: len(left)], width=width, align="edge", color=color, alpha=0.7)
    ax.set_ylabel(mpl("accuracy in bin"))
    ax.set_title(mpl(title))
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.legend(fontsize=8, frameon=True, loc="lower right")
    hx.set_xlabel(mpl("confidence (max softmax probability), bin mean"))
    hx.set_ylabel(mpl("share of rows"))
    hx.grid(True, color="#dddddd", linewidth=0.6)
    try:
        save(fig, path)
    finally:
        plt.close(fig)


def curve_lines(results: list[Any], *, show_file: bool, percent: bool = False,
                curves: list[Any] | None = None,
                notes: dict[tuple[str, str], str] | None = None) -> list[Any]:
    """Plot lines of ``results``; ``curves`` gives each one's ``(coverage, risk)`` when the
    results hold no per-row arrays (the out-of-core path). Files are named by their base
    name when those are unique. ``notes[(file, score)]`` is added to that line's label (a
    fallback to MSP, whose line then lies under MSP's)."""
    import os

    from lsfix.core import rc_curve

    files = {r.file for r in results}
    short = ({f: os.path.basename(f) or f for f in files}
             if len({os.path.basename(f) for f in files}) == len(files) else {f: f for f in files})
    lines = []
    for i, r in enumerate(results):
        if curves and curves[i] is not None:
            cov, rsk = curves[i]
        else:
            c = rc_curve(r.confidence, r.correct)
            cov, rsk = c.coverage, c.risk
        who = f"{short[r.file]} · {r.score}" if show_file else r.score
        note = (notes or {}).get((r.file, r.score))
        if note:
            who = f"{who} = {note}"
        value, unit = (100 * r.metrics.aurc, "%AURC") if percent else (r.metrics.aurc, "AURC")
        label = f"{who} ({unit} {value:.4g}, {r.metrics.convention})"
        points = tuple((p.coverage, p.risk, f"risk@{p.target:g}")
                       for p in r.metrics.risk_at_coverage if p.k > 0)
        points += tuple((p.coverage, p.risk, f"coverage@{p.target:g}")
                        for p in r.metrics.coverage_at_risk if p.k > 0)
        lines.append(Line(label, cov, rsk, points))
    return lines


def oracle_curve(correct: Any) -> tuple[Any, Any]:
    from lsfix.core import rc_curve

    c = rc_curve(correct.astype(float), correct)
    return c.coverage, c.risk


def fallback_notes(preds: list[Any]) -> dict[tuple[str, str], str]:
    """``(file, score) -> "MSP (fell back)"`` for stored scores that are MSP because their
    p-norm fit fell back (their curve is MSP's: the legend must say why it is hidden)."""
    out = {}
    for pred in preds:
        for name, attrs in getattr(pred, "score_attrs", {}).items():
            params = attrs.get("params") if isinstance(attrs, dict) else None
            if isinstance(params, dict) and params.get("fallback_msp") is True \
                    and name != "msp":
                out[(pred.name, name)] = "MSP (fell back: no p beat MSP)"
    return out

"""``lsfix curve``: every selective-classification metric of one file's scores."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lsfix.cli.app import app, handle_errors, warn
from lsfix.cli.common import (
    check_convention,
    load,
    parse_floats,
    report_format,
    use_scheduler,
)
from lsfix.cli.options import (
    ADVANCED,
    AllowIncompleteOpt,
    BootOpt,
    BootUnitOpt,
    ByOpt,
    ConventionOpt,
    CoverageOpt,
    FormatOpt,
    IgnoreIndexOpt,
    InputArg,
    InputKindOpt,
    LabelsOpt,
    LevelOpt,
    MemoryLimitOpt,
    OutputOpt,
    PercentOpt,
    PlotOpt,
    RiskOpt,
    SchedulerOpt,
    SchedulerTimeoutOpt,
    ScoreOpt,
    SeedOpt,
    SubsampleOpt,
    TmpdirOpt,
    WithOpt,
)
from lsfix.errors import UsageError

HELP = """Risk-coverage metrics of each score in a file: AURC (in the named convention),
oracle AURC, E-AURC, NAURC, AUGRC, AUROC, FPR@95TPR, risk@coverage, coverage@risk, with
optional bootstrap intervals and an RC plot. Ties are averaged over their orderings.

Input: an lsfix logits file (every stored score, or msp when none is stored), a scores file
(from score/normalise), or a table with 'confidence' and 'correct' columns. --with joins
scores files to the logits they came from. Rows used to fit p and ignored pixels are excluded.

Examples:

  lsfix curve model.h5 --score msp --score pnorm --coverage 0.8 --plot rc.png

  lsfix score model.h5 -m energy | lsfix normalise model.h5 --with - | lsfix curve - -f json
"""

def check_boot_unit(unit: str, by: str | None) -> None:
    """``--bootstrap-unit``: ``row`` or ``image``, and ``image`` not with ``--by``."""
    if unit not in ("row", "image"):
        raise UsageError(f"--bootstrap-unit must be row or image, got {unit!r}")
    if unit == "image" and by is not None:
        raise UsageError("--bootstrap-unit image does not go with --by (groups resample rows)")


def check_boot(n_boot: int, level: float) -> None:
    from lsfix.cli.common import MAX_BOOTSTRAP

    if n_boot < 0:
        raise UsageError(f"--bootstrap must be >= 0, got {n_boot}")
    if n_boot > MAX_BOOTSTRAP:
        raise UsageError(f"--bootstrap {n_boot} is above the limit of {MAX_BOOTSTRAP} "
                         "replicates")
    if not 0 < level < 1:
        raise UsageError(f"--level must be in (0, 1), got {level}")


def check_report_options(convention: str, bootstrap: int, level: float, fmt: str | None,
                         coverage: list[str] | None, risk: list[str] | None,
                         plot: str | None) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    """Validate the options curve and compare share; return (format, coverages, risks)."""
    check_convention(convention)
    check_boot(bootstrap, level)
    out_fmt = report_format(fmt)
    covs = parse_floats(coverage, "--coverage", lo=0.0, hi=1.0)
    risks = parse_floats(risk, "--risk", lo=0.0, hi=1.0, lo_open=False)
    if plot is not None:
        from lsfix.output.plot import plot_format

        plot_format(plot)
    return out_fmt, covs, risks


def result_rows(results: list[Any], *, percent: bool) -> list[dict[str, Any]]:
    from lsfix.output.report import ci_dict, flat_row, metrics_dict

    rows = []
    for r in results:
        md = metrics_dict(r.metrics, percent=percent)
        rows.append(flat_row({"file": r.file, "score": r.score}, md,
                             ci_dict(r.ci, percent=percent)))
    return rows


def result_json(results: list[Any], *, percent: bool) -> list[dict[str, Any]]:
    from lsfix.output.report import ci_dict, metrics_dict

    out = []
    for r in results:
        d = {"file": r.file, "score": r.score, **metrics_dict(r.metrics, percent=percent)}
        d["ci"] = ci_dict(r.ci, percent=percent)
        out.append(d)
    return out


#: table columns, most important first: the ones left out when a terminal is too narrow
#: come from the end of this list (``-f tsv``/``-f json`` always have every column)
KEEP_ORDER = ("score", "file", "group", "aurc", "risk@", "coverage@", "eaurc", "auroc", "accuracy",
              "naurc", "augrc", "oracle_aurc", "fpr_at_95tpr", "n", "n_tied")


def table_width() -> int:
    """The terminal's width (``COLUMNS`` first, as rich and the shell do; 100 when unknown)."""
    import shutil

    return max(60, shutil.get_terminal_size(fallback=(100, 24)).columns)


def render_table(rows: list[dict[str, Any]], title: str, *, show_file: bool,
                 width: int | None = None) -> str:
    """A rich table rendered to text (stdout), fitted to the terminal width.

    An interval stays on one line with its value (``0.0213 [0.0198, 0.0229]``: the value to
    the interval's 4 significant digits). When the columns do not fit, the least important
    ones (:data:`KEEP_ORDER`) are left out and a last line names them.
    """
    import io

    from rich.console import Console
    from rich.table import Table

    from lsfix.output.report import columns, fmt
    from lsfix.safetext import one_line, rich_text, term

    width = width or table_width()
    heads = dict((k, h) for k, h, _ in columns())
    extra = [k for k in rows[0] if k.startswith(("risk@", "coverage@"))
             and not k.endswith(("_low", "_high"))] if rows else []
    grouped = bool(rows) and "group" in rows[0]
    keys = ((["file"] if show_file else []) + ["score"] + (["group"] if grouped else [])
            + [k for k, _, _ in columns()] + extra)

    def cell(r: dict[str, Any], key: str) -> str:
        if key in ("file", "score", "group"):
            return term(r[key], keep_newlines=False)  # names are data (lsfix.safetext)
        if r.get(f"{key}_low") is not None and r.get(f"{key}_high") is not None:
            return (f"{fmt(r[key], 4)} [{fmt(r[f'{key}_low'], 4)}, "
                    f"{fmt(r[f'{key}_high'], 4)}]")
        return fmt(r[key])

    cells = {k: [cell(r, k) for r in rows] for k in keys}
    need = {k: max(len(heads.get(k, k)), *(len(c) for c in cells[k])) + 3 for k in keys}

    def rank(k: str) -> int:
        for i, p in enumerate(KEEP_ORDER):
            if k == p or (p.endswith("@") and k.startswith(p)):
                return i
        return len(KEEP_ORDER)

    shown = list(keys)
    dropped: list[str] = []
    while sum(need[k] for k in shown) + 1 > width and len(shown) > 2:
        worst = max(shown, key=lambda k: (rank(k), shown.index(k)))
        if worst in ("score", "file", "group"):
            break
        shown.remove(worst)
        dropped.append(heads.get(worst, worst))

    table = Table()  # the title goes on its own line above: a long path never wraps it
    for k in shown:
        table.add_column(rich_text(heads.get(k, k)),
                         justify="left" if k in ("file", "score", "group") else "right",
                         no_wrap=k not in ("file",), overflow="fold")
    for i in range(len(rows)):
        table.add_row(*(rich_text(cells[k][i]) for k in shown))
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, force_terminal=False).print(table)
    text = f"{one_line(title)}\n{buf.getvalue()}"
    if dropped:
        text += (f"(not shown at {width} columns: {', '.join(dropped)}; -f tsv and -f json "
                 "show all)\n")
    return text


#: Most "metric undefined" warning lines one command prints; the rest are counted in one line.
MAX_WARNINGS = 6


def warn_undefined(cmd: str, results: list[Any]) -> None:
    """One warning per undefined metric of each result, at most :data:`MAX_WARNINGS` lines
    (the rest counted in one more line): however many files and scores, stderr stays short."""
    shown = hidden = 0
    for r in results:
        for metric, why in r.metrics.undefined:
            if shown < MAX_WARNINGS:
                warn(cmd, f"{r.file} {r.score}: {metric} undefined ({why})")
                shown += 1
            else:
                hidden += 1
    if hidden:
        warn(cmd, f"{hidden} more undefined metric(s) not listed; -f json names each under "
                  "'undefined'")


def warn_undefined_groups(cmd: str, results: list[Any]) -> None:
    """``--by``: the whole file's undefined metrics as :func:`warn_undefined` says them; the
    groups' in one summary line (a group of one class has no AUROC by definition)."""
    from collections import Counter

    from lsfix.evaluation.grouped import ALL

    whole = [r for r in results if r.group == ALL]
    warn_undefined(cmd, [_Named(r) for r in whole])
    groups = [r for r in results if r.group != ALL]
    hit = [r for r in groups if r.metrics.undefined]
    if not hit:
        return
    why = Counter(f"{metric} ({reason})" for r in hit for metric, reason in r.metrics.undefined)
    common = ", ".join(f"{k} in {v}" for k, v in why.most_common(3))
    more = f" and {len(why) - 3} more kind(s)" if len(why) > 3 else ""
    warn(cmd, f"{len(hit)} of {len(groups)} group result(s) have undefined metrics: {common}"
              f"{more}; -f json names each under 'undefined'")


def curve_lines(results: list[Any], *, show_file: bool, percent: bool = False,
                curves: list[Any] | None = None,
                notes: dict[tuple[str, str], str] | None = None) -> list[Any]:
    """Plot lines of ``results``; ``curves`` gives each one's ``(coverage, risk)`` when the
    results hold no per-row arrays (the out-of-core path). Files are named by their base
    name when those are unique. ``notes[(file, score)]`` is added to that line's label (a
    fallback to MSP, whose line then lies under MSP's)."""
    import os

    from lsfix.core import rc_curve
    from lsfix.output.plot import Line

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


@app.command("curve", help=HELP)
def curve(
    input: InputArg = "-",
    score: ScoreOpt = None,
    convention: ConventionOpt = "lsfix",
    coverage: CoverageOpt = None,
    risk: RiskOpt = None,
    bootstrap: BootOpt = 0,
    seed: SeedOpt = 0,
    level: LevelOpt = 0.95,
    plot: PlotOpt = None,
    fmt: FormatOpt = None,
    percent: PercentOpt = False,
    by: ByOpt = None,
    output: OutputOpt = "-",
    with_files: WithOpt = None,
    ignore_index: IgnoreIndexOpt = None,
    scheduler: SchedulerOpt = "sync",
    scheduler_timeout: SchedulerTimeoutOpt = 10.0,
    subsample: SubsampleOpt = None,
    rank_map: Annotated[str | None, typer.Option(
        "--rank-map", metavar="PATH", rich_help_panel=ADVANCED,
        help="Dense files: plot each image's per-pixel uncertainty rank under the first "
             "score (.png/.svg/.pdf; up to 12 images).")] = None,
    bootstrap_unit: BootUnitOpt = "row",
    allow_incomplete: AllowIncompleteOpt = False,
    memory_limit: MemoryLimitOpt = "2G",
    labels: LabelsOpt = None,
    input_kind: InputKindOpt = None,
    tmpdir: TmpdirOpt = None,
    calibration: Annotated[bool, typer.Option(
        "--calibration", help="Also report calibration: accuracy, ECE (equal-width, as "
                              "torchmetrics), equal-mass ECE, MCE, NLL, Brier (table/json).")
    ] = False,
    bins: Annotated[int, typer.Option(
        "--bins", help="Bins of ECE/MCE and the reliability diagram.")] = 15,
    calibration_fit: Annotated[str | None, typer.Option(
        "--calibration-fit", metavar="VAL",
        help="Fit a temperature on this labelled file and report calibration after it too.")
    ] = None,
    reliability: Annotated[str | None, typer.Option(
        "--reliability", metavar="PATH",
        help="Write the reliability diagram (.png/.svg/.pdf); implies --calibration.")] = None,
    threshold_params: Annotated[str | None, typer.Option(
        "--threshold-params", metavar="FILE",
        help="Report the realised coverage and risk at a threshold saved by 'lsfix threshold "
             "--save-params' (table/json).")] = None,
) -> None:
    with handle_errors("curve", labels=labels, kind=input_kind, inputs=[input]) as run, \
            use_scheduler(scheduler, scheduler_timeout) as runner:
        import lsfix
        from lsfix.evaluation.bounded import CURVE_POINTS

        out_fmt, covs, risks = check_report_options(convention, bootstrap, level, fmt, coverage,
                                                    risk, plot)
        calibration = calibration or reliability is not None or calibration_fit is not None
        sections = calibration or threshold_params is not None
        if sections:
            from lsfix.output.calibration import check_bins

            check_bins(bins)
            if reliability is not None:
                from lsfix.output.plot import plot_format

                plot_format(reliability)
            if out_fmt == "tsv":
                raise UsageError("--calibration and --threshold-params add sections: pass "
                                 "-f table or -f json (TSV stays one table)")
            if by is not None:
                raise UsageError("--calibration and --threshold-params do not go with --by")
        if rank_map is not None:
            from lsfix.output.plot import plot_format

            plot_format(rank_map)
            if by is not None:
                raise UsageError("--rank-map does not go with --by")
        check_boot_unit(bootstrap_unit, by)
        from lsfix.evaluation.bounded import parse_memory_limit

        limit = parse_memory_limit(memory_limit)
        may_bound = (by is None and not bootstrap and subsample is None and rank_map is None
                     and not sections and not with_files and scheduler == "sync"
                     and not labels)
        may_draw = (subsample is not None and by is None and rank_map is None and not sections
                    and not with_files and scheduler == "sync" and not labels)
        pred = load(input, run, runner=runner, with_files=with_files,
                    allow_incomplete=allow_incomplete, ignore_index=ignore_index,
                    need_labels="evaluation (correctness)",
                    defer_dense_labels=may_bound or may_draw)
        from lsfix.cli.preflight import check_unfitted_scores

        check_unfitted_scores(score, pred.scores, pred.name, "curve")
        ev = lsfix.evaluate(pred, score, convention=convention, coverages=covs, risks=risks,
                            bootstrap=bootstrap, seed=seed, level=level,
                            bootstrap_unit=bootstrap_unit, by=by, subsample_pixels=subsample,
                            percent=percent, memory_limit=limit,
                            curve_points=CURVE_POINTS if plot is not None else 0,
                            tmpdir=tmpdir)
        if ev.subsampled is not None:
            from lsfix.cli.app import note

            ex = ev.excluded
            note(f"lsfix curve: {ev.subsampled} pixels drawn (--subsample-pixels {subsample}, "
                 f"seed {seed}); not drawn {ex.not_drawn}, ignored {ex.ignored}, fit rows "
                 f"{ex.fit}")
        if rank_map is not None:
            from lsfix.evaluation.dense import rank_map_data
            from lsfix.output.plot import rank_map_plot

            first = str(ev.results[0].score)
            maps, names = rank_map_data(pred, first)
            rank_map_plot(maps, names, rank_map,
                          title=f"Uncertainty rank per pixel: {pred.name} · {first}")
        extra: dict[str, Any] = {}
        extra_text = ""
        if calibration:
            from lsfix.cli.sections import calibration_section

            extra["calibration"], text_part = calibration_section(
                pred, run, bins=bins, fit_path=calibration_fit, n_boot=bootstrap, seed=seed,
                level=level, reliability=reliability)
            extra_text += "\n" + text_part
        if threshold_params is not None:
            from lsfix.cli.sections import threshold_section

            extra["threshold"], text_part = threshold_section(pred, threshold_params)
            extra_text += "\n" + text_part
        _report(ev, out_fmt, plot, output, extra, extra_text)
        pred.close()


def _report(ev: Any, out_fmt: str, plot: str | None, output: str,
            extra: dict[str, Any] | None = None, extra_text: str = "") -> None:
    """Print (or write) the report of an :class:`lsfix.evaluation.planner.Evaluation` and draw
    its RC plot."""
    from lsfix.output.report import dumps, tsv
    from lsfix.streams import write_text_atomic

    if ev.by is not None:
        warn_undefined_groups("curve", ev.results)
    else:
        warn_undefined("curve", ev.results)
    unit = " (×100)" if ev.percent else ""
    if out_fmt == "json":
        text = dumps({**ev.to_dict(), **(extra or {})})
    else:
        if ev.by is not None:
            from lsfix.evaluation.grouped import group_rows

            rows = group_rows(ev.results, percent=ev.percent)
            title = f"{ev.file} — by {ev.by}, convention {ev.convention}{unit}"
        else:
            rows = result_rows(ev.results, percent=ev.percent)
            title = f"{ev.file} — convention {ev.convention}{unit}"
        text = (tsv(rows, list(rows[0].keys())) if out_fmt == "tsv"
                else render_table(rows, title, show_file=False) + extra_text)
    if plot is not None and ev.by is None:
        from lsfix.output.plot import rc_plot

        rc_plot(curve_lines(ev.results, show_file=False, percent=ev.percent, curves=ev.curves),
                plot, title=f"Risk-coverage: {ev.file}",
                oracle=ev.oracle if ev.oracle is not None
                else oracle_curve(ev.results[0].correct))
    write_text_atomic(output, text)


class _Named:
    """A group result seen as a score result named ``score [group]`` (for warnings)."""

    def __init__(self, r: Any) -> None:
        self.file, self.score, self.metrics = r.file, f"{r.score} [{r.group}]", r.metrics


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

"""What ``lsfix curve`` writes for an :class:`lsfix.Evaluation`: the document (``json``: exactly
:meth:`~lsfix.Evaluation.to_dict`), the results table (``table``: fitted to the terminal, with
the calibration and threshold sections under it) or TSV (``tsv``: one table), the RC plot, the
reliability diagram and the rank map.
"""

from __future__ import annotations

import os
from typing import Any

from lsfix.errors import UsageError

#: Formats of the results
FORMATS = ("table", "tsv", "json")


def check_request(fmt: str, ev_sections: bool, *plots: str | None) -> None:
    """Refuse, before any work, a plot path with an unknown suffix, and sections with TSV."""
    from lsfix.output.plot import plot_format

    for path in plots:
        if path is not None:
            plot_format(path)
    if ev_sections and fmt == "tsv":
        raise UsageError("--calibration and --threshold-params add sections: pass -f table or "
                         "-f json (TSV stays one table)")


def text(ev: Any, fmt: str) -> str:
    """The results of ``ev`` in ``fmt`` (:data:`FORMATS`)."""
    from lsfix.output.report import dumps, tsv
    from lsfix.output.table import render_table, result_rows

    if fmt == "json":
        return dumps(ev.to_dict())
    unit = " (×100)" if ev.percent else ""
    if ev.by is not None:
        from lsfix.evaluation.grouped import group_rows

        rows = group_rows(ev.results, percent=ev.percent)
        title = f"{ev.file} — by {ev.by}, convention {ev.convention}{unit}"
    else:
        rows = result_rows(ev.results, percent=ev.percent)
        title = f"{ev.file} — convention {ev.convention}{unit}"
    if fmt == "tsv":
        return tsv(rows, list(rows[0].keys()))
    out = render_table(rows, title, show_file=False)
    cal = ev.sections.get("calibration")
    if cal is not None:
        from lsfix.output.calibration import table_text

        out += "\n" + table_text(cal.variants, f"calibration of {cal.file} "
                                               f"({cal.variants[0].metrics.n} rows)")
    thr = ev.sections.get("threshold")
    if thr is not None:
        out += "\n" + threshold_text(thr)
    return out


def threshold_text(sec: Any) -> str:
    """One line: the realised coverage and risk at a saved threshold, beside what was
    certified (:class:`lsfix.evaluation.sections.ThresholdSection`)."""
    from lsfix.output.report import fmt

    r, d, t = sec.realised, sec.params.doc, sec.params
    if t.threshold == float("inf"):
        return (f"threshold ({sec.source}): nothing was certified; every row is rejected "
                f"(coverage 0 of {r.n})\n")
    return (f"threshold {d.get('score')} >= {t.threshold!r} ({sec.source}): realised "
            f"coverage {fmt(r.coverage, 4)} ({r.n_accepted} of {r.n}), risk "
            f"{fmt(r.risk, 4)} ({r.n_errors} errors); certified on {d.get('file')}: "
            f"coverage {fmt(d.get('certified_coverage'), 4)}, risk <= "
            f"{fmt(d.get('risk'))} with probability >= {fmt(1 - float(d['delta']))}\n")


def draw(ev: Any, *, plot: str | None = None, reliability: str | None = None,
         rank_map: str | None = None) -> None:
    """The RC plot (not with groups), the reliability diagram and the rank map of ``ev``."""
    if plot is not None and ev.by is None:
        from lsfix.output.plot import curve_lines, oracle_curve, rc_plot

        rc_plot(curve_lines(ev.results, show_file=False, percent=ev.percent, curves=ev.curves),
                plot, title=f"Risk-coverage: {ev.file}",
                oracle=ev.oracle if ev.oracle is not None
                else oracle_curve(ev.results[0].correct))
    cal = ev.sections.get("calibration")
    if reliability is not None and cal is not None:
        from lsfix.output.calibration import reliability_series
        from lsfix.output.plot import reliability_plot

        reliability_plot(reliability_series(cal.variants), reliability,
                         title=f"Reliability: {os.path.basename(cal.file) or cal.file}")
    rm = ev.sections.get("rank_map")
    if rank_map is not None and rm is not None:
        from lsfix.output.plot import rank_map_plot

        rank_map_plot(rm.maps, rm.names, rank_map,
                      title=f"Uncertainty rank per pixel: {rm.file} · {rm.score}")


def warnings(ev: Any) -> list[str]:
    """Lines to warn about: the undefined metrics, in a few lines
    (:func:`lsfix.output.table.undefined_warnings`)."""
    from lsfix.output.table import undefined_warnings

    return undefined_warnings(ev.results)


def drawn_note(ev: Any, subsample: str | None, seed: int) -> str | None:
    """With ``--subsample-pixels``: how many pixels were drawn and how many rows were left
    out, and why."""
    if ev.subsampled is None:
        return None
    ex = ev.excluded
    return (f"lsfix curve: {ev.subsampled} pixels drawn (--subsample-pixels {subsample}, seed "
            f"{seed}); not drawn {ex.not_drawn}, ignored {ex.ignored}, fit rows {ex.fit}")


__all__ = ["FORMATS", "check_request", "draw", "drawn_note", "text", "threshold_text",
           "warnings"]

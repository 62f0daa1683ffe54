"""Tables of results: the rows of ``-f tsv``, the results of ``-f json``, the terminal table
of ``-f table`` (fitted to the terminal's width), and the warnings about undefined metrics.

Names in cells (files, scores, groups) are data: they go through :mod:`lsfix.safetext`.
"""

from __future__ import annotations

from typing import Any


def result_rows(results: list[Any], *, percent: bool) -> list[dict[str, Any]]:
    """One flat row per result (``-f tsv`` and the tables): metrics, then interval bounds."""
    from lsfix.output.report import ci_dict, flat_row, metrics_dict

    rows = []
    for r in results:
        md = metrics_dict(r.metrics, percent=percent)
        rows.append(flat_row({"file": r.file, "score": r.score}, md,
                             ci_dict(r.ci, percent=percent)))
    return rows


def result_json(results: list[Any], *, percent: bool) -> list[dict[str, Any]]:
    """One JSON object per result, intervals under ``ci`` (``-f json``'s ``results``)."""
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


def undefined_warnings(results: list[Any]) -> list[str]:
    """One warning per undefined metric of each result, at most :data:`MAX_WARNINGS` lines
    (the rest counted in one more line): however many files and scores, stderr stays short.
    With groups (``group`` on the results), the whole file's undefined metrics are listed so
    and the groups' are summed up in one line (a group of one class has no AUROC by
    definition)."""
    from collections import Counter

    from lsfix.evaluation.grouped import ALL as ALL_GROUPS

    grouped = bool(results) and hasattr(results[0], "group")
    whole = [r for r in results if not grouped or r.group == ALL_GROUPS]
    lines: list[str] = []
    hidden = 0
    for r in whole:
        score = f"{r.score} [{r.group}]" if grouped else r.score
        for metric, why in r.metrics.undefined:
            if len(lines) < MAX_WARNINGS:
                lines.append(f"{r.file} {score}: {metric} undefined ({why})")
            else:
                hidden += 1
    if hidden:
        lines.append(f"{hidden} more undefined metric(s) not listed; -f json names each under "
                     "'undefined'")
    groups = [r for r in results if grouped and r.group != ALL_GROUPS]
    hit = [r for r in groups if r.metrics.undefined]
    if hit:
        why = Counter(f"{metric} ({reason})" for r in hit
                      for metric, reason in r.metrics.undefined)
        common = ", ".join(f"{k} in {v}" for k, v in why.most_common(3))
        more = f" and {len(why) - 3} more kind(s)" if len(why) > 3 else ""
        lines.append(f"{len(hit)} of {len(groups)} group result(s) have undefined metrics: "
                     f"{common}{more}; -f json names each under 'undefined'")
    return lines


__all__ = ["KEEP_ORDER", "MAX_WARNINGS", "render_table", "result_json", "result_rows",
           "table_width", "undefined_warnings"]

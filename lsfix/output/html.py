"""Reports people share: one self-contained HTML page (figures embedded as base64 PNG), and
the rule that decides what ``--report PATH`` writes.

``--report PATH`` (``audit`` and ``compare`` alike):

``PATH.html``
    one self-contained HTML file, nothing else: figures are drawn in memory and embedded, so
    the page survives being mailed, uploaded as a CI artifact or opened from anywhere.
``PATH.md`` (or ``.markdown``)
    Markdown for a pull-request comment, and its figures as PNG files beside it
    (``PATH.png`` for compare's RC plot, ``STEM.rc.png`` for audit's, then
    ``*.mechanism.png`` …); Markdown cannot embed images.
``PATH/`` (an existing folder, a trailing ``/``, or a name without a suffix)
    a folder (made when missing) holding ``report.md``, ``report.html`` and the figures.

Any other suffix is refused (exit 2). Folders named in ``PATH`` above the report (``a/b/`` in
``a/b/r.md``) are made when missing and removed again if the command fails.

Every name that comes from the data (file names, score names, verdicts) goes through
:func:`esc` (HTML) or :func:`md_esc` (Markdown) before it reaches a page.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsfix import safetext
from lsfix.errors import UsageError


def esc(value: object) -> str:
    """Text for HTML (element content and quoted attributes): :func:`lsfix.safetext.html`."""
    return safetext.html(value)


def md_esc(value: object) -> str:
    """Text for a Markdown line or table cell: :func:`lsfix.safetext.md_text`."""
    return safetext.md_text(value)


def md_code(value: object) -> str:
    """``value`` as a Markdown code span that cannot be broken out of:
    :func:`lsfix.safetext.md_code`."""
    return safetext.md_code(value)


@dataclass(frozen=True)
class ReportTarget:
    """What ``--report PATH`` writes (see the module)."""

    kind: str  #: "html", "md" or "folder"
    path: str

    @property
    def md(self) -> str | None:
        if self.kind == "md":
            return self.path
        return os.path.join(self.path, "report.md") if self.kind == "folder" else None

    @property
    def html(self) -> str | None:
        if self.kind == "html":
            return self.path
        return os.path.join(self.path, "report.html") if self.kind == "folder" else None

    def figure(self, name: str) -> str:
        """Where figure ``name`` (``rc.png``, ``reliability.png``) goes: in the folder, or
        beside the Markdown file as ``STEM.name``; an in-memory name for HTML alone."""
        if self.kind == "folder":
            return os.path.join(self.path, name)
        stem = Path(self.path).with_suffix("")
        return f"{stem}.{name}"


def report_target(path: str) -> ReportTarget:
    """Classify ``--report PATH`` (exit 2 for an unknown suffix)."""
    suffix = Path(path).suffix.lower()
    if path.endswith(("/", os.sep)) or os.path.isdir(path) or suffix == "":
        return ReportTarget("folder", path.rstrip("/") or path)
    if suffix in (".html", ".htm"):
        return ReportTarget("html", path)
    if suffix in (".md", ".markdown"):
        return ReportTarget("md", path)
    raise UsageError(f"--report {path!r}: end it in .html (one self-contained page), .md "
                     "(Markdown and its PNG figures beside it) or name a folder")


def prepare(target: ReportTarget) -> None:
    """Make the folders the report needs (removed again if the command fails)."""
    from lsfix.streams import make_folders

    if target.kind == "folder":
        make_folders(target.path)
    else:
        make_folders(Path(target.path).parent)


class Figures:
    """The figures of one report, drawn in memory (:class:`lsfix.output.plot.FigurePath`):
    embedded in the HTML page, and written as PNG files for Markdown and folders."""

    def __init__(self, target: ReportTarget) -> None:
        self.target = target
        self.sink: dict[str, bytes] = {}

    def path(self, name: str) -> str:
        """Where figure ``name`` (``rc.png``) is drawn (its file name for Markdown/folders)."""
        from lsfix.output.plot import FigurePath

        return FigurePath(self.target.figure(name), self.sink)

    def bytes(self, path: str) -> bytes:
        return self.sink[str(path)]

    def write_files(self) -> list[str]:
        """The PNG files beside the Markdown (none for an HTML page alone)."""
        from lsfix.streams import write_bytes_atomic

        if self.target.kind == "html":
            return []
        for p, data in self.sink.items():
            write_bytes_atomic(p, data)
        return list(self.sink)


# --------------------------------------------------------------------------------------------
# numbers


def num(x: Any, digits: int = 4) -> str:
    """4 significant digits; ``—`` for undefined."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}"


def with_interval(x: Any, low: Any = None, high: Any = None) -> str:
    """``0.02218<br><span>[0.02033, 0.0243]</span>`` (HTML; the interval dimmed, on its own
    line so that wide tables stay readable)."""
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        return esc(num(x))
    return (f"{esc(num(x))}<br><span class='ci'>[{esc(num(low))}, {esc(num(high))}]</span>")


@dataclass(frozen=True)
class Column:
    key: str
    head: str
    lower_is_better: bool | None = True  #: None: not ranked (no best mark)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], *,
          label_keys: Sequence[str], caption: str, ci: bool = True) -> str:
    """A styled table: label columns, then numbers to 4 significant digits with their
    intervals (``KEY_low``/``KEY_high`` in a row), the best value of each ranked column
    marked (bold, ★)."""
    best: dict[str, float] = {}
    for c in columns:
        vals: list[float] = [float(v) for v in (r.get(c.key) for r in rows)
                             if isinstance(v, int | float) and not isinstance(v, bool)
                             and not math.isnan(v)]
        if c.lower_is_better is not None and len(vals) > 1 and min(vals) != max(vals):
            best[c.key] = min(vals) if c.lower_is_better else max(vals)
    head = "".join(f"<th class='l'>{esc(k)}</th>" for k in label_keys)
    head += "".join(f"<th>{esc(c.head)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = "".join(f"<td class='l'>{esc(r.get(k, ''))}</td>" for k in label_keys)
        for c in columns:
            v = r.get(c.key)
            text = (with_interval(v, r.get(f"{c.key}_low"), r.get(f"{c.key}_high")) if ci
                    else esc(num(v)))
            if c.key in best and v == best[c.key]:
                cells += f"<td class='best' title='best in this column'>★ {text}</td>"
            else:
                cells += f"<td>{text}</td>"
        body.append(f"<tr>{cells}</tr>")
    return (f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def figure(figs: Figures, path: str, alt: str, caption: str) -> str:
    """``<figure>`` with the PNG embedded (base64) and its caption."""
    data = base64.b64encode(figs.bytes(path)).decode("ascii")
    return (f"<figure><img src='data:image/png;base64,{data}' alt='{esc(alt)}'>"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;
max-width:72em;margin:2em auto;padding:0 1.2em;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
.verdict{border-left:6px solid #0072B2;background:#eef5fb;padding:.7em 1em;margin:1em 0;
font-size:1.05em}.verdict.bad{border-color:#D55E00;background:#fdf0e8}
.verdict.good{border-color:#009E73;background:#eaf7f2}
.meta{color:#555;font-size:.92em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em;
font-variant-numeric:tabular-nums}
caption{caption-side:bottom;text-align:left;color:#555;font-size:.88em;padding-top:.4em}
th,td{padding:4px 10px;text-align:right;border-bottom:1px solid #e3e3e3;white-space:nowrap}
th{background:#f4f4f4;font-weight:600}th.l,td.l{text-align:left;white-space:normal;
min-width:8em;max-width:28em;overflow-wrap:break-word}
td.best{font-weight:700;background:#fff8e1}.ci{color:#777;font-size:.9em}
tr:hover td{background:#fafafa}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}
figcaption{color:#444;font-size:.9em;margin-top:.4em;max-width:60em}
.fail{color:#b00020;font-weight:700}.pass{color:#00734d}
"""


def page(title: str, verdict: str, verdict_kind: str, body: str, meta: str = "") -> str:
    """A complete HTML document: the title, the verdict first, then ``body`` (HTML)."""
    from lsfix import __version__

    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{esc(title)}</h1>"
            f"<div class='verdict {esc(verdict_kind)}'><b>Verdict:</b> {esc(verdict)}</div>"
            + (f"<p class='meta'>{meta}</p>" if meta else "")
            + body
            + f"<p class='meta'>Made by lsfix {esc(__version__)}. Numbers to 4 significant "
              "digits; brackets are bootstrap intervals; ★ marks the best value of a column."
              "</p></body></html>\n")

"""Names are data: the one place where text that came from a file is made safe to show.

Class names, group values, score names (HDF5 member names), CSV headers, sample ids and file
paths are chosen by whoever made the file. Wherever such text reaches a reader, it goes
through one of these functions:

:func:`term`
    a terminal line (errors, warnings, notes, tables, TSV on stdout): every control character
    (C0 but tab/newline where allowed, DEL, C1 ``\\x80``-``\\x9f``) and the Unicode controls
    that reorder or hide text (bidi overrides, zero-width joiners...) written visibly as
    ``\\x1b`` / ``\\u202e``; a backslash stays a backslash. A file cannot clear the screen,
    retitle the terminal or move the cursor.
:func:`quote`
    a value quoted inside a message: ``'text'`` (never a Python repr such as
    ``np.str_('one')``), controls escaped, at most :data:`QUOTE_LIMIT` characters shown.
:func:`md_code` / :func:`md_text`
    Markdown: a code span that cannot be broken out of (the fence is longer than any run of
    backticks inside; ``|`` escaped for tables; line breaks and controls escaped), or prose
    with ``& < >`` as entities and Markdown punctuation backslash-escaped. Nothing from a file
    is rendered as Markdown or HTML, and no raw ``<`` from a file reaches a report.
:func:`html`
    HTML text or attribute: ``& < > " '`` as entities, controls escaped.
:func:`mpl`
    a matplotlib label: controls escaped, long names clipped; lsfix draws with mathtext
    and ``text.usetex`` off, so no name reaches matplotlib's TeX parser or LaTeX.
:func:`rich_text`
    a cell for a rich table: a ``rich.text.Text`` (rich never reads markup from it).

``tests/hardening/test_surfaces.py::test_no_output_path_bypasses_safetext`` greps the
package for writes to stdout/stderr and for report and plot text that do not go through here.
"""

from __future__ import annotations

import re
from typing import Any

#: Characters of a value :func:`quote` shows (the rest is elided as ``...``).
QUOTE_LIMIT = 80
#: Longest error/warning line lsfix prints (a safety net behind :func:`quote`).
LINE_LIMIT = 2000

# C0 except tab/newline, DEL, C1; then the Unicode format characters that change how the rest
# of a line is displayed (bidi embeddings/overrides/isolates, zero-width and invisible ones).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                      "\u2060-\u2069\ufeff\ufff9-\ufffb]")
_CONTROL_ALL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                          "\u2060-\u2069\ufeff\ufff9-\ufffb]")


def _esc(m: re.Match[str]) -> str:
    c = ord(m.group(0))  # C0 as \x1b; DEL, C1 and the rest as \u0085 (also valid JSON)
    return f"\\x{c:02x}" if c < 0x20 else f"\\u{c:04x}"


def term(text: Any, *, keep_newlines: bool = True) -> str:
    """``text`` with every control character written visibly (``\\x1b``). Tab and newline
    are kept when ``keep_newlines`` (a whole table or TSV), escaped otherwise."""
    s = text if isinstance(text, str) else str(text)
    return (_CONTROL if keep_newlines else _CONTROL_ALL).sub(_esc, s)


def one_line(text: Any, *, limit: int = LINE_LIMIT) -> str:
    """A message as one terminal line: whitespace runs collapsed, controls escaped, at most
    ``limit`` characters (the middle elided)."""
    s = " ".join(term(text, keep_newlines=False).split())
    if len(s) > limit:
        half = (limit - 5) // 2
        s = f"{s[:half]} ... {s[-half:]}"
    return s


def clip(text: Any, limit: int = QUOTE_LIMIT) -> str:
    """``str(text)`` cut to ``limit`` characters (``...`` marks the cut), controls escaped."""
    s = text if isinstance(text, str) else str(text)
    if len(s) > limit:
        s = s[:limit] + "..."
    return term(s, keep_newlines=False)


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``'value'`` for a message: the text itself (numpy strings and bytes shown as text, not
    as their repr), at most ``limit`` characters, controls escaped."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value[: limit * 4]).decode("utf-8", "backslashreplace")
    s = value if isinstance(value, str) else str(value)
    return "'" + clip(s, limit).replace("'", "\\'") + "'"


def listing(names: Any, limit: int = 10) -> str:
    """At most ``limit`` names, each quoted with :func:`quote`, then ``... (N in all)``."""
    names = list(names)
    shown = ", ".join(quote(n, 40) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "") or "none"


def tsv_field(text: Any) -> str:
    """One TSV cell: backslash, tab, newline, carriage return as ``\\\\ \\t \\n \\r`` and every
    other control character as ``\\xNN`` (the escapes of PostgreSQL's text format and of
    Python): a name cannot break rows or columns, nor reach the terminal raw."""
    s = text if isinstance(text, str) else str(text)
    s = (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
         .replace("\r", "\\r"))
    return _CONTROL_ALL.sub(_esc, s)


def md_code(text: Any) -> str:
    """``text`` in Markdown, shown literally and safe inside a table cell: a code span that
    cannot be broken out of (the fence is longer than any run of backticks inside), or, when
    the text holds ``<``, ``>`` or ``&``, :func:`md_text` (entities: no raw ``<`` from data
    in a report, even where a reader does not render Markdown)."""
    if any(c in str(text) for c in "<>&"):
        return md_text(text)
    s = term(text, keep_newlines=False).replace("|", "\\|")
    if not s:
        return "` `"
    longest = max((len(r) for r in re.findall("`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or longest else ""
    return f"{fence}{pad}{s}{pad}{fence}"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(text: Any) -> str:
    """``text`` as Markdown prose, shown literally: ``& < >`` as HTML entities (no raw HTML),
    the punctuation of emphasis, code, links and tables backslash-escaped, a leading ``#``,
    ``-``, ``+`` or ``>`` escaped (no heading, list or quote), on one line."""
    import html as _html

    s = _MD_SPECIAL.sub(r"\\\1", _html.escape(term(text, keep_newlines=False), quote=False))
    return "\\" + s if s[:1] in ("#", "-", "+", "=") else s


def md_link_target(name: Any) -> str:
    """A relative link target (an image file next to the report), percent-encoded."""
    from urllib.parse import quote as _pct

    return _pct(str(name), safe="")


def html(text: Any) -> str:
    """``text`` as HTML text or a quoted attribute value."""
    import html as _html

    return _html.escape(term(text, keep_newlines=False), quote=True)


def mpl(text: Any, limit: int = 120) -> str:
    """``text`` for a matplotlib label: controls escaped, at most ``limit`` characters.
    lsfix draws with mathtext and TeX off (:func:`lsfix.output.plot._figure`), so ``$`` is shown as
    itself and no name reaches matplotlib's TeX parser."""
    s = text if isinstance(text, str) else str(text)
    return clip(s, limit) if len(s) > limit else term(s, keep_newlines=True)


def rich_text(text: Any) -> Any:
    """A rich ``Text`` for a table cell (markup in names is never interpreted)."""
    from rich.text import Text

    return Text(term(text, keep_newlines=False))


__all__ = ["LINE_LIMIT", "QUOTE_LIMIT", "clip", "html", "listing", "md_code", "md_link_target", "md_text",
           "mpl", "one_line",
           "quote", "rich_text", "term", "tsv_field"]

"""Write the lists of registered scores and metrics into docs/metrics.md (between the
``<!-- registry:begin -->`` and ``<!-- registry:end -->`` markers).

    python scripts/gen_registry_docs.py          # rewrite the list
    python scripts/gen_registry_docs.py --check  # exit 1 when docs/metrics.md is stale

``tests/test_registries.py`` runs the check, so a score or metric registered in
``lsfix/core`` without a regenerated list fails the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
BEGIN, END = "<!-- registry:begin -->", "<!-- registry:end -->"


def block() -> str:
    from lsfix.core.metrics import METRIC_FIELDS, METRICS
    from lsfix.core.scores import SCORES

    lines = [BEGIN, "", "Generated from the registries (`scripts/gen_registry_docs.py`):", "",
             "| score | parameter | what it is |", "|---|---|---|"]
    for f in SCORES.values():
        if f.param is None:
            par = "—"
        elif f.default is not None:
            par = f"{f.param} (default {f.default:g})"
        else:
            par = f"{f.param} ({'fitted when not given' if f.fitted else 'required'})"
        lines.append(f"| `{f.name}` | {par} | {f.summary} |")
    lines += ["", "Metrics of every score: " + ", ".join(f"`{m}`" for m in METRIC_FIELDS)
              + (", and registered: " + ", ".join(f"`{m}` ({d.summary})"
                                                 for m, d in METRICS.items())
                 if METRICS else "") + ".", "", END]
    return "\n".join(lines)


def render(text: str) -> str:
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + block() + tail
    head, sep, tail = text.partition("## Scores\n")
    return head + sep + "\n" + block() + "\n" + tail


def main() -> int:
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in sys.argv[1:]:
        if new != text:
            print(f"{DOC} is stale: run python scripts/gen_registry_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

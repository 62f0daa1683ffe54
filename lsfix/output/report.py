"""Turning results into JSON, TSV, terminal tables and Markdown (no numerics here).

JSON documents carry ``format`` and ``version``; keys are stable snake_case. Undefined metrics
are ``null`` in JSON, empty in TSV and ``—`` in tables, with the reason in ``undefined``.
``percent=True`` scales rate-like metrics (accuracy, AURC family, AUGRC, AUROC, FPR, risks and
coverages) by 100, like the paper's "%AURC"; NAURC (a ratio) is never scaled.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsfix import __version__
from lsfix.core import Metrics
from lsfix.core.bootstrap import Interval, PairedDifference

#: Columns of the summary row, in order: (key, header, scaled by --percent).
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("n", "n", False),
    ("accuracy", "acc", True),
    ("aurc", "AURC", True),
    ("oracle_aurc", "oracle", True),
    ("eaurc", "E-AURC", True),
    ("naurc", "NAURC", False),
    ("augrc", "AUGRC", True),
    ("auroc", "AUROC", True),
    ("fpr_at_95tpr", "FPR@95TPR", True),
    ("n_tied", "tied", False),
)
SCALED = {k for k, _, s in COLUMNS if s}


def columns() -> tuple[tuple[str, str, bool], ...]:
    """:data:`COLUMNS` and the metrics added with :func:`lsfix.core.metrics.register_metric`
    (``(key, heading, scaled by --percent)``), before the tie count."""
    from lsfix.core.metrics import METRICS

    extra = tuple((d.name, d.label, d.rate) for d in METRICS.values())
    return (*COLUMNS[:-1], *extra, COLUMNS[-1])


def scaled(key: str) -> bool:
    """Whether ``--percent`` multiplies metric ``key`` by 100."""
    from lsfix.core.metrics import METRICS

    return key in SCALED or (key in METRICS and METRICS[key].rate)


def _num(x: float | int | None) -> float | int | None:
    if x is None:
        return None
    if isinstance(x, int):
        return x
    return None if math.isnan(x) else float(x)


def metrics_dict(m: Metrics, *, percent: bool = False) -> dict[str, Any]:
    """A :class:`Metrics` as a JSON-ready dict (stable keys)."""
    f = 100.0 if percent else 1.0

    def sc(x: float) -> float | None:
        v = _num(x)
        return None if v is None else float(v) * f

    d: dict[str, Any] = {
        "convention": m.convention,
        "n": m.n,
        "n_errors": m.n_errors,
        "n_tied": m.n_tied,
        "accuracy": sc(m.accuracy),
        "aurc": sc(m.aurc),
        "oracle_aurc": sc(m.oracle_aurc),
        "eaurc": sc(m.eaurc),
        "naurc": _num(m.naurc),
        "augrc": sc(m.augrc),
        "auroc": sc(m.auroc),
        "fpr_at_95tpr": sc(m.fpr_at_95tpr),
        **{name: (sc(v) if scaled(name) else _num(v)) for name, v in m.extra},
        "risk_at_coverage": [
            {"target": p.target, "k": p.k, "coverage": sc(p.coverage), "risk": sc(p.risk)}
            for p in m.risk_at_coverage
        ],
        "coverage_at_risk": [
            {"target": p.target, "k": p.k, "coverage": sc(p.coverage), "risk": sc(p.risk)}
            for p in m.coverage_at_risk
        ],
        "undefined": dict(m.undefined),
    }
    return d


def interval_dict(iv: Interval, *, scale: float = 1.0) -> dict[str, Any]:
    def s(x: float) -> float | None:
        v = _num(x)
        return None if v is None else float(v) * scale

    return {"estimate": s(iv.estimate), "low": s(iv.low), "high": s(iv.high), "level": iv.level,
            "n_boot": iv.n_boot, "n_valid": iv.n_valid}


def ci_dict(ci: dict[str, Interval] | None, *, percent: bool = False) -> dict[str, Any] | None:
    if not ci:
        return None
    def is_rate(k: str) -> bool:
        return scaled(k) or k.startswith(("risk@", "coverage@"))

    return {k: interval_dict(v, scale=100.0 if (percent and is_rate(k)) else 1.0)
            for k, v in ci.items()}


def paired_dict(p: PairedDifference, *, percent: bool = False) -> dict[str, Any]:
    f = 100.0 if (percent and scaled(p.metric)) else 1.0
    return {"metric": p.metric, "difference": _num(p.estimate * f), "low": _num(p.low * f),
            "high": _num(p.high * f), "p_value": _num(p.p_value), "level": p.level,
            "n_boot": p.n_boot, "n_valid": p.n_valid}


def document(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Wrap a JSON body with format name, version and lsfix version."""
    return {"format": f"lsfix.{kind}", "version": 1, "lsfix_version": __version__, **body}


def dumps(doc: dict[str, Any]) -> str:
    from lsfix.streams import dumps_json

    return dumps_json(doc, indent=2) + "\n"  # strict: non-finite numbers are null


def strict(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as the JSON lsfix prints reads back: non-finite numbers ``None``, tuples lists
    (what :meth:`lsfix.evaluation.planner.Evaluation.to_dict` returns)."""
    import json

    return json.loads(dumps(doc))


def fmt(x: Any, digits: int = 6) -> str:
    """Human number: ``—`` for undefined, ints as ints, floats to ``digits`` significant."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float) and math.isnan(x):
        return "—"
    return f"{x:.{digits}g}"


def tsv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Tab-separated table with a header; undefined = empty cell; floats at full precision."""
    from lsfix.streams import tsv_field

    buf = io.StringIO()
    buf.write("\t".join(tsv_field(str(c)) for c in columns) + "\n")
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("")
            elif isinstance(v, float):
                cells.append(repr(v))
            else:
                cells.append(tsv_field(str(v)))  # a tab or newline in a file name is escaped
        buf.write("\t".join(cells) + "\n")
    return buf.getvalue()


def flat_row(base: dict[str, Any], md: dict[str, Any], ci: dict[str, Any] | None
             ) -> dict[str, Any]:
    """Flatten metrics (+ risk/coverage points and CI bounds) into one table row."""
    row = dict(base)
    for key, _, _ in columns():
        row[key] = md[key]
    row["convention"] = md["convention"]
    for p in md["risk_at_coverage"]:
        row[f"risk@{p['target']:g}"] = p["risk"]
    for p in md["coverage_at_risk"]:
        row[f"coverage@{p['target']:g}"] = p["coverage"]
    if ci:
        for key, iv in ci.items():
            row[f"{key}_low"] = iv["low"]
            row[f"{key}_high"] = iv["high"]
    return row


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str],
                   headers: Sequence[str] | None = None, *, markdown: Sequence[str] = ()
                   ) -> str:
    """A Markdown table; every text cell (file, score and group names: data) is a code span
    that cannot be broken out of (:func:`lsfix.safetext.md_code`), except in the columns
    ``markdown`` names, which lsfix formats itself (a rule, a verdict)."""
    from lsfix.safetext import md_code

    heads = list(headers or columns)  # lsfix's own column names
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    for r in rows:
        out.append("| " + " | ".join(
            fmt(r.get(c)) if not isinstance(r.get(c), str)
            else str(r.get(c)) if c in markdown else md_code(r.get(c)) for c in columns) + " |")
    return "\n".join(out) + "\n"


#: what each figure lsfix draws shows and how to read it; the reports print it under the figure
CAPTIONS = {
    "rc": ("Risk–coverage: each line is one score. Moving right accepts more samples "
           "(coverage); the height is the error rate among those accepted (selective risk). "
           "Lower is better at every coverage, and the area under a line is its AURC. The grey "
           "dashed line is the oracle: every correct prediction accepted before any wrong one. "
           "Circles, when --coverage or --risk asked for them, mark those points; the right "
           "panel, when there is one, zooms on the coverage range where the lines differ. A "
           "score that fell back to MSP says so in the legend (its line lies under MSP's)."),
    "reliability": ("Reliability diagram: for each confidence bin, the share of correct "
                    "predictions (y) against the mean confidence (x); marker size follows the "
                    "bin's share of rows, shown again below. On the dashed diagonal the "
                    "probabilities are calibrated; above it the model is under-confident, "
                    "below it over-confident. ECE is the row-weighted mean distance to the "
                    "diagonal."),
    "mechanism": ("Max logit against MSP, for correct and for wrong predictions of each file "
                  "(sliding-window means; MSP on a logit scale, so 0.9, 0.99 and 0.999 are "
                  "equally spaced). Label smoothing pulls the max logit down most where MSP is "
                  "high: its curves sit lower and stop short of MSP = 1."),
    "gradient": ("The extra gradient label smoothing puts on the predicted class's logit, "
                 "α(1 − 1/K − P_err), against the probability that the prediction is wrong. "
                 "Above zero it pushes the max logit down: hardest for confident, likely "
                 "correct predictions (left). An α marked 'assumed' is an illustration, not "
                 "read from the files."),
    "gaps": ("Logit gaps (largest logit minus the mean of the others). Label smoothing with α "
             "caps the gap near log(1 + K(1−α)/α): a pile-up just below a ceiling (dashed) is "
             "its fingerprint; the dotted line is the ceiling of the α a file records."),
}


def caption(path: str) -> str:
    """The caption of a figure file lsfix wrote (``rc.png``, ``X.mechanism.png``, ...)."""
    stem = Path(path).stem
    kind = stem.rsplit(".", 1)[-1] if "." in stem else "rc"
    return CAPTIONS.get(kind, CAPTIONS["rc"])


def markdown_figure(path: str, alt: str) -> str:
    """``![alt](file)`` followed by its caption in italics (alt text and file name escaped)."""
    from lsfix.safetext import md_link_target, md_text

    return (f"![{md_text(alt)}]({md_link_target(Path(path).name)})\n\n"
            f"*{caption(path)}*\n\n")  # the caption is lsfix's own text


def html_figure(path: str, alt: str) -> str:
    """``<figure>`` with the image and its caption (escaped)."""
    from lsfix.safetext import html, md_link_target

    return (f"<figure><img src='{md_link_target(Path(path).name)}' "
            f"alt='{html(alt)}'><figcaption>"
            f"{html(caption(path))}</figcaption></figure>")


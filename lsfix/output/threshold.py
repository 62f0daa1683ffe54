"""What ``lsfix threshold`` prints and saves, from a
:class:`lsfix.evaluation.threshold.ThresholdParams`: the summary table and the params file."""

from __future__ import annotations

from typing import Any


def threshold_text(res: Any) -> str:
    """``-f table``: the threshold, its certified coverage and risk bound, and how the score
    kept its guarantee (fixed, union bound, or fitted on other rows)."""
    from lsfix.output.report import fmt

    d = res.params_dict()
    tuning = d["tuning"]
    how = {"none": "score fixed before the rows were seen",
           "union_bound": (f"p tuned on these rows: union bound over "
                           f"{len(tuning.get('candidates', []))} candidates, each at "
                           f"delta/G = {fmt(tuning.get('delta_per_candidate'), 4)}"),
           "fit_file": f"{tuning.get('fitted')} fitted on {tuning.get('fit_file')}"}
    lines = [f"{d['file']} — threshold for selective risk <= {fmt(d['risk'])} with probability "
             f">= {fmt(1 - d['delta'])} (SGR, exact binomial bound)"]
    if d["certified"]:
        prob = d.get("threshold_probability")
        lines.append(f"  accept when {d['score']} >= {d['threshold']!r}"
                     + ("" if prob is None else f" (log-MSP: max softmax probability >= "
                                                 f"{fmt(prob, 6)})"))
        lines.append(f"  certified coverage {fmt(d['certified_coverage'], 4)} "
                     f"({d['n_accepted']} of {d['n']} rows), empirical risk "
                     f"{fmt(d['empirical_risk'], 4)}, risk bound {fmt(d['bound'], 4)}")
    else:
        lines.append(f"  no threshold certified: reject everything (the best tested bound "
                     f"was above {fmt(d['risk'])}; more rows or a larger --risk/--delta would "
                     "help)")
    lines.append(f"  score {d['score']} ({how.get(tuning.get('kind'), '')}); "
                 f"{d['n_tests']} binary-search tests at {fmt(d['delta_per_test'], 4)} each")
    return "\n".join(lines) + "\n"


def params_text(res: Any) -> str:
    """``--save-params``: the params document as indented JSON."""
    from lsfix.streams import dumps_json

    return dumps_json(res.params_dict(), indent=2) + "\n"

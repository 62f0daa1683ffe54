"""Write the published JSON Schemas of lsfix's JSON outputs to docs/schema/ (run by hand after
changing an output; tests/test_schemas.py validates every output against these files and
checks that they are current).

    python scripts/gen_schemas.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "schema"
BASE = "https://lsfix.invalid/schema/"

NUM = {"type": "number"}
NUM_NULL = {"type": ["number", "null"]}
INT = {"type": "integer", "minimum": 0}
STR = {"type": "string"}
BOOL = {"type": "boolean"}


def obj(props: dict[str, Any], required: list[str] | None = None, *,
        extra: bool = False) -> dict[str, Any]:
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required,
            "additionalProperties": extra}


INTERVAL = obj({"estimate": NUM_NULL, "low": NUM_NULL, "high": NUM_NULL,
                "level": NUM, "n_boot": INT, "n_valid": INT})
POINT = obj({"target": NUM, "k": INT, "coverage": NUM_NULL, "risk": NUM_NULL})
METRICS = {
    "convention": {"enum": ["lsfix", "xia", "fd-shifts", "torch-uncertainty"]},
    "n": INT, "n_errors": INT, "n_tied": INT,
    **{k: NUM_NULL for k in ("accuracy", "aurc", "oracle_aurc", "eaurc", "naurc", "augrc",
                             "auroc", "fpr_at_95tpr")},
    "risk_at_coverage": {"type": "array", "items": {"$ref": "#/$defs/point"}},
    "coverage_at_risk": {"type": "array", "items": {"$ref": "#/$defs/point"}},
    "undefined": {"type": "object", "additionalProperties": STR},
}
CI = {"oneOf": [{"type": "null"},
                {"type": "object", "additionalProperties": {"$ref": "#/$defs/interval"}}]}
RESULT = obj({"file": STR, "score": STR, **METRICS, "ci": CI})
GROUP_RESULT = obj({"file": STR, "score": STR, "group": STR, **METRICS, "ci": CI})
PAIRED = {"metric": STR, "difference": NUM_NULL, "low": NUM_NULL, "high": NUM_NULL,
          "p_value": NUM_NULL, "level": NUM, "n_boot": INT, "n_valid": INT}
CAL_VARIANT = obj({
    "label": STR, "n": INT, "n_bins": INT, "temperature": NUM,
    **{k: NUM_NULL for k in ("accuracy", "mean_confidence", "ece", "ece_mass", "mce", "nll",
                             "brier")},
    "ci": {"oneOf": [{"type": "null"}, {"type": "object", "additionalProperties": obj(
        {"low": NUM_NULL, "high": NUM_NULL, "level": NUM, "n_boot": INT, "n_valid": INT})}]},
})
CALIBRATION = obj({"n_bins": INT, "binning": STR,
                   "variants": {"type": "array", "items": {"$ref": "#/$defs/cal_variant"},
                                "minItems": 1},
                   "temperature_fit": {"oneOf": [{"type": "null"},
                                                 obj({"file": STR, "n": INT,
                                                      "temperature": NUM})]},
                   "side_by_side": {"type": "array", "items": obj({
                       "variant": STR, "changes": STR, "accuracy": NUM_NULL, "ece": NUM_NULL,
                       "nll": NUM_NULL, "brier": NUM_NULL, "aurc": NUM_NULL,
                       "probabilities_unchanged": BOOL})}},
                  required=["n_bins", "binning", "variants"])
TUNING = {"type": "object", "properties": {
    "kind": {"enum": ["none", "union_bound", "fit_file"]},
    "candidates": {"type": "array", "items": STR},
    "delta_per_candidate": NUM, "coverages": {"type": "object",
                                              "additionalProperties": NUM},
    "fit_file": STR, "fit_n": INT, "fitted": {"enum": ["p", "temperature"]},
    "fallback_msp": BOOL, "note": STR}, "required": ["kind"], "additionalProperties": False}
THRESHOLD_CORE = {
    "method": STR, "file": STR, "score": STR, "spec": {"type": ["string", "null"]},
    "p": NUM_NULL, "temperature": NUM_NULL,
    "threshold": NUM_NULL, "threshold_probability": NUM_NULL, "accept": STR, "certified": BOOL,
    "certified_coverage": {"type": "number", "minimum": 0, "maximum": 1},
    "bound": {"type": "number", "minimum": 0, "maximum": 1},
    "empirical_risk": NUM_NULL,
    "risk": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
    "delta": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "n": INT, "n_accepted": INT, "n_errors": INT, "n_tests": INT,
    "delta_per_test": NUM, "tuning": {"$ref": "#/$defs/tuning"},
}
THRESHOLD_SECTION = obj({
    "params": obj({k: {} for k in ("file", "score", "spec", "threshold", "certified",
                                   "certified_coverage", "bound", "risk", "delta", "n")}),
    "realised": obj({"n": INT, "n_accepted": INT, "n_errors": INT, "coverage": NUM_NULL,
                     "risk": NUM_NULL}),
    "within_target": {"type": ["boolean", "null"]}})

DEFS = {"interval": INTERVAL, "point": POINT, "result": RESULT, "group_result": GROUP_RESULT,
        "cal_variant": CAL_VARIANT, "calibration": CALIBRATION, "tuning": TUNING,
        "threshold_section": THRESHOLD_SECTION}


def head(kind: str) -> dict[str, Any]:
    return {"format": {"const": f"lsfix.{kind}"}, "version": {"const": 1},
            "lsfix_version": STR}


def schema(name: str, title: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{BASE}{name}.json", "title": title, **body, "$defs": DEFS}


#: How p (and T) were chosen (lsfix.evaluation.fitpolicy.FitResult.to_dict)
FIT_CHOICE = {"kind": {"enum": ["fixed", "params", "file", "fraction", "binary"]},
              "source": STR, "fit": {"$ref": "pnorm_fit.json"}, "temperature": NUM_NULL,
              "selection": {"type": ["object", "null"]}}


def curve() -> dict[str, Any]:
    common = {**head("curve"), "file": STR, "convention": METRICS["convention"],
              "percent": BOOL, "n_fit_excluded": INT}
    fit = {"type": "object", "properties": FIT_CHOICE, "required": ["kind", "fit"]}
    plain = obj({**common, "n_ignored": INT, "n_not_drawn": INT,
                 "bootstrap_unit": {"enum": ["row", "image"]},
                 "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
                 "calibration": {"$ref": "#/$defs/calibration"},
                 "threshold": {"$ref": "#/$defs/threshold_section"}, "fit": fit},
                required=[*common, "n_ignored", "n_not_drawn", "bootstrap_unit", "results"])
    by = obj({**common, "by": STR,
              "results": {"type": "array", "items": {"$ref": "#/$defs/group_result"}},
              "fit": fit}, required=[*common, "by", "results"])
    return schema("curve", "lsfix curve -f json", {"oneOf": [plain, by]})


def compare() -> dict[str, Any]:
    props = {**head("compare"), "baseline": STR, "convention": METRICS["convention"],
             "percent": BOOL,
             "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
             "paired": {"type": "array", "items": obj(
                 {"file": STR, "score": STR, "baseline": STR,
                  "unit": {"enum": ["row", "image"]}, **PAIRED})},
             "gate": {"type": "object", "properties": {
                 "rules": {"type": "array", "items": STR},
                 "failed": {"type": "array", "items": STR}, "passed": BOOL,
                 "mode": {"enum": ["interval", "point"]}, "level": NUM,
                 "n_boot": {"type": ["integer", "null"]},
                 "outcome": {"enum": ["passed", "failed", "inconclusive"]},
                 "inconclusive": {"type": "array", "items": STR},
                 "checks": {"type": "array", "items": obj(
                     {"rule": STR, "file": STR, "score": STR,
                      "verdict": {"enum": ["pass", "fail", "inconclusive"]},
                      "mode": {"enum": ["interval", "point"]}, "estimate": NUM_NULL,
                      "low": NUM_NULL, "high": NUM_NULL, "n": INT,
                      "n_needed": {"type": ["integer", "null"]},
                      "paired": {"type": ["boolean", "null"]}, "shown": STR})}},
                 "required": ["rules", "failed", "passed", "mode", "outcome", "checks"]},
             "fits": {"type": "array", "items": {"type": "object", "properties": {
                 "file": STR, **FIT_CHOICE}, "required": ["file", "kind", "fit"]}},
             "models": {"type": "array", "items": obj({"name": STR,
                                                       "files": {"type": "array",
                                                                 "items": STR}})},
             "seeds": {"type": "array", "items": {"type": "object"}},
             "seeds_paired": {"type": "array", "items": {"type": "object"}},
             "by": STR,
             "groups": {"type": "array", "items": {"$ref": "#/$defs/group_result"}},
             "paired_groups": {"type": "array", "items": {"type": "object"}}}
    # other sections may be added by later versions of compare: allowed, never required
    return schema("compare", "lsfix compare -f json", obj(
        props, required=["format", "version", "lsfix_version", "baseline", "convention",
                         "percent", "results", "paired", "gate"], extra=True))


def audit() -> dict[str, Any]:
    props = {**head("audit"), "file": STR, "convention": METRICS["convention"],
             "n_eval": INT, "k": INT, "fit_source": STR, "fit": {"$ref": "pnorm_fit.json"},
             "temperature": NUM,
             "scores": {"type": "array", "items": {"$ref": "#/$defs/result"}},
             "paired_pnorm_minus_msp": obj({**PAIRED, "unit": {"enum": ["row", "image"]}}),
             "excess_aurc_removed": NUM_NULL,
             "undefined": {"type": "object", "additionalProperties": STR},
             "broken": BOOL, "binary": BOOL, "verdict": STR,
             "label_smoothing": {"type": ["object", "null"]},
             "selection": {"type": ["object", "null"]}, "best": {"type": ["object", "null"]},
             "fit_policy": {"type": ["object", "null"]},
             "by": STR, "groups": {"type": "array"},
             "calibration": {"$ref": "#/$defs/calibration"}}
    return schema("audit", "lsfix audit -f json", obj(
        props, required=["format", "version", "lsfix_version", "file", "convention", "n_eval",
                         "fit", "temperature", "scores", "paired_pnorm_minus_msp", "broken",
                         "verdict", "calibration"], extra=True))


def threshold() -> dict[str, Any]:
    return schema("threshold", "lsfix threshold -f json",
                  obj({**head("threshold"), **THRESHOLD_CORE}))


def params() -> dict[str, Any]:
    props = {"format": {"const": "lsfix.threshold"}, "version": {"const": 1},
             **THRESHOLD_CORE}
    return schema("params", "lsfix threshold --save-params (read by score --params and "
                            "curve --threshold-params)", obj(props))


def pnorm_fit() -> dict[str, Any]:
    props = {"format": {"const": "lsfix.pnorm_fit"}, "version": {"const": 1},
             "method": {"enum": ["maxlogit_pnorm", "maxlogit_pnorm_raw"]}, "centred": BOOL,
             "p": NUM_NULL, "fallback_msp": BOOL, "objective": STR,
             "convention": METRICS["convention"],
             "grid": {"type": "array", "items": obj({"p": NUM, "aurc": NUM_NULL})},
             "msp_aurc": NUM_NULL, "n_fit": INT, "split": {"type": "object"}}
    return schema("pnorm_fit", "lsfix normalise --save-params (a p-norm fit)",
                  obj(props, required=["format", "version", "method", "p", "fallback_msp",
                                       "grid", "msp_aurc", "n_fit", "split"], extra=True))


SCHEMAS = {"curve": curve, "compare": compare, "audit": audit, "threshold": threshold,
           "params": params, "pnorm_fit": pnorm_fit}


def render() -> dict[str, str]:
    return {f"{k}.json": json.dumps(f(), indent=1, sort_keys=False) + "\n"
            for k, f in SCHEMAS.items()}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print("wrote", OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every JSON output validates against its published schema in docs/schema/, and the schema
files are what scripts/gen_schemas.py writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema (the test extra)")
from referencing import Registry, Resource  # noqa: E402  (installed with jsonschema)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "docs" / "schema"
SCHEMAS = {p.stem: json.loads(p.read_text()) for p in SCHEMA_DIR.glob("*.json")}
REGISTRY = Registry().with_resources(
    (s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values())


def validate(doc: Any, name: str) -> None:
    cls = jsonschema.validators.validator_for(SCHEMAS[name])
    cls.check_schema(SCHEMAS[name])
    cls(SCHEMAS[name], registry=REGISTRY).validate(doc)


def test_schema_files_are_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_schemas", ROOT / "scripts" /
                                                  "gen_schemas.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, text in mod.render().items():
        assert (SCHEMA_DIR / name).read_text() == text, (
            f"docs/schema/{name} is stale: run python scripts/gen_schemas.py")
    assert set(SCHEMAS) == {"curve", "compare", "audit", "threshold", "params", "pnorm_fit"}


def _json(r: Any) -> Any:
    assert r.code in (0, 4), r.stderr
    return json.loads(r.stdout)


def test_curve_outputs_validate(run: Any, files: Any, tmp_path: Path) -> None:
    thr = tmp_path / "thr.json"
    assert run(["threshold", files.val, "-s", "msp", "--risk", "0.3", "--save-params",
                thr, "-f", "json"]).code == 0
    for args in (["-s", "msp", "-s", "pnorm:2", "--coverage", "0.8", "--risk", "0.05"],
                 ["-b", "30", "--coverage", "0.5"],
                 ["--by", "class", "-b", "20"],
                 ["--calibration", "-b", "20", "--calibration-fit", files.val,
                  "--threshold-params", thr]):
        validate(_json(run(["curve", files.a, "-f", "json", *args])), "curve")


def test_compare_and_audit_outputs_validate(run: Any, files: Any) -> None:
    validate(_json(run(["compare", files.a, files.b, "-s", "msp", "-s", "pnorm:2", "-b",
                        "30", "--fail-if", "aurc>+1%", "-f", "json"])), "compare")
    validate(_json(run(["compare", files.a, files.b, "--by", "class", "-b", "10", "-f",
                        "json"])), "compare")
    doc = _json(run(["audit", files.a, "--val", files.val, "-b", "30", "-f", "json"]))
    validate(doc, "audit")
    validate(doc["fit"], "pnorm_fit")


def test_threshold_and_params_validate(run: Any, files: Any, tmp_path: Path) -> None:
    for score, extra in (("msp", []), ("pnorm", []), ("pnorm", ["--fit", files.val]),
                         ("msp_ts", ["--fit", files.val]), ("energy", []),
                         ("msp", ["--risk", "0.0001"])):  # the last certifies nothing
        out = tmp_path / f"{score}{len(extra)}.json"
        doc = _json(run(["threshold", files.a, "-s", score, "--risk", "0.2", *extra,
                         "--save-params", out, "-f", "json"]))
        validate(doc, "threshold")
        validate(json.loads(out.read_text()), "params")


def test_a_wrong_document_is_refused() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate({"format": "lsfix.threshold", "version": 1}, "params")
    with pytest.raises(jsonschema.ValidationError):
        validate({"format": "lsfix.curve", "version": 1, "lsfix_version": "x", "file": "f",
                  "convention": "nope", "percent": False, "n_fit_excluded": 0,
                  "n_ignored": 0, "n_not_drawn": 0, "bootstrap_unit": "row",
                  "results": []}, "curve")

"""Architecture lines the code base keeps (the house layout in README and docs/): what imports
what."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lsfix"
HEAVY = ("torch", "torchvision", "timm", "matplotlib", "h5py", "typer", "click", "rich")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return set(out.stdout.split())


@pytest.mark.parametrize("code", ["import lsfix", "import lsfix.core",
                                  "import lsfix; lsfix.metrics([1.0, 0.0], [True, False])"])
def test_core_imports_no_heavy_library(code: str) -> None:
    mods = _modules_after(code)
    heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY)
    assert not heavy, f"{code!r} imported {heavy}"


def test_cli_start_up_imports_no_torch_or_matplotlib() -> None:
    code = (
        "from lsfix.cli.app import app\nimport lsfix.cli\n"
        "try:\n    app(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass"
    )
    mods = _modules_after(code)
    bad = sorted(m for m in mods if m.split(".")[0] in ("torch", "torchvision", "matplotlib",
                                                        "h5py"))
    assert not bad, f"'lsfix --help' imported {bad}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_depends_only_on_numpy_stdlib_and_errors() -> None:
    for path in (PKG / "core").rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "lsfix":
                assert name.startswith(("lsfix.core", "lsfix.errors")), f"{path}: {name}"
            else:
                assert top in sys.stdlib_module_names or top in ("numpy", "__future__"), \
                    f"{path} imports {name}"


def test_torch_only_in_extract_and_foreign_readers() -> None:
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        # torch.load only behind --trust-pickle, in the .pt reader
        if rel[0] == "extract" or rel == ("readers", "foreign.py") or path.name == "extract_cmd.py":
            continue
        for name in _imports(path):
            assert name.split(".")[0] not in ("torch", "torchvision", "timm"), \
                f"{path} imports {name}"


def test_matplotlib_only_in_plot() -> None:
    for path in PKG.rglob("*.py"):
        if path.name == "plot.py":
            continue
        for name in _imports(path):
            assert name.split(".")[0] != "matplotlib", f"{path} imports {name}"


def test_no_direct_click_import() -> None:
    for path in PKG.rglob("*.py"):
        assert "click" not in {n.split(".")[0] for n in _imports(path)}, path


def _lsfix_imports(path: Path) -> set[str]:
    """lsfix modules ``path`` imports, ``from lsfix import x`` read as ``lsfix.x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("lsfix"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "lsfix":
                names.update(f"lsfix.{a.name}" for a in node.names)
            elif node.module.startswith("lsfix."):
                names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) in ("import_module", "__import__"):
            names.update(a.value for a in node.args
                         if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def test_data_model_is_a_leaf() -> None:
    """``Predictions`` lives in a leaf module every reader builds on (docs/data-model.md)."""
    for name in _imports(PKG / "readers" / "predictions.py"):
        top = name.split(".")[0]
        if top == "lsfix":
            assert name.startswith(("lsfix.core", "lsfix.errors", "lsfix.safetext")), name
        else:
            assert top in sys.stdlib_module_names or top in ("numpy", "__future__"), name
    # lsfix.safetext (names are data: quoting in messages) is itself a leaf
    assert not _lsfix_imports(PKG / "safetext.py")


#: What each reader may import of the others: the logits-file reader and the foreign reader
#: share only lsfix.readers.predictions; the scores-file reader builds on the HDF5 helpers of
#: lsfix.readers.logitsfile; only lsfix.readers.entry knows every reader.
_READER_MAY_IMPORT = {"logitsfile": set(), "foreign": set(),
                      "scoresfile": {"lsfix.readers.logitsfile"}}


@pytest.mark.parametrize("reader", sorted(_READER_MAY_IMPORT))
def test_readers_do_not_import_one_another(reader: str) -> None:
    """The old schema <-> foreign import circle stays gone (docs/data-model.md)."""
    others = ({f"lsfix.readers.{r}" for r in (*_READER_MAY_IMPORT, "entry")}
              - {f"lsfix.readers.{reader}"})
    bad = sorted(_lsfix_imports(PKG / "readers" / f"{reader}.py")
                 & (others - _READER_MAY_IMPORT[reader]))
    assert not bad, f"lsfix/readers/{reader}.py imports {bad}"


def test_predictions_class_defined_once() -> None:
    import lsfix.readers.foreign
    import lsfix.readers.predictions
    import lsfix.readers.logitsfile

    assert lsfix.readers.logitsfile.Predictions is lsfix.readers.predictions.Predictions
    assert lsfix.readers.foreign.Predictions is lsfix.readers.predictions.Predictions
    hits = [p for p in PKG.rglob("*.py") if "class Predictions" in p.read_text(encoding="utf-8")]
    assert hits == [PKG / "readers" / "predictions.py"], hits


#: Data flows one way: read -> evaluate -> output, with the CLI on top. What each layer may
#: not import (by module prefix), checked on every import statement of its modules.
_LAYER_MAY_NOT = {
    "readers": ("lsfix.evaluation", "lsfix.output", "lsfix.cli", "lsfix.extract"),
    "evaluation": ("lsfix.output.plot", "lsfix.cli", "lsfix.extract"),
    "output": ("lsfix.cli", "lsfix.extract"),
}


@pytest.mark.parametrize("layer", sorted(_LAYER_MAY_NOT))
def test_layers_import_only_downwards(layer: str) -> None:
    bad = []
    for path in (PKG / layer).rglob("*.py"):
        for name in _lsfix_imports(path):
            if name.startswith(_LAYER_MAY_NOT[layer]):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert not bad, bad


def test_no_context_variables() -> None:
    """Options travel as arguments: no ContextVar anywhere in lsfix."""
    for path in PKG.rglob("*.py"):
        assert "contextvars" not in {n.split(".")[0] for n in _imports(path)}, path

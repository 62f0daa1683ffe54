"""Architecture lines the code base keeps (the house layout in README and docs/): what imports what."""

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
                                  "import lsfix; lsfix.evaluate([1.0, 0.0], [True, False])"])
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
    allowed = {"extract", "foreign.py"}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        if rel[0] in allowed or path.name == "extract_cmd.py":
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

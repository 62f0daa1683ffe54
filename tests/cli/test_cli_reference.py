"""``docs/cli.md`` is current, and every example of every ``--help`` runs (issue 17, item 7).

The examples run as printed, under ``bash -e -o pipefail``, one command's examples in order in
one fresh folder that holds the files they name: ``model.h5`` and ``ls.h5`` (copies of
``sample_data/fmnist_ls02_test.h5``), ``val.h5`` (``fmnist_ls02_val.h5``), ``ce.h5``
(``fmnist_ce_test.h5``), ``logits.npz`` + ``labels.npy`` (``model.h5``'s arrays), and for
``extract``/``merge`` a tiny TorchScript ``model.ts``, an image folder ``photos/`` and an
``images.npy`` (those need torch: skipped without it, naming it).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from lsfix.cli.reference import all_examples, help_examples, render

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_data"
EXAMPLES = all_examples()
TORCH_COMMANDS = ("extract", "merge")


def test_docs_cli_md_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == render(), ("docs/cli.md is stale: run python -m lsfix.cli.reference > "
                                 "docs/cli.md")


def test_reference_has_every_command_and_example() -> None:
    text = render()
    for name, examples in EXAMPLES.items():
        assert (f"## `lsfix {name}`" if name else "## `lsfix`") in text
        assert examples, f"lsfix {name} --help has no Examples section"


def test_help_examples_parser() -> None:
    text = ("Usage: lsfix x\n\n  Run it.\n\n  Examples:\n\n    lsfix x a.h5 \\\n"
            "        --b 1\n    torchrun -m lsfix x\n\n    lsfix x - | lsfix y -\n\n"
            "Options:\n  lsfix looks like an example but is not\n")
    assert help_examples(text) == ["lsfix x a.h5 --b 1", "torchrun -m lsfix x",
                                   "lsfix x - | lsfix y -"]
    assert help_examples("Usage: lsfix\n\n  lsfix x is prose.\n") == []


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(HOME=str(home), COLUMNS="100", NO_COLOR="1", OMP_NUM_THREADS="1",
               MPLBACKEND="Agg")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LSFIX_TEST_STOP_AT"):
        env.pop(key, None)
    return env


def _make_files(folder: Path, torch_files: bool) -> None:
    for name, src in (("model.h5", "fmnist_ls02_test.h5"), ("ls.h5", "fmnist_ls02_test.h5"),
                      ("val.h5", "fmnist_ls02_val.h5"), ("ce.h5", "fmnist_ce_test.h5")):
        shutil.copyfile(SAMPLES / src, folder / name)
    with h5py.File(SAMPLES / "fmnist_ls02_test.h5", "r") as f:
        np.savez(folder / "logits.npz", logits=f["logits"][:1000])
        np.save(folder / "labels.npy", f["labels"][:1000])
    (folder / "home").mkdir()
    if not torch_files:
        return
    import torch
    from PIL import Image

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 2))
    with warnings.catch_warnings():  # torch.jit is deprecated; lsfix still reads TorchScript
        warnings.simplefilter("ignore")
        torch.jit.trace(net, torch.zeros(1, 3, 24, 24)).save(str(folder / "model.ts"))
    rng = np.random.default_rng(0)
    np.save(folder / "images.npy", rng.integers(0, 256, (12, 24, 24, 3), dtype=np.uint8))
    for c in ("cat", "dog"):
        (folder / "photos" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(
                folder / "photos" / c / f"{i}.png")


@pytest.mark.parametrize("command", list(EXAMPLES), ids=[c or "lsfix" for c in EXAMPLES])
def test_every_help_example_runs(command: str, tmp_path: Path) -> None:
    needs_torch = command in TORCH_COMMANDS
    if needs_torch and importlib.util.find_spec("torch") is None:
        pytest.skip(f"lsfix {command}'s examples need torch (pip install 'lsfix[extract]')")
    _make_files(tmp_path, needs_torch)
    for example in EXAMPLES[command]:
        res = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", example], cwd=tmp_path,
                             env=_env(tmp_path / "home"), capture_output=True, text=True,
                             timeout=600)
        # a --fail-if gate that fails exits 4 (the run worked; README's exit codes)
        allowed = (0, 4) if "--fail-if" in example else (0,)
        assert res.returncode in allowed, (
            f"`{example}` (lsfix {command} --help) exited {res.returncode}:\n"
            f"{res.stdout[-2000:]}{res.stderr[-2000:]}")
        assert "Traceback" not in res.stderr, res.stderr

"""No data file can run code: pickles are refused unless ``extract --trust-pickle`` says so.

Every payload here is an object whose unpickling calls ``open(MARKER, "w")``. The tests
assert the marker never appears when lsfix reads the file (``.pt``/``.pth`` inputs are read
with ``torch.load(weights_only=True)``, ``.npz``/``.npy`` with pickles off, plain pickles are
refused before they are opened, ``extract`` checkpoints with ``weights_only=True``), and, as a
positive control, that the same file *does* create the marker when it is unpickled for real
(``torch.load(weights_only=False)``, ``pickle.load``, ``np.load(allow_pickle=True)``, and
``extract --trust-pickle``): so a refusal is a refusal, not a broken payload.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from .conftest import LSFIX_EXE, cli, error_line, subprocess_env
from .corpus import Payload

torch = pytest.importorskip("torch")


def _payload(marker: Path) -> Payload:
    return Payload(str(marker))


def make(kind: str, folder: Path) -> tuple[Path, Path]:
    """A malicious file of ``kind`` in ``folder`` and the marker its payload would create."""
    marker = folder / f"MARKER-{kind}"
    if kind == "torch-zip":
        path = folder / "evil-zip.pt"
        torch.save({"logits": _payload(marker), "labels": torch.zeros(3)}, path)
    elif kind == "torch-legacy":
        path = folder / "evil.pth"
        torch.save(_payload(marker), path, _use_new_zipfile_serialization=False)
    elif kind == "plain-pickle":
        path = folder / "evil-plain.pt"
        path.write_bytes(pickle.dumps(_payload(marker), protocol=4))
    elif kind == "npz-object":
        path = folder / "evil.npz"
        arr = np.empty(2, dtype=object)
        arr[:] = [_payload(marker), 1]
        np.savez(path, logits=arr)
    elif kind == "npy-object":
        path = folder / "evil.npy"
        arr = np.empty(2, dtype=object)
        arr[:] = [_payload(marker), 1]
        np.save(path, arr, allow_pickle=True)
    else:
        raise ValueError(kind)
    return path, marker


KINDS = ["torch-zip", "torch-legacy", "plain-pickle", "npz-object", "npy-object"]

#: How each kind is unpickled for real (in a subprocess), for the positive control.
UNSAFE_LOAD = {
    "torch-zip": "import torch; torch.load(PATH, weights_only=False)",
    "torch-legacy": "import torch; torch.load(PATH, weights_only=False)",
    "plain-pickle": "import pickle; pickle.loads(open(PATH, 'rb').read())",
    "npz-object": "import numpy as np; np.load(PATH, allow_pickle=True)['logits']",
    "npy-object": "import numpy as np; np.load(PATH, allow_pickle=True)",
}

PROBLEM = {
    "torch-zip": "refused: the pickle in this torch.save file names the global",
    "torch-legacy": "refused by torch.load(weights_only=True)",
    "plain-pickle": "is a plain pickle, not a torch.save file",
    "npz-object": "object arrays are refused (allow_pickle stays off)",
    "npy-object": "object arrays are refused (allow_pickle stays off)",
}


def test_payloads_run_when_unpickled_for_real(tmp_path: Path) -> None:
    """Positive control: each payload works (so the refusals below are meaningful). One
    subprocess unpickles all five for real, with the loaders lsfix refuses to use."""
    made = {kind: make(kind, tmp_path) for kind in KINDS}
    code = "\n".join(f"try:\n    {UNSAFE_LOAD[kind].replace('PATH', repr(str(path)))}\n"
                     "except Exception:\n    pass" for kind, (path, _) in made.items())
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                   timeout=300, check=False)
    ran = {kind: marker.exists() for kind, (_, marker) in made.items()}
    assert all(ran.values()), f"a payload did not run, so a leak could go unseen: {ran}"


@pytest.mark.parametrize("command", ["curve", "score", "normalise", "audit"])
@pytest.mark.parametrize("kind", KINDS)
def test_malicious_input_is_refused_without_running(tmp_path: Path, kind: str,
                                                    command: str) -> None:
    path, marker = make(kind, tmp_path)
    before = path.read_bytes()
    r = cli([command, path, "-o", tmp_path / "out.h5"])
    assert r.code == 3, r
    line = error_line(r, command)
    assert path.name in line and PROBLEM[kind] in line, line
    assert not marker.exists(), "the pickle payload ran"
    assert not (tmp_path / "out.h5").exists()
    assert path.read_bytes() == before


@pytest.mark.parametrize("kind", KINDS)
def test_malicious_input_on_stdin_is_refused_without_running(tmp_path: Path,
                                                             kind: str) -> None:
    """On stdin there is no extension to go by: the bytes decide, and pickles stay shut."""
    path, marker = make(kind, tmp_path)
    r = cli(["curve", "-"], input=path.read_bytes())
    assert r.code == 3, r
    assert "<stdin>" in error_line(r, "curve")
    assert not marker.exists(), "the pickle payload ran"


# --------------------------------------------------------------------------------------------
# extract: model files and --weights checkpoints


def _extract_ok() -> None:
    res = subprocess.run([str(LSFIX_EXE), "extract", "--help"], capture_output=True,
                         text=True, timeout=60, env=subprocess_env())
    if res.returncode != 0:
        pytest.skip(f"'lsfix extract' is not usable here: {res.stderr.strip()[:200]}")


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TorchScript model, its state dict and a small .npz dataset."""
    if not LSFIX_EXE.exists():
        pytest.skip(f"{LSFIX_EXE} not installed")
    _extract_ok()
    folder = tmp_path_factory.mktemp("safe-extract")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.9: jit is "deprecated"
        torch.jit.trace(net, torch.zeros(1, 1, 4, 4)).save(str(folder / "net.ts"))
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", images=rng.integers(0, 256, (12, 4, 4), dtype=np.uint8),
             labels=rng.integers(0, 3, 12))
    return folder


def _extract(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LSFIX_EXE), "extract", *args, "data.npz", "-o", "out.h5",
                           "--device", "cpu", "-q"], cwd=folder, capture_output=True,
                          text=True, timeout=300, env=subprocess_env())


def _clean(folder: Path) -> None:
    for name in ("out.h5",):
        (folder / name).unlink(missing_ok=True)
    for p in folder.glob("MARKER-*"):
        p.unlink()


@pytest.mark.torch
@pytest.mark.parametrize("role", ["model", "weights"])
def test_extract_checkpoint_payload_needs_trust_pickle(job: Path, role: str) -> None:
    """A pickled checkpoint (``MODEL`` file or ``--weights``) is read with
    ``weights_only=True``: refused, nothing runs. With ``--trust-pickle`` it is unpickled and
    the marker appears: the flag is the only way in."""
    _clean(job)
    marker = job / f"MARKER-extract-{role}"
    evil = job / f"evil-{role}.pt"
    torch.save({"state_dict": _payload(marker)}, evil)
    args = [evil.name] if role == "model" else ["net.ts", "--weights", evil.name]
    res = _extract(job, *args)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lsfix extract: error: "), res.stderr
    assert evil.name in lines[0] and "--trust-pickle" in lines[0], lines[0]
    assert "Traceback" not in res.stderr
    assert not marker.exists(), "the checkpoint's payload ran without --trust-pickle"
    assert not (job / "out.h5").exists()

    trusted = _extract(job, *args, "--trust-pickle")
    assert marker.exists(), "--trust-pickle did not unpickle: the test cannot tell a leak"
    assert "Traceback" not in trusted.stderr
    assert "warning: --trust-pickle" in trusted.stderr
    assert trusted.returncode == 1  # the object is no model/state dict: a clean refusal
    assert not (job / "out.h5").exists()
    _clean(job)


@pytest.mark.torch
def test_extract_dataset_with_object_arrays_is_refused(job: Path) -> None:
    _clean(job)
    marker = job / "MARKER-dataset"
    arr = np.empty(3, dtype=object)
    arr[:] = [_payload(marker), 1, 2]
    np.savez(job / "evil-data.npz", images=arr, labels=np.zeros(3, np.int64))
    res = subprocess.run([str(LSFIX_EXE), "extract", "net.ts", "evil-data.npz", "-o",
                          "out.h5", "--device", "cpu", "-q"], cwd=job, capture_output=True,
                         text=True, timeout=300, env=subprocess_env())
    assert res.returncode == 3, res.stderr
    assert res.stderr.startswith("lsfix extract: error: evil-data.npz")
    assert len(res.stderr.splitlines()) == 1
    assert not marker.exists()
    assert not (job / "out.h5").exists()

"""Shared steps of ``make_sample_data.py`` and ``reproduce.py``: every logit goes through the
project's own CLI (``python -m lsfix extract`` / ``score`` / ``normalise``) as a subprocess,
exactly as a user would run it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from examples.fashion_mnist.net import CLASS_NAMES, MEAN, STD
from examples.fashion_mnist.train import DATA_DIR, N_TRAIN, load_split

REPO = Path(__file__).resolve().parents[2]
MODEL_SPEC = "examples.fashion_mnist.net:build"
#: (tag, α): cross-entropy, LS 0.1, LS 0.2 (Xia et al.'s default).
SETTINGS = (("ce", 0.0), ("ls01", 0.1), ("ls02", 0.2))
LABELS = {"ce": "CE", "ls01": "LS 0.1", "ls02": "LS 0.2"}


def rel(path: str | Path) -> str:
    """``path`` relative to the repository root when inside it (keeps provenance portable)."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


def lsfix(*args: str, quiet: bool = False) -> float:
    """Run ``python -m lsfix ARGS`` from the repository root; return its wall time (s).

    The command is echoed to stderr (``$ lsfix ...``) so that logs show what ran.
    """
    cmd = [sys.executable, "-m", "lsfix", *args]
    if not quiet:
        print("$ lsfix " + shlex.join(args), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    env = dict(os.environ)
    env.setdefault("NO_COLOR", "1")
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if res.stderr.strip() and not quiet:
        print("  " + res.stderr.strip().replace("\n", "\n  "), file=sys.stderr, flush=True)
    if res.returncode != 0:
        raise SystemExit(f"lsfix {shlex.join(args)} failed with exit {res.returncode}:\n"
                         f"{res.stdout}{res.stderr}")
    return time.perf_counter() - t0


_META_SUPPORTED: bool | None = None


def meta_args(alpha: float) -> list[str]:
    """``--meta training.label_smoothing=α`` when this lsfix's extract has ``--meta``."""
    global _META_SUPPORTED
    if _META_SUPPORTED is None:
        out = subprocess.run([sys.executable, "-m", "lsfix", "extract", "--help"], cwd=REPO,
                             capture_output=True, text=True).stdout
        _META_SUPPORTED = "--meta" in out
    return ["--meta", f"training.label_smoothing={alpha:g}"] if _META_SUPPORTED else []


def write_class_names(path: Path) -> Path:
    """One class name a line (``--class-names FILE``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(CLASS_NAMES) + "\n")
    return path


def write_val_npz(path: Path, data_dir: str | Path = DATA_DIR) -> Path:
    """Rows 50000..59999 of the official training set as ``.npz`` (images uint8, labels,
    sample ids ``train/50000`` ...): ``lsfix extract`` has no row-offset option for IDX files.
    """
    images, labels = load_split("val", data_dir)
    ids = np.array([f"train/{N_TRAIN + i}" for i in range(len(labels))])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=np.ascontiguousarray(images), labels=labels, sample_ids=ids)
    return path


def extract(weights: Path, dataset: str, out: Path, classes: Path, alpha: float) -> float:
    """``lsfix extract`` the trained net over ``dataset`` into ``out`` (float32 logits)."""
    return lsfix("extract", MODEL_SPEC, "--weights", rel(weights), dataset, "-o", rel(out),
                 "--mean", f"{MEAN:.4f}", "--std", f"{STD:.4f}", "--class-names", rel(classes),
                 "--device", "cpu", "-b", "500", "--overwrite", "-q", *meta_args(alpha))


def score_and_normalise(raw_test: Path, val: Path, out: Path, scratch: Path) -> float:
    """``lsfix score TEST -m msp`` then ``lsfix normalise TEST --with … --fit VAL
    --copy-logits``: a logits file with /scores/msp and /scores/pnorm (p tuned on ``val``, or
    the MSP fallback)."""
    scored = scratch / (raw_test.stem + ".msp.h5")
    t = lsfix("score", rel(raw_test), "-m", "msp", "-o", rel(scored), "-q")
    t += lsfix("normalise", rel(raw_test), "--with", rel(scored), "--fit", rel(val), "-o",
               rel(out), "--overwrite", "--copy-logits")
    scored.unlink(missing_ok=True)
    return t


def file_size_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6

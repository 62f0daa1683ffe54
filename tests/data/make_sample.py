"""Write the small committed sample files used by the CLI golden tests.

Run from anywhere (the files land next to this script)::

    .venv/bin/python tests/data/make_sample.py

``sample.h5``   300 samples, 5 classes, float32 logits of a "label-smoothed" model: errors
                carry inflated logit norms, so MSP ranks them too confidently and MaxLogit-pNorm
                repairs the ranking (the case lsfix exists for). Labels, sample ids, class names.
``sample_b.h5`` a second model on the same samples (same labels and ids), a noisier copy of the
                first, for ``compare``.

Deterministic: a fixed seed, no timestamps (``lsfix.readers.logitsfile.new_file`` writes none), so the
same lsfix/h5py versions give the same bytes. Keep it small (a few tens of KB in all).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

N, K, SEED = 300, 5, 20240611
CLASS_NAMES = ("cat", "dog", "fox", "owl", "yak")


def arrays(seed: int = SEED, n: int = N, k: int = K) -> dict[str, np.ndarray]:
    """Logits of two models and the shared labels/ids (pure numpy, seeded)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    z = rng.normal(0.0, 1.0, (n, k))
    z[np.arange(n), labels] += rng.normal(2.0, 1.0, n)
    wrong = z.argmax(axis=1) != labels
    scale = rng.lognormal(0.0, 0.3, n) * np.where(wrong, 2.5, 1.0)
    a = z * scale[:, None]
    b = a + rng.normal(0.0, 0.6, (n, k))
    return {
        "labels": labels.astype(np.int64),
        "a": np.round(a, 4).astype(np.float32),
        "b": np.round(b, 4).astype(np.float32),
        "ids": np.array([f"img{i:04d}" for i in range(n)]),
    }


def build(folder: str | Path) -> list[Path]:
    """Write ``sample.h5`` and ``sample_b.h5`` into ``folder``; return their paths."""
    from lsfix.readers.logitsfile import new_file

    folder = Path(folder)
    d = arrays()
    out = []
    for name, key, model in (("sample.h5", "a", "sample-a"), ("sample_b.h5", "b", "sample-b")):
        path = folder / name
        new_file(str(path), d[key], labels=d["labels"], sample_ids=d["ids"].tolist(),
                 class_names=CLASS_NAMES, provenance={"model": model, "generator":
                                                      "tests/data/make_sample.py"})
        out.append(path)
    return out


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for p in build(here):
        print(f"wrote {p.relative_to(here)} ({p.stat().st_size} bytes)", file=sys.stderr)

"""An IMDB-shaped binary file through ``lsfix extract``, ``score``, ``normalise`` and ``audit``.

Synthetic sentiment data (nothing is downloaded): reviews of 40 token ids from a vocabulary
of 500, where 100 "sentiment words" count +1 or -1 and the label is the sign of their sum plus
Gaussian noise (sd 1.5, so some labels are hard). Two
:class:`examples.imdb_like.net.TokenLSTM` models are trained on 10,000 reviews with BCE, one
with label smoothing α = 0.6 (targets ``y(1 − α) + α/2``, the paper's IMDB setting) and one
without, and saved the way a Lightning routine saves them
(``{"state_dict": {"model.<key>": ...}}``). Then, for a 25,000-review test split, each model
goes through::

    lsfix extract examples.imdb_like.net:TokenLSTM --weights M.ckpt test.npz -o M.h5 \\
        --meta training.label_smoothing=A
    lsfix score M.h5 -m msp -m max_logit -m energy -m pnorm:2 -o M.scored.h5
    lsfix normalise M.h5 --with M.scored.h5 -o M.fixed.h5
    lsfix audit M.h5 -b 200 -f table

and the commands' outputs are printed. Usage (from the repository root, torch installed)::

    python -m examples.imdb_like.run [--out DIR] [--n-test 25000] [--epochs 8]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VOCAB, L = 500, 40


def make_split(rng: np.random.Generator, n: int, weights: np.ndarray) -> tuple:
    x = rng.integers(1, VOCAB, (n, L), dtype=np.int64)
    score = weights[x].sum(axis=1) + rng.normal(0.0, 1.5, n)
    return x, (score > 0).astype(np.int64)


def train(x: np.ndarray, y: np.ndarray, alpha: float, epochs: int, seed: int) -> dict:
    import torch

    from examples.imdb_like.net import TokenLSTM

    torch.manual_seed(seed)
    net = TokenLSTM()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).to(torch.float32)
    target = yt * (1 - alpha) + alpha / 2  # BCE label smoothing
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(x.shape[0], generator=g).split(128):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(xt[idx]).squeeze(1), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {f"model.{k}": v for k, v in net.state_dict().items()}


def lsfix(*args: str, cwd: Path) -> None:
    cmd = ["lsfix", *args]
    print(f"$ {shlex.join(cmd)}", flush=True)
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False,
                       env={**os.environ, "COLUMNS": "140"})
    sys.stdout.write(p.stdout + p.stderr)
    if p.returncode != 0:
        raise SystemExit(f"exit {p.returncode}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="imdb-like-out")
    ap.add_argument("--n-train", type=int, default=10000)
    ap.add_argument("--n-test", type=int, default=25000)
    ap.add_argument("--epochs", type=int, default=8)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    weights = np.zeros(VOCAB)
    weights[rng.choice(VOCAB, 100, replace=False)] = rng.choice([-1.0, 1.0], 100)
    xtr, ytr = make_split(rng, a.n_train, weights)
    xte, yte = make_split(rng, a.n_test, weights)
    np.savez(out / "test.npz", x=xte, labels=yte, class_names=np.array(["neg", "pos"]))
    repo = Path(__file__).resolve().parents[2]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])
    for name, alpha in (("bce", 0.0), ("ls06", 0.6)):
        t0 = time.perf_counter()
        torch.save({"state_dict": train(xtr, ytr, alpha, a.epochs, seed=1), "epoch": a.epochs},
                   out / f"{name}.ckpt")
        print(f"# trained {name} (α = {alpha}) in {time.perf_counter() - t0:.0f} s", flush=True)
        lsfix("extract", "examples.imdb_like.net:TokenLSTM", "--weights", f"{name}.ckpt",
              "test.npz", "-o", f"{name}.h5", "--meta", f"training.label_smoothing={alpha}",
              "--overwrite", cwd=out)
        lsfix("score", f"{name}.h5", "-m", "msp", "-m", "max_logit", "-m", "energy", "-m",
              "pnorm:2", "-o", f"{name}.scored.h5", "--overwrite", cwd=out)
        lsfix("normalise", f"{name}.h5", "--with", f"{name}.scored.h5", "-o", f"{name}.fixed.h5",
              "--overwrite", cwd=out)
        lsfix("curve", f"{name}.fixed.h5", "-c", "xia", "--percent", "-f", "tsv", cwd=out)
        lsfix("audit", f"{name}.h5", "-b", "200", "-f", "table", cwd=out)


if __name__ == "__main__":
    main()

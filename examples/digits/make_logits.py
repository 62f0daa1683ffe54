"""Make ``sample_data/digits/``: logits of a small MLP on scikit-learn's digits, CE and LS.

The new user's case of issue 18, rebuilt on a dataset that ships with scikit-learn: the
1,797 8×8 digit images of ``sklearn.datasets.load_digits`` are split once at random (seed 0)
into 899 training, 449 validation and 449 test rows; a 64-64-10 MLP (ReLU) is trained on the
training rows twice, with ``CrossEntropyLoss()`` and with ``CrossEntropyLoss(
label_smoothing=0.2)`` (Adam, lr 0.01, 150 full-batch steps, torch seed 0, deterministic
algorithms, one thread), and its logits on the validation and test rows are saved with
``np.savez`` as a user would: ``logits`` (float32), ``labels`` (int64) and ``sample_ids``
(``digit0001`` ..., the row of ``load_digits``).

    pip install scikit-learn torch
    python -m examples.digits.make_logits            # ~5 s on a CPU; writes sample_data/digits/

The files are committed (the doc page docs/digits.md and its test read them without
scikit-learn or torch). Re-running gives the same logits on the same torch version and CPU
kind (the README of the folder records both).
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SPLIT = (899, 449, 449)


def _data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def train(x: np.ndarray, y: np.ndarray, alpha: float, *, steps: int = 150, seed: int = 0):  # noqa: ANN201
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=alpha)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
    return net


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "sample_data" / "digits"))
    args = ap.parse_args()
    x, y = _data()
    order = np.random.default_rng(0).permutation(x.shape[0])
    tr, va, te = np.split(order, np.cumsum(SPLIT)[:2])
    ids = np.array([f"digit{i:04d}" for i in range(x.shape[0])])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for tag, alpha in (("ce", 0.0), ("ls", 0.2)):
        net = train(x[tr], y[tr], alpha)
        with torch.no_grad():
            for split, rows in (("val", va), ("test", te)):
                z = net(torch.from_numpy(x[rows])).numpy().astype(np.float32)
                np.savez(out / f"{tag}_{split}.npz", logits=z, labels=y[rows],
                         sample_ids=ids[rows])
                acc = float((z.argmax(1) == y[rows]).mean())
                lines.append(f"| `{tag}_{split}.npz` | α = {alpha:g} | {split} | {len(rows)} | "
                             f"{acc:.4f} | {int((z.argmax(1) != y[rows]).sum())} |")
    (out / "README.md").write_text(
        "# sample_data/digits — scikit-learn digits, a small MLP, CE vs label smoothing\n\n"
        "Made by `python -m examples.digits.make_logits` (see its docstring for the exact "
        f"recipe), torch {torch.__version__}, scikit-learn {sklearn_version()}, "
        f"{platform.machine()}.\n\n"
        "| file | training | split | rows | accuracy | errors |\n|---|---|---|---|---|---|\n"
        + "\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

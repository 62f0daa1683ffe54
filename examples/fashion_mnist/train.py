"""Train the small CNN of ``net.py`` on Fashion-MNIST, with or without label smoothing.

Reads the raw IDX files itself (gzip + numpy; Debian's ``dataset-fashion-mnist`` puts them in
``/usr/share/datasets/fashion-mnist``). Training uses the first 50,000 training images; the last
10,000 (rows 50000..59999) are the held-out validation split, never seen in training, on which
``lsfix normalise --fit`` tunes p. The official 10k test split is not touched here.

Deterministic on CPU: fixed seeds for initialisation and for the shuffling, deterministic
algorithms, a fixed thread count (default 1: on this project's shared 2-core machine one thread
trained 3× faster than two while other jobs ran; ``--threads 2`` on an idle machine). The
same command gives the same weights (same ``state_dict`` bytes) on the same machine, thread
count and torch version.

Usage (from the repository root)::

    python -m examples.fashion_mnist.train --label-smoothing 0.2 --seed 0 --epochs 5 \
        --out build/fmnist/ls02_s0

writes ``OUT/model.pt`` (a state dict, loadable with ``torch.load(..., weights_only=True)``)
and ``OUT/training.json`` (α, seed, epochs, per-epoch train loss/accuracy, wall time).
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
N_TRAIN = 50_000  # rows 0..49999 train; rows 50000..59999 are the validation split
DEFAULTS = {"epochs": 5, "batch_size": 128, "lr": 1e-3}


def read_idx(path: str | Path) -> np.ndarray:
    """Read a (gzipped) IDX file into a numpy array (uint8 images or labels)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(split: str, data_dir: str | Path = DATA_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 of ``train``/``val``/``test``.

    ``train`` is rows 0..49999 of the official training file, ``val`` rows 50000..59999,
    ``test`` the official t10k file.
    """
    d = Path(data_dir)
    prefix = "t10k" if split == "test" else "train"
    images = read_idx(d / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(d / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    if split == "train":
        return images[:N_TRAIN], labels[:N_TRAIN]
    if split == "val":
        return images[N_TRAIN:], labels[N_TRAIN:]
    if split == "test":
        return images, labels
    raise ValueError(f"split {split!r}: choose train, val or test")


def train(label_smoothing: float, seed: int, epochs: int, out: str | Path, *,
          limit: int | None = None, batch_size: int = DEFAULTS["batch_size"],
          lr: float = DEFAULTS["lr"], data_dir: str | Path = DATA_DIR,
          threads: int = 1, quiet: bool = False, arch: str = "cnn",
          weight_decay: float = 0.0) -> dict[str, Any]:
    """Train one model; write ``out/model.pt`` and ``out/training.json``; return the record.

    ``arch`` names a factory of ``net.ARCHS`` (``cnn``, the default, or ``mlp``);
    ``weight_decay`` is Adam's (coupled, L2-in-the-gradient) weight decay, 0 by default.
    """
    import torch
    from torch import nn

    from examples.fashion_mnist.net import ARCHS, MEAN, STD

    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)

    images, labels = load_split("train", data_dir)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).sub_(MEAN).div_(STD).unsqueeze(1)
    y = torch.from_numpy(labels)
    n = x.shape[0]

    build, spec = ARCHS[arch]
    model = build(10)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    gen = torch.Generator().manual_seed(seed)

    history = []
    model.train()
    for epoch in range(epochs):
        te = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        tot_loss, tot_correct = 0.0, 0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            xb, yb = x[idx], y[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss.detach()) * len(idx)
            tot_correct += int((logits.detach().argmax(1) == yb).sum())
        rec = {"epoch": epoch + 1, "train_loss": round(tot_loss / n, 6),
               "train_accuracy": round(tot_correct / n, 6),
               "seconds": round(time.perf_counter() - te, 2)}
        history.append(rec)
        if not quiet:
            print(f"  α={label_smoothing:g} seed={seed} epoch {epoch + 1}/{epochs}: "
                  f"loss {rec['train_loss']:.4f}  train acc {rec['train_accuracy']:.4f}  "
                  f"({rec['seconds']:.1f} s)", file=sys.stderr, flush=True)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    torch.save(model.state_dict(), out / "model.pt")
    record = {
        "label_smoothing": label_smoothing, "seed": seed, "epochs": epochs,
        "batch_size": batch_size, "optimizer": f"Adam(lr={lr:g}), cosine decay to 0 per step",
        "train_rows": f"train[0:{n}]", "normalisation": {"mean": MEAN, "std": STD},
        "model": spec, "arch": arch, "weight_decay": weight_decay, "threads": threads,
        "torch_version": str(torch.__version__),
        "final_train_loss": history[-1]["train_loss"] if history else None,
        "final_train_accuracy": history[-1]["train_accuracy"] if history else None,
        "history": history, "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label-smoothing", type=float, default=0.0, metavar="α")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    ap.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    ap.add_argument("--limit", type=int, default=None,
                    help="train on the first N training images only (smoke tests)")
    ap.add_argument("--data-dir", default=str(DATA_DIR))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1; fixed for determinism)")
    ap.add_argument("--out", required=True, help="output folder")
    args = ap.parse_args(argv)
    if not 0.0 <= args.label_smoothing < 1.0:
        ap.error("--label-smoothing must be in [0, 1)")
    rec = train(args.label_smoothing, args.seed, args.epochs, args.out, limit=args.limit,
                batch_size=args.batch_size, lr=args.lr, data_dir=args.data_dir,
                threads=args.threads)
    print(f"wrote {Path(args.out) / 'model.pt'} (train acc {rec['final_train_accuracy']:.4f}, "
          f"{rec['wall_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

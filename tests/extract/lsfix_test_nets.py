"""Tiny CPU models for the extract tests (importable as ``lsfix_test_nets:NAME``)."""

from __future__ import annotations

import time

import torch
from torch import nn


class Net(nn.Module):
    """(N, C, H, W) -> (N, k): conv, global mean, linear."""

    def __init__(self, k: int = 10, c: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 8, 3, padding=1)
        self.fc = nn.Linear(8, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).relu().mean((2, 3)))


class Slow(Net):
    """:class:`Net` that sleeps in every forward (for kill-and-resume tests)."""

    def __init__(self, k: int = 10, c: int = 1, delay: float = 0.02) -> None:
        super().__init__(k, c)
        self.delay = delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return super().forward(x)


class Dense(nn.Module):
    """(N, 1, H, W) -> (N, k, H, W) per-pixel logits."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, k, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Vector(nn.Module):
    """(N, D) -> (N, k)."""

    def __init__(self, d: int = 5, k: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(d, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class ThreeD(nn.Module):
    """Returns (N, k, L): neither class logits nor dense 2-D logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)


class NaNAfter(Net):
    """Gives NaN logits for samples whose mean pixel exceeds a threshold."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        bad = x.mean((1, 2, 3)) > 0.9
        return torch.where(bad[:, None], torch.full_like(out, float("nan")), out)


class DictOut(Net):
    """Returns {"scores": ..., "features": ...} (no obvious logits key)."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        out = super().forward(x)
        return {"scores": out, "features": out * 2}


class TupleOut(Net):
    """Returns (logits, features)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        out = super().forward(x)
        return out, out * 2


class FashionCNN(nn.Module):
    """A small CNN for 28x28 grayscale images (trained in the Fashion-MNIST test)."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(16 * 49, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)


class Pickled(nn.Module):
    """A module class for the pickled-whole-model tests."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class TokenLSTM(nn.Module):
    """(N, L) int64 token ids -> (N, 1): embedding, LSTM, last state, one logit (IMDB-shaped)."""

    def __init__(self, vocab: int = 50, emb: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(self.emb(x))[0][:, -1, :])


class SeqLSTM(nn.Module):
    """(N, L, D) float sequences -> (N,): LSTM, last state, one logit squeezed (the paper's
    IMDB LSTM takes (N, L, 300) word vectors)."""

    def __init__(self, d: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x)[0][:, -1, :]).squeeze(1)


class Wrapped(nn.Module):
    """A network whose only child is named ``model`` (its keys start with ``model.``)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

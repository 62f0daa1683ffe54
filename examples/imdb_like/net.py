"""A small IMDB-shaped sentiment LSTM: (N, L) token ids -> one logit (a sigmoid model), built
like the paper's IMDB LSTM (an LSTM, its last state, a small MLP, one output) but small enough
to train on a laptop CPU in a minute."""

from __future__ import annotations

import torch
from torch import nn


class TokenLSTM(nn.Module):
    def __init__(self, vocab: int = 500, emb: int = 32, hidden: int = 48) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.fc1 = nn.Linear(hidden, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lstm(self.emb(x))[0][:, -1, :]
        return self.fc2(torch.relu(self.fc1(h)))

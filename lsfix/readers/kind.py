"""What the numbers of an input are: logits, probabilities or log-probabilities.

Every score lsfix computes is defined on logits ``z``. Probabilities ``p = softmax(z)`` and
log-probabilities ``log p = z − logsumexp(z)`` carry the same information, but read as if they
were logits they give other numbers: ``softmax(p)`` is not ``p``, so MSP, AUROC and AURC
change (on iris, AUROC 0.75278 instead of 0.75389). lsfix therefore

* takes ``--input logits|probs|log-probs`` when the user says what the numbers are;
* otherwise **detects** rows that are probabilities (every value in ``[0, 1]``, every row
  summing to 1 within ``SUM_TOL``) or log-probabilities (every value ``<= 0``, every row's
  logsumexp within ``SUM_TOL`` of 0) on the first ``DETECT_ROWS`` rows, and says in one line
  what it read them as and how to say otherwise. Real logits essentially never pass either
  test for K >= 2 (each row would have to sum to exactly 1, or have logsumexp exactly 0).

What each kind becomes (the row source the scores read, float64):

``probs``
    ``log(max(p, tiny))`` — the log-probabilities. Every shift-invariant score (``msp``,
    ``logit_margin``, ``softmax_margin``, ``neg_entropy``, ``gini``, ``pnorm``, which centres
    the row) is then exactly what it is on the original logits, because ``log p`` differs from
    ``z`` by a per-row constant; ``max_logit`` and ``energy`` are not recoverable from
    probabilities and are computed on ``log p``. A zero probability (underflow) becomes
    ``log(tiny) ≈ −708``. A single column ``(N,)`` of probabilities is ``P(class 1)``: the rows
    become ``(log(1 − p), log p)``.
``log-probs``
    used as they are (``softmax(log p) = p``): the same numbers as above.
``logits``
    used as they are, and no detection runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsfix.errors import InputError, UsageError

KINDS = ("logits", "probs", "log-probs")
DETECT_ROWS = 4096
SUM_TOL = 1e-3
TINY = np.finfo(np.float64).tiny


def check_kind(kind: str | None) -> str | None:
    """Validate ``--input``."""
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--input {kind!r}: choose one of {', '.join(KINDS)}")
    return kind


def detect(rows: np.ndarray, binary: bool) -> str | None:
    """``"probs"``, ``"log-probs"`` or None (logits) for a sample of ``(n, k)`` rows.

    ``binary``: the rows came from a single column ``(0, z)``; then only "every value in
    [0, 1]" can be seen, which is ambiguous, and ``"binary-probs?"`` is returned.
    """
    if rows.size == 0:
        return None
    if binary:
        z = rows[:, 1]
        return "binary-probs?" if bool(((z >= 0) & (z <= 1)).all()) else None
    if rows.shape[1] < 2:
        return None
    if bool(((rows >= 0) & (rows <= 1)).all()) and bool(
            (np.abs(rows.sum(axis=1) - 1.0) <= SUM_TOL).all()):
        return "probs"
    if bool((rows <= 0).all()):
        m = rows.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(rows - m).sum(axis=1, keepdims=True)))[:, 0]
        if bool((np.abs(lse) <= SUM_TOL).all()):
            return "log-probs"
    return None


class ProbRows:
    """Row source over probabilities: yields ``log p`` rows (see the module docstring)."""

    def __init__(self, source: Any, name: str) -> None:
        self._source = source
        self.name = name
        self.binary = bool(getattr(source, "binary", False))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._source.shape)  # type: ignore[return-value]

    def __getattr__(self, attr: str) -> Any:  # anything else the source offers
        return getattr(self._source, attr)

    def rows(self, start: int, stop: int) -> np.ndarray:
        r = np.asarray(self._source.rows(start, stop), dtype=np.float64)
        if self.binary:  # (0, p): p is P(class 1)
            p = r[:, 1]
            self._check(p[:, None], start, sums=False)
            out = np.empty_like(r)
            out[:, 0] = np.log(np.maximum(1.0 - p, TINY))
            out[:, 1] = np.log(np.maximum(p, TINY))
            return out
        self._check(r, start, sums=True)
        return np.log(np.maximum(r, TINY))

    def _check(self, r: np.ndarray, start: int, *, sums: bool) -> None:
        bad = ~((r >= 0) & (r <= 1)).all(axis=1)
        what = "has a value outside [0, 1]"
        if sums and not bad.any():
            bad = np.abs(r.sum(axis=1) - 1.0) > SUM_TOL
            what = f"does not sum to 1 (within {SUM_TOL:g})"
        if bad.any():
            row = start + int(np.argmax(bad))
            raise InputError(f"--input probs: row {row} {what}; these are not probabilities "
                             "(pass --input logits)", file=self.name)


def apply(pred: Any, kind: str | None) -> str | None:
    """Read ``pred``'s logits as ``kind``; returns a one-line note when lsfix guessed.

    ``kind`` None means "not said": detection runs on the first rows and the note says what
    was assumed and how to say otherwise. The note is None when nothing needs saying.
    """
    src = getattr(pred, "logits", None)
    if src is None:
        if kind not in (None, "logits"):
            raise UsageError(f"--input {kind}: {pred.name} holds no logits or probabilities")
        return None
    binary = bool(getattr(src, "binary", False))
    if kind == "logits":
        return None
    if kind == "probs":
        pred.logits = ProbRows(src, pred.name)
        return None
    if kind == "log-probs":
        return None
    seen = detect(np.asarray(src.rows(0, min(src.shape[0], DETECT_ROWS))), binary)
    if seen == "probs":
        pred.logits = ProbRows(src, pred.name)
        return (f"{pred.name}: every row is in [0, 1] and sums to 1: read as probabilities "
                "(msp = max p, pnorm on log p); pass --input probs to say so, or --input "
                "logits if they are logits")
    if seen == "log-probs":
        return (f"{pred.name}: every row is <= 0 with logsumexp 0: read as log-probabilities "
                "(msp and pnorm as on the logits they came from; max_logit and energy are "
                "not); pass --input log-probs to say so, or --input logits")
    if seen == "binary-probs?":
        return (f"{pred.name}: a single column with every value in [0, 1]: read as logits; "
                "if it holds probabilities of class 1 pass --input probs (or --input logits "
                "to say they are logits)")
    return None


__all__ = ["KINDS", "ProbRows", "apply", "check_kind", "detect"]

"""Confidence scores from logits (higher = more confident), computed in float64, in chunks.

Every function takes logits of shape ``(n, K)`` (float16/32/64; a row source, an ndarray or an
``h5py.Dataset``; single-logit binary ``(n,)``/``(n, 1)`` is read as ``(0, z)``) and returns an
``(n,)`` float64 array. With ``z_(1) ≥ z_(2)`` the two largest logits, ``π = softmax(z)`` and
``S = Σ_{k ≠ argmax} exp(z_k − z_(1))`` (the sum that excludes the first maximum exactly):

``msp``
    ``log π_(1) = −log1p(S)`` — the **log** of the max softmax probability. Same ranking as MSP
    but without saturation: two rows whose MSP both round to 1.0 in float64 still rank apart.
    ``exp`` of the stored value is the MSP.
``max_logit``
    ``z_(1)``.
``logit_margin``
    ``z_(1) − z_(2)``.
``softmax_margin``
    ``π_(1) − π_(2) = −expm1(z_(2) − z_(1)) / (1 + S)``.
``neg_entropy``
    ``Σ_k π_k log π_k = Σ_k e_k s_k / (1 + S) − log1p(S)`` with ``s_k = z_k − z_(1)`` and
    ``e_k = exp(s_k)``: every log is finite, so an underflowed ``π_k = 0`` contributes exactly 0
    (the xlogy convention, never ``0·log 0``); ``≤ 0``, higher = more confident.
``gini``
    ``Σ_k π_k²`` (DOCTOR's confidence).
``energy``
    ``T · logsumexp(z / T)`` (the negative free energy), ``T = 1`` unless given.
``msp_ts``
    ``msp`` of ``z / T`` with ``T`` fitted by NLL on labelled held-out data
    (:func:`fit_temperature`).
``pnorm`` (MaxLogit-pNorm, Cattelan & Silva 2024)
    ``max_k (z_k − μ) / ‖z − μ‖_p`` with ``μ = mean_k z_k``; ``p = 0`` means no division
    (centred max logit). The norm is computed scaled, ``m · ‖x/m‖_p`` with ``m = max|x|``, so
    float16 or huge logits never overflow at large ``p``; constant logits (``x = 0``) score 0.
``pnorm_raw`` (un-centred MaxLogit-pNorm)
    ``max_k z_k / ‖z‖_p`` without centring (``p = 0``: the max logit), as the paper's
    Cattelan & Silva code computes it for Cityscapes (p = 8); scaled like ``pnorm``, all-zero
    logits score 0. It is not shift-invariant: adding a constant to every logit changes it.

The predicted class is ``argmax z`` with the first index on exact ties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsfix.core import tunepass
from lsfix.core.metrics import CONVENTIONS, aurc
from lsfix.core.rowblocks import piece_rows_for, run_pieces
from lsfix.core.source import RowSource, as_rows, chunk_rows_for, iter_chunks
from lsfix.core.stream import can_stream, check_labels_shape, msp_stream
from lsfix.core.tunepass import (
    TunePlan,
    TuneRows,
    TuneScratch,
    finish,
    finish_msp,
    finish_one,
    scale_rows,
    tune_rows,
)
from lsfix.errors import InputError, UsageError

#: The default p grid for tuning MaxLogit-pNorm.
P_GRID: tuple[int, ...] = tuple(range(10))

#: What the scores mean for a single-logit (binary) model, in one line (docs/metrics.md,
#: "Binary (single-logit) models"): the logits are ``(0, z)``, so every symmetric score ranks
#: by ``|z|`` and centred pNorm has nothing to normalise.
BINARY_NOTE = (
    "one logit per sample (binary, read as (0, z)): msp ranks by |z|; centred pNorm is |z|/2 "
    "at p = 0 (the same ranking) and 2^(-1/p) for every row at p >= 1 (all rows tie); "
    "max_logit = max(0, z) and energy = log(1 + e^z) are not confidence scores here"
)


def is_single_logit(logits: Any) -> bool:
    """Whether a row source holds one logit per sample (a binary sigmoid model)."""
    return bool(getattr(logits, "binary", False))


class _Chunk:
    """Shared intermediate values of one float64 chunk of logits (computed lazily, once)."""

    def __init__(self, z: np.ndarray) -> None:
        self.z = z
        self._top: np.ndarray | None = None
        self._rest: np.ndarray | None = None
        self._ex: np.ndarray | None = None
        self._shifted: np.ndarray | None = None
        self._second: np.ndarray | None = None

    @property
    def top(self) -> np.ndarray:
        if self._top is None:
            self._top = self.z.max(axis=1)
        return self._top

    @property
    def shifted(self) -> np.ndarray:
        """``z − z_max`` (≤ 0), shape (r, K)."""
        if self._shifted is None:
            self._shifted = self.z - self.top[:, None]
        return self._shifted

    @property
    def second(self) -> np.ndarray:
        """The second-largest logit per row (the largest again on an exact tie)."""
        if self._second is None:
            k = self.z.shape[1]
            self._second = np.partition(self.z, k - 2, axis=1)[:, k - 2]
        return self._second

    def _softmax_parts(self) -> None:
        z = self.z
        ex = np.exp(self.shifted)
        rows = np.arange(z.shape[0])
        first = np.argmax(z, axis=1)
        ex[rows, first] = 0.0
        self._rest = ex.sum(axis=1)
        ex[rows, first] = 1.0
        self._ex = ex

    @property
    def rest(self) -> np.ndarray:
        """``S``: sum of exp(z_k − z_max) over every k but the first argmax."""
        if self._rest is None:
            self._softmax_parts()
        assert self._rest is not None
        return self._rest

    @property
    def ex(self) -> np.ndarray:
        """exp(z − z_max), shape (r, K)."""
        if self._ex is None:
            self._softmax_parts()
        assert self._ex is not None
        return self._ex


# --------------------------------------------------------------------------------------------
# the score registry: a score is its kernel plus one registration


@dataclass(frozen=True)
class ScoreFamily:
    """A registered score (:func:`register_score`): everything lsfix needs to know of it.

    ``make(param)`` returns the function of one float64 :class:`_Chunk` that computes it (a
    fresh one per thread: some keep scratch buffers); ``param`` names its parameter
    (``"temperature"``, ``"p"``) or is ``None``; ``default`` is the value when none is given
    (``None``: the parameter is required, or fitted on labelled data when ``fitted``);
    ``tag`` names the stored dataset of a non-default parameter (``energy_t2``, ``pnorm_p2``;
    ``None``: the name alone); ``extra`` goes into the stored params; ``missing`` is the usage
    message when a required parameter is absent.
    """

    name: str
    summary: str
    make: Callable[[float | None], Callable[[Any], np.ndarray]]
    param: str | None = None
    default: float | None = None
    tag: str | None = None
    fitted: bool = False
    extra: tuple[tuple[str, Any], ...] = ()
    missing: str | None = None


#: Every score lsfix computes, in registration order (the order of ``--help`` and the docs).
SCORES: dict[str, ScoreFamily] = {}


def register_score(name: str, *, summary: str, param: str | None = None,
                   default: float | None = None, tag: str | None = None, fitted: bool = False,
                   extra: dict[str, Any] | None = None, missing: str | None = None,
                   factory: bool = False) -> Callable[[Any], Any]:
    """Register a score: its kernel (``kernel(chunk)``, or ``kernel(chunk, param)`` for a
    score with a parameter; with ``factory=True`` a function ``param -> kernel(chunk)``).
    From here it reaches :func:`parse_score`, :func:`compute_scores`, the CLI's choices and
    completion, JSON, tables, reports, the bootstrap and the docs' list of scores.

    A chunk (:class:`_Chunk`) gives float64 logits ``z`` of shape ``(r, K)`` and shared parts
    (``top``, ``second``, ``shifted``, ``rest``, ``ex``); the kernel returns ``(r,)`` float64,
    higher = more confident.
    """
    if not name.isidentifier() or name in SCORES:
        raise ValueError(f"score name {name!r} is taken or not an identifier")

    def deco(kernel: Any) -> Any:
        if factory:
            make = kernel
        elif param is None:
            def make(_v: float | None, _k: Any = kernel) -> Any:
                return _k
        else:
            def make(v: float | None, _k: Any = kernel, _d: Any = default) -> Any:
                value = _d if v is None else v
                return lambda ch: _k(ch, value)
        SCORES[name] = ScoreFamily(name, " ".join(summary.split()), make, param, default,
                                   tag, fitted, tuple((extra or {}).items()), missing)
        return kernel

    return deco


def plain_scores() -> tuple[str, ...]:
    """Registered scores computable from the logits alone (no required or fitted parameter)."""
    return tuple(n for n, f in SCORES.items() if f.param is None or f.default is not None)


def score_families() -> tuple[str, ...]:
    """Every registered score name."""
    return tuple(SCORES)



@register_score("msp", summary="log of the max softmax probability, −log1p(S)")
def _msp(ch: _Chunk) -> np.ndarray:
    return -np.log1p(ch.rest)


@register_score("max_logit", summary="the largest logit")
def _max_logit(ch: _Chunk) -> np.ndarray:
    return ch.top.copy()


@register_score("logit_margin", summary="largest minus second-largest logit")
def _logit_margin(ch: _Chunk) -> np.ndarray:
    return ch.top - ch.second


@register_score("softmax_margin", summary="largest minus second-largest softmax probability")
def _softmax_margin(ch: _Chunk) -> np.ndarray:
    return -np.expm1(ch.second - ch.top) / (1.0 + ch.rest)


@register_score("neg_entropy", summary="negative Shannon entropy of the softmax (nats)")
def _neg_entropy(ch: _Chunk) -> np.ndarray:
    # Σ π_k log π_k with π_k = e_k/(1+S), log π_k = s_k − log1p(S), s = z − z_max:
    # = Σ e_k s_k / (1+S) − log1p(S)   (Σ e_k = 1+S); e_k = 0 terms contribute exactly 0
    return np.einsum("ij,ij->i", ch.ex, ch.shifted) / (1.0 + ch.rest) - np.log1p(ch.rest)


@register_score("gini", summary="sum of squared softmax probabilities (DOCTOR)")
def _gini(ch: _Chunk) -> np.ndarray:
    denom = 1.0 + ch.rest
    return np.sum(ch.ex * ch.ex, axis=1) / (denom * denom)


def _lse(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1)
    ex = np.exp(z - top[:, None])
    return top + np.log(ex.sum(axis=1))


@register_score("energy", summary="T · logsumexp(z / T), T = 1 unless given", param="temperature",
                default=1.0, tag="energy_t")
def _energy(ch: _Chunk, temperature: float = 1.0) -> np.ndarray:
    if temperature == 1.0:
        return ch.top + np.log1p(ch.rest)
    return temperature * _lse(ch.z / temperature)


@register_score("msp_ts", summary="msp of z / T, T fitted by NLL on labelled held-out data",
                param="temperature", tag=None, fitted=True)
def _msp_ts(ch: _Chunk, temperature: float) -> np.ndarray:
    return _msp(_Chunk(ch.z / temperature))


class _PNormWork:
    """Scratch buffers reused across chunks (fresh multi-MB temporaries per chunk cost more
    in page faults than the arithmetic)."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        buf = self._bufs.get(name)
        if buf is None or buf.shape[1] != shape[1] or buf.shape[0] < shape[0]:
            buf = np.empty(shape)
            self._bufs[name] = buf
        return buf[: shape[0]]


def _pnorm_many(z: np.ndarray, ps: Sequence[float], work: _PNormWork | None = None
                ) -> np.ndarray:
    """MaxLogit-pNorm for several p at once; returns shape (r, len(ps)).

    Rows whose logits are all equal score exactly 0 (tested on the centred values,
    ``max x == min x``, so a float mean that is off by one ulp cannot turn them into ±noise).
    For ``p = 1`` the norm of the centred vector is computed as ``2·Σ_k max(x_k, 0)`` (equal to
    ``Σ|x_k|`` because the centred values sum to 0), so a row with a single positive centred
    logit scores exactly ½ and such rows tie exactly instead of by rounding noise. With two
    classes (a single binary logit included) the centred logits are ``(−d/2, d/2)`` and every
    ``p ≥ 1`` gives the constant ``2^(−1/p)``, written exactly (a computed norm would spread
    it over two values by rounding).
    """
    work = work or _PNormWork()
    shape = (z.shape[0], z.shape[1])
    x = work.get("x", shape)
    np.subtract(z, z.mean(axis=1, keepdims=True), out=x)
    top = x.max(axis=1)
    low = x.min(axis=1)
    flat = top == low  # every logit equal (x is z shifted by one value)
    if flat.any():  # placeholder values (no 0/0); those rows are set to 0 below
        x[flat] = 1.0
        top[flat] = low[flat] = 1.0
    m = np.maximum(top, -low)  # max |x|
    a = work.get("a", shape)
    np.abs(x, out=a)
    scale_rows(a, m)  # |x| / max|x|, in [0, 1]: no overflow at any p
    rel_top = top / m  # max(x)/m, in (0, 1]
    out = np.empty((z.shape[0], len(ps)))
    if any(float(p) == 1 for p in ps):
        pos = work.get("t", shape)
        np.maximum(x, 0.0, out=pos)
        pos_sum = pos.sum(axis=1)
    sums = _power_sums(a, {int(p) for p in ps if float(p).is_integer() and 2 <= p <= 9}, work)
    for i, p in enumerate(ps):
        pf = float(p)
        if pf == 0:
            out[:, i] = top
        elif pf == 1:
            out[:, i] = top / (2.0 * pos_sum)
        else:
            s_p = sums.get(int(pf)) if pf.is_integer() else None
            if s_p is None:
                s_p = np.power(a, pf).sum(axis=1)
            out[:, i] = rel_top / np.power(s_p, 1.0 / pf)
    if z.shape[1] == 2:  # two classes (a single logit included): centred (-d/2, d/2), so
        for i, p in enumerate(ps):  # every p >= 1 gives exactly 2^(-1/p): one tie, no noise
            if float(p) != 0:
                out[:, i] = 2.0 ** (-1.0 / float(p))
    out[flat] = 0.0
    return out


def _pnorm_raw(z: np.ndarray, p: float) -> np.ndarray:
    """Un-centred MaxLogit-pNorm ``max_k z_k / ‖z‖_p`` (``p = 0``: ``max_k z_k``), per row
    (:func:`_pnorm_raw_many` with one p: the fixed score and the tuned one are the same
    numbers)."""
    return _pnorm_raw_many(z, [p])[:, 0]


def _pnorm_raw_many(z: np.ndarray, ps: Sequence[float], work: _PNormWork | None = None
                    ) -> np.ndarray:
    """Un-centred MaxLogit-pNorm for several p at once; shape (r, len(ps)).

    Computed scaled, ``(max z / m) / ‖z / m‖_p`` with ``m = max_k |z_k|``, so no power
    overflows; a row of zeros scores 0. ``|z| / m`` is formed once for every p, and integer
    ``p`` in 2..9 take their power sums from products of stored powers (:func:`_power_sums`),
    as centred pNorm does."""
    work = work or _PNormWork()
    top = z.max(axis=1).astype(np.float64)
    a = work.get("raw_a", (z.shape[0], z.shape[1]))
    np.abs(z, out=a)
    m = a.max(axis=1)
    zero = m == 0
    m_safe = np.where(zero, 1.0, m)
    np.divide(a, m_safe[:, None], out=a)  # |z| / max|z|, in [0, 1]
    rel_top = top / m_safe
    sums = _power_sums(a, {int(p) for p in ps if float(p).is_integer() and 2 <= p <= 9}, work)
    out = np.empty((z.shape[0], len(ps)))
    for i, p in enumerate(ps):
        pf = float(p)
        if pf == 0:
            out[:, i] = top
            continue
        s_p = sums.get(int(pf)) if pf.is_integer() and pf != 1 else None
        if s_p is None:
            s_p = a.sum(axis=1) if pf == 1 else np.power(a, pf).sum(axis=1)
        s_p = np.where(zero, 1.0, s_p)  # a row of zeros: no 0/0 (set to 0 below)
        out[:, i] = rel_top / np.power(s_p, 1.0 / pf)
    out[zero] = 0.0
    return out


@register_score("pnorm", summary="MaxLogit-pNorm: max_k (z_k − μ) / ‖z − μ‖_p, μ the mean logit",
                param="p", tag="pnorm_p", fitted=True, factory=True,
                missing="pnorm needs p: use pnorm:P (e.g. pnorm:2), or 'lsfix normalise' to "
                        "tune p")
def _pnorm_kernel(p: float | None) -> Callable[[_Chunk], np.ndarray]:
    work = _PNormWork()
    pf = float(p)  # type: ignore[arg-type]
    return lambda ch: _pnorm_many(ch.z, [pf], work)[:, 0]


@register_score("pnorm_raw", summary="un-centred MaxLogit-pNorm: max_k z_k / ‖z‖_p", param="p",
                tag="pnorm_raw_p", extra={"centred": False}, factory=True,
                missing="pnorm_raw needs p: use pnorm_raw:P (e.g. pnorm_raw:8)")
def _pnorm_raw_kernel(p: float | None) -> Callable[[_Chunk], np.ndarray]:
    work = _PNormWork()
    pf = float(p)  # type: ignore[arg-type]
    return lambda ch: _pnorm_raw_many(ch.z, [pf], work)[:, 0]


def _power_sums(a: np.ndarray, wanted: set[int], work: _PNormWork) -> dict[int, np.ndarray]:
    """``Σ_k a_k^p`` per row for integer ``p`` in 2..9: powers up to ``⌈max p / 2⌉`` are
    stored, and each sum is one fused multiply-reduce (``einsum``) of two of them."""
    if not wanted:
        return {}
    need = max(wanted)
    pw: dict[int, np.ndarray] = {1: a}
    for q in range(2, -(-need // 2) + 1):
        buf = work.get(f"p{q}", a.shape)
        np.multiply(pw[q // 2], pw[q - q // 2], out=buf)
        pw[q] = buf
    return {p: np.einsum("ij,ij->i", pw[p // 2], pw[p - p // 2]) for p in sorted(wanted)}


def _check_p(p: float) -> float:
    pf = float(p)
    if not math.isfinite(pf) or pf < 0:
        raise UsageError(f"p must be a finite number >= 0, got {p!r}")
    return pf


def _check_temperature(t: float) -> float:
    tf = float(t)
    if not math.isfinite(tf) or tf <= 0:
        raise UsageError(f"temperature must be a finite number > 0, got {t!r}")
    return tf


@dataclass(frozen=True)
class ScoreSpec:
    """A registered score with its parameter: ``family`` in :data:`SCORES`."""

    family: str
    param: float | None = None

    @property
    def name(self) -> str:
        """Dataset name: ``msp``, ``pnorm_p2``, ``energy_t2``, ``msp_ts``."""
        fam = SCORES[self.family]
        if fam.tag is None or self.param is None or self.param == fam.default:
            return self.family
        return f"{fam.tag}{_fmt(self.param)}"

    def params(self) -> dict[str, Any]:
        fam = SCORES[self.family]
        if fam.param is None:
            return {}
        value = fam.default if self.param is None else self.param
        return {fam.param: value, **dict(fam.extra)}

    def fn(self) -> Callable[[_Chunk], np.ndarray]:
        return SCORES[self.family].make(self.param)


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    return str(int(v)) if float(v).is_integer() else repr(float(v)).replace(".", "_")


def parse_score(text: str) -> ScoreSpec:
    """Parse ``msp``, ``pnorm:P``, ``energy:T``, ``msp_ts:T`` (``msp_ts`` alone = to be fitted).

    Raises
    ------
    UsageError
        For an unknown name or a bad parameter.
    """
    name, _, arg = text.strip().partition(":")
    name = name.replace("-", "_")
    fam = SCORES.get(name)
    if fam is None:
        raise UsageError(f"unknown score {text[:80]!r}; choose from {', '.join(SCORES)}")
    if fam.param is None:
        if arg:
            raise UsageError(f"score {name!r} takes no parameter (got {text[:80]!r})")
        return ScoreSpec(name)
    if not arg:
        if fam.missing is not None:
            raise UsageError(fam.missing)
        return ScoreSpec(name)  # the default, or fitted later (msp_ts)
    try:
        val = float(arg)
    except ValueError:
        raise UsageError(f"bad parameter in {text[:80]!r}: {arg[:40]!r} is not a number"
                         ) from None
    check = _check_p if fam.param == "p" else _check_temperature
    return ScoreSpec(name, check(val))


def _single(spec: ScoreSpec, logits: Any) -> np.ndarray:
    return compute_scores(logits, [spec])[spec.name]


def msp(logits: Any) -> np.ndarray:
    """log max-softmax-probability per row (see module docstring)."""
    return _single(ScoreSpec("msp"), logits)


def max_logit(logits: Any) -> np.ndarray:
    """Largest logit per row."""
    return _single(ScoreSpec("max_logit"), logits)


def logit_margin(logits: Any) -> np.ndarray:
    """Largest minus second-largest logit."""
    return _single(ScoreSpec("logit_margin"), logits)


def softmax_margin(logits: Any) -> np.ndarray:
    """Largest minus second-largest softmax probability."""
    return _single(ScoreSpec("softmax_margin"), logits)


def neg_entropy(logits: Any) -> np.ndarray:
    """Negative Shannon entropy of the softmax (nats)."""
    return _single(ScoreSpec("neg_entropy"), logits)


def gini(logits: Any) -> np.ndarray:
    """Sum of squared softmax probabilities."""
    return _single(ScoreSpec("gini"), logits)


def energy(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """``T · logsumexp(z / T)``."""
    return _single(ScoreSpec("energy", _check_temperature(temperature)), logits)


def msp_ts(logits: Any, temperature: float) -> np.ndarray:
    """log-MSP of ``z / T``."""
    return _single(ScoreSpec("msp_ts", _check_temperature(temperature)), logits)


def pnorm(logits: Any, p: float) -> np.ndarray:
    """MaxLogit-pNorm with a fixed ``p`` (``p = 0``: centred max logit)."""
    return _single(ScoreSpec("pnorm", _check_p(p)), logits)


def _scores_in_pieces(src: Any, specs: list[ScoreSpec], out: dict[str, np.ndarray],
                      labels: np.ndarray | None, correct: np.ndarray | None,
                      threads: int | None) -> None:
    """The general path over :func:`lsfix.core.rowblocks.run_pieces`: each piece is widened
    to float64 in a per-thread buffer and scored like a chunk (row-wise, so the same bits).
    Every thread gets its own score functions (some keep scratch buffers)."""
    k = src.shape[1]

    def scratch(rows: int) -> tuple[np.ndarray, list[tuple[str, Callable[[_Chunk], np.ndarray]]]]:
        return np.empty((rows, k), dtype=np.float64), [(s.name, s.fn()) for s in specs]

    def piece(z: np.ndarray, start: int, sc: tuple[np.ndarray, list[Any]]) -> bool:
        work, fns = sc
        stop = start + z.shape[0]
        w = work[: z.shape[0]]
        w[...] = z
        if not np.isfinite(w).all():
            return True
        ch = _Chunk(w)
        for name, fn in fns:
            out[name][start:stop] = fn(ch)
        if correct is not None:
            assert labels is not None
            np.equal(np.argmax(w, axis=1), labels[start:stop], out=correct[start:stop])
        return False

    run_pieces(src, piece, scratch, threads=threads)


def compute_scores(
    logits: Any,
    specs: Iterable[ScoreSpec],
    *,
    labels: np.ndarray | None = None,
    chunk_rows: int | None = None,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Compute several scores in one chunked pass over the logits.

    Parameters
    ----------
    logits : row source or array-like, shape (n, K)
    specs : iterable of ScoreSpec
        Fully parameterised (``msp_ts`` needs its temperature).
    labels : ndarray of int, shape (n,), optional
        When given, the result also holds ``"_correct"``: ``argmax z == label``.
    chunk_rows : int, optional
        Rows per chunk (default: about 8 M values per chunk).
    threads : int, optional
        Worker threads for plain ``(N, K)`` logits (default: ``LSFIX_THREADS`` or the CPUs,
        :func:`lsfix.core.rowblocks.thread_count`); the values never depend on it.

    Returns
    -------
    dict
        Score name -> float64 array of shape (n,).
    """
    src = as_rows(logits)
    n, _ = src.shape
    specs = list(specs)
    if chunk_rows is None and [s.name for s in specs] == ["msp"] and can_stream(src):
        # the one-pass kernel: the same float64 operations, buffers allocated once
        lab = None
        if labels is not None:
            lab = np.asarray(labels)
            check_labels_shape(lab, n)
        value, correct = msp_stream(src, lab, threads=threads)  # type: ignore[arg-type]
        return {"msp": value} if correct is None else {"msp": value, "_correct": correct}
    for s in specs:
        if s.family == "msp_ts" and s.param is None:
            raise UsageError("msp_ts needs a temperature: give msp_ts:T, or fit T on labelled "
                             "data (fit_temperature)")
        if s.family == "pnorm" and s.param is None:
            raise UsageError("pnorm needs p: give pnorm:P, or tune p on labelled data "
                             "(tune_pnorm)")
        if s.family == "pnorm_raw" and s.param is None:
            raise UsageError("pnorm_raw needs p (pnorm_raw:P)")
    fns = [(s.name, s.fn()) for s in specs]
    out = {name: np.empty(n) for name, _ in fns}
    correct = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise InputError(f"labels shape {labels.shape} does not match logits rows ({n},)")
        correct = np.empty(n, dtype=bool)
    if chunk_rows is None and can_stream(src):
        _scores_in_pieces(src, specs, out, labels, correct, threads)
        if correct is not None:
            out["_correct"] = correct
        return out
    for start, z in iter_chunks(src, chunk_rows):
        ch = _Chunk(z)
        stop = start + z.shape[0]
        for name, fn in fns:
            out[name][start:stop] = fn(ch)
        if correct is not None:
            assert labels is not None
            correct[start:stop] = np.argmax(z, axis=1) == labels[start:stop]
    if correct is not None:
        out["_correct"] = correct
    return out


def predictions(logits: Any, *, chunk_rows: int | None = None) -> np.ndarray:
    """Predicted class per row: ``argmax z`` (first index on exact ties), int64."""
    src = as_rows(logits)
    out = np.empty(src.shape[0], dtype=np.int64)
    for start, z in iter_chunks(src, chunk_rows):
        out[start : start + z.shape[0]] = np.argmax(z, axis=1)
    return out


def correctness(logits: Any, labels: Any, *, chunk_rows: int | None = None) -> np.ndarray:
    """``argmax z == label`` per row (bool)."""
    pred = predictions(logits, chunk_rows=chunk_rows)
    lab = np.asarray(labels)
    if lab.shape != pred.shape:
        raise InputError(f"labels shape {lab.shape} does not match logits rows {pred.shape}")
    return pred == lab


# --------------------------------------------------------------------------------------------
# temperature scaling


def _nll_derivs(src: RowSource, labels: np.ndarray, beta: float,
                chunk_rows: int | None) -> tuple[float, float, float]:
    """Mean NLL of softmax(beta z) and its first two derivatives in beta."""
    n = src.shape[0]
    nll = g = h = 0.0
    for start, z in iter_chunks(src, chunk_rows):
        y = labels[start : start + z.shape[0]]
        bz = beta * z
        top = bz.max(axis=1, keepdims=True)
        ex = np.exp(bz - top)
        s = ex.sum(axis=1, keepdims=True)
        p = ex / s
        zy = z[np.arange(z.shape[0]), y]
        ez = np.sum(p * z, axis=1)
        ez2 = np.sum(p * z * z, axis=1)
        nll += float(np.sum(top[:, 0] + np.log(s[:, 0]) - beta * zy))
        g += float(np.sum(ez - zy))
        h += float(np.sum(np.maximum(ez2 - ez * ez, 0.0)))
    return nll / n, g / n, h / n


#: Temperatures are fitted within these bounds (a separable fit set would send T to 0).
T_BOUNDS = (1e-2, 1e2)


def fit_temperature(logits: Any, labels: Any, *, chunk_rows: int | None = None,
                    tol: float = 1e-10, max_iter: int = 100) -> float:
    """Temperature ``T`` minimising the mean NLL of ``softmax(z / T)`` on labelled data.

    The NLL is convex in ``β = 1/T``; safeguarded Newton steps inside a bracket
    ``[1/T_max, 1/T_min]`` (:data:`T_BOUNDS`) converge to ``|Δβ| ≤ tol·β``. When the optimum
    lies outside the bounds the bound is returned.
    """
    src = as_rows(logits)
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (src.shape[0],):
        raise InputError(f"labels shape {y.shape} does not match logits rows ({src.shape[0]},)")
    lo, hi = 1.0 / T_BOUNDS[1], 1.0 / T_BOUNDS[0]
    _, g_lo, _ = _nll_derivs(src, y, lo, chunk_rows)
    if g_lo >= 0:
        return T_BOUNDS[1]
    _, g_hi, _ = _nll_derivs(src, y, hi, chunk_rows)
    if g_hi <= 0:
        return T_BOUNDS[0]
    beta = 1.0
    for _ in range(max_iter):
        _, g, h = _nll_derivs(src, y, beta, chunk_rows)
        if g == 0:
            break
        if g > 0:
            hi = beta
        else:
            lo = beta
        step = beta - g / h if h > 0 else math.nan
        new = step if (math.isfinite(step) and lo < step < hi) else 0.5 * (lo + hi)
        if abs(new - beta) <= tol * beta or hi - lo <= tol * beta:
            beta = new
            break
        beta = new
    return 1.0 / beta


# --------------------------------------------------------------------------------------------
# MaxLogit-pNorm tuning


@dataclass(frozen=True)
class PNormFit:
    """A fitted MaxLogit-pNorm choice, storable as JSON (:meth:`to_dict`).

    Attributes
    ----------
    p : float or None
        The chosen ``p``; ``None`` when MSP is the fallback.
    fallback_msp : bool
        True when MSP's held-out AURC was no worse than the best ``p``.
    grid : tuple of (p, aurc)
        Held-out AURC of every ``p`` tried.
    msp_aurc : float
        Held-out AURC of MSP.
    convention : str
        AURC convention of the objective.
    n_fit : int
        Samples the choice was made on.
    n_errors : int
        Wrong predictions among them (what the AURC objective ranks; not saved by
        ``to_dict``: 0 for a fit read back from JSON).
    split : dict
        How the fit samples were chosen (e.g. ``{"kind": "file", "file": "val.h5"}``).
    centred : bool
        Which MaxLogit-pNorm: centred (``pnorm``, the default) or un-centred (``pnorm_raw``,
        the paper's Cityscapes variant). Saved as ``"centred"`` and in ``"method"``
        (``maxlogit_pnorm`` or ``maxlogit_pnorm_raw``).
    """

    p: float | None
    fallback_msp: bool
    grid: tuple[tuple[float, float], ...]
    msp_aurc: float
    convention: str = "lsfix"
    n_fit: int = 0
    split: dict[str, Any] = field(default_factory=dict)
    n_errors: int = field(default=0, compare=False)
    #: False: the un-centred variant ``max_k z_k / ‖z‖_p`` (``pnorm_raw``) was tuned
    centred: bool = True

    FORMAT = "lsfix.pnorm_fit"
    VERSION = 1

    @property
    def spec(self) -> ScoreSpec:
        """The score this fit selects (``pnorm:p`` or ``pnorm_raw:p``, or ``msp`` on
        fallback)."""
        if self.p is None:
            return ScoreSpec("msp")
        return ScoreSpec("pnorm" if self.centred else "pnorm_raw", self.p)

    def score(self, logits: Any) -> np.ndarray:
        """Apply the fitted choice to new logits."""
        return compute_scores(logits, [self.spec])[self.spec.name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT,
            "version": self.VERSION,
            "method": "maxlogit_pnorm" if self.centred else "maxlogit_pnorm_raw",
            "centred": self.centred,
            "p": _plain(self.p),
            "fallback_msp": self.fallback_msp,
            "objective": f"aurc ({self.convention})",
            "convention": self.convention,
            "grid": [{"p": _plain(p), "aurc": a} for p, a in self.grid],
            "msp_aurc": self.msp_aurc,
            "n_fit": self.n_fit,
            "split": self.split,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PNormFit:
        """Inverse of :meth:`to_dict`; raises :class:`InputError` on a malformed dict."""
        try:
            if d.get("format") != cls.FORMAT:
                raise InputError(f"not an lsfix p-norm fit (format {d.get('format')!r})")
            if int(d.get("version", 0)) > cls.VERSION:
                raise InputError(f"fit version {d.get('version')} is newer than this lsfix reads")
            p = d["p"]
            fallback = bool(d["fallback_msp"])
            if (p is None) != fallback:
                raise InputError("inconsistent fit: p must be null exactly when fallback_msp")
            conv = str(d.get("convention", "lsfix"))
            if conv not in CONVENTIONS:
                raise InputError(f"unknown convention {conv!r} in fit")
            centred = d.get("centred", True)  # fits saved before the variant existed: centred
            if not isinstance(centred, bool):
                raise InputError(f"'centred' must be true or false, got {centred!r}")
            method = d.get("method", "maxlogit_pnorm")
            if method != ("maxlogit_pnorm" if centred else "maxlogit_pnorm_raw"):
                raise InputError(f"inconsistent fit: method {method!r} with centred={centred}")
            return cls(
                p=None if p is None else _check_p(p),
                fallback_msp=fallback,
                grid=tuple((float(g["p"]), float(g["aurc"])) for g in d.get("grid", [])),
                msp_aurc=float(d.get("msp_aurc", math.nan)),
                convention=conv,
                n_fit=int(d.get("n_fit", 0)),
                split=dict(d.get("split", {})),
                centred=centred,
            )
        except (KeyError, TypeError, ValueError, UsageError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"malformed p-norm fit: {exc}") from None


def _plain(p: float | None) -> float | int | None:
    if p is None:
        return None
    return int(p) if float(p).is_integer() else float(p)


def _tune_pass(src: RowSource, y: np.ndarray, plan: TunePlan, out: TuneRows,
               correct: np.ndarray, chunk_rows: int | None, threads: int | None,
               mask: np.ndarray | None) -> None:
    """One read of ``src``: fill ``out`` (every p's per-row parts and MSP's ``S``) and
    ``correct`` for every row, or for the rows where ``mask`` is True (in row order).
    Plain float logits go through :func:`lsfix.core.rowblocks.run_pieces` (stored dtype,
    storage-aligned blocks, pieces in worker threads, one scratch per thread); other sources
    (binary, dense, or an explicit ``chunk_rows``) through their float64 chunks, in the
    calling thread. Each row's numbers come from that row alone. Every row is checked finite,
    selected or not."""
    n, k = src.shape
    rows = min(max(n, 1), piece_rows_for(k, tunepass.SUB_ELEMENTS))  # float64 planes
    first_out = None if mask is None else np.concatenate(([0], np.cumsum(mask)))
    # a sparse mask: wider pieces (up to 16x), so a piece still selects about `rows` rows
    spread = 1 if first_out is None else min(16, max(1, n // max(1, int(first_out[-1]))))
    piece_elements = tunepass.SUB_ELEMENTS * spread
    p_rows = min(max(n, 1), piece_rows_for(k, piece_elements))

    def piece(z: np.ndarray, start: int, sc: TuneScratch) -> bool:
        r = z.shape[0]
        a, hi, lo = sc.arg[:r], sc.zmax[:r], sc.zmin[:r]
        if not sc.extremes(z):
            return True
        yz = y[start : start + r]
        o = start
        if first_out is not None:
            take = np.flatnonzero(mask[start : start + r])  # type: ignore[index]
            if take.shape[0] == 0:
                return False
            if take.shape[0] < r:
                z = np.take(z, take, axis=0, out=sc.taken(z.dtype)[: take.shape[0]])
                a, hi, lo, yz = a[take], hi[take], lo[take], yz[take]
            o = int(first_out[start])
        m = z.shape[0]
        np.equal(a, yz, out=correct[o : o + m])
        for q in range(0, m, sc.rows):
            e = min(m, q + sc.rows)
            tune_rows(z[q:e], a[q:e], hi[q:e], lo[q:e], sc, out.part(o + q, o + e))
        return False

    def scratch(piece_rows: int = p_rows) -> TuneScratch:
        return TuneScratch(rows, k, plan, piece_rows=piece_rows)

    if chunk_rows is None and can_stream(src):
        run_pieces(src, piece, scratch, threads=threads, piece_elements=piece_elements)
        return
    sc = scratch()
    for start, z in iter_chunks(src, chunk_rows or chunk_rows_for(k)):
        for p0 in range(0, z.shape[0], p_rows):
            if piece(z[p0 : p0 + p_rows], start + p0, sc):
                bad = start + p0 + int(np.argmin(np.isfinite(z[p0 : p0 + p_rows]).all(axis=1)))
                raise InputError(f"non-finite logit value(s) (NaN or inf); first in row {bad}")


def _tune_parts(src: RowSource, y: np.ndarray, ps: Sequence[float], chunk_rows: int | None,
                threads: int | None, mask: np.ndarray | None
                ) -> tuple[TunePlan, TuneRows, np.ndarray]:
    """One read of ``src``: the per-row parts of every ``p`` and MSP, and ``argmax == y``, for
    the rows of ``src`` (all, or those where ``mask`` is True)."""
    plan = TunePlan.for_grid(ps)
    m = src.shape[0] if mask is None else int(np.count_nonzero(mask))
    rows = TuneRows.empty(m, plan)
    correct = np.empty(m, dtype=bool)
    _tune_pass(src, y, plan, rows, correct, chunk_rows, threads, mask)
    return plan, rows, correct


def _grid_scores(src: RowSource, y: np.ndarray, ps: Sequence[float], chunk_rows: int | None,
                 threads: int | None = None, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``p``'s pNorm score ``(len(ps), m)``, log-MSP ``(m,)`` and ``argmax == y`` of
    the ``m`` rows of ``src`` (all, or those where ``mask`` is True) from one read of
    ``src``; bit-identical to :func:`pnorm` and :func:`msp` (lsfix.core.tunepass)."""
    plan, rows, correct = _tune_parts(src, y, ps, chunk_rows, threads, mask)
    conf, msp_conf = finish(rows, ps, plan, src.shape[1])
    return conf, msp_conf, correct


def tune_pnorm(
    logits: Any,
    labels: Any,
    *,
    grid: Sequence[float] = P_GRID,
    convention: str = "lsfix",
    split: dict[str, Any] | None = None,
    chunk_rows: int | None = None,
    threads: int | None = None,
    centred: bool = True,
    rows: Any = None,
) -> PNormFit:
    """Choose ``p`` for MaxLogit-pNorm by held-out AURC, falling back to MSP.

    Every ``p`` in ``grid`` and MSP are scored in one pass over the logits (read once, in
    blocks; never loaded whole: lsfix.core.tunepass); the ``p`` with the lowest AURC wins
    (ties: the smallest ``p``). MSP is chosen instead when its AURC is ``≤`` that best AURC.

    Parameters
    ----------
    logits : array-like, shape (n, K)
        Held-out logits (not the data the result will be reported on).
    labels : array-like of int, shape (n,)
    grid : sequence of float
        Candidate ``p`` values (default ``0..9``).
    convention : str
        AURC convention of the objective.
    chunk_rows : int, optional
        Read the logits through float64 chunks of this many rows (in the calling thread).
    threads : int, optional
        Worker threads for plain ``(N, K)`` logits (default: ``LSFIX_THREADS`` or the CPUs,
        :func:`lsfix.core.rowblocks.thread_count`); the fit never depends on it.
    centred : bool
        ``False`` tunes the un-centred variant ``max_k z_k / ‖z‖_p`` (``pnorm_raw``) with the
        same objective and the same MSP fallback (scored by the general chunked path, in the
        calling thread).
    rows : array of bool, shape (n,), optional
        Tune on these rows only (``labels`` still has one entry per row of ``logits``). The
        logits are read once, whole blocks in their stored dtype; every row is checked
        finite. The fit equals tuning on the selected rows alone.
    """
    ps = [_check_p(p) for p in grid]
    if not ps:
        raise UsageError("the p grid is empty")
    src = as_rows(logits)
    n = src.shape[0]
    y = np.asarray(labels)
    if y.shape != (n,):
        raise InputError(f"labels shape {y.shape} does not match logits rows ({n},)")
    mask = None
    if rows is not None:
        mask = np.asarray(rows)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise UsageError(f"rows must be a boolean mask of shape ({n},); got {mask.dtype} "
                             f"{mask.shape}")
        n = int(np.count_nonzero(mask))
    if centred:  # one p's scores in memory at a time: ~100 B per row in all, not ~200
        plan, parts, correct = _tune_parts(src, y, ps, chunk_rows, threads, mask)
        buf = np.empty(n)
        results = tuple((p, aurc(finish_one(parts, p, plan, src.shape[1], out=buf), correct,
                                 convention)) for p in ps)
        msp_conf = finish_msp(parts)
        del parts, buf
    else:  # the general chunked path (float64 chunks, calling thread); rows kept in order
        conf = np.empty((len(ps), n))
        msp_conf = np.empty(n)
        correct = np.empty(n, dtype=bool)
        work = _PNormWork()
        at = 0
        for start, z in iter_chunks(src, chunk_rows):
            yy = y[start : start + z.shape[0]]
            if mask is not None:
                sel = mask[start : start + z.shape[0]]
                z, yy = z[sel], yy[sel]
            r = z.shape[0]
            if r == 0:
                continue
            conf[:, at : at + r] = _pnorm_raw_many(z, ps, work).T
            msp_conf[at : at + r] = _msp(_Chunk(z))
            correct[at : at + r] = np.argmax(z, axis=1) == yy
            at += r
        results = tuple((p, aurc(conf[i], correct, convention)) for i, p in enumerate(ps))
    best_p, best = min(results, key=lambda t: (t[1], t[0]))
    msp_a = aurc(msp_conf, correct, convention)
    fallback = msp_a <= best
    return PNormFit(
        p=None if fallback else best_p,
        fallback_msp=fallback,
        grid=results,
        msp_aurc=msp_a,
        convention=convention,
        n_fit=n,
        split=split or {},
        n_errors=int(n - correct.sum()),
        centred=centred,
    )


#: The built-in scores that need no fitted or required parameter (a snapshot at import;
#: :func:`plain_scores` also lists scores registered later).
PLAIN_SCORES: tuple[str, ...] = plain_scores()
#: Every built-in score name (a snapshot at import; :func:`score_families` is live).
SCORE_FAMILIES: tuple[str, ...] = score_families()

"""The one p-fitting policy: how a command gets MaxLogit-pNorm's ``p`` (and ``msp_ts``'s T).

:func:`choose_fit` is called by ``normalise``, ``compare`` and ``audit`` (and the library's
``evaluate(..., fit=...)``), so the same request gives the same choice everywhere. The ways
of choosing, exactly one of them:

``fixed``     ``p`` given (``--p``): nothing is tuned.
``params``    a fit saved earlier (``--params P.json``): reused as saved, nothing re-tuned.
``file``      tuned on another labelled file (``--fit VAL``), every row that is not an
              ignored pixel.
``fraction``  tuned on a random ``fraction`` of the input's rows (whole images of a dense
              input), seeded; those rows are the ``fit_mask``, left out of every number.
``binary``    a single-logit model: nothing to tune (centred pNorm of ``(0, z)`` ranks like
              MSP, or is a constant); ``pnorm`` is MSP.

**Tuning** (``file``/``fraction``): every ``p`` of the grid and MSP are scored on the fit rows
(:func:`lsfix.core.tune_pnorm`, AURC in ``convention``); the **point rule** picks the lowest
AURC and keeps MSP when it is no worse. With ``select="test"`` (the default) a switch away
from MSP must also be **significant**: :func:`lsfix.core.selection.select_better` over the
fit rows, every ``p`` of the grid a candidate, simultaneous one-sided upper bounds at
``level`` (95 %) from ``n_boot`` paired bootstrap replicates; MSP is kept unless some ``p``'s
upper bound on ``AURC(p) − AURC(MSP)`` lies below 0, and among those the lowest fit AURC
wins. The bounds hold for every ``p`` at once, so they account for having picked the best of
the grid (docs/metrics.md, "Choosing p"): with no p truly better, MSP is left with
probability at most about ``1 − level``. The selection records how often the bootstrap's own plain
rule picks the chosen option (its **stability**). The test is skipped (the point rule
stands, and the result says so) for a dense fit set (pixels are not independent rows) and
for more than :data:`MAX_TEST_ROWS` fit rows. ``select="point"`` is the rule without the
test (lsfix ≤ 0.1's behaviour).

The **temperature** of ``msp_ts`` (``temperature=True``) is fitted on the same rows
(:func:`lsfix.core.fit_temperature`, NLL), for every way that has fit rows.

:class:`Fit` is the request as Python users and the commands give it (``lsfix.Fit``): its
arguments are checked when it is made, and :meth:`Fit.resolve` reads the fit data (a path,
an array or a :class:`Predictions`) and calls :func:`choose_fit`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lsfix.core import P_GRID, PNormFit, ScoreSpec, compute_scores, fit_temperature, tune_pnorm
from lsfix.core.scores import is_single_logit
from lsfix.errors import InputError, UsageError
from lsfix.readers.paramsfile import (
    MAX_GRID_POINTS,
    MAX_P,
    pnorm_fit_from_json,
    read_pnorm_fit,
)
from lsfix.readers.predictions import Predictions

#: Above this many fit rows the selection test is skipped (the point rule's noise is small
#: there, and the test holds ``len(grid) + 1`` scores of every fit row in memory).
MAX_TEST_ROWS = 1_000_000
#: The ways of choosing p (``FitResult.kind``).
KINDS = ("fixed", "params", "file", "fraction", "binary")
SELECT_RULES = ("test", "point")


def parse_grid(text: str) -> tuple[float, ...]:
    """A p grid written as text (``--grid``): ``0,1,2`` or ``0-9`` (integers), at most
    :data:`~lsfix.readers.paramsfile.MAX_GRID_POINTS` values each in ``[0, MAX_P]``, checked
    before anything is built (``0-99999999999`` costs nothing).

    >>> parse_grid("0-3"), parse_grid("1.5, 2")
    ((0.0, 1.0, 2.0, 3.0), (1.5, 2.0))
    """
    text = text.strip()
    bad = f"--grid: {text[:40]!r} is not a list like 0,1,2 or a range like 0-9"
    if len(text) > 20 * MAX_GRID_POINTS:
        raise UsageError(f"--grid: more than {MAX_GRID_POINTS} values (the limit)")
    span: tuple[int, int] | None = None
    try:
        if "-" in text and "," not in text:
            a, b = text.split("-", 1)
            span = int(a), int(b)
            if span[1] < span[0] or span[0] < 0:
                raise ValueError
            vals: tuple[float, ...] = ()
        else:
            vals = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageError(bad) from None
    if span is not None:
        count = span[1] - span[0] + 1
        if count > MAX_GRID_POINTS:
            raise UsageError(f"--grid {text}: {count} values; the limit is {MAX_GRID_POINTS}")
        vals = tuple(float(p) for p in range(span[0], span[1] + 1))
    if len(vals) > MAX_GRID_POINTS:
        raise UsageError(f"--grid: {len(vals)} values; the limit is {MAX_GRID_POINTS}")
    if not vals or any(not (0 <= v <= MAX_P) for v in vals):
        raise UsageError(f"--grid: p values must be in [0, {MAX_P:g}], got {text[:40]!r}")
    return vals



@dataclass(frozen=True)
class FitResult:
    """What :func:`choose_fit` decided.

    Attributes
    ----------
    fit : PNormFit
        The pNorm choice (``fit.spec`` is the score to compute; ``msp`` on fallback).
    kind : str
        One of :data:`KINDS`.
    source : str
        Where the fit rows came from, in words (``"val.h5 (449 rows)"``).
    fit_mask : ndarray of bool or None
        ``fraction``: the input's rows used for fitting (leave them out of evaluation).
    temperature : float or None
        ``msp_ts``'s T fitted on the fit rows (when asked and there are fit rows).
    selection : dict or None
        The significance test (:meth:`lsfix.core.selection.Selection.to_dict`) when it ran.
    point_p : float or None
        What the point rule alone chose (``None``: MSP); equals ``fit.p`` unless the test
        kept MSP.
    notes : tuple of str
        One-line remarks (a skipped test, a small fit set).
    """

    fit: PNormFit
    kind: str
    source: str
    fit_mask: np.ndarray | None = None
    temperature: float | None = None
    selection: dict[str, Any] | None = None
    point_p: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def spec(self) -> ScoreSpec:
        return self.fit.spec

    @property
    def tuned(self) -> bool:
        """p was chosen on fit rows here (``file``/``fraction``)."""
        return self.kind in ("file", "fraction")

    def describe(self) -> str:
        """One line: what was chosen and why."""
        return describe(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "source": self.source, "fit": self.fit.to_dict(),
            "temperature": self.temperature, "point_p": _plain(self.point_p),
            "selection": self.selection, "notes": list(self.notes),
            "fit_rows": None if self.fit_mask is None else int(self.fit_mask.sum()),
        }


def _plain(p: float | None) -> float | int | None:
    if p is None:
        return None
    return int(p) if float(p).is_integer() else float(p)


@dataclass(frozen=True)
class Fit:
    """How MaxLogit-pNorm's p (and ``msp_ts``'s T) are chosen: at most one of ``p``, ``data``,
    ``fraction`` and ``params`` (the module docstring has the rules).

    Parameters
    ----------
    p : float, optional
        A fixed p in ``[0, 1000]`` (``--p``): nothing is tuned.
    data : str, os.PathLike, array-like or Predictions, optional
        Labelled held-out fit data with logits (``--fit VAL``): anything :func:`lsfix.read`
        reads; ``labels`` are its labels when it holds none (``--fit-labels``).
    fraction : float, optional
        Tune on this random fraction (in (0, 1)) of the input's rows, drawn with ``seed``
        (``--fit-fraction``); those rows are then left out of every number.
    params : str, os.PathLike, dict or PNormFit, optional
        A fit saved with ``normalise --save-params`` (its path, its JSON document, or the
        fit): reused as saved, nothing re-tuned.
    grid : sequence of float
        The p values tried (``--grid``), at most 1000, each in ``[0, 1000]``.
    centred : bool, optional
        Centre the logits (MaxLogit-pNorm, the default) or not (``pnorm_raw``); default what
        ``params`` recorded, else centred.
    select, level
        ``"test"`` (leave MSP only for a significant gain, simultaneous bounds at ``level``)
        or ``"point"`` (the lowest fit AURC).

    Examples
    --------
    >>> import numpy as np, lsfix
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 400)
    >>> z = rng.normal(size=(400, 3)) + 2.0 * np.eye(3)[y]
    >>> ev = lsfix.evaluate(z, ["msp", "pnorm"], labels=y, fit=lsfix.Fit(fraction=0.25))
    >>> ev.n_fit_excluded, ev.to_dict()["fit"]["kind"], [r.score for r in ev.results]
    (100, 'fraction', ['msp', 'pnorm'])
    >>> lsfix.Fit(p=2, fraction=0.2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lsfix.errors.UsageError: give only one of --p, --fit, ... (got --p, --fit-fraction)
    """

    p: float | None = None
    data: Any = None
    labels: Any = None
    fraction: float | None = None
    params: Any = None
    seed: int = 0
    grid: Sequence[float] = P_GRID
    centred: bool | None = None
    select: str = "test"
    level: float = 0.95
    #: ``params`` read and checked (a :class:`PNormFit`), or None
    saved: PNormFit | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = [o for o, v in (("--p", self.p), ("--fit", self.data),
                                ("--fit-fraction", self.fraction), ("--params", self.params))
                 if v is not None]
        if len(given) > 1:
            raise UsageError(f"give only one of --p, --fit, --fit-fraction, --params "
                             f"(got {', '.join(given)})")
        if self.labels is not None and self.data is None:
            raise UsageError("--fit-labels gives the labels of the --fit file; pass --fit too")
        if self.p is not None:
            from lsfix.core.scores import _check_p

            p = _check_p(self.p)
            if p > MAX_P:
                raise UsageError(f"--p {p:g}: above the limit of {MAX_P:g} (|z|^p overflows "
                                 "float64)")
            object.__setattr__(self, "p", p)
        if self.fraction is not None and not 0 < self.fraction < 1:
            raise UsageError(f"--fit-fraction must be in (0, 1), got {self.fraction}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"--seed must be an integer >= 0, got {self.seed!r}")
        grid = tuple(float(q) for q in self.grid)
        if len(grid) > MAX_GRID_POINTS:
            raise UsageError(f"--grid: {len(grid)} values; the limit is {MAX_GRID_POINTS}")
        if not grid or any(not (0 <= q <= MAX_P) for q in grid):
            raise UsageError(f"--grid: p values must be in [0, {MAX_P:g}], got "
                             f"{str(list(self.grid))[:40]}")
        object.__setattr__(self, "grid", grid)
        if self.select not in SELECT_RULES:
            raise UsageError(f"--select must be one of {', '.join(SELECT_RULES)}, got "
                             f"{str(self.select)[:40]!r}")
        if self.params is not None:
            saved = self.params
            if isinstance(saved, dict):
                saved = pnorm_fit_from_json(saved, "params")
            elif not isinstance(saved, PNormFit):
                saved = read_pnorm_fit(saved)  # size, depth, NaN checked
            if self.centred is not None and self.centred != saved.centred:
                was = "centred" if saved.centred else "un-centred"
                shown = self.params if isinstance(self.params, str | os.PathLike) else "params"
                raise UsageError(f"{os.fspath(shown)}: --{'' if self.centred else 'no-'}centre "
                                 f"contradicts this saved fit, which is {was}; drop the option")
            object.__setattr__(self, "saved", saved)

    @property
    def is_centred(self) -> bool:
        """The variant: a saved fit's, else ``centred`` (default True)."""
        return self.saved.centred if self.saved is not None else self.centred is not False

    @property
    def given(self) -> bool:
        """Whether any way of choosing p is given (else a caller's default applies)."""
        return any(v is not None for v in (self.p, self.data, self.fraction, self.params))

    def resolve(self, pred: Predictions, *, convention: str = "lsfix",
                temperature: bool = False, ignore_index: int | None = None,
                fraction_rows: np.ndarray | None = None) -> FitResult:
        """The choice for ``pred``: ``data`` read (a path or an array with ``labels``, by
        :func:`lsfix.read`; closed again) and checked for labels, then :func:`choose_fit`."""
        data, opened = self.data, None
        if data is not None and (not isinstance(data, Predictions) or self.labels is not None):
            import lsfix

            data = lsfix.read(data, labels=self.labels, ignore_index=ignore_index,
                              need_logits=True)
            opened = data if not isinstance(self.data, Predictions) else None
        try:
            if data is not None:
                from lsfix.readers.entry import require_fit_labels

                require_fit_labels(data, "--fit-labels")
            return choose_fit(pred, p=self.p, fit=data, fit_fraction=self.fraction,
                              params=self.saved, grid=tuple(self.grid), centred=self.is_centred,
                              convention=convention, seed=self.seed, temperature=temperature,
                              select=self.select, level=self.level, fraction_rows=fraction_rows)
        finally:
            if opened is not None:
                opened.close()


def as_fit(value: Any) -> Fit | None:
    """``fit=`` of :func:`lsfix.evaluate`: a :class:`Fit` as given; a float a ``fraction``; a
    :class:`PNormFit` or a fit's JSON document (a dict) ``params``; anything else (a path, an
    array, a :class:`Predictions`) fit ``data``."""
    if value is None or isinstance(value, Fit):
        return value
    if isinstance(value, float):
        return Fit(fraction=value)
    if isinstance(value, PNormFit | dict):
        return Fit(params=value)
    if isinstance(value, bool | int):
        raise UsageError(f"fit: give fit data, a fraction in (0, 1), saved params or "
                         f"lsfix.Fit(...), got {value!r}")
    return Fit(data=value)


def choose_fit(
    pred: Predictions,
    *,
    p: float | None = None,
    fit: Predictions | None = None,
    fit_fraction: float | None = None,
    params: PNormFit | None = None,
    grid: tuple[float, ...] = P_GRID,
    centred: bool = True,
    convention: str = "lsfix",
    seed: int = 0,
    temperature: bool = False,
    select: str = "test",
    level: float = 0.95,
    n_boot: int = 1000,
    fraction_rows: np.ndarray | None = None,
) -> FitResult:
    """Choose MaxLogit-pNorm's p for ``pred`` (module docstring).

    Give at most one of ``p``, ``fit`` (a labelled :class:`Predictions` with logits),
    ``fit_fraction`` and ``params``. With none, a single-logit ``pred`` is ``binary`` and any
    other is an error (the caller decides a default, e.g. ``fit_fraction=0.2``).
    ``fraction_rows``: with ``fit_fraction``, the split already drawn (``audit`` on pixels
    drawn from a dense file: the drawn pixels of the fit images), used instead of drawing one.
    """
    given = [n for n, v in (("p", p), ("fit", fit), ("fit_fraction", fit_fraction),
                            ("params", params)) if v is not None]
    if len(given) > 1:
        raise UsageError(f"give only one of --p, --fit, --fit-fraction, --params (got "
                         f"{', '.join('--' + g.replace('_', '-') for g in given)})")
    if select not in SELECT_RULES:
        raise UsageError(f"--select must be one of {', '.join(SELECT_RULES)}, got {select!r}")
    if pred.logits is None:
        raise UsageError(f"{pred.name} has no logits: p can only be applied to logits")
    if params is not None:
        centred = params.centred
        return FitResult(params, "params", "a saved fit ("
                         + _saved_source(params) + ")", point_p=params.p)
    if p is not None:
        fixed = PNormFit(p=float(p), fallback_msp=False, grid=(), msp_aurc=math.nan,
                         convention=convention, split={"kind": "fixed"}, centred=centred)
        return FitResult(fixed, "fixed", "fixed by the user", point_p=float(p))
    binary = is_single_logit(pred.logits)
    if fit is None and fit_fraction is None:
        if binary:
            return _binary(pred, None, None, "no fit data", convention, centred, temperature)
        raise UsageError(f"{pred.name}: nothing to choose p from: give --p, --fit VAL, "
                         "--fit-fraction F or --params P.json")
    # the fit rows: a row source, its labels, a description and (fraction) the input's mask
    mask = None
    if fit is not None:
        fit.require_labels("fitting p (--fit)")
        if fit.logits is None:
            raise UsageError(f"{fit.name}: --fit needs logits")
        if fit.k != pred.k:
            raise UsageError(f"{fit.name} has K={fit.k} classes, {pred.name} has K={pred.k}")
        owner = fit
        rows = np.ones(fit.n, dtype=bool) if fit.keep is None else fit.keep.copy()
        n_fit = int(rows.sum())
        source = f"{fit.name} ({n_fit} samples)"
        split: dict[str, Any] = {"kind": "file", "file": fit.name, "n": n_fit}
    else:
        assert fit_fraction is not None
        pred.require_labels("--fit-fraction")
        if pred.fit_mask is not None and pred.fit_mask.any():
            raise UsageError(f"{pred.name} already has a fit split (/fit_mask); tune with "
                             "--fit VAL.h5 or reuse --params")
        from lsfix.evaluation.dense import fit_split, is_dense

        mask = (fit_split(pred, fit_fraction, seed) if fraction_rows is None  # dense: images
                else np.asarray(fraction_rows, dtype=bool).copy())
        owner = pred
        rows = mask if pred.keep is None else (mask & pred.keep)
        n_fit = int(rows.sum())
        source = (f"{n_fit} random rows of {pred.name} (fraction {fit_fraction:g}, "
                  f"seed {seed})")
        split = {"kind": "fraction", "fraction": fit_fraction, "seed": seed, "n": n_fit,
                 **({"unit": "image"} if is_dense(pred) or fraction_rows is not None else {})}
    if binary:
        return _binary(owner, rows, mask, source, convention, centred, temperature)
    if n_fit == 0:
        raise InputError("no labelled rows to fit p on", file=owner.name)
    point = tune_pnorm(owner.logits, owner.require_labels("fitting p"), grid=grid,
                       convention=convention, split=split, rows=rows, centred=centred)
    from lsfix.evaluation.inmemory import _RowSubset

    idx = np.flatnonzero(rows)
    sub = _RowSubset(owner.logits, idx)
    sub_labels = np.asarray(owner.labels)[idx] if owner.labels is not None else None
    temp = fit_temperature(sub, sub_labels) if temperature else None
    notes: list[str] = []
    fitted, selection = point, None
    if select == "test" and not point.fallback_msp:
        from lsfix.evaluation.dense import is_dense

        if is_dense(owner):
            notes.append("p chosen by the point rule: the selection test resamples rows, and "
                         "the pixels of an image are not independent rows")
        elif n_fit > MAX_TEST_ROWS:
            notes.append(f"p chosen by the point rule: the selection test is skipped above "
                         f"{MAX_TEST_ROWS:,} fit rows")
        else:
            fitted, selection = _tested(point, sub, sub_labels, grid, centred, convention,
                                        seed, level, n_boot)
    from lsfix.evaluation.inmemory import small_fit_warning

    small = small_fit_warning(point)
    if small:
        notes.append(small)
    return FitResult(fitted, "file" if fit is not None else "fraction", source, fit_mask=mask,
                     temperature=temp, selection=selection, point_p=point.p,
                     notes=tuple(notes))


def _tested(point: PNormFit, sub: Any, labels: Any, grid: tuple[float, ...], centred: bool,
            convention: str, seed: int, level: float, n_boot: int
            ) -> tuple[PNormFit, dict[str, Any]]:
    """The point fit, kept or sent back to MSP by the selection test."""
    from lsfix.core.selection import select_better

    family = "pnorm" if centred else "pnorm_raw"
    specs = [ScoreSpec(family, float(q)) for q in grid]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        got = compute_scores(sub, [*specs, ScoreSpec("msp")], labels=labels)
    names = [f"{family}:{_plain(q)}" for q in grid]
    sel = select_better([(nm, got[s.name]) for nm, s in zip(names, specs, strict=True)],
                        ("msp", got["msp"]), got["_correct"], n_boot=n_boot, seed=seed,
                        level=level, convention=convention)
    d = sel.to_dict()
    chosen = None if sel.choice is None else float(grid[names.index(sel.choice)])
    fitted = replace(point, p=chosen, fallback_msp=chosen is None,
                     split={**point.split, "selection": _selection_summary(d)})
    return fitted, d


def _selection_summary(d: dict[str, Any]) -> dict[str, Any]:
    """What the saved fit records of the test (JSON-safe, small)."""
    return {k: d[k] for k in ("method", "level", "n_boot", "seed", "choice", "point_choice",
                              "stability")}


def _binary(owner: Predictions, rows: np.ndarray | None, mask: np.ndarray | None,
            source: str, convention: str, centred: bool, temperature: bool) -> FitResult:
    reason = ("single-logit (binary) model: " + (
        "centred pNorm has nothing to normalise" if centred else
        "un-centred pNorm of (0, z) is max(0, z) at p = 0 and a step at p >= 1: nothing to "
        "tune"))
    n_fit = 0 if rows is None else int(rows.sum())
    fit = PNormFit(p=None, fallback_msp=True, grid=(), msp_aurc=math.nan,
                   convention=convention, centred=centred, n_fit=n_fit,
                   split={"kind": "none", "reason": reason})
    temp = None
    if temperature and rows is not None and n_fit:
        from lsfix.evaluation.inmemory import _RowSubset

        idx = np.flatnonzero(rows)
        temp = fit_temperature(_RowSubset(owner.logits, idx),
                               np.asarray(owner.require_labels("fitting T"))[idx])
    return FitResult(fit, "binary", source, fit_mask=mask, temperature=temp, point_p=None)


def _saved_source(fit: PNormFit) -> str:
    split = fit.split or {}
    kind = split.get("kind")
    if kind == "file":
        return f"tuned on {split.get('file', '?')}, {fit.n_fit} rows"
    if kind == "fraction":
        return f"tuned on {fit.n_fit} rows of a random split"
    if kind == "fixed":
        return "p fixed"
    return f"{kind}"


def describe(res: FitResult) -> str:
    """One line for stderr and reports: the choice, and the evidence behind it."""
    fit = res.fit
    variant = "" if fit.centred else " (un-centred pNorm)"
    if res.kind == "fixed":
        return f"fixed p={fit.p:g}{variant}"
    if res.kind == "binary":
        return "single-logit model: nothing to tune; pnorm is MSP (the |z| ranking)"
    if res.kind == "params":
        what = "MSP" if fit.p is None else f"p={fit.p:g}{variant}"
        return f"{what} from {res.source}; not re-tuned"
    family = "pnorm" if fit.centred else "pnorm_raw"
    best = min(fit.grid, key=lambda t: (t[1], t[0]))
    on = f"on {fit.n_fit} samples"
    sel = res.selection
    if res.point_p is None:
        return (f"MSP kept (fallback): held-out AURC {fit.msp_aurc:.6g} <= best {family} "
                f"p={best[0]:g} {best[1]:.6g} {on}")
    if sel is None:
        return (f"chose p={fit.p:g}{variant}: held-out AURC {best[1]:.6g} vs MSP "
                f"{fit.msp_aurc:.6g} {on} (point rule)")
    lvl = f"{sel['level']:.0%}"
    stab = f"{100 * sel['stability']:.0f}%"
    if fit.p is None:
        pc = next(c for c in sel["candidates"] if c["name"] == sel["point_choice"])
        picks = {d["option"]: d["count"] for d in sel["picks"]}
        pp = f"{100 * picks.get(sel['point_choice'], 0) / sel['n_boot']:.0f}%"
        return (f"MSP kept: the best p={res.point_p:g} has held-out AURC {pc['aurc']:.6g} vs "
                f"MSP {fit.msp_aurc:.6g} {on}, not significantly lower (ΔAURC "
                f"{pc['delta']:+.3g}, simultaneous {lvl} upper bound {pc['high']:+.3g} >= 0); "
                f"resampled, the lowest AURC is p={res.point_p:g}'s in {pp} of replicates and "
                f"MSP's in {stab}")
    c = next(c for c in sel["candidates"] if c["name"] == sel["choice"])
    return (f"chose p={fit.p:g}{variant}: held-out AURC {c['aurc']:.6g} vs MSP "
            f"{fit.msp_aurc:.6g} {on}; significant (ΔAURC {c['delta']:+.3g}, simultaneous "
            f"{lvl} upper bound {c['high']:+.3g}); p={fit.p:g} is the bootstrap's pick in "
            f"{stab} of replicates")

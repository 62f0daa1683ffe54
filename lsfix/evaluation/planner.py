"""The one planner: :func:`evaluate` picks how to evaluate an input and returns an
:class:`Evaluation` whose :meth:`Evaluation.to_dict` is the JSON ``lsfix curve -f json`` prints.

How (chosen here, never by a command):

* **grouped** — ``by=`` (class, predicted class, image or a named group): every metric per
  group and for the whole file (:mod:`lsfix.evaluation.grouped`);
* **bounded** — scores computed from logits, for a dense ``(N, K, H, W)`` file or when the
  in-memory path would need more than ``memory_limit``, and no option needs per-row arrays
  (bootstrap, subsampling, groups, joined scores files, labels from another file, Dask):
  exact metrics out of core in bounded memory (:mod:`lsfix.evaluation.bounded`);
* **drawn** — ``subsample_pixels`` on dense logits whose labels are still on disk (a path
  given here, or a :class:`Predictions` read with ``defer_dense_labels``), no ``by``, joined
  scores, other labels or Dask: only the drawn pixels are read
  (:mod:`lsfix.evaluation.drawn`), then evaluated in memory (the same numbers);
* **in memory** — everything else (:mod:`lsfix.evaluation.inmemory`), on this process or on a
  Dask ``scheduler`` (:mod:`lsfix.evaluation.scheduler`; identical numbers).

With ``fit=`` a bare ``pnorm`` (and ``msp_ts``) is chosen on fit data by the one policy,
:meth:`lsfix.evaluation.fitpolicy.Fit.resolve`, and evaluated in memory as ``compare`` does;
the rows of a fit split are left out (``n_fit_excluded``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lsfix.errors import UsageError
from lsfix.evaluation.fitpolicy import FitResult
from lsfix.evaluation.inmemory import ExcludedRows, excluded_rows
from lsfix.readers.predictions import Predictions

# ------------------------------------------------------------------ the choice of engine

#: Measured peak bytes per evaluated row of the in-memory ``curve`` (one score): scores,
#: correctness, masks, the sort and the per-sample curve (bench/README.md, issue 11).
IN_MEMORY_BYTES_PER_ROW = 112
#: ``--memory-limit`` default: 2 GiB.
DEFAULT_MEMORY_LIMIT = 2 << 30
#: What :func:`choose_engine` returns
ENGINES = ("memory", "bounded", "drawn")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_memory_limit(text: str) -> int:
    """``--memory-limit``: bytes, with an optional K/M/G/T suffix (powers of 1024)."""
    m = _SIZE.match(str(text))
    if not m:
        raise UsageError(f"--memory-limit must be a size like 2G, 512M or 0, got {text[:40]!r}")
    scale = 1024 ** "_kmgt".index(m.group(2).lower() or "_")
    return int(float(m.group(1)) * scale)


def _dense_logits(pred: Predictions) -> bool:
    """The logits themselves are ``(N, K, *spatial)`` (``lsfix.evaluation.dense.is_dense`` also
    counts a scores file made from them, which this path cannot read)."""
    return bool(getattr(pred.logits, "spatial", ())) if pred.logits is not None else False


def wanted(pred: Predictions, names: list[str] | None, memory_limit: int) -> bool:
    """Whether ``pred`` is evaluated out of core (:mod:`lsfix.evaluation.bounded`): it has
    logits, every score is computed from them, and they are dense or the in-memory estimate
    is above ``memory_limit``."""
    if pred.logits is None:
        return False
    if not names:
        if pred.scores:
            return False
        names = ["msp"]
    if any(n in pred.scores for n in names):
        return False
    need = pred.n * (IN_MEMORY_BYTES_PER_ROW + 8 * (len(names) - 1))
    return _dense_logits(pred) or need > memory_limit



#: Engines :func:`choose_engine` picks from.
ENGINES = ("memory", "bounded", "drawn")

def choose_engine(pred: Predictions, names: list[str] | None, *, per_row: bool,
                  subsample: str | None, memory_limit: int,
                  bytes_per_row: int = IN_MEMORY_BYTES_PER_ROW, command: str = "curve",
                  allow_drawn: bool = True) -> str:
    """Where a command evaluates ``pred``: one of :data:`ENGINES`.

    * ``"drawn"``: dense logits with ``--subsample-pixels`` (``subsample``, and
      ``allow_drawn``): only the drawn pixels are read into memory
      (:func:`lsfix.evaluation.drawn.gather`), then the in-memory path runs on them;
    * ``"bounded"``: :func:`lsfix.evaluation.bounded.evaluate_bounded` (exact, memory
      bounded by a run), when no option needs per-row arrays (``per_row``: a bootstrap,
      ``--by``, ...) and :func:`wanted` says so;
    * ``"memory"``: the in-memory path. For dense logits whose in-memory estimate,
      ``n × bytes_per_row``, is above ``memory_limit``, a one-line :class:`UsageError`
      instead, saying what fits (``--subsample-pixels``, or a larger ``--memory-limit``).

    ``command`` names the command in that message. ``pred``'s dense labels may still be on
    disk; the caller reads them (``pred.load_labels()``) for ``"memory"``.
    """
    dense = _dense_logits(pred) and not any(n in pred.scores for n in (names or []))
    if dense and subsample is not None and allow_drawn:
        return "drawn"
    if not per_row and wanted(pred, names, memory_limit):
        return "bounded"
    if dense and memory_limit > 0 and pred.n * bytes_per_row > memory_limit:
        raise UsageError(
            f"{pred.name}: {command} would hold every pixel in memory here (about "
            f"{pred.n * bytes_per_row / 1e9:.1f} GB for {pred.n:,} pixels, above --memory-limit "
            f"{_size(memory_limit)}); evaluate a random share of the pixels with "
            "--subsample-pixels N/IMAGES (the paper: 5000/12), or raise --memory-limit")
    return "memory"


def _size(b: int) -> str:
    for unit, scale in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if b >= scale and b % scale == 0:
            return f"{b // scale}{unit}"
    return str(b)



@dataclass
class Evaluation:
    """What :func:`evaluate` found for one input.

    Attributes
    ----------
    file : str
        The input's display name.
    results : list
        One :class:`lsfix.evaluation.inmemory.ScoreResult` per score, or with ``by`` one
        :class:`lsfix.evaluation.grouped.GroupResult` per score and group (``all`` first).
    plan : str
        ``"in-memory"``, ``"bounded"``, ``"drawn"`` or ``"grouped"``.
    excluded : ExcludedRows
        Rows left out (ignored pixels, fit rows, pixels not drawn) and evaluated.
    curves, oracle
        On the bounded path with ``curve_points``: each score's RC curve and the ideal one as
        ``(coverage, risk)`` arrays (the results hold no per-row arrays there).
    notes, warnings
        How a foreign input was read, and what lsfix assumed about it (one line each).
    sections
        ``calibration``, ``threshold`` and ``rank_map`` when asked for
        (:mod:`lsfix.evaluation.sections`); the first two are in :meth:`to_dict`.
    """

    file: str
    convention: str
    percent: bool
    results: list[Any]
    plan: str
    excluded: ExcludedRows
    n_fit_excluded: int
    bootstrap_unit: str = "row"
    by: str | None = None
    subsampled: int | None = None
    curves: list[Any] | None = None
    oracle: Any = None
    predictions: Predictions | None = field(default=None, repr=False)
    #: how ``pnorm``/``msp_ts`` were chosen (``fit=``), else None
    fit: FitResult | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``lsfix curve -f json`` (format ``lsfix.curve``), with
        undefined numbers as ``None`` and their reasons under ``undefined``."""
        from lsfix.output.report import ci_dict, document, metrics_dict, strict

        if self.by is not None:
            from lsfix.evaluation.grouped import group_json

            body: dict[str, Any] = {
                "file": self.file, "convention": self.convention, "percent": self.percent,
                "by": self.by, "n_fit_excluded": self.n_fit_excluded,
                "results": group_json(self.results, percent=self.percent)}
        else:
            body = {
                "file": self.file, "convention": self.convention, "percent": self.percent,
                "n_fit_excluded": self.n_fit_excluded, "n_ignored": self.excluded.ignored,
                "n_not_drawn": self.excluded.not_drawn, "bootstrap_unit": self.bootstrap_unit,
                "results": [{"file": r.file, "score": r.score,
                             **metrics_dict(r.metrics, percent=self.percent),
                             "ci": ci_dict(r.ci, percent=self.percent)}
                            for r in self.results]}
        if self.fit is not None:  # as compare's "fits" describe each file's
            body["fit"] = self.fit.to_dict()
        for name, sec in self.sections.items():
            if hasattr(sec, "to_dict"):
                body[name] = sec.to_dict()
        return strict(document("curve", body))

    def close(self) -> None:
        """Close the input's backing file (when :func:`evaluate` read it)."""
        if self.predictions is not None:
            self.predictions.close()


def evaluate(
    source: Any,
    scores: Sequence[str] | str | None = None,
    *,
    labels: Any = None,
    input: str | None = None,  # noqa: A002  (the CLI's --input)
    ignore_index: int | None = None,
    with_scores: Sequence[Any] = (),
    convention: str = "lsfix",
    coverages: Sequence[float] = (),
    risks: Sequence[float] = (),
    bootstrap: int = 0,
    seed: int = 0,
    level: float = 0.95,
    bootstrap_unit: str = "row",
    by: str | None = None,
    subsample_pixels: str | None = None,
    percent: bool = False,
    memory_limit: int | str = "2G",
    scheduler: Any = None,
    scheduler_timeout: float = 10.0,
    curve_points: int | bool = 0,
    allow_incomplete: bool = False,
    keep_open: bool = False,
    tmpdir: str | None = None,
    calibration: bool = False,
    bins: int = 15,
    calibration_fit: Any = None,
    threshold_params: Any = None,
    rank_map: bool = False,
    fit: Any = None,
) -> Evaluation:
    """Every selective-classification metric of each score of one input.

    Parameters
    ----------
    source : str, os.PathLike, array-like or Predictions
        Anything :func:`lsfix.read` reads (a path is read with ``labels``, ``input``,
        ``ignore_index`` and ``with_scores``), or what it returned.
    scores : str or sequence of str, optional
        Stored score names or score specs (``msp``, ``pnorm:2``, ``energy:0.5``, ...); default:
        every stored score, or ``msp`` when none is stored.
    convention : {"lsfix", "xia", "fd-shifts", "torch-uncertainty"}
        The AURC convention (``docs/metrics.md``).
    coverages, risks : sequence of float
        Targets of risk@coverage (in (0, 1]) and coverage@risk (in [0, 1]).
    bootstrap, seed, level, bootstrap_unit
        Percentile-bootstrap intervals: replicates (0 = none), seed, level, and what is
        resampled (``row``, or ``image`` for dense files).
    by : str, optional
        Also every metric per group: ``class``, ``predicted``, ``image`` or a group name.
    subsample_pixels : str, optional
        Dense files: ``N[/IMAGES]`` random pixels per batch of images (the paper: ``5000/12``),
        drawn with ``seed``.
    percent : bool
        Rates ×100 in :meth:`Evaluation.to_dict` (as ``--percent``).
    memory_limit : int or str
        Bytes (or ``2G``, ``512M``; 0 = always bounded) above which scores computed from
        logits are evaluated out of core.
    scheduler : str or Runner, optional
        ``sync`` (default), ``threads``, ``processes`` or a ``dask.distributed`` address;
        identical numbers. ``scheduler_timeout``: seconds to reach an address.
    curve_points : int or bool
        On the bounded path, keep each RC curve at up to this many points (for plots; ``True``:
        :data:`lsfix.evaluation.bounded.CURVE_POINTS`).
    keep_open : bool
        Keep the input's file open (``Evaluation.predictions``) for more work on it.
    tmpdir : str, optional
        Where the bounded path's temporary runs go (default ``TMPDIR``, else the system's);
        its free space is checked first (:func:`lsfix.core.spill.check_space`).
    calibration, bins, calibration_fit
        Also the calibration of the evaluated rows (``bins`` equal-width bins), and after a
        temperature fitted on ``calibration_fit`` (a labelled input with logits); implied by
        ``calibration_fit`` (:mod:`lsfix.evaluation.sections`).
    threshold_params : str or dict, optional
        Also the realised coverage and risk at a threshold saved by ``lsfix threshold
        --save-params`` (the file, or its document).
    rank_map : bool
        Dense inputs: also each image's per-pixel uncertainty rank under the first score.
    fit : Fit, str, os.PathLike, array-like, Predictions, float or PNormFit, optional
        Fit data for a bare ``pnorm`` (MaxLogit-pNorm's p) and ``msp_ts`` (T), chosen as
        ``lsfix compare --fit``/``--fit-fraction`` and ``lsfix normalise`` choose: a
        :class:`lsfix.Fit`, or labelled fit data (what :func:`lsfix.read` reads; ``Fit(data=,
        labels=)`` for labels in another file), a fraction of the input's rows to tune on
        (``0.2``: those rows are then left out, ``n_fit_excluded``), or a saved fit
        (``PNormFit`` or its JSON document; ``Fit(params=PATH)`` for a file). The scores
        keep their names (``pnorm``); ``Evaluation.fit`` and ``to_dict()["fit"]`` say what
        was chosen. Default scores with ``fit``: ``msp`` and ``pnorm``. Not with
        ``subsample_pixels``.

    Returns
    -------
    Evaluation

    Examples
    --------
    >>> import numpy as np, lsfix
    >>> z = np.array([[3.0, 0.0], [0.0, 1.0], [1.0, 0.9], [0.2, 2.0]])
    >>> ev = lsfix.evaluate(z, ["msp"], labels=[0, 1, 1, 1])
    >>> ev.plan, ev.results[0].metrics.n_errors
    ('in-memory', 1)

    p tuned on a random quarter of the rows (left out of the numbers), as ``lsfix compare
    -s msp -s pnorm --fit-fraction 0.25`` does:

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 400)
    >>> z = rng.normal(size=(400, 3)) + 2.0 * np.eye(3)[y]
    >>> ev = lsfix.evaluate(z, ["msp", "pnorm"], labels=y, fit=0.25)
    >>> ev.n_fit_excluded, ev.results[1].metrics.n, ev.to_dict()["fit"]["kind"]
    (100, 300, 'fraction')
    """
    from lsfix.evaluation import scheduler as sched
    names = [scores] if isinstance(scores, str) else (list(scores) if scores else None)
    covs, rsk = check_options(convention=convention, bootstrap=bootstrap, level=level,
                              bootstrap_unit=bootstrap_unit, by=by, coverages=coverages,
                              risks=risks)
    calibration = bool(calibration) or calibration_fit is not None
    if calibration:
        from lsfix.output.calibration import check_bins

        bins = check_bins(bins)
    if by is not None and (calibration or threshold_params is not None):
        raise UsageError("--calibration and --threshold-params do not go with --by")
    if by is not None and rank_map:
        raise UsageError("--rank-map does not go with --by")
    limit = parse_memory_limit(memory_limit) if isinstance(memory_limit, str) else int(
        memory_limit)
    if curve_points is True:
        from lsfix.evaluation.bounded import CURVE_POINTS

        curve_points = CURVE_POINTS
    how = None
    if fit is not None:
        from lsfix.evaluation.fitpolicy import as_fit

        how = as_fit(fit)
        if subsample_pixels is not None:
            raise UsageError("fit does not go with subsample_pixels (the fit split is of rows, "
                             "the draw of pixels); tune p with 'lsfix normalise' first")
        names = names or ["msp", "pnorm"]
        if not any(n in ("pnorm", "msp_ts") for n in names):
            how = None  # no score needs fit data (as compare): nothing tuned, no row left out
    runner_given = scheduler is not None and not isinstance(scheduler, str)
    sched_name = None if runner_given else (scheduler or "sync")
    if sched_name not in (None, "sync"):  # sync imports and checks nothing of Dask
        from lsfix.evaluation import scheduler as sched

        sched.check_scheduler(sched_name)
    if not (isinstance(scheduler_timeout, int | float) and 0 < scheduler_timeout <= 3600):
        shown = (f"{scheduler_timeout:g}" if isinstance(scheduler_timeout, int | float)
                 else str(scheduler_timeout)[:40])
        raise UsageError(f"--scheduler-timeout must be in (0, 3600] seconds, got {shown}")
    per_row = calibration or threshold_params is not None or rank_map
    may_bound = (by is None and not bootstrap and subsample_pixels is None and not with_scores
                 and labels is None and not runner_given and sched_name == "sync"
                 and not per_row and how is None)
    may_draw = (subsample_pixels is not None and by is None and not with_scores
                and labels is None and not runner_given and sched_name == "sync"
                and not per_row)
    owned = not isinstance(source, Predictions)
    if owned:
        import lsfix

        pred = lsfix.read(source, labels=labels, input=input, ignore_index=ignore_index,
                          with_scores=with_scores, allow_incomplete=allow_incomplete,
                          need_labels="evaluation (correctness)",
                          defer_dense_labels=may_bound or may_draw)
    else:
        pred = source
        if labels is not None or with_scores or input is not None:
            import lsfix

            pred = lsfix.read(pred, labels=labels, input=input, ignore_index=ignore_index,
                              with_scores=with_scores)
    try:
        fitted = None
        if how is not None:  # the fitted scores, under their names, on a view of pred
            pred.load_labels()
            pred, fitted = _with_fitted(pred, how, names or [], convention=convention,
                                        ignore_index=ignore_index)
        check_unfitted_scores(names, pred.scores, pred.name, "curve")
        if may_draw and pred.deferred_labels is not None and pred.runner is None:
            if choose_engine(pred, names, per_row=True, subsample=subsample_pixels,
                             memory_limit=limit) == "drawn":
                return _read_notes(_evaluate_drawn(
                    pred, names, subsample_pixels, convention=convention, coverages=covs,
                    risks=rsk, bootstrap=bootstrap, seed=seed, level=level,
                    bootstrap_unit=bootstrap_unit, percent=percent))
        bounded = (pred.deferred_labels is not None
                   or (may_bound and pred.runner is None and wanted(pred, names, limit)))
        if not bounded:
            pred.load_labels()
        subsampled = None
        if subsample_pixels is not None:
            from lsfix.evaluation.dense import apply_subsample

            subsampled = apply_subsample(pred, subsample_pixels, seed)
        fit_excluded = int(pred.fit_mask.sum()) if pred.fit_mask is not None else 0
        common = dict(file=pred.name, convention=convention, percent=percent,
                      n_fit_excluded=fit_excluded, bootstrap_unit=bootstrap_unit,
                      subsampled=subsampled, predictions=pred, fit=fitted)
        if by is not None:
            from lsfix.evaluation.grouped import evaluate_by

            with _runner(pred, scheduler, sched_name, scheduler_timeout):
                results = evaluate_by(pred, names, by, convention=convention, coverages=covs,
                                      risks=rsk, n_boot=bootstrap, seed=seed, level=level)
            return _read_notes(Evaluation(results=results, plan="grouped", by=by,
                                          excluded=excluded_rows(pred), **common))
        if bounded:
            from lsfix.evaluation.bounded import evaluate_bounded

            results, curves, oracle, ex = evaluate_bounded(
                pred, names, convention=convention, coverages=covs, risks=rsk,
                curve_points=curve_points, folder=tmpdir)
            return _read_notes(Evaluation(results=results, plan="bounded", excluded=ex,
                                          curves=curves, oracle=oracle, **common))
        from lsfix.evaluation.inmemory import evaluate_file

        clusters = None
        if bootstrap_unit == "image":
            from lsfix.evaluation.dense import image_of_rows

            clusters = image_of_rows(pred, "--bootstrap-unit image")
        with _runner(pred, scheduler, sched_name, scheduler_timeout):
            results = evaluate_file(pred, names, convention=convention, coverages=covs,
                                    risks=rsk, n_boot=bootstrap, seed=seed, level=level,
                                    clusters=clusters)
        ev = Evaluation(results=results, plan="in-memory", excluded=excluded_rows(pred),
                        **common)
        if calibration or threshold_params is not None or rank_map:
            from lsfix.evaluation import sections

            if rank_map:
                ev.sections["rank_map"] = sections.rank_map(pred, str(results[0].score))
            if calibration:
                ev.sections["calibration"] = sections.calibration(
                    pred, bins=bins, fit=calibration_fit, n_boot=bootstrap, seed=seed,
                    level=level)
            if threshold_params is not None:
                ev.sections["threshold"] = sections.threshold(pred, threshold_params)
        return _read_notes(ev)
    finally:
        if owned and not keep_open:
            pred.close()


def _with_fitted(pred: Predictions, how: Any, names: list[str], *, convention: str,
                 ignore_index: int | None) -> tuple[Predictions, FitResult]:
    """``pred`` seen with ``pnorm``/``msp_ts`` chosen by ``how`` (a
    :class:`lsfix.evaluation.fitpolicy.Fit`) as stored scores of those names (replacing
    stored ones, as ``compare`` does) and the fit split as its ``fit_mask``; the caller's
    object is left as it was (the view shares its file)."""
    import copy

    import numpy as np

    from lsfix.core import ScoreSpec
    from lsfix.evaluation import scheduler as parallel

    if pred.logits is None:
        raise UsageError(f"{pred.name} has no logits: p (and T) are tuned on logits; "
                         "evaluate it without fit")
    res = how.resolve(pred, convention=convention, temperature="msp_ts" in names,
                      ignore_index=ignore_index)
    specs = {}
    if "pnorm" in names:
        specs["pnorm"] = res.spec
    if "msp_ts" in names:
        if res.temperature is None:
            raise UsageError(f"{pred.name}: no temperature fitted for msp_ts (a fixed p or "
                             "saved params carry no fit rows; give fit data)")
        specs["msp_ts"] = ScoreSpec("msp_ts", res.temperature)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        got = parallel.compute_scores(pred.logits, list({s.name: s for s in specs.values()
                                                          }.values()), runner=pred.runner)
    view = copy.copy(pred)
    view.scores = {**pred.scores, **{n: got[s.name] for n, s in specs.items()}}
    view.score_attrs = {k: v for k, v in pred.score_attrs.items() if k not in specs}
    if res.fit_mask is not None:
        view.fit_mask = res.fit_mask
    return view, res


def _evaluate_drawn(pred: Predictions, names: list[str] | None, subsample: str, *,
                   convention: str, coverages: tuple[float, ...], risks: tuple[float, ...],
                   bootstrap: int, seed: int, level: float, bootstrap_unit: str,
                   percent: bool) -> Evaluation:
    """The drawn engine: only the drawn pixels are read (:func:`lsfix.evaluation.drawn.gather`),
    then evaluated in memory with their images as the bootstrap clusters."""
    from lsfix.evaluation.drawn import gather
    from lsfix.evaluation.inmemory import evaluate_file

    d = gather(pred, subsample, seed)
    results = evaluate_file(d.pred, names, convention=convention, coverages=coverages,
                            risks=risks, n_boot=bootstrap, seed=seed, level=level,
                            clusters=d.images if bootstrap_unit == "image" else None)
    fit_excluded = int(pred.fit_mask.sum()) if pred.fit_mask is not None else 0
    return Evaluation(file=pred.name, convention=convention, percent=percent,
                      results=results, plan="drawn", excluded=d.excluded,
                      n_fit_excluded=fit_excluded, bootstrap_unit=bootstrap_unit,
                      subsampled=d.excluded.evaluated, predictions=pred)


#: Most replicates ``bootstrap`` accepts (each costs a pass over the confidences).
MAX_BOOTSTRAP = 100_000


def check_bootstrap(n_boot: int, level: float) -> None:
    """``bootstrap`` in [0, :data:`MAX_BOOTSTRAP`] and ``level`` in (0, 1)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise UsageError(f"--bootstrap must be >= 0, got {str(n_boot)[:40]}")
    if n_boot > MAX_BOOTSTRAP:
        raise UsageError(f"--bootstrap {n_boot} is above the limit of {MAX_BOOTSTRAP} "
                         "replicates")
    if not (isinstance(level, int | float) and 0 < level < 1):
        raise UsageError(f"--level must be in (0, 1), got {str(level)[:40]}")


def check_options(*, convention: str, bootstrap: int, level: float,
                  bootstrap_unit: str = "row", by: str | None = None,
                  coverages: Sequence[float] = (), risks: Sequence[float] = ()
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The options every evaluating call shares (:func:`evaluate`, ``lsfix.compare``,
    ``lsfix.audit``), checked before anything is read, with the command line's messages;
    returns the coverage and risk targets as floats."""
    from lsfix.core import CONVENTIONS

    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {str(convention)[:40]!r}; choose one of "
                         f"{', '.join(CONVENTIONS)}")
    check_bootstrap(bootstrap, level)
    if bootstrap_unit not in ("row", "image"):
        raise UsageError(f"--bootstrap-unit must be row or image, got "
                         f"{str(bootstrap_unit)[:40]!r}")
    if bootstrap_unit == "image" and by is not None:
        raise UsageError("--bootstrap-unit image does not go with --by (groups resample rows)")
    return check_targets(coverages, risks)


def check_targets(coverages: Sequence[float], risks: Sequence[float]
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Targets of risk@coverage (each in (0, 1]) and coverage@risk (each in [0, 1]), as
    floats; :class:`UsageError` with the CLI's message otherwise."""
    out = []
    for what, values, lo_open in (("--coverage", coverages, True), ("--risk", risks, False)):
        got = []
        for v in values:
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise UsageError(f"{what}: {str(v)[:40]!r} is not a number") from None
            if not ((x > 0 if lo_open else x >= 0) and x <= 1):  # NaN fails both
                raise UsageError(f"{what} must be in {'(' if lo_open else '['}0, 1], got {v}")
            got.append(x)
        out.append(tuple(got))
    return out[0], out[1]


def check_unfitted_scores(scores: Sequence[str] | None, stored: Any, file: str,
                          command: str) -> None:
    """``msp_ts`` (no ``:T``) that ``file`` does not store: say how to get a temperature,
    with commands that work, before anything is computed (exit 2)."""
    from lsfix.core import parse_score
    from lsfix.errors import LsfixError

    have = set(stored or ())
    for name in scores or []:
        if name in have:
            continue
        try:
            spec = parse_score(name)
        except LsfixError:  # not a score spec: the evaluation says so, naming the file
            continue
        if spec.family == "msp_ts" and spec.param is None:
            raise UsageError(
                f"-s {name} needs a temperature and {file} stores no msp_ts score: give one "
                f"(-s msp_ts:1.5), fit it here on labelled data (--fit VAL.h5 or "
                f"--fit-fraction 0.2), or once for reuse: lsfix score {file} -m msp_ts --fit "
                f"VAL.h5 -o scored.h5, then lsfix {command} scored.h5 -s msp_ts")


def _read_notes(ev: Evaluation) -> Evaluation:
    """Copy the input's reading notes and warnings onto ``ev``."""
    if ev.predictions is not None:
        ev.notes = list(ev.predictions.notes)
        ev.warnings = list(ev.predictions.warnings)
    return ev


class _runner:
    """Set ``pred.runner`` for the block: a given :class:`Runner`, or one made for a
    scheduler name (closed after the block); ``sync`` keeps whatever ``pred`` has."""

    def __init__(self, pred: Predictions, given: Any, name: str | None,
                 timeout: float = 10.0) -> None:
        self.pred, self.given, self.name, self.timeout = pred, given, name, timeout
        self._cm: Any = None
        self._before: Any = None

    def __enter__(self) -> None:
        self._before = self.pred.runner
        if self.given is not None and not isinstance(self.given, str):
            self.pred.runner = self.given
        elif self.name not in (None, "sync"):
            from lsfix.evaluation import scheduler as sched

            self._cm = sched.scheduler(self.name, self.timeout)
            self.pred.runner = self._cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.pred.runner = self._before
        if self._cm is not None:
            self._cm.__exit__(*exc)


__all__ = ["DEFAULT_MEMORY_LIMIT", "ENGINES", "IN_MEMORY_BYTES_PER_ROW", "MAX_BOOTSTRAP",
           "Evaluation", "check_bootstrap", "check_options", "check_targets", "check_unfitted_scores", "choose_engine", "evaluate",
           "parse_memory_limit", "wanted"]

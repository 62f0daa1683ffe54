"""The one ``compare`` call: :func:`compare` reads files, evaluates every score of each, pairs
their rows with the first file's (the baseline), and judges the ``fail_if`` gate; the
:class:`Comparison` it returns holds it all, and :meth:`Comparison.to_dict` is the JSON
document ``lsfix compare -f json`` prints (rendering: :mod:`lsfix.output.comparison`).

What happens, in order:

* every source is read (:func:`lsfix.read`; dense labels stay on disk until needed);
* with ``fit`` or ``fit_fraction``, pNorm's p (and ``msp_ts``'s T) are chosen per input by
  :func:`lsfix.evaluation.fitpolicy.choose_fit`;
* every file is evaluated on the engine :func:`lsfix.evaluation.engines.evaluate_files` picks
  (in memory, bounded within ``memory_limit`` when no per-row work is asked for, or drawn
  pixels), with scores from the logits (:func:`lsfix.evaluation.comparison.compare_scores`);
* each file's rows are paired with the baseline's (:func:`lsfix.evaluation.comparison.pair_rows`),
  files matched to the baseline **by input position** (a file given twice is compared with
  itself: a paired difference of 0);
* ``bootstrap``: the paired bootstrap of each row's AURC difference to the baseline;
* ``fail_if``: every rule on every row (:mod:`lsfix.evaluation.gate`);
* ``models``: mean ± sd across seeds and the paired t-test (:mod:`lsfix.evaluation.seeds`);
* ``by``: every metric per group, and the paired difference inside each group.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lsfix.errors import GateFailed, GateInconclusive, InputError, LsfixError, UsageError
from lsfix.evaluation.gate import FAIL, INCONCLUSIVE, Rule
from lsfix.readers.predictions import Predictions

#: Bootstrap replicates of the interval gate when ``bootstrap`` does not say.
GATE_BOOT = 1000


@dataclass
class Grouped:
    """``by=``: every file's metrics per group and the paired differences inside groups."""

    by: str
    results: list[Any]
    paired: list[dict[str, Any]]
    percent: bool

    def json(self) -> list[dict[str, Any]]:
        from lsfix.evaluation.grouped import group_json

        return group_json(self.results, percent=self.percent)

    def rows(self) -> list[dict[str, Any]]:
        from lsfix.evaluation.grouped import group_rows

        return group_rows(self.results, percent=self.percent)


@dataclass
class Comparison:
    """What :func:`compare` found.

    Attributes
    ----------
    baseline : str
        The first file's display name.
    results : list
        One :class:`lsfix.evaluation.inmemory.ScoreResult` per file and score, in input order;
        ``file_index[i]`` is the input position of ``results[i]``.
    paired : list of dict
        The paired bootstrap differences to the baseline (``bootstrap``), as in the JSON.
    fits : list
        Per input, its :class:`lsfix.evaluation.fitpolicy.FitResult` or None.
    rules, checks, outcome
        The gate: its rules, every rule on every row (:class:`lsfix.evaluation.gate.Check`),
        and ``"passed"``, ``"failed"`` or ``"inconclusive"``.
    models, seeds
        ``models``: (name, files) of each model; ``seeds``: (summaries, paired t-tests).
    grouped : Grouped or None
        ``by``: the per-group results.
    engines : list of str
        Per input, the engine that evaluated it: ``memory``, ``bounded`` (out of core, within
        ``memory_limit``) or ``drawn`` (only the drawn pixels read).
    curves, oracle
        RC curves of the files evaluated out of core (bounded engine), for plots.
    notes, warnings
        Lines for stderr: ``notes`` as they arose, ``warnings`` for the end of a successful run.
    """

    baseline: str
    convention: str
    percent: bool
    results: list[Any]
    file_index: list[int]
    paired: list[dict[str, Any]]
    fits: list[Any]
    rules: list[Rule]
    gate: str
    level: float
    n_boot: int
    checks: list[Any]
    outcome: str
    models: list[tuple[str, list[str]]] = field(default_factory=list)
    seeds: tuple[list[Any], list[Any]] | None = None
    grouped: Grouped | None = None
    engines: list[str] = field(default_factory=list)
    curves: list[Any] = field(default_factory=list)
    oracle: Any = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    predictions: list[Predictions] = field(default_factory=list, repr=False)

    @property
    def failed(self) -> list[Any]:
        """The gate checks that failed."""
        return [c for c in self.checks if c.verdict == FAIL]

    @property
    def inconclusive(self) -> list[Any]:
        """The gate checks that are inconclusive."""
        return [c for c in self.checks if c.verdict == INCONCLUSIVE]

    @property
    def exit_code(self) -> int:
        """The exit status of ``lsfix compare``: 4 when a rule failed, 5 when one is
        inconclusive (and none failed), else 0."""
        err = self.gate_error()
        return 0 if err is None else int(err.exit_code)

    def gate_error(self) -> LsfixError | None:
        """The error the gate ends the command with (:class:`lsfix.errors.GateFailed` or
        :class:`lsfix.errors.GateInconclusive`), or None when it passed (or has no rules)."""
        fails, undecided = self.failed, self.inconclusive
        if fails:
            return GateFailed(f"{len(fails)} gate rule breach(es); first: "
                              f"{breach(fails[0])}")
        if undecided:
            return GateInconclusive(f"{len(undecided)} gate check(s) inconclusive, none "
                                    f"failed; first: {breach(undecided[0])}")
        return None

    def gate_notes(self) -> list[str]:
        """The gate's stderr lines: each failed (else each inconclusive) check, or that the
        gate passed."""
        bad = self.failed or self.inconclusive
        if bad:
            return [f"lsfix compare: gate: {breach(c)}" for c in bad]
        if self.rules:
            return [f"lsfix compare: gate passed ({len(self.rules)} rule(s))"]
        return []

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``lsfix compare -f json`` (format ``lsfix.compare``), with
        undefined numbers as ``None``."""
        from lsfix.output.report import document, strict
        from lsfix.output.table import result_json

        body: dict[str, Any] = {
            "baseline": self.baseline, "convention": self.convention, "percent": self.percent,
            "results": result_json(self.results, percent=self.percent), "paired": self.paired,
            "fits": [{"file": p.name, **f.to_dict()}
                     for p, f in zip(self.predictions, self.fits, strict=True) if f],
            "gate": {"rules": [r.text for r in self.rules], "mode": self.gate,
                     "level": self.level,
                     "n_boot": self.n_boot if self.gate == "interval" else None,
                     "outcome": self.outcome, "failed": [breach(c) for c in self.failed],
                     "inconclusive": [breach(c) for c in self.inconclusive],
                     "passed": self.outcome == "passed",
                     "checks": [c.to_dict() for c in self.checks]},
        }
        if self.models and self.seeds is not None:
            body["models"] = [{"name": g, "files": ps} for g, ps in self.models]
            body["seeds"] = [vars(s) | {"values": list(s.values)} for s in self.seeds[0]]
            body["seeds_paired"] = [vars(s) for s in self.seeds[1]]
        if self.grouped is not None:
            body.update({"by": self.grouped.by, "groups": self.grouped.json(),
                         "paired_groups": self.grouped.paired})
        return strict(document("compare", body))

    def close(self) -> None:
        """Close the files :func:`compare` read."""
        for pred in self.predictions:
            pred.close()


def breach(c: Any) -> str:
    """How one gate check reads in the notes, the error and the JSON."""
    word = {"fail": "failed", "inconclusive": "inconclusive", "pass": "passed"}[c.verdict]
    return f"rule '{c.rule.text}' {word} for {c.file} {c.score}: {c.line()}"


# --------------------------------------------------------------------------------------------
# the call


def compare(
    sources: Sequence[Any] | None = None,
    scores: Sequence[str] | str | None = None,
    *,
    models: Sequence[Any] | dict[str, Sequence[str]] | None = None,
    labels: Any = None,
    input: str | None = None,  # noqa: A002  (the CLI's --input)
    ignore_index: int | None = None,
    allow_incomplete: bool = False,
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
    fail_if: Sequence[str] = (),
    gate: str = "interval",
    fit: Sequence[Any] | None = None,
    fit_labels: Sequence[Any] | None = None,
    fit_fraction: float | None = None,
    select: str = "test",
    select_level: float = 0.95,
    memory_limit: int | str = "2G",
    curve_points: int = 0,
    keep_rows: bool = False,
    keep_open: bool = False,
    tmpdir: str | None = None,
) -> Comparison:
    """Compare files × scores: one result each, the first file's being the baseline.

    Parameters
    ----------
    sources : sequence
        Paths (``-`` = stdin, once), arrays or :class:`Predictions`: anything :func:`lsfix.read`
        reads (``labels``, ``input``, ``ignore_index`` apply to each). The first is the baseline.
    scores : str or sequence of str, optional
        Score names or specs; default: every stored score (or ``msp``); with fit data ``msp``
        and ``pnorm``.
    models : optional
        Instead of ``sources``: models trained over several seeds, as ``"NAME=FILES"`` texts
        (FILES comma-separated, globs allowed), ``(name, files)`` pairs or a dict. Adds mean ±
        sd across seeds and Student's paired t-test against the first model.
    convention, coverages, risks, bootstrap, seed, level, bootstrap_unit, by, subsample_pixels,
    percent, memory_limit, tmpdir
        As :func:`lsfix.evaluate`; ``bootstrap`` also gives the paired bootstrap of each row's
        AURC difference to the baseline.
    fail_if : sequence of str
        Gate rules ``METRIC OP VALUE`` (``aurc>+0.002``, ``auroc<-1%``, ``aurc>0.08``).
    gate : {"interval", "point"}
        How rules are judged: on the bootstrap interval of their subject (``bootstrap``
        replicates, else :data:`GATE_BOOT`) or on the estimate alone.
    fit, fit_labels, fit_fraction, select, select_level
        Fit data for pNorm's p and ``msp_ts``'s T: one labelled file per input (and its
        labels), or this fraction of each input's rows (``seed``), left out of every number;
        ``select`` ``test`` keeps MSP unless a p is significantly better at ``select_level``.
    curve_points : int
        On the bounded engine, keep each RC curve at up to this many points (for plots).
    keep_rows : bool
        Keep every row in memory with its labels (no bounded engine), as the label-smoothing
        mechanism plots (:func:`lsfix.output.explain.explain_plots`) need.
    keep_open : bool
        Keep the files open (``Comparison.predictions``; :meth:`Comparison.close`).

    Returns
    -------
    Comparison
        ``exit_code`` and ``gate_error()`` say how the gate ended.

    Examples
    --------
    >>> import numpy as np, lsfix
    >>> z = np.array([[3.0, 0.0], [0.0, 1.0], [1.0, 0.9], [0.2, 2.0]])
    >>> c = lsfix.compare([z, z * 2], "msp", labels=[0, 1, 1, 1], fail_if=["aurc>0.5"],
    ...                   gate="point")
    >>> [r.file for r in c.results], c.outcome, c.exit_code
    (['<array>', '<array>'], 'passed', 0)
    """
    from lsfix.evaluation.gate import GATE_MODES, parse_rule
    from lsfix.evaluation.planner import parse_memory_limit

    names = [scores] if isinstance(scores, str) else (list(scores) if scores else None)
    _check_numbers(convention, bootstrap, level)
    covs, rsk = tuple(float(c) for c in coverages), tuple(float(r) for r in risks)
    if bootstrap_unit not in ("row", "image"):
        raise UsageError(f"--bootstrap-unit must be row or image, got {bootstrap_unit!r}")
    if bootstrap_unit == "image" and by is not None:
        raise UsageError("--bootstrap-unit image does not go with --by (groups resample rows)")
    rules = [parse_rule(t) for t in (fail_if or [])]
    if gate not in GATE_MODES:
        raise UsageError(f"--gate must be one of {', '.join(GATE_MODES)}, got {gate!r}")
    groups = _models(models)
    inputs = list(sources or [])
    if groups:
        if inputs:
            raise UsageError("give the files either as arguments or with --model, not both")
        inputs = [p for _, ps in groups for p in ps]
    if not inputs:
        raise UsageError("no files to compare: give FILES or --model NAME=FILES")
    if sum(1 for i in inputs if isinstance(i, str) and i == "-") > 1:
        raise UsageError("stdin (-) can be given only once")
    fit = list(fit) if fit else None
    if fit and fit_fraction is not None:
        raise UsageError("give --fit or --fit-fraction, not both")
    if fit and len(fit) != len(inputs):
        raise UsageError(f"--fit: give one fit file per input, in input order ({len(inputs)} "
                         f"input(s), {len(fit)} --fit)")
    if fit_labels and (not fit or len(fit_labels) != len(fit)):
        raise UsageError("--fit-labels: give one per --fit file, in the same order")
    if fit_fraction is not None and not 0 < fit_fraction < 1:
        raise UsageError(f"--fit-fraction must be in (0, 1), got {fit_fraction}")
    if (fit or fit_fraction is not None) and subsample_pixels is not None:
        raise UsageError("--fit/--fit-fraction do not go with --subsample-pixels; tune p "
                         "with 'lsfix normalise' first")
    limit = (parse_memory_limit(memory_limit) if isinstance(memory_limit, str)
             else int(memory_limit))

    notes: list[str] = []
    warnings: list[str] = []
    preds: list[Predictions] = []
    owned: list[Predictions] = []
    try:
        for src in inputs:  # dense labels stay on disk until needed
            preds.append(_read(src, owned, notes, warnings, labels=labels, input=input,
                               ignore_index=ignore_index, allow_incomplete=allow_incomplete,
                               defer_dense_labels=labels is None))
        if not fit and fit_fraction is None:  # msp_ts without :T and no fit data: say how
            from lsfix.evaluation.planner import check_unfitted_scores

            for pred in preds:
                check_unfitted_scores(names, pred.scores, pred.name, "compare")
        fits = _fits(preds, inputs, names, fit, fit_labels, fit_fraction, notes, warnings,
                     labels=labels, input=input, seed=seed, select=select,
                     select_level=select_level, ignore_index=ignore_index)
        out = _compare(preds, inputs, names, groups, fits, rules, notes, convention=convention,
                       coverages=covs, risks=rsk, bootstrap=bootstrap, seed=seed, level=level,
                       bootstrap_unit=bootstrap_unit, by=by, subsample=subsample_pixels,
                       percent=percent, gate=gate, limit=limit, curve_points=curve_points,
                       keep_rows=keep_rows, tmpdir=tmpdir)
    except BaseException:
        for pred in owned:
            pred.close()
        raise
    out.warnings = warnings
    out.predictions = preds
    if not keep_open:
        for pred in owned:
            pred.close()
    return out


def _check_numbers(convention: str, bootstrap: int, level: float) -> None:
    from lsfix.core import CONVENTIONS
    from lsfix.evaluation.planner import check_bootstrap

    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {str(convention)[:40]!r}; choose one of "
                         f"{', '.join(CONVENTIONS)}")
    check_bootstrap(bootstrap, level)


def _models(models: Any) -> list[tuple[str, list[str]]]:
    """``models`` as (name, files) pairs, names unique."""
    from lsfix.evaluation.seeds import parse_model

    if not models:
        return []
    items = list(models.items()) if isinstance(models, dict) else list(models)
    groups = [parse_model(m) if isinstance(m, str) else (str(m[0]), [str(p) for p in m[1]])
              for m in items]
    for name, paths in groups:
        if len(set(paths)) != len(paths):
            raise UsageError(f"--model {name}: a file is listed twice")
    if len({g for g, _ in groups}) != len(groups):
        raise UsageError("--model: two models share a name")
    return groups


def _read(src: Any, owned: list[Predictions], notes: list[str], warnings: list[str], *,
          labels: Any, input: str | None, ignore_index: int | None,  # noqa: A002
          allow_incomplete: bool = False, need_logits: bool = False,
          defer_dense_labels: bool = False) -> Predictions:
    """Read one source with :func:`lsfix.read` (a :class:`Predictions` is used as given);
    how a foreign input was read goes to ``notes``, what lsfix assumed to ``warnings``."""
    import lsfix

    if isinstance(src, Predictions) and labels is None and input is None:
        return src
    pred = lsfix.read(src, labels=labels, input=input, ignore_index=ignore_index,
                      allow_incomplete=allow_incomplete, need_logits=need_logits,
                      defer_dense_labels=defer_dense_labels)
    if not isinstance(src, Predictions):  # a caller's Predictions stays the caller's to close
        owned.append(pred)
    notes += [f"lsfix: {line}" for line in pred.notes]
    warnings += [f"lsfix compare: warning: {line}" for line in pred.warnings]
    return pred


def _fits(preds: list[Predictions], inputs: list[Any], names: list[str] | None,
          fit: list[Any] | None, fit_labels: Sequence[Any] | None, fit_fraction: float | None,
          notes: list[str], warnings: list[str], *, labels: Any, input: str | None,  # noqa: A002
          seed: int, select: str, select_level: float, ignore_index: int | None) -> list[Any]:
    """One :class:`lsfix.evaluation.fitpolicy.FitResult` per input when fit data are given and
    a score needs them (``pnorm``, ``msp_ts``, or no scores named), else None each."""
    from lsfix.evaluation.comparison import needs_fit
    from lsfix.evaluation.fitpolicy import choose_fit
    from lsfix.readers.entry import require_fit_labels

    if not fit and fit_fraction is None:
        return [None] * len(preds)
    if names and not needs_fit(names):
        notes.append("lsfix compare: no score needs fit data (pnorm, msp_ts); "
                     "--fit/--fit-fraction not used")
        return [None] * len(preds)
    out = []
    for i, pred in enumerate(preds):
        if pred.logits is None:
            raise UsageError(f"{pred.name} has no logits: p (and T) are tuned on logits; "
                             "compare it without --fit/--fit-fraction")
        val = None
        if fit:
            # --labels/--input are the inputs' options: a fit file takes them only when it
            # is one of the inputs; its own labels come with fit_labels
            own = isinstance(fit[i], str) and fit[i] in inputs
            scratch: list[Predictions] = []
            val = _read(fit[i], scratch, notes, warnings,
                        labels=fit_labels[i] if fit_labels else (labels if own else None),
                        input=input if own else None, ignore_index=ignore_index,
                        need_logits=True)
            require_fit_labels(val, "--fit-labels")
        try:
            res = choose_fit(pred, fit=val, fit_fraction=fit_fraction, seed=seed,
                             temperature=bool(names and "msp_ts" in names) or not names,
                             select=select, level=select_level)
        finally:
            if fit:
                for v in scratch:
                    v.close()
        if res.fit_mask is not None:
            pred.fit_mask = res.fit_mask
        notes.append(f"lsfix compare: {pred.name}: pnorm: {res.describe()}")
        warnings += [f"lsfix compare: {pred.name}: warning: {line}" for line in res.notes]
        out.append(res)
    return out


def _tune_command(inputs: list[Any], preds: list[Predictions], names: list[str] | None,
                  groups: list[tuple[str, list[str]]]) -> str:
    """The command line that would tune p (said when a bare ``pnorm`` has no fit data)."""
    import shlex

    files = ([f"--model {shlex.quote(g + '=' + ','.join(ps))}" for g, ps in groups] if groups
             else [shlex.quote(os.fspath(i) if isinstance(i, str | os.PathLike) else p.name)
                   for i, p in zip(inputs, preds, strict=True)])
    scores = [f"-s {shlex.quote(s)}" for s in (names or [])]
    return " ".join(["lsfix compare", *files, *scores, "--fit-fraction 0.2"])


def _compare(preds: list[Predictions], inputs: list[Any], names: list[str] | None,
             groups: list[tuple[str, list[str]]], fits: list[Any], rules: list[Rule],
             notes: list[str], *, convention: str, coverages: tuple[float, ...],
             risks: tuple[float, ...], bootstrap: int, seed: int, level: float,
             bootstrap_unit: str, by: str | None, subsample: str | None, percent: bool,
             gate: str, limit: int, curve_points: int, keep_rows: bool,
             tmpdir: str | None) -> Comparison:
    from lsfix.core import paired_bootstrap
    from lsfix.evaluation.comparison import compare_scores, pair_rows
    from lsfix.evaluation.engines import evaluate_files, paired_images
    from lsfix.evaluation.gate import outcome
    from lsfix.evaluation.inmemory import eval_mask
    from lsfix.output.report import paired_dict
    from lsfix.output.table import result_rows

    hint = _tune_command(inputs, preds, names, groups)
    fit_of = {id(p): f for p, f in zip(preds, fits, strict=True)}

    def scores_of(pred: Any) -> Any:  # scores from the logits, stored ones checked
        return compare_scores(pred, names, fit_of.get(id(pred)), command=hint)

    # the gate, the bootstrap and the fit split need every row's scores (no bounded engine)
    ev = evaluate_files(preds, names, convention=convention, coverages=coverages, risks=risks,
                        per_row=(bool(bootstrap) or by is not None or keep_rows or bool(rules)
                                 or any(f is not None for f in fits)),
                        subsample=subsample, seed=seed, memory_limit=limit,
                        curve_points=curve_points, folder=tmpdir, allow_drawn=by is None,
                        scores_of=scores_of, n_boot=bootstrap, level=level)
    results, file_of = ev.results, ev.file_index
    masks = [eval_mask(p) if e == "memory" else None
             for p, e in zip(preds, ev.engines, strict=True)]
    base_name = preds[0].name
    gate_rows = result_rows(results, percent=False)  # rules are always on fractions
    for rule in rules:
        _check_rule_metric(rule, gate_rows)
    pairings = [None] + [pair_rows(preds[0], masks[0], p, masks[i])
                         for i, p in enumerate(preds) if i]
    if any(e != "memory" for e in ev.engines):  # drawn pixels pair as drawn, in order
        pairings = [None] + [_drawn_pairing(ev, i) for i in range(1, len(preds))]
    for i, pr in enumerate(pairings):
        if pr is not None and pr.by_id:
            notes.append(f"lsfix compare: {preds[i].name}: rows aligned to {base_name} by "
                         "sample id")

    def aligned(k: int) -> tuple[Any, Any]:
        r, pr = results[k], pairings[file_of[k]]
        if pr is None or pr.order is None:
            return r.confidence, r.correct
        return r.confidence[pr.order], r.correct[pr.order]

    base_res = {r.score: k for k, r in enumerate(results) if file_of[k] == 0}
    paired: list[dict[str, Any]] = []
    if bootstrap:
        if any(e != "memory" for e in ev.engines):  # drawn pixels: paired as drawn
            clusters = ev.paired_clusters(bootstrap_unit)
        else:
            for i, pred in enumerate(preds[1:], start=1):
                pr = pairings[i]
                assert pr is not None
                if not pr.paired:
                    raise InputError(f"cannot pair {preds[0].name} and {pred.name} for the "
                                     f"bootstrap: {pr.why}")
            clusters = paired_images(preds, bootstrap_unit)
        for k, r in enumerate(results):
            b = base_res.get(r.score)
            if file_of[k] == 0 or b is None:
                continue
            rc, ry = aligned(k)
            d = paired_bootstrap(results[b].confidence, results[b].correct, rc, ry,
                                 n_boot=bootstrap, seed=seed, level=level,
                                 convention=convention, clusters=clusters)
            paired.append({"file": r.file, "score": r.score, "baseline": results[b].file,
                           "unit": bootstrap_unit, **paired_dict(d, percent=percent)})

    n_boot = bootstrap or GATE_BOOT
    checks = _gate_checks(rules, results, file_of, gate_rows, pairings, aligned, mode=gate,
                          n_boot=n_boot, seed=seed, level=level, convention=convention,
                          coverages=coverages, risks=risks)
    seeds = None
    if groups:
        from lsfix.evaluation.seeds import summarise

        start, per_model = 0, []
        for name, paths in groups:
            per_model.append((name, [row for k, row in enumerate(gate_rows)
                                     if start <= file_of[k] < start + len(paths)]))
            start += len(paths)
        seeds = summarise(per_model, level=level)
    grouped = None
    if by is not None:
        grouped = _compare_by(preds, names, by, notes, convention=convention,
                              coverages=coverages, risks=risks, n_boot=bootstrap, seed=seed,
                              level=level, percent=percent)
    return Comparison(baseline=base_name, convention=convention, percent=percent,
                      results=results, file_index=file_of, paired=paired, fits=fits,
                      rules=rules, gate=gate, level=level, n_boot=n_boot, checks=checks,
                      outcome=outcome(checks) if rules else "passed", models=groups,
                      seeds=seeds, grouped=grouped, engines=ev.engines, curves=ev.curves,
                      oracle=ev.oracle, notes=notes)


def _check_rule_metric(rule: Rule, rows: list[dict[str, Any]]) -> None:
    from lsfix.core import bootstrap_metrics

    known = set(bootstrap_metrics()) | {k for k in rows[0]
                                        if k.startswith(("risk@", "coverage@"))}
    if rule.metric not in known:
        raise UsageError(f"--fail-if {rule.text!r}: unknown metric {rule.metric!r}; "
                         f"choose from {', '.join(sorted(known))}")


def _drawn_pairing(ev: Any, i: int) -> Any:
    """Pairing of file ``i`` with the first when their pixels were drawn (engine ``drawn``):
    row by row when :meth:`Evaluated.paired_clusters` accepts the two, else unpaired."""
    import numpy as np

    from lsfix.evaluation.comparison import Pairing
    from lsfix.evaluation.engines import Evaluated

    two = Evaluated(preds=[ev.preds[0], ev.preds[i]], engines=[ev.engines[0], ev.engines[i]],
                    drawn=[ev.drawn[0], ev.drawn[i]])
    try:
        two.paired_clusters("row")
    except InputError as exc:
        return Pairing(None, str(exc))
    k = next(r.correct.shape[0] for r, j in zip(ev.results, ev.file_index, strict=True)
             if j == i)
    return Pairing(np.arange(k))


def _gate_checks(rules: list[Rule], results: list[Any], file_of: list[int],
                 gate_rows: list[dict[str, Any]], pairings: list[Any], aligned: Any, *,
                 mode: str, n_boot: int, seed: int, level: float, convention: str,
                 coverages: tuple[float, ...], risks: tuple[float, ...]) -> list[Any]:
    """Every rule on every row (lsfix.evaluation.gate): the point estimate, or the bootstrap
    interval (paired with the baseline where the rows pair, independent draws otherwise)."""
    from lsfix.core import bootstrap_metrics
    from lsfix.core.replicates import metric_replicates
    from lsfix.evaluation.gate import check_rule

    if not rules:
        return []
    need = tuple(m for m in bootstrap_metrics() if any(r.metric == m for r in rules))
    covs = tuple(c for c in coverages if any(r.metric == f"risk@{c:g}" for r in rules))
    rsks = tuple(c for c in risks if any(r.metric == f"coverage@{c:g}" for r in rules))
    cache: dict[tuple[int, str], dict[str, Any]] = {}

    def reps(k: int) -> dict[str, Any]:
        i, r = file_of[k], results[k]
        key = (i, r.score)
        if key not in cache:
            pr = pairings[i]
            together = i == 0 or (pr is not None and pr.paired)
            c, y = aligned(k) if together else (r.confidence, r.correct)
            cache[key] = metric_replicates(c, y, n_boot=n_boot,
                                           seed=seed if together else seed + i,
                                           convention=convention, metrics=need,
                                           coverages=covs, risks=rsks)
        return cache[key]

    base_res = {r.score: k for k, r in enumerate(results) if file_of[k] == 0}
    checks = []
    for rule in rules:
        for k, (r, row) in enumerate(zip(results, gate_rows, strict=True)):
            if rule.delta and file_of[k] == 0:
                continue
            b = base_res.get(r.score)
            base_value = None if b is None else gate_rows[b].get(rule.metric)
            kw: dict[str, Any] = {}
            if mode == "interval" and r.correct.shape[0]:
                kw["rep"] = reps(k)[rule.metric]
                if rule.delta and b is not None:
                    kw["base_rep"] = reps(b)[rule.metric]
                pr = pairings[file_of[k]]
                kw["paired"] = pr is not None and pr.paired
            checks.append(check_rule(rule, file=r.file, score=r.score,
                                     value=row.get(rule.metric), baseline=base_value,
                                     mode=mode, n=int(r.correct.shape[0]), level=level, **kw))
    return checks


def _compare_by(preds: list[Predictions], names: list[str] | None, by: str, notes: list[str],
                *, convention: str, coverages: tuple[float, ...], risks: tuple[float, ...],
                n_boot: int, seed: int, level: float, percent: bool) -> Grouped:
    """``by``: every file's metrics per group and, with ``n_boot``, the paired difference to
    the baseline inside each group — only where the groups hold the same rows in both files
    (not for ``by="predicted"``: each model predicts its own classes)."""
    import numpy as np

    from lsfix.core import paired_bootstrap
    from lsfix.evaluation.grouped import ALL, evaluate_by, grouping
    from lsfix.output.report import paired_dict

    per_file = [evaluate_by(pred, names, by, convention=convention, coverages=coverages,
                            risks=risks, n_boot=n_boot, seed=seed, level=level)
                for pred in preds]
    paired: list[dict[str, Any]] = []
    if n_boot and by != "predicted":
        base_g = grouping(preds[0], by)
        base_res = {(r.score, r.group): r for r in per_file[0]}
        for pred, results in zip(preds[1:], per_file[1:], strict=True):
            g = grouping(pred, by)
            if g.names != base_g.names or not np.array_equal(g.index, base_g.index):
                notes.append(f"lsfix compare: {pred.name}: its {by} groups differ from the "
                             "baseline's; no paired differences per group")
                continue
            for r in results:
                b = base_res.get((r.score, r.group))
                if r.group == ALL or b is None:
                    continue
                d = paired_bootstrap(b.confidence, b.correct, r.confidence, r.correct,
                                     n_boot=n_boot, seed=seed, level=level,
                                     convention=convention)
                paired.append({"file": r.file, "score": r.score, "group": r.group,
                               "baseline": b.file, **paired_dict(d, percent=percent)})
    return Grouped(by, [r for results in per_file for r in results], paired, percent)


__all__ = ["GATE_BOOT", "Comparison", "Grouped", "breach", "compare"]

"""The optional sections of an evaluation (``lsfix curve``'s ``--calibration``,
``--threshold-params`` and ``--rank-map``), computed by :func:`lsfix.evaluate` on the rows it
evaluates and kept on :attr:`lsfix.Evaluation.sections`:

* :class:`CalibrationSection`: the model's calibration (accuracy, ECE, equal-mass ECE, MCE, NLL,
  Brier; ``docs/calibration.md``) and, with a labelled fit input, after a temperature fitted
  there (:func:`lsfix.core.fit_temperature`);
* :class:`ThresholdSection`: the realised coverage and selective risk at a threshold saved by
  ``lsfix threshold --save-params``, next to what was certified (``docs/threshold.md``);
* :class:`RankMapSection`: each image's per-pixel uncertainty rank under the first score.

Each section's :meth:`to_dict` is its part of the JSON document; its text and plots are made by
:mod:`lsfix.output.curve`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


from lsfix.errors import UsageError
from lsfix.readers.predictions import Predictions

@dataclass
class CalibrationSection:
    """Calibration variants (``lsfix.output.calibration.CalibrationVariant``), the model's own
    first; ``temperature_fit`` names the fit input, its rows and the temperature, or None."""

    variants: list[Any]
    temperature_fit: dict[str, Any] | None
    file: str

    def to_dict(self) -> dict[str, Any]:
        from lsfix.output.calibration import section

        doc = section(self.variants)
        doc["temperature_fit"] = self.temperature_fit
        return doc


@dataclass
class ThresholdSection:
    """The realised coverage and risk at a saved threshold (``params``: its JSON document,
    ``source``: where it was read from)."""

    params: Any
    realised: Any
    source: str

    def to_dict(self) -> dict[str, Any]:
        d = self.params.doc
        r = self.realised
        return {"params": {k: d.get(k) for k in (
                    "file", "score", "spec", "threshold", "certified", "certified_coverage",
                    "bound", "risk", "delta", "n")},
                "realised": r.as_dict(),
                "within_target": None if r.n_accepted == 0 else bool(r.risk <= float(d["risk"]))}


@dataclass
class RankMapSection:
    """Per-pixel rank maps of the first images (drawn, never in the JSON)."""

    maps: Any
    names: list[str]
    score: str
    file: str


def calibration(pred: Predictions, *, bins: int, fit: Any, n_boot: int, seed: int,
                level: float) -> CalibrationSection:
    """Calibration of ``pred``'s evaluation rows; with ``fit`` (a path or a labelled
    :class:`Predictions` with logits) also after the temperature fitted on it."""
    import lsfix
    from lsfix.core import fit_temperature
    from lsfix.evaluation.inmemory import eval_mask
    from lsfix.output.calibration import rows_of, variant
    from lsfix.readers.entry import require_fit_labels

    mask = eval_mask(pred)
    kw: dict[str, Any] = {"n_bins": bins, "n_boot": n_boot, "seed": seed, "level": level}
    variants = [variant(rows_of(pred, mask), "model (T = 1)", **kw)]
    fitted = None
    if fit is not None:
        val = lsfix.read(fit, need_logits=True)
        try:
            require_fit_labels(val, "--calibration-fit with its own /labels")
            if val.k != pred.k:
                raise UsageError(f"{val.name} has K={val.k} classes, {pred.name} has "
                                 f"K={pred.k}")
            t = fit_temperature(val.logits, val.labels)
            fitted = {"file": val.name, "n": val.n, "temperature": t}
        finally:
            if val is not fit:
                val.close()
        label = f"T = {t:.4g} (fitted on {os.path.basename(val.name) or val.name})"
        variants.append(variant(rows_of(pred, mask, t), label, **kw))
    return CalibrationSection(variants, fitted, pred.name)


def threshold(pred: Predictions, params: Any) -> ThresholdSection:
    """The realised coverage and risk on ``pred``'s evaluation rows at the threshold of
    ``params`` (a path to a ``--save-params`` JSON file, or its document as a dict)."""
    from lsfix.evaluation.inmemory import correct_of, eval_mask
    from lsfix.evaluation.threshold import confidence_for, params_from_json, realised

    if isinstance(params, dict):
        source = "<params>"
        doc: object = params
    else:
        from lsfix.readers.untrusted import read_json

        source = os.fsdecode(params)
        doc = read_json(source)
    t = params_from_json(doc, source)
    conf = confidence_for(pred, t)
    correct = correct_of(pred)
    mask = eval_mask(pred)
    if mask is not None:
        conf, correct = conf[mask], correct[mask]
    return ThresholdSection(t, realised(conf, correct, t), source)


def rank_map(pred: Predictions, score: str) -> RankMapSection:
    """``score``'s per-pixel uncertainty-rank maps of ``pred``'s images."""
    from lsfix.evaluation.dense import rank_map_data

    maps, names = rank_map_data(pred, score)
    return RankMapSection(maps, names, score, pred.name)


__all__ = ["CalibrationSection", "RankMapSection", "ThresholdSection", "calibration",
           "rank_map", "threshold"]

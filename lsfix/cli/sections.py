"""The optional sections of ``lsfix curve``: calibration (``--calibration``) and the realised
coverage and risk at a saved threshold (``--threshold-params``). Each returns its JSON section
and its text for the table output."""

from __future__ import annotations

from typing import Any


def calibration_section(pred: Any, run: Any, *, bins: int, fit_path: str | None,
                        n_boot: int, seed: int,
                        level: float, reliability: str | None) -> tuple[dict[str, Any], str]:
    """Calibration of ``pred``'s evaluation rows: the model's probabilities and, with
    ``fit_path``, after a temperature fitted there (:func:`lsfix.core.fit_temperature`)."""
    from lsfix.evaluation.inmemory import eval_mask
    from lsfix.output.calibration import (
        reliability_series,
        rows_of,
        section,
        table_text,
        variant,
    )

    mask = eval_mask(pred)
    kw: dict[str, Any] = {"n_bins": bins, "n_boot": n_boot, "seed": seed, "level": level}
    variants = [variant(rows_of(pred, mask), "model (T = 1)", **kw)]
    fitted = None
    if fit_path is not None:
        from lsfix.cli.common import load, require_fit_labels
        from lsfix.core import fit_temperature
        from lsfix.errors import UsageError

        val = load(fit_path, run, need_logits=True)
        require_fit_labels(val, "--calibration-fit with its own /labels")
        if val.k != pred.k:
            raise UsageError(f"{val.name} has K={val.k} classes, {pred.name} has K={pred.k}")
        t = fit_temperature(val.logits, val.labels)
        fitted = {"file": val.name, "n": val.n, "temperature": t}
        val.close()
        label = f"T = {t:.4g} (fitted on {_base(val.name)})"
        variants.append(variant(rows_of(pred, mask, t), label,
                                **kw))
    doc = section(variants)
    doc["temperature_fit"] = fitted
    if reliability is not None:
        from lsfix.output.plot import reliability_plot

        reliability_plot(reliability_series(variants), reliability,
                         title=f"Reliability: {_base(pred.name)}")
    text = table_text(variants, f"calibration of {pred.name} ({variants[0].metrics.n} rows)")
    return doc, text


def threshold_section(pred: Any, params_path: str) -> tuple[dict[str, Any], str]:
    """The realised coverage and selective risk on ``pred``'s evaluation rows at the
    threshold of ``params_path``, next to what was certified."""
    from lsfix.readers.paramsfile import read_json_file
    from lsfix.evaluation.inmemory import correct_of, eval_mask
    from lsfix.evaluation.threshold import confidence_for, params_from_json, realised
    from lsfix.output.report import fmt

    t = params_from_json(read_json_file(params_path), params_path)
    conf = confidence_for(pred, t)
    correct = correct_of(pred)
    mask = eval_mask(pred)
    if mask is not None:
        conf, correct = conf[mask], correct[mask]
    r = realised(conf, correct, t)
    d = t.doc
    doc = {"params": {k: d.get(k) for k in ("file", "score", "spec", "threshold", "certified",
                                             "certified_coverage", "bound", "risk", "delta",
                                             "n")},
           "realised": r.as_dict(),
           "within_target": None if r.n_accepted == 0 else bool(r.risk <= float(d["risk"]))}
    if t.threshold == float("inf"):
        text = (f"threshold ({params_path}): nothing was certified; every row is rejected "
                f"(coverage 0 of {r.n})\n")
    else:
        text = (f"threshold {d.get('score')} >= {t.threshold!r} ({params_path}): realised "
                f"coverage {fmt(r.coverage, 4)} ({r.n_accepted} of {r.n}), risk "
                f"{fmt(r.risk, 4)} ({r.n_errors} errors); certified on {d.get('file')}: "
                f"coverage {fmt(d.get('certified_coverage'), 4)}, risk <= "
                f"{fmt(d.get('risk'))} with probability >= {fmt(1 - float(d['delta']))}\n")
    return doc, text


def _base(name: str) -> str:
    import os

    return os.path.basename(name) or name

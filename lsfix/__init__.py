"""lsfix: how well does a classifier know when it is wrong? — and the fix for label smoothing.

Files and arrays, the way the CLI reads and evaluates them::

    >>> import numpy as np, lsfix
    >>> z = np.array([[3.0, 0.0], [0.0, 1.0], [1.0, 0.9], [0.2, 2.0]])
    >>> ev = lsfix.evaluate(lsfix.read(z, labels=[0, 1, 1, 1]), ["msp", "pnorm:2"])
    >>> [r.score for r in ev.results], ev.to_dict()["format"]
    (['msp', 'pnorm:2'], 'lsfix.curve')

The numeric core on confidences and correctness (the same numbers the CLI prints)::

    >>> m = lsfix.metrics(np.array([.9, .8, .7, .6, .8]), np.array([1, 1, 0, 0, 1], bool))
    >>> round(m.aurc, 12), round(m.augrc, 12)
    (0.13, 0.08)

The names of :mod:`lsfix.core` are loaded on first use, so ``import lsfix`` (and so the CLI's
``--help`` and shell completion) stays fast. Importing :mod:`lsfix` never imports h5py, typer,
torch or matplotlib (``tests/test_architecture.py`` holds that line); file I/O lives in
:mod:`lsfix.readers.logitsfile`.
"""

from __future__ import annotations

from typing import Any

from lsfix.errors import ExitCode, InputError, LsfixError, UsageError

__version__ = "0.1.0"

_CORE = (
    "BOOTSTRAP_METRICS", "CONVENTIONS", "P_GRID", "PLAIN_SCORES", "SCORE_FAMILIES", "SCORES",
    "ScoreFamily", "plain_scores", "register_score", "score_families", "METRIC_FIELDS", "METRICS",
    "MetricDef", "bootstrap_metrics", "register_metric",
    "ArrayRows", "Blocks", "CoveragePoint", "Interval", "Metrics", "PNormFit", "PairedDifference",
    "RCCurve", "RiskPoint", "RowSource", "ScoreSpec",
    "as_rows", "aurc", "blocks_from_counts", "bootstrap_ci", "compute_scores", "correctness",
    "coverage_k", "curve_from_blocks", "energy", "evaluate_conventions",
    "fit_temperature", "gini",
    "logit_margin", "max_logit", "metrics_from_blocks", "msp", "msp_ts", "neg_entropy",
    "paired_bootstrap", "parse_score", "pnorm", "predictions", "rc_curve", "softmax_margin",
    "tie_blocks", "tune_pnorm",
)

#: the one way in, the one planner, and the numeric evaluation of one score
_ENTRIES = {"read": ("lsfix.readers.entry", "read"),
            "evaluate": ("lsfix.evaluation.planner", "evaluate"),
            "compare": ("lsfix.evaluation.compare", "compare"),
            "Comparison": ("lsfix.evaluation.compare", "Comparison"),
            "Evaluation": ("lsfix.evaluation.planner", "Evaluation"),
            "Predictions": ("lsfix.readers.predictions", "Predictions"),
            "metrics": ("lsfix.core", "evaluate"),
            "scheduler": ("lsfix.evaluation.scheduler", "scheduler"),
            "parse_grid": ("lsfix.evaluation.fitpolicy", "parse_grid"),
            "audit": ("lsfix.evaluation.audit", "run_audit"),
            "AuditResult": ("lsfix.evaluation.audit", "AuditResult"),
            "threshold": ("lsfix.evaluation.threshold", "run_threshold"),
            "ThresholdParams": ("lsfix.evaluation.threshold", "ThresholdParams"),
            "Fit": ("lsfix.evaluation.fitpolicy", "Fit"),
            "normalise": ("lsfix.evaluation.scoring", "normalise"),
            "score": ("lsfix.evaluation.scoring", "score"),
            "Scored": ("lsfix.evaluation.scoring", "Scored")}

__all__ = [*_CORE, *_ENTRIES, "ExitCode", "InputError", "LsfixError", "UsageError",
           "__version__"]


def __getattr__(name: str) -> Any:
    if name in _ENTRIES:
        import importlib

        module, attr = _ENTRIES[name]
        value = getattr(importlib.import_module(module), attr)
    elif name in _CORE:
        from lsfix import core

        value = getattr(core, name)
    else:
        raise AttributeError(f"module 'lsfix' has no attribute {name!r}")
    globals()[name] = value  # loaded once: later uses are plain attribute lookups
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""lsfix: how well does a classifier know when it is wrong? — and the fix for label smoothing.

The public numeric API (the same numbers the CLI prints)::

    >>> import numpy as np, lsfix
    >>> m = lsfix.evaluate(np.array([.9, .8, .7, .6, .8]), np.array([1, 1, 0, 0, 1], bool))
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
    "BOOTSTRAP_METRICS", "CONVENTIONS", "P_GRID", "PLAIN_SCORES", "SCORE_FAMILIES",
    "ArrayRows", "Blocks", "CoveragePoint", "Interval", "Metrics", "PNormFit", "PairedDifference",
    "RCCurve", "RiskPoint", "RowSource", "ScoreSpec",
    "as_rows", "aurc", "blocks_from_counts", "bootstrap_ci", "compute_scores", "correctness",
    "coverage_k", "curve_from_blocks", "energy", "evaluate", "evaluate_conventions",
    "fit_temperature", "gini",
    "logit_margin", "max_logit", "metrics_from_blocks", "msp", "msp_ts", "neg_entropy",
    "paired_bootstrap", "parse_score", "pnorm", "predictions", "rc_curve", "softmax_margin",
    "tie_blocks", "tune_pnorm",
)

__all__ = [*_CORE, "ExitCode", "InputError", "LsfixError", "UsageError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _CORE:
        from lsfix import core

        return getattr(core, name)
    raise AttributeError(f"module 'lsfix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

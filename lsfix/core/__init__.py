"""The numeric core: numpy and the standard library only (no h5py, typer, torch, matplotlib).

See ``lsfix.core.metrics`` for every metric's definition and ``lsfix.core.scores`` for every
confidence score's.
"""

from __future__ import annotations

from lsfix.core.bootstrap import (
    BOOTSTRAP_METRICS,
    Interval,
    bootstrap_metrics,
    PairedDifference,
    bootstrap_ci,
    paired_bootstrap,
)
from lsfix.core.metrics import (
    CONVENTIONS,
    METRIC_FIELDS,
    METRICS,
    MetricDef,
    Blocks,
    CoveragePoint,
    Metrics,
    RCCurve,
    RiskPoint,
    aurc,
    blocks_from_counts,
    coverage_k,
    curve_from_blocks,
    evaluate,
    evaluate_conventions,
    metrics_from_blocks,
    rc_curve,
    register_metric,
    tie_blocks,
)
from lsfix.core.scores import (
    P_GRID,
    PLAIN_SCORES,
    SCORE_FAMILIES,
    SCORES,
    PNormFit,
    ScoreFamily,
    ScoreSpec,
    compute_scores,
    correctness,
    energy,
    fit_temperature,
    gini,
    logit_margin,
    max_logit,
    msp,
    msp_ts,
    neg_entropy,
    parse_score,
    plain_scores,
    pnorm,
    predictions,
    register_score,
    score_families,
    softmax_margin,
    tune_pnorm,
)
from lsfix.core.source import ArrayRows, RowSource, as_rows

__all__ = [
    "BOOTSTRAP_METRICS", "CONVENTIONS", "P_GRID", "PLAIN_SCORES", "SCORE_FAMILIES", "SCORES",
    "ScoreFamily", "plain_scores", "register_score", "score_families", "METRIC_FIELDS", "METRICS",
    "MetricDef", "bootstrap_metrics", "register_metric",
    "ArrayRows", "Blocks", "CoveragePoint", "Interval", "Metrics", "PNormFit", "PairedDifference",
    "RCCurve", "RiskPoint", "RowSource", "ScoreSpec",
    "as_rows", "aurc", "blocks_from_counts", "bootstrap_ci", "compute_scores", "correctness",
    "coverage_k", "curve_from_blocks", "energy", "evaluate", "evaluate_conventions",
    "fit_temperature", "gini",
    "logit_margin", "max_logit", "metrics_from_blocks", "msp", "msp_ts", "neg_entropy",
    "paired_bootstrap", "parse_score", "pnorm", "predictions", "rc_curve", "softmax_margin",
    "tie_blocks", "tune_pnorm",
]

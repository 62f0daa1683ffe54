"""audit's verdict weighs every score against MSP (issue 18 item 6), and a binary model's
audit says nothing about a fit set it did not use (issue 17 item 8)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from lsfix.cli import app
from lsfix.core import PairedDifference, PNormFit
from lsfix.core.selection import Candidate, Selection
from lsfix.evaluation.audit import _verdict_all
from lsfix.readers.logitsfile import new_file


def _sel(choice: str | None, cands: list[Candidate]) -> Selection:
    return Selection(choice=choice, point_choice=choice, baseline="msp", baseline_aurc=0.01,
                     candidates=tuple(cands), critical=2.0, level=0.95, n_boot=100, seed=0,
                     n=1000, n_errors=50, stability=0.9, picks={choice: 90})


FIT = PNormFit(p=2.0, fallback_msp=False, grid=((2.0, 0.1),), msp_aurc=0.2)
FALLBACK = PNormFit(p=None, fallback_msp=True, grid=((2.0, 0.3),), msp_aurc=0.2)


def test_a_better_score_other_than_pnorm_is_named() -> None:
    cands = [Candidate("pnorm", 0.0099, -0.0001, -0.0004, 0.0002, 0.0001),
             Candidate("logit_margin", 0.008, -0.002, -0.003, -0.001, 0.0005)]
    broken, verdict = _verdict_all(FALLBACK, _sel("logit_margin", cands), 0.1)
    assert broken
    assert verdict == ("MSP ranking is broken: logit_margin ranks better than MSP (ΔAURC = "
                       "-0.002, simultaneous 95% bounds [-0.003, -0.001], 2 scores against "
                       "MSP); use logit_margin instead of MSP")


def test_a_significant_score_and_a_lower_one_are_both_named() -> None:
    cands = [Candidate("pnorm", 0.007, -0.003, -0.006, 0.0005, 0.001),
             Candidate("logit_margin", 0.008, -0.002, -0.003, -0.001, 0.0005)]
    broken, verdict = _verdict_all(FIT, _sel("logit_margin", cands), 0.3)
    assert broken and verdict.endswith(
        "use logit_margin instead of MSP; the lowest AURC is pnorm's (normalisation (p=2) "
        "would remove 30.0% of excess AURC, ΔAURC = -0.003, upper bound +0.0005: not "
        "significant)")


def test_keep_msp_names_the_best_and_its_bound() -> None:
    cands = [Candidate("msp_ts", 0.0095, -0.0005, -0.0012, 0.0001, 0.0003)]
    broken, verdict = _verdict_all(FIT, _sel(None, cands), 0.1)
    assert not broken
    assert verdict == ("MSP is fine: keep it (no score is significantly better: the best of "
                       "1, msp_ts, has ΔAURC = -0.0005, simultaneous 95% upper bound +0.0001 "
                       ">= 0)")


def test_pnorm_chosen_reads_as_broken() -> None:
    cands = [Candidate("pnorm", 0.008, -0.002, -0.003, -0.001, 0.0005)]
    broken, verdict = _verdict_all(FIT, _sel("pnorm", cands), 0.25)
    assert broken and verdict.startswith("MSP ranking is broken: normalisation (p=2) removes "
                                         "25.0% of excess AURC (ΔAURC = -0.002")


def test_binary_audit_does_not_warn_about_a_fit_set(tmp_path) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 230).astype(np.float32)
    y = (z + rng.normal(0, 1, 230) > 0).astype(np.int64)
    new_file(str(tmp_path / "bin.h5"), z, labels=y)
    res = CliRunner().invoke(app, ["audit", str(tmp_path / "bin.h5"), "-b", "20", "-f",
                                   "table"])
    assert res.exit_code == 0, res.output
    assert "T fitted on 46 random rows of" in res.stdout
    assert "fit set" not in res.stderr and "0 rows" not in res.stderr + res.stdout
    doc = json.loads(CliRunner().invoke(app, ["audit", str(tmp_path / "bin.h5"), "-b", "20",
                                              "-f", "json"]).stdout)
    assert doc["fit"]["n_fit"] == 46 and doc["binary"] is True


def _paired(low: float, high: float) -> PairedDifference:
    return PairedDifference("aurc", (low + high) / 2, low, high, 0.02, 0.95, 100, 100)


def test_the_verdict_says_why_a_significant_single_comparison_is_not_the_pick() -> None:
    """pNorm's own paired interval excludes 0 while the simultaneous bounds over every score
    do not: the verdict says, in one sentence, which level it follows and why."""
    cands = [Candidate("pnorm", 0.007, -0.003, -0.006, 0.0005, 0.001),
             Candidate("logit_margin", 0.008, -0.002, -0.003, -0.001, 0.0005)]
    _, verdict = _verdict_all(FIT, _sel("logit_margin", cands), 0.3, _paired(-0.005, -0.001))
    assert verdict.endswith(
        "upper bound +0.0005: not significant); pNorm's single paired comparison with MSP "
        "(95% interval [-0.005, -0.001]) excludes 0 on its own, but the verdict uses the wider "
        "simultaneous bounds, which hold for all 2 scores at once so that the best of many is "
        "not picked by luck")
    _, keep = _verdict_all(FIT, _sel(None, cands[:1]), 0.3, _paired(-0.005, -0.001))
    assert keep.startswith("MSP is fine: keep it") and "excludes 0 on its own" in keep
    # nothing to reconcile: the single interval includes 0, or the lowest AURC is not pNorm's
    other = Candidate("logit_margin", 0.008, -0.002, -0.003, 0.1, 0.0005)
    for paired, sel in ((_paired(-0.005, 0.001), _sel("logit_margin", cands)),
                        (_paired(-0.005, -0.001), _sel(None, [other]))):
        assert "single paired" not in _verdict_all(FIT, sel, 0.3, paired)[1]

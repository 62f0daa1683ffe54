"""Scale edges: K = 21,843 classes, N = 1, N = 10**7 (scores only), all-correct and all-wrong.

The rule every result obeys (``docs/promises.md``): a metric is a finite number, or ``null``
with its reason in the result's ``undefined`` object (``"auroc": "all predictions correct"``).
Inside ``risk_at_coverage``/``coverage_at_risk``, ``risk`` is ``null`` exactly when the
selection is empty (``k == 0``: nothing is accepted at that risk). Usage limits are usage
errors (exit 2, one line): a file of one row cannot be split into fit and evaluation parts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lsfix
from lsfix.readers.logitsfile import new_file

from .conftest import cli, error_line

METRICS = ("aurc", "oracle_aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr",
           "accuracy")
CONVENTIONS = ("lsfix", "xia", "fd-shifts", "torch-uncertainty")
ALL_SCORES = ["msp", "max_logit", "logit_margin", "softmax_margin", "neg_entropy", "gini",
              "energy", "msp_ts:2", "pnorm:2", "pnorm:0"]


def assert_defined_or_named(result: dict[str, Any]) -> None:
    """Every metric finite, or null with a reason in ``undefined``; CIs follow suit."""
    undefined = result.get("undefined", {})
    for key in METRICS:
        value = result[key]
        if value is None:
            assert isinstance(undefined.get(key), str) and undefined[key], (key, result)
        else:
            assert math.isfinite(value), (key, value)
    for entry in result.get("risk_at_coverage", []) + result.get("coverage_at_risk", []):
        assert math.isfinite(entry["coverage"])
        assert (entry["risk"] is None) == (entry["k"] == 0), entry
    for key, ci in (result.get("ci") or {}).items():
        if ci["estimate"] is None:
            assert ci["low"] is None and ci["high"] is None and ci["n_valid"] == 0, (key, ci)
        else:
            assert ci["low"] <= ci["estimate"] <= ci["high"], (key, ci)


def curve_json(path: Path, *extra: object) -> list[dict[str, Any]]:
    r = cli(["curve", path, "-f", "json", *extra])
    assert r.code == 0, r
    for line in r.stderr.splitlines():  # only warnings naming the undefined metrics
        assert line.startswith("lsfix curve: warning: ") and "undefined" in line, line
    return json.loads(r.stdout)["results"]  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# K = 21,843 (ImageNet-21k)


K21K = 21_843


@pytest.fixture(scope="module")
def k21k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("k21k")
    rng = np.random.default_rng(0)
    n = 96
    y = rng.integers(0, K21K, n)
    z = rng.normal(0.0, 1.0, (n, K21K)).astype(np.float16)
    z[np.arange(n)[: n // 2], y[: n // 2]] += 6.0  # half right, half wrong
    new_file(folder / "in.h5", z, labels=y, class_names=[f"c{i}" for i in range(K21K)])
    return folder


def test_k21843_every_command(k21k: Path) -> None:
    src, scored = k21k / "in.h5", k21k / "scored.h5"
    r = cli(["score", src, "-o", scored, *[x for m in ALL_SCORES for x in ("-m", m)]])
    assert r.code == 0, r
    r = cli(["normalise", src, "--with", scored, "-o", k21k / "norm.h5", "-q"])
    assert r.code == 0, r
    results = curve_json(k21k / "norm.h5", "--bootstrap", "20", "--coverage", "0.5")
    assert len(results) == len(ALL_SCORES) + 1
    for res in results:
        assert res["n"] == 96 - 20  # the fit split (20 %, rounded up) is excluded
        assert_defined_or_named(res)
        assert res["auroc"] is not None  # some right, some wrong: everything is defined
    r = cli(["audit", src, "-f", "json", "--bootstrap", "50"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert doc["k"] == K21K
    for res in doc["scores"]:
        assert_defined_or_named(res)
    r = cli(["compare", scored, k21k / "norm.h5", "-f", "json", "-s", "msp"])
    assert r.code == 0, r


# --------------------------------------------------------------------------------------------
# N = 1


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("n1")
    z = np.array([[2.0, 1.0, 0.5]], np.float32)
    new_file(folder / "right.h5", z, labels=np.array([0]), sample_ids=["only"])
    new_file(folder / "right2.h5", z * 2, labels=np.array([0]), sample_ids=["only"])
    new_file(folder / "wrong.h5", z, labels=np.array([2]))
    rng = np.random.default_rng(1)
    new_file(folder / "val.h5", rng.normal(size=(60, 3)).astype(np.float32),
             labels=np.arange(60) % 3)
    return folder


@pytest.mark.parametrize("name", ["right.h5", "wrong.h5"])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_n1_curve_every_metric_defined_or_named(one: Path, name: str, convention: str) -> None:
    results = curve_json(one / name, "-c", convention, "--coverage", "0.5,1", "--risk", "0,0.5",
                         "--bootstrap", "20", *[x for m in ALL_SCORES for x in ("-s", m)])
    assert len(results) == len(ALL_SCORES)
    for res in results:
        assert res["n"] == 1
        assert_defined_or_named(res)
        assert res["auroc"] is None and res["fpr_at_95tpr"] is None  # one class only
        # torch-uncertainty's AUGRC divides by 1 - 1/n, like its AURC: undefined at n = 1
        assert (res["augrc"] is None) == (convention == "torch-uncertainty")


def test_n1_every_command(one: Path) -> None:
    src = one / "right.h5"
    r = cli(["score", src, "-o", one / "s.h5", *[x for m in ALL_SCORES for x in ("-m", m)]])
    assert r.code == 0, r
    r = cli(["score", src, "-m", "msp_ts", "--fit", one / "right.h5", "-o", one / "t.h5"])
    assert r.code == 0, r  # a temperature fitted on one sample: defined (at a bound)
    r = cli(["normalise", src, "--p", "2", "-o", one / "p.h5", "-q"])
    assert r.code == 0, r
    r = cli(["normalise", src, "--fit", one / "val.h5", "-o", one / "f.h5", "-q"])
    assert r.code == 0, r
    r = cli(["normalise", src, "--fit", src, "-o", one / "g.h5", "-q"])
    assert r.code == 0, r  # tuned on one sample: MSP fallback, defined
    # the default (tune on a 20 % split of the input) cannot split one row: a usage error
    r = cli(["normalise", src, "-o", one / "x.h5"])
    assert r.code == 2, r
    assert "cannot split 1 row(s) into fit and evaluation parts" in error_line(r, "normalise")
    assert not (one / "x.h5").exists()
    r = cli(["audit", src, "-f", "json", "-b", "20"])
    assert r.code == 2, r
    assert "cannot split 1 row(s)" in error_line(r, "audit")
    r = cli(["audit", src, "--val", one / "val.h5", "-f", "json", "-b", "20"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert doc["n_eval"] == 1
    for res in doc["scores"]:
        assert_defined_or_named(res)
    r = cli(["compare", src, one / "right2.h5", "-f", "json", "-b", "20"])
    assert r.code == 0, r
    for res in json.loads(r.stdout)["results"]:
        assert_defined_or_named(res)


def test_n1_audit_names_why_excess_removed_is_undefined(one: Path) -> None:
    r = cli(["audit", one / "right.h5", "--val", one / "val.h5", "-f", "json", "-b", "20"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert doc["excess_aurc_removed"] is not None or "excess_aurc_removed" in doc.get(
        "undefined", {})


# --------------------------------------------------------------------------------------------
# all correct, all wrong


@pytest.fixture(scope="module")
def extremes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("extremes")
    z = np.random.default_rng(2).normal(size=(200, 5)).astype(np.float32)
    new_file(folder / "all_correct.h5", z, labels=z.argmax(axis=1))
    new_file(folder / "all_wrong.h5", z, labels=(z.argmax(axis=1) + 1) % 5)
    return folder


@pytest.mark.parametrize(("name", "why", "aurc"), [
    ("all_correct.h5", "all predictions correct", 0.0),
    ("all_wrong.h5", "all predictions wrong", 1.0),
])
def test_all_correct_and_all_wrong(extremes: Path, name: str, why: str, aurc: float) -> None:
    """AUROC and FPR@95TPR need both classes and NAURC divides by (AURC_random - oracle),
    which is 0: null with the reason. AURC, oracle AURC, E-AURC and AUGRC are defined."""
    for res in curve_json(extremes / name, "-s", "msp", "-s", "energy", "--bootstrap", "20"):
        assert_defined_or_named(res)
        assert res["auroc"] is None and res["undefined"]["auroc"] == why
        assert res["fpr_at_95tpr"] is None and res["undefined"]["fpr_at_95tpr"] == why
        assert res["naurc"] is None and res["undefined"]["naurc"] == why
        assert res["aurc"] == pytest.approx(aurc)
        assert res["oracle_aurc"] == pytest.approx(aurc)
        assert res["eaurc"] == pytest.approx(0.0, abs=1e-12)
        assert res["augrc"] is not None


# --------------------------------------------------------------------------------------------
# N = 10**7 (scores only, numeric API)


@pytest.mark.slow
def test_ten_million_scores_numeric_api() -> None:
    """``lsfix.evaluate`` on 10**7 confidences: AURC equals a direct float64 computation,
    AUROC equals the Mann-Whitney statistic, in a few seconds."""
    n = 10**7
    rng = np.random.default_rng(3)
    conf = rng.random(n)
    correct = rng.random(n) < conf
    m = lsfix.metrics(conf, correct)
    order = np.argsort(-conf)  # no ties among 10**7 random doubles (asserted below)
    assert m.n_tied == 0
    k = np.arange(1, n + 1, dtype=np.float64)
    errors = np.cumsum(~correct[order], dtype=np.float64)
    assert m.aurc == pytest.approx(float(np.mean(errors / k)), rel=1e-9)
    del errors
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = k[::-1]  # ascending rank of each confidence
    del order, k
    n1 = int(correct.sum())
    n0 = n - n1
    auroc = (ranks[correct].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert m.auroc == pytest.approx(auroc, rel=1e-9)
    assert m.n == n and math.isfinite(m.augrc) and math.isfinite(m.naurc)
    every = lsfix.metrics(conf, np.ones(n, dtype=bool))
    assert every.aurc == 0.0
    assert math.isnan(every.auroc)  # the numeric API's undefined is NaN (null in JSON) ...
    assert dict(every.undefined)["auroc"] == "all predictions correct"  # ... with a reason

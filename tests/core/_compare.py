"""Comparison helpers: lsfix's floats against the exact references (``None`` = undefined)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from . import reference as R

TOL = 1e-12
SCALARS = ("aurc", "oracle_aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr")


def assert_value(
    actual: float, expected: Fraction | float | None, name: str, tol: float = TOL
) -> None:
    """``actual`` is NaN when ``expected`` is None, else within ``tol`` of it."""
    actual = float(actual)
    if expected is None:
        assert math.isnan(actual), f"{name}: expected undefined (nan), got {actual!r}"
        return
    assert not math.isnan(actual), f"{name}: expected {float(expected)!r}, got nan"
    assert abs(actual - float(expected)) <= tol, (
        f"{name}: got {actual!r}, expected {float(expected)!r} ({expected}), "
        f"diff {actual - float(expected):.3e}"
    )


def assert_metrics_match(m, confidence, correct, convention, coverages=(), risks=(),
                         *, use_permutations=None, tol: float = TOL) -> None:
    """Every field of a ``Metrics`` against :func:`reference.metrics`."""
    ref = R.metrics(confidence, correct, convention, coverages, risks,
                    use_permutations=use_permutations)
    ctx = f"[{convention}] conf={list(confidence)!r} correct={[int(b) for b in correct]!r}"
    assert m.n == ref["n"], ctx
    assert m.n_errors == ref["n_errors"], ctx
    assert m.n_tied == ref["n_tied"], f"n_tied {m.n_tied} != {ref['n_tied']} {ctx}"
    assert m.convention == convention, ctx
    assert_value(m.accuracy, ref["accuracy"], f"accuracy {ctx}", tol)
    assert_value(m.error_rate, ref["error_rate"], f"error_rate {ctx}", tol)
    for name in SCALARS:
        assert_value(getattr(m, name), ref[name], f"{name} {ctx}", tol)
    assert len(m.risk_at_coverage) == len(ref["risk_at_coverage"]), ctx
    for pt, (target, k, cov, risk) in zip(m.risk_at_coverage, ref["risk_at_coverage"], strict=True):
        assert pt.target == target, ctx
        assert pt.k == k, f"risk@coverage {target}: k={pt.k}, expected {k} {ctx}"
        assert_value(pt.coverage, cov, f"risk@coverage {target} coverage {ctx}", tol)
        assert_value(pt.risk, risk, f"risk@coverage {target} risk {ctx}", tol)
    assert len(m.coverage_at_risk) == len(ref["coverage_at_risk"]), ctx
    for pt, (target, k, cov, risk) in zip(m.coverage_at_risk, ref["coverage_at_risk"], strict=True):
        assert pt.target == target, ctx
        assert pt.k == k, f"coverage@risk {target}: k={pt.k}, expected {k} {ctx}"
        assert_value(pt.coverage, cov, f"coverage@risk {target} coverage {ctx}", tol)
        assert_value(pt.risk, risk, f"coverage@risk {target} risk {ctx}", tol)
    # last, so that a naming slip does not hide a wrong value
    undefined = dict(m.undefined)
    for name in SCALARS:
        if ref[name] is None:
            assert name in undefined, f"{name} is undefined but not named in undefined {ctx}"
            assert isinstance(undefined[name], str) and undefined[name].strip(), ctx
        else:
            assert name not in undefined, f"{name} is defined but named in undefined {ctx}"


def assert_curve_match(curve, confidence, correct, tol: float = TOL) -> None:
    E = R.expected_errors(confidence, correct)
    n = len(E) - 1
    cov = np.asarray(curve.coverage, dtype=np.float64)
    risk = np.asarray(curve.risk, dtype=np.float64)
    assert cov.shape == (n,) and risk.shape == (n,)
    for k in range(1, n + 1):
        assert_value(cov[k - 1], Fraction(k, n), f"coverage[{k}]", tol)
        assert_value(risk[k - 1], E[k] / k, f"risk[{k}]", tol)


def metrics_tuple(m) -> tuple:
    """All values of a Metrics, NaN made comparable (for exact-equality invariance checks)."""
    def norm(x):
        if isinstance(x, float) and math.isnan(x):
            return "nan"
        return x
    out = [m.n, m.n_errors, norm(m.accuracy), norm(m.error_rate), m.n_tied, m.convention]
    out += [norm(float(getattr(m, name))) for name in SCALARS]
    out += [(p.target, p.k, norm(p.coverage), norm(p.risk)) for p in m.risk_at_coverage]
    out += [(p.target, p.k, norm(p.coverage), norm(p.risk)) for p in m.coverage_at_risk]
    out.append(tuple(sorted(name for name, _ in m.undefined)))
    return tuple(out)

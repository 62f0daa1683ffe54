"""lsfix.evaluation.seeds: Student's t against closed forms, the paired test written plainly,
--model."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsfix.errors import UsageError
from lsfix.evaluation.seeds import betainc, paired_t, parse_model, summarise, t_quantile, t_sf2


@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 1.0, 2.5, 10.0, 1e3])
def test_t_tail_closed_forms(t: float) -> None:
    # df = 1 (Cauchy) and df = 2 have closed forms
    assert t_sf2(t, 1) == pytest.approx(1 - 2 * math.atan(t) / math.pi, rel=1e-12, abs=1e-15)
    assert t_sf2(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-12, abs=1e-15)
    # large df: the normal tail erfc(t/√2)
    assert t_sf2(t, 1e7) == pytest.approx(math.erfc(t / math.sqrt(2)), rel=1e-5, abs=1e-15)


def test_betainc_symmetry_and_a_known_value() -> None:
    assert betainc(2, 3, 0.4) == pytest.approx(1 - betainc(3, 2, 0.6), rel=1e-13)
    # I_x(1, b) = 1 - (1 - x)^b
    assert betainc(1, 3.5, 0.3) == pytest.approx(1 - 0.7 ** 3.5, rel=1e-13)


@given(st.floats(0.51, 0.999), st.integers(1, 50))
def test_t_quantile_inverts_the_tail(q: float, df: int) -> None:
    x = t_quantile(q, df)
    assert t_sf2(x, df) == pytest.approx(2 * (1 - q), rel=1e-9)
    assert t_quantile(1 - q, df) == pytest.approx(-x, rel=1e-12)


def test_t_quantile_known_values() -> None:
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729749464, rel=1e-12)  # 2 + ... exact
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-12)


def test_paired_t_written_plainly() -> None:
    d = [0.3, 0.1, 0.5, 0.2]
    m = sum(d) / 4
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / 3)
    t = m / (sd / 2)
    got = paired_t(d)
    assert got[0] == pytest.approx(m) and got[1] == pytest.approx(sd)
    assert got[2] == pytest.approx(t) and got[3] == pytest.approx(t_sf2(t, 3))
    half = t_quantile(0.975, 3) * sd / 2
    assert (got[4], got[5]) == pytest.approx((m - half, m + half))
    assert paired_t([0.2, 0.2])[2:] == (None, None, None, None)  # sd = 0
    assert paired_t([0.2])[2:] == (None, None, None, None)


def test_parse_model(tmp_path) -> None:
    for i in (2, 0, 1):
        (tmp_path / f"ce_s{i}.h5").write_bytes(b"")
    name, paths = parse_model(f"CE={tmp_path}/ce_s*.h5")
    assert name == "CE" and paths == [f"{tmp_path}/ce_s{i}.h5" for i in range(3)]
    assert parse_model("LS=a.h5,b.h5") == ("LS", ["a.h5", "b.h5"])
    for bad in ("CE", "=a.h5", "CE=", f"CE={tmp_path}/none*.h5", "CE=a.h5,a.h5"):
        with pytest.raises(UsageError):
            parse_model(bad)


def test_summarise_pairs_seed_by_seed() -> None:
    rows_a = [{"score": "msp", "aurc": v} for v in (0.10, 0.12, 0.11)]
    rows_b = [{"score": "msp", "aurc": v} for v in (0.13, 0.14, 0.15)]
    sums, paired = summarise([("CE", rows_a), ("LS", rows_b)], metrics=("aurc",))
    assert [(s.model, s.n) for s in sums] == [("CE", 3), ("LS", 3)]
    (p,) = paired
    assert p.mean == pytest.approx(0.03) and p.n_pairs == 3 and p.baseline == "CE"

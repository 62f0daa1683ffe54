"""``lsfix audit`` reports label smoothing read from the logit gaps, in every format, next to
the α recorded in the provenance, with the caveats (temperature, weight decay, large K)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lsfix.core.ceiling import ceiling_from_alpha
from lsfix.readers.logitsfile import new_file

B = ["--bootstrap", "100"]


def _ls_like(alpha: float, k: int = 10, n: int = 600, seed: int = 0, temperature: float = 1.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """Gaps near the LS ceiling (jitter 5 %), 10 % of labels flipped."""
    rng = np.random.default_rng(seed)
    c = ceiling_from_alpha(alpha, k)
    g = c * (1 + 0.05 * rng.standard_normal(n))
    z = 0.05 * c * rng.standard_normal((n, k))
    top = rng.integers(0, k, n)
    z[np.arange(n), top] = 0.0
    z[np.arange(n), top] = g + z.sum(1) / (k - 1)
    y = np.where(rng.random(n) < 0.9, top, (top + 1) % k)
    return (z / temperature).astype(np.float32), y.astype(np.int64)


def _ce_like(k: int = 10, n: int = 600, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = np.exp(np.log(10) + 0.4 * rng.standard_normal(n))
    z = rng.standard_normal((n, k))
    top = rng.integers(0, k, n)
    z[np.arange(n), top] = g + z.sum(1) / (k - 1)
    y = np.where(rng.random(n) < 0.9, top, (top + 1) % k)
    return z.astype(np.float32), y.astype(np.int64)


def _file(tmp_path: Path, name: str, zy: tuple[np.ndarray, np.ndarray], alpha=None) -> str:
    prov = {} if alpha is None else {"training": {"label_smoothing": alpha}}
    path = str(tmp_path / name)
    new_file(path, zy[0], labels=zy[1], provenance=prov)
    return path


def _ls(run, path: str) -> dict:
    r = run(["audit", path, *B, "-f", "json"])
    assert r.code == 0, r
    return json.loads(r.stdout)["label_smoothing"]


def test_ls_model_with_recorded_alpha(run, tmp_path):
    d = _ls(run, _file(tmp_path, "ls.h5", _ls_like(0.1), alpha=0.1))
    assert d["verdict"] == "ceiling" and d["k"] == 10 and d["binary"] is False
    assert d["alpha_low"] <= d["alpha"] <= d["alpha_high"]
    assert abs(d["alpha"] - 0.1) < 0.01
    assert d["recorded_alpha"] == 0.1
    assert d["recorded_ceiling"] == pytest.approx(ceiling_from_alpha(0.1, 10))
    assert d["summary"].startswith("logit gaps of correct predictions pile up at a ceiling of 4.")
    assert d["rows_used"] == "correct"
    assert "consistent with label smoothing α ≈ 0.1" in d["summary"]
    assert d["summary"].endswith("; the provenance records α = 0.1")
    assert len(d["notes"]) == 1 and "heavy weight decay" in d["notes"][0]


def test_temperature_scaled_logits_say_so(run, tmp_path):
    d = _ls(run, _file(tmp_path, "t2.h5", _ls_like(0.1, temperature=2.0), alpha=0.1))
    assert d["verdict"] == "ceiling" and d["alpha"] > 0.3
    t_note = [n for n in d["notes"] if "temperature" in n and "T ≈" in n]
    assert len(t_note) == 1 and "T ≈ 2.0" in t_note[0], d["notes"]


def test_ce_model_no_ceiling(run, tmp_path):
    d = _ls(run, _file(tmp_path, "ce.h5", _ce_like(), alpha=0))
    assert d["verdict"] == "no_ceiling" and d["spread"] >= d["spread_threshold"]
    assert d["summary"].startswith("no ceiling: the logit gaps of correct predictions spread out")
    assert d["recorded_alpha"] == 0 and d["recorded_ceiling"] is None
    assert d["notes"] == []


def test_mismatches_with_the_provenance(run, tmp_path):
    d = _ls(run, _file(tmp_path, "a.h5", _ls_like(0.2), alpha=0))
    assert any("records cross-entropy" in n for n in d["notes"])
    d = _ls(run, _file(tmp_path, "b.h5", _ce_like(), alpha=0.2))
    assert any("records α = 0.2 but the gaps show no ceiling" in n for n in d["notes"])


@pytest.mark.parametrize("bad", ["abc", 5, True, -0.1, None, [0.1]])
def test_untrusted_recorded_alpha_is_ignored(run, tmp_path, bad):
    path = str(tmp_path / "p.h5")
    z, y = _ls_like(0.1)
    new_file(path, z, labels=y, provenance={"training": {"label_smoothing": bad}})
    d = _ls(run, path)
    assert d["recorded_alpha"] is None and "provenance" not in d["summary"]


def test_large_k_note(run, tmp_path):
    d = _ls(run, _file(tmp_path, "k.h5", _ls_like(0.1, k=1000, n=400)))
    assert d["verdict"] == "ceiling" and d["k"] == 1000
    assert any("K = 1000" in n and "overestimates" in n for n in d["notes"])


def test_large_k_no_ceiling_note(run, tmp_path):
    d = _ls(run, _file(tmp_path, "k.h5", _ce_like(k=1000, n=400)))
    assert d["verdict"] == "no_ceiling"
    assert any("K = 1000" in n and "weaker evidence" in n for n in d["notes"])


def test_binary_single_logit(run, files):
    d = _ls(run, files.binary)  # normal logits: no ceiling
    assert d["binary"] is True and d["k"] == 2 and d["verdict"] == "no_ceiling"
    assert any("single logit" in n for n in d["notes"])


def test_binary_single_logit_with_bce_ls(run, tmp_path):
    rng = np.random.default_rng(3)
    c = ceiling_from_alpha(0.6, 2)  # BCE LS α = 0.6 (the paper's IMDB model): |z| -> 0.85
    y = rng.integers(0, 2, 500)
    z = np.where(y == 1, 1, -1) * c * (1 + 0.05 * rng.standard_normal(500))
    path = str(tmp_path / "bin.h5")
    new_file(path, z.astype(np.float32), labels=y, provenance={"training":
                                                                {"label_smoothing": 0.6}})
    d = _ls(run, path)
    assert d["binary"] is True and d["verdict"] == "ceiling"
    assert abs(d["alpha"] - 0.6) < 0.02 and d["recorded_alpha"] == 0.6
    assert any("single logit" in n for n in d["notes"])


def test_too_few_rows_undetermined(run, tmp_path):
    d = _ls(run, _file(tmp_path, "s.h5", _ls_like(0.1, n=60)))
    assert d["verdict"] == "undetermined" and d["alpha"] is None
    assert d["summary"].startswith("label smoothing cannot be read from the logit gaps:")


def test_table_tsv_and_verdict(run, tmp_path):
    path = _file(tmp_path, "ls.h5", _ls_like(0.1), alpha=0.1)
    tab = run(["audit", path, *B], stdout_tty=True)
    assert tab.code == 0, tab
    assert "\nlabel smoothing: logit gaps of correct predictions pile up at a ceiling" in tab.stdout
    assert "\n  note: a ceiling can also come from heavy weight decay" in tab.stdout
    t = run(["audit", path, *B, "-f", "tsv"])
    assert t.code == 0, t
    assert "\nlsfix audit: label smoothing: logit gaps of correct predictions pile" in t.stderr
    ce = _file(tmp_path, "ce.h5", _ce_like(), alpha=0)
    doc = json.loads(run(["audit", ce, *B, "-f", "json"]).stdout)
    assert "logit gaps" in doc["verdict"]


def test_report_has_section_and_gap_plot(run, tmp_path):
    path = _file(tmp_path, "ls.h5", _ls_like(0.2), alpha=0.2)
    rep = tmp_path / "rep"
    r = run(["audit", path, *B, "--report", str(rep), "-f", "json"])
    assert r.code == 0, r
    md = (rep / "report.md").read_text()
    assert "## Label smoothing read from the logits\n\nlogit gaps of correct predictions" in md
    assert "![rc.gaps](rc.gaps.png)" in md
    html = (rep / "report.html").read_text()
    assert "<h2>Label smoothing read from the logits</h2><p>logit gaps of correct" in html
    png = (rep / "rc.gaps.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_compare_explain_draws_gaps(run, tmp_path):
    a = _file(tmp_path, "ls.h5", _ls_like(0.2), alpha=0.2)
    b = _file(tmp_path, "ce.h5", _ce_like(), alpha=0)
    r = run(["compare", a, b, "-b", "0", "--plot", str(tmp_path / "c.png"), "--explain",
             "-f", "json"])
    assert r.code == 0, r
    assert (tmp_path / "c.gaps.png").read_bytes()[:4] == b"\x89PNG"

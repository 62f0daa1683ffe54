"""Reports read well: a caption under every figure, the fitted p and temperature, the oracle,
the gate's rules with each value and verdict; plots mark what was asked; report.html renders
in a real browser (headless Chromium, when installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lsfix.cli import app
from lsfix.output.report import CAPTIONS

ROOT = Path(__file__).resolve().parents[2]
CE = str(ROOT / "sample_data" / "fmnist_ce_test.h5")
LS = str(ROOT / "sample_data" / "fmnist_ls02_test.h5")
LS_VAL = str(ROOT / "sample_data" / "fmnist_ls02_val.h5")


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("audit") / "rep"
    res = CliRunner().invoke(app, ["audit", LS, "--val", LS_VAL, "--report", str(d), "-b", "50",
                                   "-f", "json"])
    assert res.exit_code == 0, res.stderr
    return d


def test_every_figure_has_its_caption(audit_dir: Path) -> None:
    md = (audit_dir / "report.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)\n\n\*([^*]+)\*", md)
    assert [Path(p).name for p, _ in images] == ["rc.png", "rc.mechanism.png",
                                                  "rc.gradient.png", "rc.gaps.png"]
    for path, text in images:
        kind = "rc" if path == "rc.png" else path.split(".")[1]
        assert text == CAPTIONS[kind]
    assert len(re.findall(r"!\[", md)) == len(images)  # no figure without a caption
    html = (audit_dir / "report.html").read_text(encoding="utf-8")
    assert html.count("<img ") == html.count("<figcaption>") == 4


def test_audit_report_names_the_fit_and_the_oracle(audit_dir: Path) -> None:
    md = (audit_dir / "report.md").read_text(encoding="utf-8")
    assert re.search(r"pNorm p = 2; temperature T = 0\.\d+ \(msp_ts\); oracle AURC "
                     r"\(ideal ranking\) = 0\.00665722", md), md[:600]
    assert "| oracle_aurc |" in md


def test_gate_report_lists_each_rule_value_and_verdict(tmp_path: Path) -> None:
    rep = tmp_path / "pr.md"
    res = CliRunner().invoke(app, ["compare", CE, LS, "-s", "msp", "--fail-if", "eaurc>+5%",
                                   "--fail-if", "accuracy<-1%", "--report", str(rep)])
    assert res.exit_code == 4
    md = rep.read_text(encoding="utf-8")
    assert "**Gate: FAILED** (1 of 2 check(s) failed)" in md
    assert "| `eaurc>+5%` | " in md and "(change +7.22189%) | **FAIL** |" in md
    assert "| `accuracy<-1%` | " in md and "(change +0.18073%) | pass |" in md
    assert f"*{CAPTIONS['rc']}*" in md


def test_compare_plot_has_oracle_and_marks_requested_points(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from lsfix.output import plot
    seen: dict[str, object] = {}
    real = plot.draw_lines

    def spy(lines, path, **kw):  # type: ignore[no-untyped-def]
        seen.setdefault("calls", []).append((list(lines), kw))  # type: ignore[union-attr]
        return real(lines, path, **kw)

    monkeypatch.setattr(plot, "draw_lines", spy)
    res = CliRunner().invoke(app, ["compare", CE, LS, "-s", "msp", "--coverage", "0.8",
                                   "--risk", "0.01", "--plot", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.stderr
    (lines, kw), = seen["calls"]  # type: ignore[misc]
    assert [lab for lab, _, _ in kw["extra"]] == [f"oracle of {CE} (ideal ranking)"]
    assert kw["zoom"] == (0.0, 0.5)
    for line in lines:
        assert [p[2] for p in line.points] == ["risk@0.8", "coverage@0.01"]
        assert line.points[0][0] == pytest.approx(0.8)
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_gradient_marks_an_assumed_alpha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lsfix.output import plot
    from lsfix.readers.logitsfile import new_file

    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 4))
    y = rng.integers(0, 4, 300)
    new_file(str(tmp_path / "x.h5"), z, labels=y)  # no label_smoothing in its provenance
    labels: list[str] = []
    real = plot.draw_lines

    def spy(lines, path, **kw):  # type: ignore[no-untyped-def]
        if Path(path).name == "p.gradient.png":
            labels.extend(line.label for line in lines)
        return real(lines, path, **kw)

    monkeypatch.setattr(plot, "draw_lines", spy)
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "x.h5"), "--explain", "--plot",
                                   str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.stderr
    assert labels and all("(assumed: no α in the files' provenance)" in s for s in labels)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None,
                    reason="needs Debian's chromium package (apt-get install chromium)")
def test_report_html_renders_in_headless_chromium(audit_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    res = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                          "--hide-scrollbars", "--window-size=1200,2400",
                          f"--screenshot={shot}", (audit_dir / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=180)
    assert shot.is_file(), res.stderr
    import matplotlib.image as mpimg

    img = mpimg.imread(str(shot))
    assert img.shape[:2] == (2400, 1200)
    dark = (img[..., :3].mean(axis=2) < 0.5).mean()  # text and plotted lines
    assert 0.005 < dark < 0.5, dark  # a page with content, not blank and not an error

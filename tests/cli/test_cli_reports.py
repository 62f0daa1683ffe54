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
    assert [Path(p).name for p, _ in images] == ["rc.png", "rc.reliability.png",
                                                  "rc.mechanism.png", "rc.gradient.png",
                                                  "rc.gaps.png"]
    for path, text in images:
        kind = "rc" if path == "rc.png" else path.split(".")[1]
        assert text == CAPTIONS[kind]
    assert len(re.findall(r"!\[", md)) == len(images)  # no figure without a caption
    html = (audit_dir / "report.html").read_text(encoding="utf-8")
    assert html.count("<img ") == html.count("<figcaption>") == 5
    assert html.count("<img src='data:image/png;base64,") == 5  # embedded: the page travels


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
    lo, hi = kw["zoom"]  # where the curves differ: the low-coverage half here
    assert lo == 0.0 and 0.4 < hi < 0.75
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


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize("cmd", ["audit", "compare"])
def test_report_suffix_decides_what_is_written(cmd: str, tmp_path: Path) -> None:
    """.html: one file and nothing else; .md: the file and its PNGs beside it; a folder:
    report.md, report.html and the figures; another suffix: exit 2 before any work."""
    args = ([LS, "--val", LS_VAL, "-b", "20"] if cmd == "audit" else [CE, LS, "-s", "msp"])
    out = tmp_path / "one"
    out.mkdir()
    res = CliRunner().invoke(app, [cmd, *args, "--report", str(out / "r.html"), "-f", "json"])
    assert res.exit_code == 0, res.stderr
    assert [p.name for p in out.iterdir()] == ["r.html"]
    page = (out / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "src='data:image/png;base64," in page
    assert not re.search(r"src=['\"](?!data:)", page)  # no link to a file beside it
    assert page.index("Verdict:") < page.index("<table>")  # the verdict comes first
    md_dir = tmp_path / "md"
    res = CliRunner().invoke(app, [cmd, *args, "--report", str(md_dir / "r.md"), "-f", "json"])
    assert res.exit_code == 0, res.stderr
    names = sorted(p.name for p in md_dir.iterdir())
    assert "r.md" in names and all(n == "r.md" or n.endswith(".png") for n in names)
    assert len(names) >= 2
    res = CliRunner().invoke(app, [cmd, *args, "--report", str(tmp_path / "dir"), "-f", "json"])
    assert res.exit_code == 0, res.stderr
    got = sorted(p.name for p in (tmp_path / "dir").iterdir())
    assert {"report.md", "report.html", "rc.png"} <= set(got)
    res = CliRunner().invoke(app, [cmd, *args, "--report", str(tmp_path / "r.txt")])
    assert res.exit_code == 2
    assert "end it in .html (one self-contained page), .md" in res.stderr
    assert not (tmp_path / "r.txt").exists()


def test_html_escapes_every_name_from_the_data(tmp_path: Path) -> None:
    """A hostile file name reaches the page only escaped, in tables and figures alike."""
    from lsfix.readers.logitsfile import new_file

    rng = np.random.default_rng(3)
    z = rng.normal(size=(400, 4)) * 3
    y = np.where(rng.random(400) < 0.7, z.argmax(1), rng.integers(0, 4, 400))
    bad = tmp_path / "<img src=x onerror=alert(1)>.h5"
    new_file(str(bad), z, labels=y)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["compare", str(bad), str(bad), "-s", "msp", "--report",
                                   str(out), "-f", "json"])
    assert res.exit_code == 0, res.stderr
    page = out.read_text(encoding="utf-8")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    from lsfix.output.html import md_esc

    assert md_esc("a|b*c_[d](e)<f>") == "a\\|b\\*c\\_\\[d\\](e)&lt;f&gt;"  # lsfix.safetext.md_text


def test_html_tables_use_4_significant_digits_and_mark_the_best() -> None:
    from lsfix.output.html import Column, table

    t = table([{"s": "a", "aurc": 0.0213260855, "aurc_low": 0.0198, "aurc_high": 0.02291},
               {"s": "b", "aurc": 0.03, "aurc_low": None, "aurc_high": None}],
              [Column("aurc", "AURC")], label_keys=["s"], caption="c")
    assert "★ 0.02133<br><span class='ci'>[0.0198, 0.02291]</span>" in t
    assert "<td>0.03</td>" in t and t.count("★") == 1


def test_rc_zoom_follows_the_differences_or_is_left_out() -> None:
    from lsfix.output.plot import Line, rc_zoom

    x = np.linspace(0.001, 1, 1000)
    a = Line("a", x, 0.1 * x ** 3)
    b = Line("b", x, 0.1 * x ** 3 + 0.002 * (x < 0.3))  # differs below 30 % coverage only
    lo, hi = rc_zoom([a, b])  # type: ignore[misc]
    assert lo == 0.0 and 0.25 < hi < 0.4
    assert rc_zoom([a]) is None and rc_zoom([a, a]) is None
    assert rc_zoom([a, Line("a2", x, 0.1 * x ** 3 * 1.001)]) is None  # the same curve, nearly
    # twice the risk at every coverage: they differ everywhere, the main panel shows it
    d, e = Line("d", x, 0.05 + 0.1 * x), Line("e", x, 0.1 + 0.2 * x)
    assert rc_zoom([d, e]) is None


def test_point_labels_never_overprint(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from lsfix.output.plot import place_labels

    fig, ax = plt.subplots()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    place_labels(ax, [(0.5, 0.5, "risk@0.8"), (0.5, 0.5, "coverage@0.01"),
                      (0.51, 0.5, "risk@0.9"), (0.52, 0.51, "coverage@0.02")])
    r = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(r) for t in ax.texts]
    assert len(boxes) == 4
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(4) for j in range(i + 1, 4))
    plt.close(fig)


def test_a_fallback_is_named_in_the_legend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    from lsfix.output import plot
    labels: list[str] = []
    real = plot.draw_lines

    def spy(lines, path, **kw):  # type: ignore[no-untyped-def]
        labels.extend(line.label for line in lines)
        return real(lines, path, **kw)

    monkeypatch.setattr(plot, "draw_lines", spy)
    res = CliRunner().invoke(app, ["compare", CE, LS, "-s", "pnorm", "--plot",
                                   str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.stderr
    ce, ls = labels
    assert "pnorm = MSP (fell back: no p beat MSP)" in ce  # the CE file's stored fit fell back
    assert "fell back" not in ls


@pytest.mark.skipif(_chromium() is None,
                    reason="needs Debian's chromium package (apt-get install chromium)")
def test_compare_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "c.html"
    res = CliRunner().invoke(app, ["compare", CE, LS, "-s", "msp", "-s", "pnorm", "-b", "50",
                                   "--report", str(page), "-f", "json"])
    assert res.exit_code == 0, res.stderr
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--window-size=1200,2400", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, text=True, timeout=180)
    import matplotlib.image as mpimg

    img = mpimg.imread(str(shot))
    assert img.shape[:2] == (2400, 1200)
    dark = (img[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5, dark


def test_accurate_model_zoom_skips_the_noisy_first_rows() -> None:
    """Curves that differ everywhere, with a spike from the first few accepted rows: the zoom
    shows everything past them at their own height."""
    from lsfix.output.plot import NOISY_START, Line, rc_zoom

    x = np.linspace(0.0005, 1, 2000)
    spike = np.where(x < 0.02, 0.12, 0.0)
    a = Line("a", x, 0.004 + 0.004 * x + spike)
    b = Line("b", x, 0.0002 * x)
    assert rc_zoom([a, b]) == (NOISY_START, 1.0)

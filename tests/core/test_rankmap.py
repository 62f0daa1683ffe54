"""Per-pixel uncertainty ranks (``lsfix.core.rankmap``) and ``curve --rank-map``."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import typer.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.cli.app import app
from lsfix.core.rankmap import rank_maps, uncertainty_ranks
from lsfix.readers.logitsfile import set_root_attrs


def _slow(c: list[float]) -> list[float]:
    n = len(c)
    if n == 1:
        return [0.0]
    out = []
    for v in c:
        above = sum(1 for w in c if w > v)
        ties = sum(1 for w in c if w == v)
        out.append((above + (ties - 1) / 2) / (n - 1))
    return out


vals = st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.5, 2.0, -1.0]) | st.floats(-5, 5),
                min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(c=vals, data=st.data())
def test_ranks_match_reference_and_are_order_equivariant(c: list[float],
                                                         data: st.DataObject) -> None:
    got = uncertainty_ranks(np.array(c))
    assert got.tolist() == _slow(c)
    perm = np.array(data.draw(st.permutations(range(len(c)))))
    assert uncertainty_ranks(np.array(c)[perm]).tolist() == got[perm].tolist()
    order = np.argsort(c)
    assert np.all(np.diff(got[order]) <= 0)  # more confident, lower rank
    assert got.min() >= 0 and got.max() <= 1


def test_maps_put_nan_on_rows_not_evaluated() -> None:
    c = np.array([0.9, 0.1, 0.5, 0.7, 0.2, 0.3])
    keep = np.array([True, True, False, True, True, True])
    m = rank_maps(c, keep, 2, (1, 3))
    assert m.shape == (2, 1, 3) and np.isnan(m[0, 0, 2])
    assert m[0, 0, 0] == 0.0 and m[0, 0, 1] == 1.0


def test_curve_rank_map_writes_a_plot(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 19, (3, 16, 32)).astype(np.uint8)
    y[:, :2] = 255
    path = tmp_path / "dense.h5"
    with h5py.File(path, "w") as f:
        set_root_attrs(f, {}, [])
        f.create_dataset("logits", data=rng.normal(size=(3, 19, 16, 32)).astype(np.float32))
        f.create_dataset("labels", data=y).attrs["ignore_index"] = np.int64(255)
    out = tmp_path / "ranks.png"
    res = typer.testing.CliRunner().invoke(
        app, ["curve", str(path), "-s", "msp", "--rank-map", str(out), "-f", "json"],
        prog_name="lsfix")
    assert res.exit_code == 0, res.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = typer.testing.CliRunner().invoke(
        app, ["curve", str(path), "--rank-map", str(tmp_path / "r.jpg")], prog_name="lsfix")
    assert bad.exit_code == 2 and not (tmp_path / "r.jpg").exists()

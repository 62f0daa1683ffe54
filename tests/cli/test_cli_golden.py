"""Golden outputs of ``curve`` and ``compare`` on the committed ``tests/data/sample*.h5``.

The commands run with the working directory set to ``tests/data`` and relative paths, so the
outputs hold no machine-specific paths and no timestamps: byte for byte the same everywhere.
After an intended change of output (a version bump included: the JSON carries
``lsfix_version``), regenerate and review the diff::

    .venv/bin/python -m pytest tests/cli --update-golden
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
GOLDEN = DATA / "golden"

#: golden file name -> (arguments, expected exit code)
CASES: dict[str, tuple[list[str], int]] = {
    "curve_sample.tsv": (["curve", "sample.h5", "-s", "msp", "-s", "max_logit", "-s", "pnorm:2",
                          "--coverage", "0.5,0.8", "--risk", "0.2", "-f", "tsv"], 0),
    "curve_sample.json": (["curve", "sample.h5", "-s", "msp", "-s", "max_logit", "-s",
                           "pnorm:2", "--coverage", "0.5,0.8", "--risk", "0.2", "-f", "json"], 0),
    "curve_percent.tsv": (["curve", "sample.h5", "-s", "msp", "-s", "pnorm:2", "--percent",
                           "-f", "tsv"], 0),
    "curve_xia.tsv": (["curve", "sample.h5", "-s", "msp", "-c", "xia", "-f", "tsv"], 0),
    "curve_bootstrap.json": (["curve", "sample.h5", "-s", "msp", "-s", "pnorm:2", "-b", "200",
                              "--seed", "7", "-f", "json"], 0),
    "compare_sample.tsv": (["compare", "sample.h5", "sample_b.h5", "-s", "msp", "-s", "pnorm:2",
                            "-f", "tsv"], 0),
    "compare_bootstrap.tsv": (["compare", "sample.h5", "sample_b.h5", "-s", "msp", "-s",
                               "pnorm:2", "-b", "200", "--seed", "3", "-f", "tsv"], 0),
    "compare_bootstrap.json": (["compare", "sample.h5", "sample_b.h5", "-s", "msp", "-s",
                                "pnorm:2", "-b", "200", "--seed", "3", "-f", "json"], 0),
    "compare_gate.json": (["compare", "sample.h5", "sample_b.h5", "-s", "msp", "-s", "pnorm:2",
                           "--fail-if", "aurc>+0.002", "--fail-if", "auroc<-1%", "--gate",
                           "point", "-f", "json"], 4),
    "compare_gate_interval.json": (["compare", "sample.h5", "sample_b.h5", "-s", "msp", "-s",
                                    "pnorm:2", "--fail-if", "aurc>+0.002", "--fail-if",
                                    "auroc<-1%", "-b", "200", "--seed", "3", "-f", "json"], 4),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(run, monkeypatch, update_golden, name):
    args, code = CASES[name]
    monkeypatch.chdir(DATA)
    r = run(args)
    assert r.code == code, r
    path = GOLDEN / name
    if update_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_bytes(r.stdout_bytes)
        return
    assert path.exists(), (f"{path} is missing; generate it with "
                           f"'.venv/bin/python -m pytest tests/cli --update-golden'")
    want = path.read_bytes()
    if r.stdout_bytes != want:
        if name.endswith(".json"):  # show a readable structural diff first
            assert json.loads(r.stdout_bytes) == json.loads(want), name
        assert r.stdout == want.decode(), (
            f"{name} differs from the output; if the change is intended, run "
            f"'.venv/bin/python -m pytest tests/cli --update-golden' and review the diff")


def test_golden_json_carries_no_paths_or_times():
    for path in GOLDEN.glob("*.json"):
        text = path.read_text()
        assert "/tmp" not in text and str(DATA) not in text, path
        doc = json.loads(text)
        assert set(doc) >= {"format", "version", "lsfix_version"}


def test_every_golden_file_has_a_case():
    extra = {p.name for p in GOLDEN.iterdir()} - set(CASES)
    assert not extra, f"stale golden files (no case): {sorted(extra)}"


def test_sample_files_match_their_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample", DATA / "make_sample.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for fresh in mod.build(tmp_path):
        committed = DATA / fresh.name
        assert committed.exists(), f"run .venv/bin/python tests/data/make_sample.py ({fresh.name})"
        with h5py.File(fresh, "r") as a, h5py.File(committed, "r") as b:
            assert sorted(a) == sorted(b)
            for key in a:
                np.testing.assert_array_equal(a[key][()], b[key][()], err_msg=key)
            skip = {"lsfix_version"}  # a version bump alone does not stale the data
            assert ({k: v for k, v in a.attrs.items() if k not in skip}
                    == {k: v for k, v in b.attrs.items() if k not in skip})
    # the shipped Fashion-MNIST images have their own budget (tests/test_fmnist_subset.py)
    total = sum(p.stat().st_size for p in DATA.rglob("*")
                if p.is_file() and "fmnist_subset" not in p.parts)
    assert total < 200_000, f"tests/data holds {total} bytes; keep it under 200 KB"

"""``--by`` in curve, compare and audit: every metric per group, the whole file first as
``all``, bootstrap intervals per group; groups from the true class, the predicted class, the
image of a dense file, ``/groups/NAME`` or a table column. ``score -f tsv`` keeps sample ids and
groups, so a pipe keeps them too."""

from __future__ import annotations

import csv
import io
import json
import shutil

import h5py
import numpy as np
import pytest

from lsfix.core import ScoreSpec, compute_scores, evaluate
from lsfix.readers.logitsfile import new_file

N, K = 300, 5  # tests/cli/conftest.py: file A has N rows of K classes


def _tsv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def _logits_labels(path):
    with h5py.File(path) as f:
        return f["/logits"][()].astype(np.float64), f["/labels"][()]


def _expected(conf, correct, sel, convention="lsfix"):
    return evaluate(conf[sel], correct[sel], convention=convention)


@pytest.fixture(scope="module")
def with_domain(files, tmp_path_factory):
    """File A plus /groups/domain (strings) and /groups/batch (integers)."""
    d = tmp_path_factory.mktemp("groups")
    out = d / "a_groups.h5"
    shutil.copy(files.a, out)
    rng = np.random.default_rng(5)
    domain = np.array(["web", "scan", "phone"])[rng.integers(0, 3, N)]
    batch = np.arange(N) % 4
    with h5py.File(out, "r+") as f:
        f.create_dataset("/groups/domain", data=domain.astype(object),
                         dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("/groups/batch", data=batch)
    return out, domain, batch


@pytest.mark.parametrize("by", ["class", "predicted"])
def test_curve_by_class_every_group_equals_its_subset(run, files, by):
    r = run(["curve", files.a, "-s", "msp", "--by", by, "-c", "xia", "-f", "tsv"])
    assert r.code == 0 and r.stderr == "", r
    rows = _tsv(r.stdout)
    z, y = _logits_labels(files.a)
    conf = compute_scores(z, [ScoreSpec("msp")])["msp"]
    pred = z.argmax(axis=1)
    correct = pred == y
    key = y if by == "class" else pred
    assert rows[0]["group"] == "all"
    assert float(rows[0]["aurc"]) == evaluate(conf, correct, convention="xia").aurc
    names = ["c0", "c1", "c2", "c3", "c4"]
    assert [row["group"] for row in rows[1:]] == [f"{c} ({names[c]})" for c in np.unique(key)]
    for row, c in zip(rows[1:], np.unique(key), strict=True):
        m = _expected(conf, correct, key == c, "xia")
        assert int(row["n"]) == m.n
        for name in ("aurc", "eaurc", "naurc", "augrc", "auroc", "fpr_at_95tpr"):
            want = getattr(m, name)
            assert (row[name] == "") if np.isnan(want) else float(row[name]) == want, name


def test_curve_by_name_from_hdf5_groups_with_intervals(run, with_domain):
    path, domain, batch = with_domain
    r = run(["curve", path, "-s", "msp", "--by", "domain", "-b", "50", "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert doc["by"] == "domain"
    groups = [res["group"] for res in doc["results"]]
    assert groups == ["all", "phone", "scan", "web"]
    z, y = _logits_labels(path)
    conf = compute_scores(z, [ScoreSpec("msp")])["msp"]
    correct = z.argmax(axis=1) == y
    for res in doc["results"][1:]:
        sel = domain == res["group"]
        assert res["n"] == int(sel.sum())
        assert res["aurc"] == _expected(conf, correct, sel).aurc
        ci = res["ci"]["aurc"]
        assert ci["low"] <= res["aurc"] <= ci["high"]
    r = run(["curve", path, "--by", "batch", "-f", "tsv"])
    assert [row["group"] for row in _tsv(r.stdout)] == ["all", "0", "1", "2", "3"]


def test_unknown_group_is_named(run, with_domain, error_of):
    path, _, _ = with_domain
    r = run(["curve", path, "--by", "site"])
    assert r.code == 2
    assert error_of(r, "curve") == (f"{path}: no group 'site' (groups in the file: 'batch', "
                                    "'domain'; or --by class, predicted, image)")


def test_score_tsv_keeps_ids_and_groups_and_curve_reads_them_back(run, with_domain):
    path, domain, _ = with_domain
    r = run(["score", path, "-m", "msp", "-f", "tsv"])
    assert r.code == 0 and r.stderr == "", r
    rows = _tsv(r.stdout)
    assert list(rows[0].keys()) == ["sample_id", "confidence", "correct", "batch", "domain"]
    assert [row["domain"] for row in rows] == list(domain)
    back = run(["curve", "-", "--by", "domain", "-f", "tsv"], input=r.stdout)
    assert back.code == 0, back
    assert back.stderr == ("lsfix: <stdin>: column(s) 'batch', 'domain' read as groups "
                           "(--by batch); used: sample_id, confidence, correct\n")
    direct = run(["curve", path, "-s", "msp", "--by", "domain", "-f", "tsv"])
    strip = [{k: v for k, v in row.items() if k not in ("file", "score")}
             for row in _tsv(direct.stdout)]
    assert [{k: v for k, v in row.items() if k not in ("file", "score")}
            for row in _tsv(back.stdout)] == strip


def test_npz_arrays_not_used_are_named(run, files, tmp_path):
    z, y = _logits_labels(files.a)
    path = tmp_path / "x.npz"
    np.savez(path, logits=z, labels=y, embeddings=np.zeros((N, 3)), extra=np.arange(N))
    r = run(["curve", path, "-f", "tsv"])
    assert r.code == 0, r
    assert r.stderr == (f"lsfix: {path}: array(s) 'embeddings', 'extra' not used; read "
                        "'logits' as logits, 'labels' as labels\n")


def test_by_image_on_a_dense_file(run, tmp_path):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 3, 5, 6)).astype(np.float32)
    y = rng.integers(0, 3, (4, 5, 6))
    path = tmp_path / "dense.h5"
    new_file(str(path), z, sample_ids=["a", "b", "c", "d"])
    with h5py.File(path, "r+") as f:  # (new_file writes dense labels flattened: noted)
        f.create_dataset("/labels", data=y)
    r = run(["curve", path, "--by", "image", "-f", "tsv"])
    assert r.code == 0, r
    rows = _tsv(r.stdout)
    assert [row["group"] for row in rows] == ["all", "a", "b", "c", "d"]
    assert all(int(row["n"]) == 30 for row in rows[1:])
    zz = np.moveaxis(z, 1, -1).reshape(4, 30, 3).astype(np.float64)
    for i, row in enumerate(rows[1:]):
        conf = compute_scores(zz[i], [ScoreSpec("msp")])["msp"]
        m = evaluate(conf, zz[i].argmax(axis=1) == y[i].reshape(-1))
        assert float(row["aurc"]) == m.aurc
    r = run(["curve", tmp_path / "dense.h5", "--by", "image"])
    assert r.code == 0
    flat = tmp_path / "flat.h5"
    new_file(str(flat), z[:, :, 0, 0], labels=y[:, 0, 0])
    r = run(["curve", flat, "--by", "image"])
    assert r.code == 2 and "--by image needs dense (N, K, H, W) logits" in r.stderr


def test_compare_by_class_pairs_within_each_group(run, files):
    r = run(["compare", files.a, files.b, "-s", "msp", "--by", "class", "-b", "40",
             "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert doc["by"] == "class"
    assert len(doc["groups"]) == 2 * (K + 1)
    assert [p["group"] for p in doc["paired_groups"]] == [f"{i} (c{i})" for i in range(K)]
    assert all(p["low"] <= p["difference"] <= p["high"] for p in doc["paired_groups"])
    tsv = _tsv(run(["compare", files.a, files.b, "-s", "msp", "--by", "class", "-b", "40",
                    "-f", "tsv"]).stdout)
    paired = {row["group"]: row for row in tsv if row["file"] == files.b}
    assert paired["all"]["d_aurc"] == ""  # the whole file's pairing is the plain compare's
    assert float(paired["0 (c0)"]["d_aurc"]) == doc["paired_groups"][0]["difference"]
    # predicted classes differ between models: no pairing, said so
    r = run(["compare", files.a, files.b, "--by", "predicted", "-b", "20", "-f", "json"])
    assert r.code == 0 and json.loads(r.stdout)["paired_groups"] == []


def test_audit_by_class(run, files):
    r = run(["audit", files.a, "--val", files.val, "--by", "class", "-b", "30", "-f", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    assert doc["by"] == "class"
    got = {(g["score"], g["group"]) for g in doc["groups"]}
    assert ("msp", "all") in got and ("pnorm", "4 (c4)") in got
    by_all = {g["score"]: g for g in doc["groups"] if g["group"] == "all"}
    scores = {s["score"]: s for s in doc["scores"]}
    assert by_all["msp"]["aurc"] == scores["msp"]["aurc"]
    assert by_all["pnorm"]["aurc"] == scores["pnorm"]["aurc"]

"""Single-logit (binary) text models through ``lsfix extract``, ``score``, ``normalise`` and
``audit``: (N, L) token ids, (N, L, D) sequences, 0/1 labels, ``model.``-prefixed checkpoints.

The data are an IMDB-shaped synthetic set made here: token ids, a label that depends on them,
two class names. Small (300 rows) so that the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import lsfix_test_nets  # noqa: E402
import torch  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from lsfix.cli import app  # noqa: E402
from lsfix.core import compute_scores, parse_score  # noqa: E402
from lsfix.core.scores import BINARY_NOTE  # noqa: E402
from lsfix.readers.entry import read as read_predictions  # noqa: E402

runner = CliRunner()
N, L, VOCAB = 300, 24, 50


def cli(*args: object) -> object:
    return runner.invoke(app, [str(a) for a in args])


def make_tokens(path: Path, n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, (n, L), dtype=np.int64)
    y = ((x < VOCAB // 2).sum(axis=1) > L // 2).astype(np.int64)
    np.savez(path, x=x, labels=y, class_names=np.array(["neg", "pos"]))
    return x, y


@pytest.fixture()
def tokens(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    path = tmp_path / "imdb_like.npz"
    x, y = make_tokens(path)
    return path, x, y


@pytest.fixture()
def lightning_ckpt(tmp_path: Path) -> Path:
    """A TokenLSTM state dict saved the way a Lightning routine saves ``self.model``."""
    torch.manual_seed(0)
    net = lsfix_test_nets.TokenLSTM()
    path = tmp_path / "last.ckpt.pt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
                "epoch": 3}, path)
    return path


def reference(x: np.ndarray) -> np.ndarray:
    torch.manual_seed(0)
    net = lsfix_test_nets.TokenLSTM().eval()
    with torch.inference_mode():
        return net(torch.from_numpy(x)).numpy()


def test_token_ids_binary_labels_and_model_prefix(tmp_path, tokens, lightning_ckpt):
    path, x, y = tokens
    out = tmp_path / "imdb.h5"
    res = cli("extract", "lsfix_test_nets:TokenLSTM", "--weights", lightning_ckpt, path,
              "-o", out, "--batch-size", 64)
    assert res.exit_code == 0, res.output
    assert (f"{path}: ({N}, {L}) int64 array read as token ids (N, L), passed as int64 unscaled"
            in res.stderr)
    assert "one logit per sample: a binary (sigmoid) model, stored as (N, 1)" in res.stderr
    with h5py.File(out) as f:
        z = f["/logits"][:]
        assert z.shape == (N, 1)
        np.testing.assert_array_equal(f["/labels"][:], y)
        assert [s.decode() for s in f["/class_names"][:]] == ["neg", "pos"]
        transforms = json.loads(f["/logits"].attrs["transforms"])
        assert "token ids as int64 (not scaled)" in transforms["steps"]
    np.testing.assert_allclose(z, reference(x), rtol=0, atol=1e-6)
    pred = read_predictions(str(out))
    assert pred.k == 2 and pred.n == N


def test_label_outside_0_1_is_refused_for_one_logit(tmp_path, lightning_ckpt):
    path = tmp_path / "bad.npz"
    x, y = make_tokens(path)
    y[7] = 2
    np.savez(path, x=x, labels=y)
    res = cli("extract", "lsfix_test_nets:TokenLSTM", "--weights", lightning_ckpt, path,
              "-o", tmp_path / "o.h5")
    assert res.exit_code == 3, res.output
    assert res.stderr.endswith(
        f"{path}: label 2 of sample '7' is outside the model's classes 0..1\n")


def test_sequences_nld_and_squeezed_output(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 10, 4)).astype(np.float32)
    y = rng.integers(0, 2, 40)
    path = tmp_path / "seq.npz"
    np.savez(path, x=x, labels=y)
    torch.manual_seed(1)
    weights = tmp_path / "seq.pt"
    torch.save(lsfix_test_nets.SeqLSTM().state_dict(), weights)
    # without --layout a 3-D float array is read as images, and the run says how to change it
    res = cli("extract", "lsfix_test_nets:SeqLSTM", "--weights", weights, path,
              "-o", tmp_path / "img.h5")
    assert res.exit_code == 1, res.output
    assert "read as single-channel images (N, H, W); --layout nld reads it as sequences" \
        in res.stderr
    assert "(or --layout nld if the array holds (N, L, D) sequences)" in res.stderr
    out = tmp_path / "seq.h5"
    res = cli("extract", "lsfix_test_nets:SeqLSTM", "--weights", weights, path, "-o", out,
              "--layout", "nld")
    assert res.exit_code == 0, res.output
    torch.manual_seed(1)
    net = lsfix_test_nets.SeqLSTM().eval()
    with torch.inference_mode():
        expected = net(torch.from_numpy(x)).numpy()[:, None]
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["/logits"][:], expected, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(f["/labels"][:], y)


def test_layout_rank_is_checked(tmp_path, tokens, lightning_ckpt):
    path, _, _ = tokens
    res = cli("extract", "lsfix_test_nets:TokenLSTM", "--weights", lightning_ckpt, path,
              "-o", tmp_path / "o.h5", "--layout", "nld")
    assert res.exit_code == 3, res.output
    assert res.stderr.endswith(f"--layout nld: needs a 3-D array, the data is 2-D ({N}, {L})\n")


def test_model_prefix_kept_when_the_network_itself_has_it(tmp_path):
    from lsfix.extract.models import load_into

    torch.manual_seed(0)
    src = lsfix_test_nets.Wrapped()
    dst = lsfix_test_nets.Wrapped()
    load_into(dst, {"state_dict": src.state_dict()}, "w.pt")  # keys 'model.weight' kept
    for a, b in zip(src.parameters(), dst.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.fixture()
def binary_file(tmp_path, tokens, lightning_ckpt) -> Path:
    path, _, _ = tokens
    out = tmp_path / "imdb.h5"
    res = cli("extract", "lsfix_test_nets:TokenLSTM", "--weights", lightning_ckpt, path,
              "-o", out, "--meta", "training.label_smoothing=0.6", "-q")
    assert res.exit_code == 0, res.output
    return out


def test_score_says_what_binary_scores_mean(tmp_path, binary_file):
    out = tmp_path / "s.h5"
    res = cli("score", binary_file, "-m", "msp", "-m", "max_logit", "-m", "pnorm:2", "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stderr == f"lsfix score: {binary_file}: {BINARY_NOTE}\n"
    pred = read_predictions(str(out))
    z = h5py.File(binary_file)["/logits"][:, 0].astype(np.float64)
    assert np.unique(pred.scores["pnorm_p2"]).size == 1  # every row ties at p >= 1
    # msp ranks exactly by |z|
    order = np.argsort(pred.scores["msp"], kind="stable")
    assert np.all(np.diff(np.abs(z)[order]) >= 0)


def test_binary_note_is_not_printed_when_the_command_fails(tmp_path, binary_file):
    """The note comes with a successful run only: a failure is one stderr line (test_fuzz)."""
    res = cli("score", binary_file, "-m", "msp_ts", "-o", tmp_path / "s.h5")  # no T, no --fit
    assert res.exit_code == 2
    assert len(res.stderr.splitlines()) == 1 and BINARY_NOTE not in res.stderr
    assert not (tmp_path / "s.h5").exists()


def test_normalise_does_not_pretend_to_choose(tmp_path, binary_file):
    out = tmp_path / "n.h5"
    res = cli("normalise", binary_file, "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stderr == (f"lsfix normalise: {binary_file}: {BINARY_NOTE}\n"
                          "lsfix normalise: nothing to tune; /scores/pnorm holds MSP (the |z| "
                          "ranking)\n")
    pred = read_predictions(str(out))  # a scores file: no logits, MSP comes from the input
    assert pred.logits is None
    src = read_predictions(str(binary_file))
    msp = compute_scores(src.logits, [parse_score("msp")])["msp"]
    np.testing.assert_array_equal(pred.scores["pnorm"], msp)
    assert pred.fit_mask is None  # no rows were spent on a fit
    params = json.loads(h5py.File(out)["/scores/pnorm"].attrs["params"])
    assert params["fallback_msp"] is True and params["grid"] == []
    assert params["split"]["kind"] == "none"


def test_audit_gives_the_binary_answer_with_its_reason(tmp_path, binary_file):
    res = cli("audit", binary_file, "-b", 50, "-f", "json", "--report", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["binary"] is True and doc["broken"] is False
    assert doc["verdict"].startswith("binary (single-logit) model: keep MSP, the |z| ranking.")
    by = {s["score"]: s for s in doc["scores"]}
    assert by["pnorm"]["aurc"] == by["msp"]["aurc"]
    files = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert "rc.mechanism.png" in files and "rc.gradient.png" in files
    res = cli("audit", binary_file, "-b", 50, "-f", "table")
    assert res.exit_code == 0, res.output
    assert BINARY_NOTE in res.stdout and "p: not tuned (pnorm = msp)" in res.stdout


def test_binary_gradient_term_is_the_bce_form():
    """BCE label smoothing, targets y(1-a)+a/2: the smoothing part of d loss / d|z| is
    a(sigmoid(|z|) - 1/2) = a(1/2 - P_err), checked against autograd."""
    from lsfix.output.explain import ls_gradient_term

    alpha = 0.6
    z = torch.linspace(-6, 6, 41, dtype=torch.float64, requires_grad=True)
    y = (z > 0).to(torch.float64)  # the predicted class: the margin is |z|
    smooth = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.full_like(z, 0.5), reduction="sum")
    (alpha * smooth).backward()
    margin_grad = (z.grad * (2 * y - 1)).detach().numpy()  # d/d|z|
    p_err = 1 - torch.sigmoid(z.abs()).detach().numpy()
    np.testing.assert_allclose(margin_grad, ls_gradient_term(p_err, 2, alpha), atol=1e-12)
    # and the full smoothed loss equals (1 - a) BCE(y) + a BCE(1/2)
    t = y * (1 - alpha) + alpha / 2
    full = torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="sum")
    parts = ((1 - alpha) * torch.nn.functional.binary_cross_entropy_with_logits(
        z, y, reduction="sum") + alpha * smooth)
    assert abs(float((full - parts).detach())) < 1e-9

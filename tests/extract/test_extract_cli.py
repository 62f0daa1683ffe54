"""``lsfix extract`` / ``lsfix merge`` through the CLI on tiny CPU models.

Files, provenance, errors (exact text) and exit codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
from lsfix.errors import InputError  # noqa: E402
from lsfix.extract.writer import ATTR_JOB, ATTR_ROWS_DONE  # noqa: E402
from lsfix.readers.entry import read as read_predictions  # noqa: E402

from .conftest import ROOT  # noqa: E402

runner = CliRunner()


def run(*args: str) -> object:
    return runner.invoke(app, ["extract", *map(str, args)])


def reference_logits(npz: Path, weights: Path, k: int = 10) -> np.ndarray:
    torch.manual_seed(0)
    net = lsfix_test_nets.Net(k=k)
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    x = torch.from_numpy(np.load(npz)["images"]).float().div(255).unsqueeze(1)
    with torch.inference_mode():
        return net(x).numpy()


def test_npz_extract_matches_direct_model_call(tmp_path: Path, small_npz: Path,
                                               net_weights: Path) -> None:
    out = tmp_path / "out.h5"
    res = run("lsfix_test_nets:Net(k=10)", small_npz, "-o", out, "--weights", net_weights,
              "-b", "32", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert res.stdout == ""
    assert "wrote" in res.stderr
    with read_predictions(str(out)) as p:
        logits = np.asarray(p.raw_logits)
        assert logits.dtype == np.float32
        np.testing.assert_allclose(logits, reference_logits(small_npz, net_weights),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(p.labels, np.load(small_npz)["labels"])
        assert list(p.sample_ids[:3]) == ["0", "1", "2"]
        assert p.class_names == [f"c{i}" for i in range(10)]
        prov = p.provenance
        assert len(p.history) == 1  # the command line (sys.argv: pytest's under CliRunner)
    assert prov["model"]["weights_sha256"] and len(prov["model"]["weights_sha256"]) == 64
    assert prov["model"]["state_dict_sha256"]
    assert prov["dataset"]["root"] == str(small_npz.resolve())
    assert prov["dataset"]["size"] == 120
    assert prov["transforms"]["scale"] == pytest.approx(1 / 255)
    assert prov["device"].startswith("cpu")
    assert prov["amp"] == "off"
    for key in ("torch_version", "torchvision_version", "lsfix_version", "wall_time_s"):
        assert prov[key] is not None, key
    with h5py.File(out, "r") as f:
        assert bool(f.attrs["lsfix_complete"])
        assert int(f.attrs[ATTR_ROWS_DONE]) == 120
        assert json.loads(f["logits"].attrs["transforms"])["input_dtype"] == "uint8"
        assert f["logits"].maxshape[0] is None  # appended in chunks


def test_existing_output_refused_then_overwrite_and_resume_noop(
        tmp_path: Path, small_npz: Path, net_weights: Path) -> None:
    out = tmp_path / "out.h5"
    args = ["lsfix_test_nets:Net(k=10)", small_npz, "-o", out, "--weights", net_weights, "-q"]
    assert run(*args).exit_code == 0
    res = run(*args)
    assert res.exit_code == 2
    assert res.stderr == f"lsfix extract: error: {out}: exists; pass --overwrite to replace it\n"
    assert run(*args, "--overwrite").exit_code == 0
    res = run(*args, "--resume")
    assert res.exit_code == 0
    assert run(*args, "--resume", "--overwrite").exit_code == 2


def test_resume_refuses_a_different_job(tmp_path: Path, small_npz: Path,
                                        net_weights: Path) -> None:
    out = tmp_path / "out.h5"
    res = run("lsfix_test_nets:Net(k=10)", small_npz, "-o", out, "--weights", net_weights,
              "-q", "--limit", "50")
    assert res.exit_code == 0
    # make it look interrupted after 32 rows
    with h5py.File(out, "r+") as f:
        f.attrs["lsfix_complete"] = np.bool_(False)
        f.attrs[ATTR_ROWS_DONE] = np.int64(32)
    with pytest.raises(InputError, match="incomplete"):
        read_predictions(str(out))
    res = run("lsfix_test_nets:Net(k=10)", small_npz, "-o", out, "--weights", net_weights,
              "-q", "--limit", "50", "--amp", "bf16", "--resume")
    assert res.exit_code == 2
    assert "cannot resume: it was started for a different job (amp: file has \"off\"" in res.stderr
    res = run("lsfix_test_nets:Net(k=10)", small_npz, "-o", out, "--weights", net_weights,
              "-q", "--limit", "50")
    assert res.exit_code == 2
    assert "an interrupted extract is there (32 of 50 rows); pass --resume" in res.stderr
    res = run("lsfix_test_nets:Net(k=10)", small_npz, "-o", out, "--weights", net_weights,
              "-q", "--limit", "50", "--resume")
    assert res.exit_code == 0, res.output
    with read_predictions(str(out)) as p:
        assert p.n == 50
        assert list(p.sample_ids) == [str(i) for i in range(50)]
        assert len(p.provenance["segments"]) == 2
        assert p.provenance["segments"][1]["rows"] == [32, 50]


def test_dense_output_written_as_nkhw_with_pixel_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = tmp_path / "seg.h5"
    with h5py.File(data, "w") as f:
        f["images"] = rng.random((20, 1, 8, 8), dtype=np.float32)
        masks = rng.integers(0, 3, (20, 8, 8))
        masks[:, 0, 0] = 255
        f["labels"] = masks
    out = tmp_path / "out.h5"
    res = run("lsfix_test_nets:Dense(k=3)", data, "-o", out, "--weights", "none",
              "--ignore-index", "255", "-b", "6", "-q")
    assert res.exit_code == 0, res.output
    with h5py.File(out, "r") as f:
        assert f["logits"].shape == (20, 3, 8, 8)
        assert f["labels"].shape == (20, 8, 8)
        assert int(f["labels"].attrs["ignore_index"]) == 255
        assert f["labels"].dtype == np.uint8  # 3 classes and 255: one byte per pixel
        np.testing.assert_array_equal(f["labels"][()], masks)  # read back exactly
    with read_predictions(str(out)) as p:
        assert p.logits.shape == (20 * 64, 3)  # pixel-major rows
        assert p.keep is not None and int(p.keep.sum()) == 20 * 63  # ignored pixels
        assert p.labels.dtype == np.uint8
        flat = masks.reshape(-1)
        np.testing.assert_array_equal(p.keep, flat != 255)
        np.testing.assert_array_equal(p.labels[p.keep], flat[flat != 255])


def test_vector_inputs(tmp_path: Path) -> None:
    data = tmp_path / "vec.npy"
    np.save(data, np.random.default_rng(3).random((30, 5)).astype(np.float32))
    out = tmp_path / "out.h5"
    res = run("lsfix_test_nets:Vector", data, "-o", out, "--weights", "none", "-q")
    assert res.exit_code == 0, res.output
    with read_predictions(str(out)) as p:
        assert (p.n, p.k) == (30, 4)
        assert p.labels is None


@pytest.mark.parametrize(("spec", "extra", "code", "message"), [
    ("lsfix_test_nets:ThreeD", [], 1,
     "the model output has shape (32, 1, 144) for input (32, 1, 12, 12); lsfix extract needs "
     "(N, K) class logits or (N, K, H, W) dense logits"),
    ("lsfix_test_nets:DictOut", [], 1,
     "the model returns a dict with keys ['scores', 'features']"),
    ("lsfix_test_nets:TupleOut", [], 1, "pick the logits with --output-key 0"),
    ("lsfix_test_nets:Net(k=10)", ["--channels", "3"], 1,
     "the model failed on a batch of shape (32, 3, 12, 12)"),
    ("lsfix_test_nets:Net(k=10)", ["--mean", "0.5,0.5", "--std", "0.2,0.2"], 2,
     "--mean/--std have 2/2 values but the images have 1 channel(s)"),
    ("lsfix_test_nets:Nope", [], 1, "'lsfix_test_nets' has no attribute 'Nope'"),
    ("no_such_module_xyz:make", [], 1, "cannot import 'no_such_module_xyz'"),
    ("lsfix_test_nets:Net(k=open('x'))", [], 2, "arguments must be Python literals"),
    ("torchvision:resnet1800", [], 2, "torchvision has no model 'resnet1800'"),
    ("not a model", [], 2, "is not a file and not a model spec"),
    ("missing/model.pt", [], 1, "missing/model.pt: model file not found"),
    ("lsfix_test_nets:Net", ["--amp", "fp8"], 2, "--amp 'fp8': choose off, bf16, fp16"),
    ("lsfix_test_nets:Net", ["--device", "tpu"], 2, "--device 'tpu'"),
    ("lsfix_test_nets:Net", ["--resize", "big"], 2, "--resize 'big': expected N or HxW"),
])
def test_errors_are_one_line_with_exit_code(tmp_path: Path, small_npz: Path, spec: str,
                                            extra: list[str], code: int, message: str) -> None:
    out = tmp_path / "out.h5"
    res = run(spec, small_npz, "-o", out, "--weights", "none", "-b", "32", "-q", *extra)
    assert res.exit_code == code, res.output
    assert res.stderr.startswith("lsfix extract: error: ")
    assert message in res.stderr
    assert res.stderr.count("\n") == 1
    assert "Traceback" not in res.output
    assert not out.exists(), "a failed run with no rows leaves no file"


def test_labels_outside_the_model_classes(tmp_path: Path, small_npz: Path) -> None:
    data = tmp_path / "noclasses.npz"
    z = np.load(small_npz)
    np.savez(data, x=z["images"], y=z["labels"])  # no class names: labels are taken as given
    res = run("lsfix_test_nets:Net(k=4)", data, "-o", tmp_path / "o.h5", "--weights", "none",
              "-q")
    assert res.exit_code == 3
    assert res.stderr.startswith(f"lsfix extract: error: {data}: label ")
    assert "is outside the model's classes 0..3" in res.stderr
    # with class names that do not match K the labels are dropped, with a warning
    res = run("lsfix_test_nets:Net(k=4)", small_npz, "-o", tmp_path / "o2.h5", "--weights",
              "none")
    assert res.exit_code == 0
    assert ("warning: the dataset has 10 classes but the model gives K=4 logits: its labels do "
            "not index the model's classes; /labels not written") in res.stderr
    with read_predictions(str(tmp_path / "o2.h5")) as p:
        assert p.labels is None and p.class_names is None


def test_output_key_picks_dict_and_tuple_entries(tmp_path: Path, small_npz: Path) -> None:
    for spec, key in (("lsfix_test_nets:DictOut", "scores"), ("lsfix_test_nets:TupleOut", "0")):
        out = tmp_path / f"{key}.h5"
        res = run(spec, small_npz, "-o", out, "--weights", "none", "--output-key", key, "-q")
        assert res.exit_code == 0, res.output
        with read_predictions(str(out)) as p:
            assert p.k == 10


def test_nan_logits_exit_1_and_keep_rows_before(tmp_path: Path, net_weights: Path) -> None:
    images = np.zeros((64, 6, 6), dtype=np.uint8)
    images[40] = 255  # NaNAfter gives NaN for bright images
    data = tmp_path / "d.npy"
    np.save(data, images)
    out = tmp_path / "out.h5"
    res = run("lsfix_test_nets:NaNAfter", data, "-o", out, "--weights", net_weights, "-b", "8",
              "--sync-every", "0", "-q")
    assert res.exit_code == 1
    assert res.stderr == (
        "lsfix extract: error: the model produced non-finite logits (NaN or inf) for 1 "
        "sample(s) of a batch, first '40' (index 40); 40 rows before it are kept\n")
    with h5py.File(out, "r") as f:
        assert not bool(f.attrs["lsfix_complete"])
        assert int(f.attrs[ATTR_ROWS_DONE]) == 40


def test_nan_inputs_are_bad_data(tmp_path: Path) -> None:
    arr = np.zeros((10, 5), dtype=np.float32)
    arr[7, 2] = np.nan
    data = tmp_path / "d.npy"
    np.save(data, arr)
    res = run("lsfix_test_nets:Vector", data, "-o", tmp_path / "o.h5", "--weights", "none",
              "-q")
    assert res.exit_code == 3
    assert res.stderr == (f"lsfix extract: error: {data}: sample 7 has non-finite values "
                          "(NaN or inf)\n")


def test_amp_bf16_and_float16_storage(tmp_path: Path, small_npz: Path,
                                      net_weights: Path) -> None:
    ref = reference_logits(small_npz, net_weights)
    out = tmp_path / "bf16.h5"
    res = run("lsfix_test_nets:Net(k=10)", small_npz, "-o", out, "--weights", net_weights,
              "--amp", "bf16", "--dtype", "float16", "-q")
    assert res.exit_code == 0, res.output
    with h5py.File(out, "r") as f:
        got = f["logits"][()]
        assert got.dtype == np.float16
        assert json.loads(f.attrs["provenance"])["amp"] == "bf16"
    np.testing.assert_allclose(got.astype(np.float32), ref, atol=0.05, rtol=0.05)


def test_stdout_output_when_piped(tmp_path: Path, small_npz: Path, net_weights: Path) -> None:
    res = runner.invoke(app, ["extract", "lsfix_test_nets:Net(k=10)", str(small_npz), "-o", "-",
                              "--weights", str(net_weights), "-q"])
    assert res.exit_code == 0, res.output
    assert res.stdout_bytes.startswith(b"\x89HDF\r\n\x1a\n")
    res = run("lsfix_test_nets:Net(k=10)", small_npz, "-o", "-", "--resume")
    assert res.exit_code == 2
    assert "--resume needs -o FILE" in res.stderr


def test_output_option_is_required(small_npz: Path) -> None:
    res = run("lsfix_test_nets:Net", small_npz)
    assert res.exit_code == 2
    assert "-o" in res.stderr


def test_torchscript_and_factory_give_the_same_logits_and_hash(
        tmp_path: Path, small_npz: Path, net_weights: Path) -> None:
    import warnings

    net = lsfix_test_nets.Net(k=10)
    net.load_state_dict(torch.load(net_weights, weights_only=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch>=2.9
        scripted = torch.jit.script(net.eval())
    ts = tmp_path / "net.ts"
    scripted.save(str(ts))
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert run(ts, small_npz, "-o", a, "-q").exit_code == 0
    assert run("lsfix_test_nets:Net(k=10)", small_npz, "-o", b, "--weights", net_weights,
               "-q").exit_code == 0
    with read_predictions(str(a)) as pa, read_predictions(str(b)) as pb:
        np.testing.assert_allclose(np.asarray(pa.raw_logits), np.asarray(pb.raw_logits),
                                   rtol=1e-6, atol=1e-6)
        assert pa.provenance["model"]["kind"] == "torchscript"
        assert (pa.provenance["model"]["state_dict_sha256"]
                == pb.provenance["model"]["state_dict_sha256"])


def test_merge_checks_shards(tmp_path: Path, small_npz: Path) -> None:
    res = runner.invoke(app, ["merge", str(small_npz), "-o", str(tmp_path / "m.h5")])
    assert res.exit_code == 3
    assert "is not an lsfix file" in res.stderr
    res = runner.invoke(app, ["merge", str(tmp_path / "none.h5"), "-o", str(tmp_path / "m.h5")])
    assert res.exit_code == 3
    assert res.stderr.endswith("none.h5: no such file\n")


def test_cli_and_writer_import_no_torch() -> None:
    code = ("import sys\nimport lsfix.cli\nimport lsfix.extract.writer\n"
            "from lsfix.cli import app\n"
            "try:\n    app(['extract', '--help'], standalone_mode=False)\nexcept SystemExit:\n"
            "    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_job_attribute_names_what_resume_compares(tmp_path: Path, small_npz: Path,
                                                  net_weights: Path) -> None:
    out = tmp_path / "out.h5"
    assert run("lsfix_test_nets:Net(k=10)", small_npz, "-o", out, "--weights", net_weights,
               "-q").exit_code == 0
    with h5py.File(out, "r") as f:
        job = json.loads(f.attrs[ATTR_JOB])
    assert set(job) >= {"model_sha256", "dataset_root", "dataset_size", "transforms", "amp",
                        "dtype"}


def test_meta_parsing_nests_and_parses_json() -> None:
    from lsfix.cli.extract_cmd import parse_meta
    from lsfix.errors import UsageError

    assert parse_meta(["training.label_smoothing=0.2", "training.seed=3", "note=hello"]) == {
        "training": {"label_smoothing": 0.2, "seed": 3}, "note": "hello"}
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        parse_meta(["novalue"])
    with pytest.raises(UsageError, match="already holds a value"):
        parse_meta(["a=1", "a.b=2"])

"""Fixtures for the CLI tests: small deterministic lsfix files and a CliRunner helper.

``run(args, input=None, ...)`` invokes the typer app in-process with stdout and stderr kept
apart (typer's ``CliRunner`` always separates them: ``.stdout``/``.stderr``, ``.output`` is
both interleaved). An exception that escapes the command (a traceback a user would see) fails
the test at once instead of hiding behind exit code 1.

Golden files: ``pytest tests/cli --update-golden`` rewrites ``tests/data/golden/*``. The option
is declared in this conftest, which pytest loads at start-up only when ``tests/cli`` (or a path
in it) is named on the command line; from anywhere else use ``LSFIX_UPDATE_GOLDEN=1 pytest``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer.testing

from lsfix.cli import app
from lsfix.readers.logitsfile import new_file

DATA = Path(__file__).resolve().parent.parent / "data"
GOLDEN = DATA / "golden"
LSFIX_EXE = Path(sys.executable).parent / "lsfix"

N, K = 300, 5


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/data/golden/* from the current lsfix output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    if os.environ.get("LSFIX_UPDATE_GOLDEN") == "1":
        return True
    try:
        return bool(request.config.getoption("--update-golden"))
    except ValueError:  # option not registered (conftest loaded late)
        return False


# --------------------------------------------------------------------------------------------
# data


def ls_logits(seed: int, n: int = N, k: int = K, *, error_scale: float = 2.5
              ) -> tuple[np.ndarray, np.ndarray]:
    """Logits where errors carry scaled-up norms (``error_scale`` > 1: MSP's ranking is
    broken and pNorm fixes it; < 1: MSP ranks well and pNorm tuning falls back to MSP)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(0.0, 1.0, (n, k))
    z[np.arange(n), y] += rng.normal(2.0, 1.0, n)
    wrong = z.argmax(axis=1) != y
    s = rng.lognormal(0.0, 0.3, n) * np.where(wrong, error_scale, 1.0)
    return (z * s[:, None]).astype(np.float32), y.astype(np.int64)


def calibrated_logits(seed: int, n: int = N, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities of a calibrated model (P(correct) = top probability): MSP is the ideal
    ranking, so tuning MaxLogit-pNorm falls back to MSP."""
    rng = np.random.default_rng(seed)
    top = rng.uniform(0.25, 0.999, n)
    rest = rng.dirichlet(np.full(k - 1, 0.3), n) * (1.0 - top)[:, None]
    pred = rng.integers(0, k, n)
    prob = np.empty((n, k))
    for i in range(n):
        others = [j for j in range(k) if j != pred[i]]
        prob[i, pred[i]] = top[i]
        prob[i, others] = rest[i]
    # log-probabilities shifted by 3: logits of the same model (every score lsfix tunes is
    # shift-invariant), which lsfix does not take for log-probabilities (rows <= 0)
    z = np.log(np.maximum(prob, 1e-6)) + 3.0
    right = rng.uniform(size=n) < top
    y = np.where(right, pred, (pred + 1 + rng.integers(0, k - 1, n)) % k)
    return z.astype(np.float32), y.astype(np.int64)


def ids(n: int, prefix: str = "s") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


@dataclass(frozen=True)
class Files:
    """Paths (str) of the shared read-only input files."""

    folder: Path
    a: str  # model A, n=300, K=5, labels + ids + class names; pnorm beats MSP
    b: str  # model B on the same samples (same labels, ids)
    val: str  # held-out labelled file from A's distribution (other samples)
    fallback: str  # MSP ranks well: tuning falls back to MSP
    nolabels: str  # A's logits only
    binary: str  # single-logit binary classifier (N,) with 0/1 labels
    other_labels: str  # same n and ids as A, different labels
    other_ids: str  # same labels as A, different sample ids
    short: str  # same distribution, n=200
    bad_labels: str  # a label outside [0, K)
    not_hdf5: str  # text that is not any supported format
    truncated: str  # the first 100 bytes of an HDF5 file
    empty: str  # 0 bytes


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    d = tmp_path_factory.mktemp("inputs")
    za, y = ls_logits(0)
    rng = np.random.default_rng(1)
    zb = (za + rng.normal(0.0, 0.8, za.shape)).astype(np.float32)
    names = ["c0", "c1", "c2", "c3", "c4"]
    p = {k: str(d / f"{k}.h5") for k in ("a", "b", "val", "fallback", "nolabels", "binary",
                                          "other_labels", "other_ids", "short", "bad_labels",
                                          "truncated")}
    new_file(p["a"], za, labels=y, sample_ids=ids(N), class_names=names)
    new_file(p["b"], zb, labels=y, sample_ids=ids(N), class_names=names)
    zv, yv = ls_logits(2)
    new_file(p["val"], zv, labels=yv)
    zf, yf = calibrated_logits(0)
    new_file(p["fallback"], zf, labels=yf)
    new_file(p["nolabels"], za)
    zbin = rng.normal(0.0, 2.0, N).astype(np.float32)
    ybin = (zbin + rng.normal(0.0, 1.0, N) > 0).astype(np.int64)
    new_file(p["binary"], zbin, labels=ybin)
    y2 = (y + 1) % K
    new_file(p["other_labels"], zb, labels=y2, sample_ids=ids(N))
    new_file(p["other_ids"], zb, labels=y, sample_ids=ids(N, "t"))
    zs, ys = ls_logits(4, n=200)
    new_file(p["short"], zs, labels=ys)
    new_file(p["bad_labels"], za, labels=y)
    with h5py.File(p["bad_labels"], "r+") as f:
        lab = f["labels"][()]
        lab[7] = K + 2
        f["labels"][...] = lab
    Path(p["truncated"]).write_bytes(Path(p["a"]).read_bytes()[:100])
    not_hdf5 = d / "notes.json"
    not_hdf5.write_text("these are not logits\n")
    empty = d / "empty.h5"
    empty.write_bytes(b"")
    return Files(folder=d, not_hdf5=str(not_hdf5), empty=str(empty), **p)


# --------------------------------------------------------------------------------------------
# running the app


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes

    def __repr__(self) -> str:  # shown by pytest on failure
        return (f"Run(code={self.code}, stderr={self.stderr!r}, "
                f"stdout={self.stdout_bytes[:300]!r})")


def _tty_patch(monkeypatch: pytest.MonkeyPatch, stdout_tty: bool, stdin_tty: bool) -> None:
    """Make CliRunner's fake stdout and/or stdin claim to be a terminal."""
    wrapper = typer.testing._NamedTextIOWrapper
    original = wrapper.isatty

    def isatty(self: object) -> bool:
        name = getattr(self, "_name", "")
        if name == "<stdout>" and stdout_tty:
            return True
        if name == "<stdin>" and stdin_tty:
            return True
        return bool(original(self))  # type: ignore[arg-type]

    monkeypatch.setattr(wrapper, "isatty", isatty)


RunFn = Callable[..., Run]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> RunFn:
    """``run(args, input=None, *, stdout_tty=False, stdin_tty=False, env=None)``."""

    def _run(args: Sequence[str], input: bytes | str | None = None, *, stdout_tty: bool = False,
             stdin_tty: bool = False, env: dict[str, str] | None = None) -> Run:
        with monkeypatch.context() as mp:
            if stdout_tty or stdin_tty:
                _tty_patch(mp, stdout_tty, stdin_tty)
            res = typer.testing.CliRunner().invoke(app, [str(a) for a in args], input=input,
                                                   env=env, prog_name="lsfix")
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise AssertionError(
                f"lsfix {' '.join(map(str, args))} raised (a user would see a traceback); "
                f"stderr={res.stderr!r}"
            ) from res.exception
        return Run(res.exit_code, res.stdout, _without_small_fit_warning(res.stderr),
                   res.stdout_bytes)

    return _run


def _without_small_fit_warning(stderr: str) -> str:
    """The shared files here are small on purpose (n=300, so 60 rows to fit p on): every fit
    warns that the fit set is too small (lsfix.evaluation.inmemory.small_fit_warning). These tests check
    the other lines; tests/cli/test_cli_inputs.py checks that warning."""
    return "".join(ln for ln in stderr.splitlines(keepends=True)
                   if "too few to choose p reliably" not in ln)


def one_error_line(r: Run, cmd: str) -> str:
    """Assert stderr is exactly one ``lsfix <cmd>: error: ...`` line and stdout is empty;
    return the message after the prefix."""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r
    prefix = f"lsfix {cmd}: error: "
    assert lines[0].startswith(prefix), r
    assert r.stdout_bytes == b"", r
    return lines[0][len(prefix):]


@pytest.fixture
def error_of() -> Callable[[Run, str], str]:
    """``error_of(run_result, cmd)``: the one-line error message (see :func:`one_error_line`)."""
    return one_error_line


@pytest.fixture
def read_scores() -> Callable[[str | Path], dict[str, np.ndarray]]:
    """``read_scores(path)``: ``{name: values}`` of an lsfix file's ``/scores``."""

    def _read(path: str | Path) -> dict[str, np.ndarray]:
        with h5py.File(path, "r") as f:
            return {k: f["scores"][k][()] for k in f.get("scores", {})}

    return _read


@pytest.fixture
def score_attrs() -> Callable[[str | Path, str], dict[str, str]]:
    """``score_attrs(path, name)``: the attributes of ``/scores/<name>`` as str."""

    def _attrs(path: str | Path, name: str) -> dict[str, str]:
        with h5py.File(path, "r") as f:
            return {k: (v.decode() if isinstance(v, bytes) else str(v))
                    for k, v in f["scores"][name].attrs.items()}

    return _attrs

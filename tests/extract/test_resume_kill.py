"""Kill a running ``lsfix extract`` (SIGKILL, SIGINT, SIGTERM) and ``--resume`` it.

The resumed file must equal an uninterrupted run row for row: no row lost, none duplicated,
and it is marked complete only at the end.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = [pytest.mark.torch, pytest.mark.slow]

from lsfix.errors import InputError  # noqa: E402
from lsfix.extract.writer import ATTR_ROWS_DONE  # noqa: E402
from lsfix.readers.entry import read as read_predictions  # noqa: E402

from .conftest import ROOT, subprocess_env  # noqa: E402

N, BATCH = 1200, 16


def _cmd(data: Path, weights: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lsfix", "extract", "lsfix_test_nets:Slow(k=10, delay=0.015)",
            str(data), "-o", str(out), "--weights", str(weights), "-b", str(BATCH),
            "--sync-every", "0", "--device", "cpu", *extra]


def _rows_done(path: Path) -> int:
    """Committed rows of a file another process is writing (0 while unreadable)."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f.attrs.get(ATTR_ROWS_DONE, 0))
    except (OSError, KeyError, ValueError):
        return 0


def _start_and_stop(cmd: list[str], out: Path, sig: int, at_least: int) -> tuple[int, str]:
    """Start ``cmd``, send ``sig`` once ``at_least`` rows are committed; (returncode, stderr)."""
    log = out.with_suffix(".stderr")
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL,
                                stderr=err)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"extract ended before it could be stopped: {log.read_text()}")
                if out.exists() and _rows_done(out) >= at_least:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("no rows committed within 90 s")
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return proc.returncode, log.read_text()


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(dataset, weights, output of an uninterrupted run), shared by the tests here."""
    import lsfix_test_nets
    import torch

    tmp = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(5)
    data = tmp / "data.npz"
    np.savez(data, images=rng.integers(0, 256, (N, 10, 10), dtype=np.uint8),
             labels=rng.integers(0, 10, N))
    torch.manual_seed(0)
    weights = tmp / "net.pt"
    torch.save(lsfix_test_nets.Net(k=10).state_dict(), weights)
    ref = tmp / "ref.h5"
    cmd = _cmd(data, weights, ref, "-q")
    cmd[4] = "lsfix_test_nets:Net(k=10)"  # same weights, no sleep
    subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), check=True, capture_output=True)
    return data, weights, ref


def _assert_same_rows(out: Path, ref: Path) -> None:
    with read_predictions(str(out)) as p, read_predictions(str(ref)) as r:
        ids = list(p.sample_ids)
        assert len(ids) == N and len(set(ids)) == N, "rows lost or duplicated"
        assert ids == list(r.sample_ids)
        np.testing.assert_array_equal(p.labels, r.labels)
        np.testing.assert_array_equal(np.asarray(p.raw_logits), np.asarray(r.raw_logits))
        assert p.provenance["resumed"] is True


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path: Path,
                                                      job: tuple[Path, Path, Path]) -> None:
    data, net_weights, ref = job
    out = tmp_path / "out.h5"
    code, _ = _start_and_stop(_cmd(data, net_weights, out), out, signal.SIGKILL, at_least=200)
    assert code == -signal.SIGKILL
    done = _rows_done(out)
    assert 200 <= done < N, done
    with pytest.raises(InputError, match="incomplete"):
        read_predictions(str(out))
    with read_predictions(str(out), allow_incomplete=True) as part:
        assert part.n >= done
    # a plain rerun is refused; --resume continues
    again = subprocess.run(_cmd(data, net_weights, out), cwd=ROOT, env=subprocess_env(),
                           capture_output=True, text=True)
    assert again.returncode == 2
    assert f"an interrupted extract is there ({done} of {N} rows)" in again.stderr
    res = subprocess.run(_cmd(data, net_weights, out, "--resume"), cwd=ROOT,
                         env=subprocess_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"resuming {out} at row {done} of {N}" in res.stderr
    _assert_same_rows(out, ref)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_commits_rows_and_exits_130(tmp_path: Path, job: tuple[Path, Path, Path],
                                              sig: int) -> None:
    data, net_weights, ref = job
    out = tmp_path / "out.h5"
    code, stderr = _start_and_stop(_cmd(data, net_weights, out), out, sig, at_least=100)
    assert code == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"lsfix extract: error: interrupted; {out} keeps ")
    assert last.endswith("rows (marked incomplete); run the same command with --resume to "
                         "continue")
    with h5py.File(out, "r") as f:
        done = int(f.attrs[ATTR_ROWS_DONE])
        assert f["logits"].shape[0] == done  # a clean stop commits everything it appended
        assert not bool(f.attrs["lsfix_complete"])
    res = subprocess.run(_cmd(data, net_weights, out, "--resume", "-q"), cwd=ROOT,
                         env=subprocess_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    _assert_same_rows(out, ref)

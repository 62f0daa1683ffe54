"""The merge of spilled runs scales with the fan-in (levels of at most ``fan_in`` runs), and
the temporary folders are found and removed after a killed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsfix.core import tie_blocks
from lsfix.core.spill import (
    FOLDER_PREFIX,
    SpilledBlocks,
    check_space,
    remove_stale,
    run_folder,
    temp_root,
)
from lsfix.errors import RuntimeFailure

REPO = Path(__file__).resolve().parents[2]


def _same(got, conf, correct):
    want = tie_blocks(conf, correct)
    np.testing.assert_array_equal(got.value, want.value)
    np.testing.assert_array_equal(got.size, want.size)
    np.testing.assert_array_equal(got.errors, want.errors)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 600), distinct=st.integers(1, 80), run_rows=st.integers(1, 20),
       fan_in=st.integers(2, 6), window=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_any_fan_in_gives_the_in_memory_blocks(tmp_path_factory, n, distinct, run_rows,
                                               fan_in, window, seed):
    rng = np.random.default_rng(seed)
    conf = rng.integers(0, distinct, n) / 3.0
    correct = rng.random(n) < 0.6
    folder = tmp_path_factory.mktemp("runs")
    with SpilledBlocks(run_rows=run_rows, window=window, fan_in=fan_in, folder=folder) as sb:
        sb.add(conf, correct)
        got = sb.blocks()
        assert len(sb.runs) <= fan_in  # merged level by level down to one final merge
    _same(got, conf, correct)
    assert not any(folder.iterdir())


def test_levels_delete_their_inputs_and_the_block_file_is_the_same(tmp_path):
    rng = np.random.default_rng(3)
    conf = rng.normal(size=3000).round(2)
    correct = rng.random(3000) < 0.8
    with SpilledBlocks(run_rows=10, fan_in=4, folder=tmp_path) as sb:
        sb.add(conf, correct)
        assert len(sb.runs) == 300
        bf = sb.block_file()
        names = sorted(p.name for p in sb._dir.iterdir())
        assert names == ["merged.errors", "merged.size"]  # every run and level removed
        size = np.concatenate([w[0] for w in bf.windows()])
        errors = np.concatenate([w[1] for w in bf.windows()])
    want = tie_blocks(conf, correct)
    np.testing.assert_array_equal(size, want.size)
    np.testing.assert_array_equal(errors, want.errors)


def test_a_block_larger_than_uint32_in_a_merged_level_is_kept_exact(tmp_path):
    """Merged runs switch their counts to int64 when their samples could exceed uint32."""
    from lsfix.core.metrics import Blocks
    from lsfix.core.spill import _Run

    big = 6_000_000_000
    runs = []
    for i in range(3):
        b = Blocks(size=np.array([big // 3 + i, 5]), errors=np.array([7, 1]),
                   value=np.array([1.0, 0.5 - i]))
        r = _Run(tmp_path / f"r{i}", b)
        runs.append(r)
    m = _Run.merged_from(tmp_path / "m", runs, 1)
    v, size, err = m.read(0, m.length)
    assert m.count_dtype == np.int64
    assert v.tolist() == [1.0, 0.5, -0.5, -1.5]
    assert size.tolist() == [big + 3, 5, 5, 5] and err.tolist() == [21, 1, 1, 1]


FANIN_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
    from lsfix.core import tie_blocks
    from lsfix.core.spill import SpilledBlocks
    rng = np.random.default_rng(0)
    n = int(sys.argv[1])
    conf = rng.normal(size=n).round(3)
    correct = rng.random(n) < 0.7
    with SpilledBlocks(run_rows=int(sys.argv[2]), fan_in=int(sys.argv[3]),
                       folder=sys.argv[4]) as sb:
        sb.add(conf, correct)
        runs = len(sb.runs)
        got = sb.blocks()
    want = tie_blocks(conf, correct)
    ok = all(np.array_equal(getattr(got, a), getattr(want, a))
             for a in ("value", "size", "errors"))
    print(runs, ok)
""")


@pytest.mark.parametrize("fan_in", [64, 5000])
def test_a_fan_in_above_the_open_file_limit(tmp_path, fan_in):
    """1,500 runs with a limit of 40 open files: in levels of 64, and all 1,500 at once
    (no run's files stay open between reads)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", FANIN_SCRIPT, "30000", "20", str(fan_in),
                          str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1500", "True"]
    assert not any(tmp_path.iterdir())


KILLED = textwrap.dedent("""
    import sys, time
    import numpy as np
    from lsfix.core.spill import SpilledBlocks
    sb = SpilledBlocks(run_rows=4, folder=sys.argv[1])
    sb.add(np.arange(10.0), np.ones(10, bool))
    print(sb._dir, flush=True)
    time.sleep(600)
""")


def test_a_folder_left_by_sigkill_is_removed_by_the_next_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        left = Path(proc.stdout.readline().strip())
        assert left.is_dir() and any(left.iterdir())
        assert left.name.startswith(f"{FOLDER_PREFIX}{proc.pid}-")
        assert remove_stale(tmp_path) == []  # its process is alive: kept
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
    assert left.is_dir()  # SIGKILL: nothing cleaned up
    other = tmp_path / "lsfix-runs-keepme"  # not a pid-named folder: never touched
    other.mkdir()
    t0 = time.monotonic()
    with SpilledBlocks(folder=tmp_path) as sb:  # the next run
        assert not left.exists()
        assert sb._dir.is_dir()
    assert other.is_dir() and time.monotonic() - t0 < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lsfix-runs-keepme"]


def test_temp_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "env"))
    assert temp_root(str(tmp_path / "opt")) == tmp_path / "opt"
    assert temp_root(None) == tmp_path / "env"
    monkeypatch.delenv("TMPDIR")
    import tempfile

    assert temp_root(None) == Path(tempfile.gettempdir())


def test_a_missing_folder_and_too_little_space_are_one_line_errors(tmp_path):
    with pytest.raises(RuntimeFailure, match="does not exist"):
        run_folder(tmp_path / "nope")
    with pytest.raises(RuntimeFailure, match=r"^not enough temporary disk in .*: needs up to "
                                             r"[\d.]+ GB \(32 B per row\), .* free; .*--tmpdir"):
        check_space(tmp_path, 1 << 62, "32 B per row")
    check_space(tmp_path, 1, "one byte")

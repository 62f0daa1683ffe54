"""Every shell and Python example in README.md and docs/*.md runs, as printed, against
``sample_data/``.

The runner picks up every fenced block whose language is ``sh``, ``bash``, ``shell``,
``console`` or ``python`` in ``README.md`` and ``docs/*.md`` (a ``python`` block runs with this
checkout's interpreter and is checked like a shell block). The blocks of one document run in order in one
fresh folder holding a copy of ``sample_data/`` (so a later block may use an earlier block's
output), with the ``lsfix`` of this checkout first on ``PATH``, ``HOME`` pointing into that folder
and ``COLUMNS=100``. How a block is checked is said by an HTML comment on the line right above
its opening fence (invisible on GitHub):

``<!-- doc-test: exit=4 expect="gate failed" expect="eaurc" files="pr-comment.md" -->``
    ``sh``/``bash``/``shell`` blocks run under ``bash -e -o pipefail``; the block must end with
    that exit status (default 0), its stdout+stderr must contain every ``expect`` fragment, and
    every file in ``files`` must exist afterwards. Each such block needs at least one ``expect``
    or ``files``: a block that checks nothing is an error.
``console`` blocks
    ``$ command`` lines (continued by a trailing backslash) run one by one; every other
    non-empty line of the block is expected output, and must appear in the output of the
    command above it (whitespace-normalised; a line ``...`` stands for omitted output). A line
    ``[exit N]`` after a command's output says it exits N (default: the marker's, else 0).
``requires=MODULE`` (in the marker)
    the block needs an optional Python module (``torch``): where it is missing the block is
    not run and the document's test ends as skipped, naming the module, after running the rest.
``<!-- doc-test: skip CATEGORY: reason -->``
    the block is not run. ``CATEGORY`` is one of :data:`SKIP_CATEGORIES`, the reason says why in
    words, and ``test_opt_outs_are_few_and_justified`` bounds how many there may be.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lsfix.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
#: Python examples (``python`` blocks) run too, with this checkout's interpreter, in the same
#: folder and order as the shell blocks; a block prints what its marker expects
RUN_LANGS = SHELL_LANGS | {"python"}
DOCS = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
#: why a block may be left out; with the most blocks of each kind allowed in all the docs
SKIP_CATEGORIES = {
    "installs": 4,  # pip install / apt-get: changes the machine (CI's job, .ci/run)
    "gpu": 4,  # needs CUDA devices or several of them (torchrun)
    "placeholder": 6,  # stands for the user's own model/dataset files, which do not exist here
    "long": 3,  # minutes of training on the full Debian dataset
}
MARKER = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)


@dataclass
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    skip: str | None = None  # "CATEGORY: reason"
    exit: int = 0
    expect: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def parse_marker(block: Block, text: str) -> None:
    """Fill ``block`` from the body of a ``doc-test:`` marker."""
    if text.startswith("skip"):
        block.skip = text[4:].strip()
        return
    for token in shlex.split(text):
        key, sep, value = token.partition("=")
        if not sep:
            raise AssertionError(f"{block.where}: doc-test marker item {token!r}: KEY=VALUE")
        if key == "exit":
            block.exit = int(value)
        elif key == "expect":
            block.expect.append(value)
        elif key == "files":
            block.files.extend(value.split())
        elif key == "requires":
            block.requires.append(value)
        else:
            raise AssertionError(f"{block.where}: unknown doc-test marker key {key!r}")


def shell_blocks(doc: str, text: str | None = None) -> list[Block]:
    """The shell blocks of ``doc`` (a path relative to the repository root) with their markers."""
    if text is None:
        text = (ROOT / doc).read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        lang = m.group(1).lower()
        if lang not in RUN_LANGS:
            continue
        line = text.count("\n", 0, m.start()) + 1
        block = Block(doc, line, lang, m.group(2))
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        if marker:
            parse_marker(block, marker.group(1))
        blocks.append(block)
    return blocks


def all_blocks() -> list[Block]:
    return [b for doc in DOCS for b in shell_blocks(doc)]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(HOME=str(home), COLUMNS="100", NO_COLOR="1", OMP_NUM_THREADS="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LSFIX_TEST_STOP_AT"):
        env.pop(key, None)
    return env


def _norm(s: str) -> str:
    return " ".join(s.split())


EXIT_LINE = re.compile(r"^\[exit (\d+)\]$")


def console_commands(body: str) -> list[tuple[str, list[str], int | None]]:
    """``[(command, expected output lines, expected exit or None)]`` of a console block."""
    out: list[tuple[str, list[str], int | None]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            out.append((cmd, [], None))
        elif line.strip() and line.strip() != "...":
            if not out:
                raise AssertionError(f"output line before any '$ ' command: {line!r}")
            code = EXIT_LINE.match(line.strip())
            if code:
                out[-1] = (out[-1][0], out[-1][1], int(code.group(1)))
            else:
                out[-1][1].append(line)
        i += 1
    return out


def run_block(block: Block, cwd: Path) -> None:
    env = _env(cwd / "home")
    if block.lang == "console":
        commands = console_commands(block.body)
        assert commands, f"{block.where}: a console block without '$ ' commands"
        for cmd, expected, code in commands:
            res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, env=env,
                                 capture_output=True, text=True, timeout=600)
            got = _norm(res.stdout + res.stderr)
            want = block.exit if code is None else code
            assert res.returncode == want, (
                f"{block.where}: `{cmd}` exited {res.returncode}, the docs say {want}:\n"
                f"{res.stdout}{res.stderr}")
            for line in expected:
                assert _norm(line) in got, (
                    f"{block.where}: `{cmd}` did not print {line.strip()!r}; it printed:\n"
                    f"{res.stdout}{res.stderr}")
        return
    assert block.expect or block.files, (
        f"{block.where}: a shell example must say what it checks: put "
        '<!-- doc-test: expect="..." --> (or files="...", exit=N) on the line above it, or '
        "<!-- doc-test: skip CATEGORY: reason --> (see tests/test_readme.py)")
    argv = ([sys.executable, "-c", block.body] if block.lang == "python"
            else ["bash", "-e", "-o", "pipefail", "-c", block.body])
    res = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    output = res.stdout + res.stderr
    assert res.returncode == block.exit, (
        f"{block.where}: exited {res.returncode}, the docs say {block.exit}:\n{output}")
    for fragment in block.expect:
        assert fragment in output, f"{block.where}: no {fragment!r} in the output:\n{output}"
    for name in block.files:
        assert (cwd / name).exists(), f"{block.where}: {name} was not written:\n{output}"


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


RUNNABLE_DOCS = [doc for doc in DOCS if any(b.skip is None for b in shell_blocks(doc))]


@pytest.mark.parametrize("doc", RUNNABLE_DOCS)
def test_doc_shell_examples_run(doc: str, tmp_path: Path) -> None:
    """Each document's runnable shell blocks, in order, in one folder holding a copy of
    ``sample_data/`` and links to ``examples/``, ``completions/``, ``scripts/`` and
    ``tests/data/``."""
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "completions").symlink_to(ROOT / "completions")
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    (tmp_path / "home").mkdir()
    not_run = []
    for block in shell_blocks(doc):
        if block.skip is not None:
            continue
        missing = [m for m in block.requires if _missing(m)]
        if missing:
            not_run.append(f"{block.where} needs {', '.join(missing)}")
            continue
        run_block(block, tmp_path)
    # the examples never write into the data they read
    for p in (ROOT / "sample_data").iterdir():
        assert (tmp_path / "sample_data" / p.name).read_bytes() == p.read_bytes(), p.name
    if not_run:
        pytest.skip("; ".join(not_run) + " (pip install 'lsfix[extract]')")


def test_every_doc_is_scanned() -> None:
    """README.md and every docs/*.md page are read; a page without shell blocks is fine."""
    assert DOCS[0] == "README.md" and len(DOCS) == 1 + len(list((ROOT / "docs").glob("*.md")))
    assert "README.md" in RUNNABLE_DOCS


def test_opt_outs_are_few_and_justified() -> None:
    blocks = all_blocks()
    skipped = [b for b in blocks if b.skip is not None]
    per: dict[str, list[str]] = {}
    for b in skipped:
        category, sep, reason = (b.skip or "").partition(":")
        assert sep and category in SKIP_CATEGORIES, (
            f"{b.where}: opt-out {b.skip!r}: start with one of {sorted(SKIP_CATEGORIES)} "
            "and a colon")
        assert len(reason.split()) >= 4, f"{b.where}: say why in words, not {reason!r}"
        per.setdefault(category, []).append(b.where)
    for category, wheres in per.items():
        assert len(wheres) <= SKIP_CATEGORIES[category], (category, wheres)
    # an example printed in two documents (README.md and docs/extract.md) counts once
    distinct = {b.body for b in blocks}
    distinct_skipped = {b.body for b in skipped}
    assert len(distinct_skipped) * 2 <= len(distinct), (
        f"{len(distinct_skipped)} of {len(distinct)} distinct shell examples opt out: at "
        "least half must run")


# ------------------------------------------------------------------ the runner checks itself


def test_runner_parses_markers_and_console_blocks() -> None:
    text = ("x\n<!-- doc-test: exit=4 expect=\"a b\" expect=c files=\"o.md p.png\" -->\n"
            "```sh\nlsfix x\n```\n\n```python\nprint(1)\n```\n"
            "<!-- doc-test: skip gpu: needs eight CUDA devices at once -->\n"
            "```bash\ntorchrun\n```\n"
            "```console\n$ echo 1 \\\n  2\n1 2\n...\n$ false\n[exit 1]\n```\n")
    a, py, b, c = shell_blocks("t.md", text)
    assert (a.line, a.lang, a.exit, a.expect, a.files) == (3, "sh", 4, ["a b", "c"],
                                                           ["o.md", "p.png"])
    assert (py.lang, py.body, py.expect) == ("python", "print(1)\n", [])
    assert b.skip == "gpu: needs eight CUDA devices at once"
    assert console_commands(c.body) == [("echo 1  2", ["1 2"], None), ("false", [], 1)]


def test_runner_fails_on_drift(tmp_path: Path) -> None:
    """A wrong exit code, a missing fragment, a missing file or an unchecked block fail."""
    (tmp_path / "home").mkdir()
    cases = [
        Block("t.md", 1, "sh", "exit 3\n", exit=4, expect=["x"]),
        Block("t.md", 1, "sh", "echo hello\n", expect=["goodbye"]),
        Block("t.md", 1, "sh", "true\n", files=["nothing.txt"]),
        Block("t.md", 1, "sh", "echo unchecked\n"),
        Block("t.md", 1, "console", "$ echo 1\n2\n"),
        Block("t.md", 1, "console", "$ exit 3\n[exit 2]\n"),
    ]
    for block in cases:
        with pytest.raises(AssertionError):
            run_block(block, tmp_path)
    run_block(Block("t.md", 1, "sh", "echo ok > f.txt; exit 4\n", exit=4, expect=[],
                    files=["f.txt"]), tmp_path)
    run_block(Block("t.md", 1, "console", "$ lsfix --help\n...\nUsage: lsfix\n"), tmp_path)
    run_block(Block("t.md", 1, "console", "$ exit 3\n[exit 3]\n"), tmp_path)


# ------------------------------------------------------------------ README set-up and exit codes


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = [b.body.strip() for b in shell_blocks("README.md", setup)]
    assert len(blocks) >= 2, "the README's set-up starts with two commands"
    install_and_run, test_cmd = blocks[:2]
    assert install_and_run.startswith("pip install . && lsfix ")
    assert "sample_data/" in install_and_run
    assert "pytest" in test_cmd and "\n" not in test_cmd
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci.splitlines(), ".ci/run must run the README's test command verbatim"


def test_readme_main_job_runs_as_printed(tmp_path: Path) -> None:
    """The set-up's first command after ``pip install . &&``, exactly as the README prints it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    first = shell_blocks("README.md", setup)[0].body.strip()
    cmd = first.split("&&", 1)[1].strip()
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    res = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", cmd], cwd=tmp_path,
                         env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "lsfix-report"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "fmnist_ls02_test" in report and "pnorm" in res.stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) >= 3, pngs  # RC plot + the two mechanism plots
    assert any("mechanism" in p for p in pngs) and any("gradient" in p for p in pngs)


def test_readme_exit_code_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, flags=re.M))
    assert {int(k) for k in rows} == {int(c) for c in ExitCode}

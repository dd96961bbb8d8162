"""Style and types are kept by machines: ruff (lint + format) and mypy run with the tests."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")])
def test_ruff(args):
    ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).with_name("ruff"))
    result = _run(ruff, *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy():
    result = _run(sys.executable, "-m", "mypy", "jinit")
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_commands_are_what_ci_runs():
    """The README has exactly two commands, the main job and the tests, each self-contained from
    a fresh clone (it creates and fills .venv); .ci/run executes the line marked `# tests`."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.rsplit("#", 1)[1].strip() for line in block] == ["main job", "tests"], block
    setup = 'python3 -m venv .venv && .venv/bin/pip install -q -e ".[dev]" && '
    assert all(line.startswith(setup) for line in block), block
    assert "-m bench " in block[0] and "-m pytest" in block[1], block
    ci = (ROOT / ".ci" / "run").read_text()
    assert "run_marked tests" in ci and "rm -rf .venv" in ci

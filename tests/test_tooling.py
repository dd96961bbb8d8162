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
    """.ci/run executes the README's set-up and test lines; both must exist and be marked."""
    readme = (ROOT / "README.md").read_text()
    marked = [
        line for line in readme.splitlines() if line.rstrip().endswith(("# setup", "# tests"))
    ]
    assert sum(line.rstrip().endswith("# setup") for line in marked) == 2, marked
    assert sum(line.rstrip().endswith("# tests") for line in marked) == 1, marked
    assert "# setup" in (ROOT / ".ci" / "run").read_text()

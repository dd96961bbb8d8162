"""Style and types are kept by machines: ruff (lint + format) and mypy run with the tests."""

from __future__ import annotations

import json
import pathlib
import re
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


def test_wheel_contents(tmp_path):
    """The wheel holds the package with its type marker and licence, the version written once
    (``jinit.__version__``), the runtime dependencies only jax, jaxlib and numpy, and nothing of
    the tests, benchmark or examples. Built from a copy of the tracked files, offline."""
    import email
    import zipfile

    import jinit

    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False
    ).stdout.split(b"\0")
    if not any(files):
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    for name in filter(None, files):
        path = ROOT / name.decode()
        if path.is_file():
            (src / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name.decode())
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    built = subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("jinit-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(info))
    # portable_table.npy: the portable sampler's coefficients (data, not code)
    assert {
        "jinit/__init__.py",
        "jinit/py.typed",
        "jinit/flax.py",
        "jinit/_tree/__init__.py",
        "jinit/_tree/README.md",
        "jinit/_rng/__init__.py",
        "jinit/_rng/README.md",
        "jinit/_rng/portable_table.npy",
    } <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    assert not [n for n in names if n.split("/")[0] in ("tests", "bench", "examples")]
    assert meta["Version"] == jinit.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    runtime = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0].strip() for r in runtime) == [
        "jax",
        "jaxlib",
        "numpy",
    ]
    assert not [r for r in meta.get_all("Requires-Dist") if "==" in r.split(";")[0]]  # no pins


def golden_fingerprint() -> str:
    """A digest of every pinned value (path-key data and tree checksums)."""
    import hashlib
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"_golden_{name}", ROOT / "tests" / name)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    keys = (ROOT / "tests" / "test_keys.py").read_text()
    key_data = re.search(r"def test_golden_key_data\(\):.*?== (\[[\d, ]+\])", keys, re.S)
    assert key_data, "test_golden_key_data no longer pins a list"
    recorded = json.loads((ROOT / "bench" / "results" / "digest-cpu.json").read_text())
    portable = sorted((k, v) for k, v in recorded["digests"].items() if k.startswith("portable"))
    pinned = {
        "key": key_data.group(1),
        "tree": sorted(load("test_tree.py").GOLDEN.items()),
        "portable": portable,  # bench.digest's portable rows, checked by tests/test_bench.py
    }
    return hashlib.sha256(repr(pinned).encode()).hexdigest()[:16]


def test_changelog_records_the_golden_values():
    """The newest `golden:` line of CHANGELOG.md is the fingerprint of the pinned values, so
    changing users' initial weights needs a CHANGELOG entry (see its values policy)."""
    text = (ROOT / "CHANGELOG.md").read_text()
    newest = re.search(r"^golden: ([0-9a-f]{16})$", text, re.M)
    assert newest, "CHANGELOG.md has no `golden:` line"
    assert newest.group(1) == golden_fingerprint(), (
        "the pinned values changed: add a 'Values changed' entry to CHANGELOG.md and set its "
        f"`golden:` line to {golden_fingerprint()}"
    )


def test_public_api_is_listed_and_reports_jinit():
    """`__all__` names exactly the public objects, and each reports `jinit` as its module (so
    reprs, pickles and the docs show the name users import)."""
    import jinit

    # Present once imported; the family namespaces (torch, keras, haiku, mup) always are.
    submodules = {"flax", "mup", "data_init", "equinox", "torch", "keras", "haiku"}
    public = {n for n in dir(jinit) if not n.startswith("_")} - submodules
    assert set(jinit.__all__) == public and len(jinit.__all__) == len(public)
    private = [n for n in jinit.__all__ if getattr(jinit, n).__module__ != "jinit"]
    assert not private, private
    assert repr(jinit.Description).startswith("<class 'jinit.Description'")

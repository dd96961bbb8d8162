"""The API reference builds with warnings as errors, and covers the whole public API."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import jax
import pytest
from registry import catalog_modules, lookup, public_callables

import jinit

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The catalog's names: every public callable written in a module of the catalog (muP's optimizers
# are on the modules page).
PRIVATE = catalog_modules()
PUBLIC = [
    n for n in public_callables() if any(v is lookup(n) for m in PRIVATE for v in vars(m).values())
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    pytest.importorskip("sphinx")
    out = tmp_path_factory.mktemp("docs")
    build = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    result = subprocess.run(
        [*build, "-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "html"


def test_catalog_has_every_public_callable_with_a_source_link(site):
    html = (site / "catalog.html").read_text()
    for name in PUBLIC:
        entry = re.search(rf'id="jinit\.{re.escape(name)}".*?</dt>\s*<dd>(.*?)</dd>', html, re.S)
        assert entry, f"jinit.{name} is not in the catalog"
        space, _, leaf = name.rpartition(".")
        real = lookup(name).__name__
        target = f"{space}.{real}" if space else real
        if real != leaf and lookup(target) is lookup(name):
            assert f"jinit.{target}" in entry.group(1), f"alias {name} does not point to {target}"
        else:
            assert "viewcode-link" in entry.group(0), f"jinit.{name} has no [source] link"
    assert (site / "_modules" / "jinit" / "_catalog" / "variance.html").exists()


def test_pages_are_built(site):
    pages = ("index", "catalog", "modules", "porting", "reproducibility", "benchmarks", "changelog")
    for page in pages:
        assert (site / f"{page}.html").stat().st_size > 2000, page
    benchmarks = (site / "benchmarks.html").read_text()
    assert "Time to parameters against its targets" in benchmarks  # bench/RESULTS.md included


def test_porting_table_covers_jax_nn_initializers():
    text = (ROOT / "docs" / "porting.md").read_text()
    names = [n for n in dir(jax.nn.initializers) if not n.startswith("_")]
    missing = [n for n in names if f"`jinit.{n}" not in text and f"jinit.{n}`" not in text]
    assert not missing, f"porting.md lacks rows for jax.nn.initializers.{missing}"
    assert all(hasattr(jinit, n) for n in names)

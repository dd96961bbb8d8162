"""The family list is one table, `jinit/_catalog/__init__.py`: `jinit.__all__` and the docs'
catalog page are built from it, the README's catalog table is checked against it, and
CONTRIBUTING.md's steps for a new family, followed on a copy of the package, put the family in
all three."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from registry import catalog_modules, lookup, public_callables

import jinit
from jinit import _catalog

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_rows(text: str) -> list[tuple[str, str]]:
    """(first cell, the rest) of each body row of README.md's catalog table."""
    section = text.split("\n## The catalog\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        first, _, rest = line.strip().strip("|").partition("|")
        if first.strip() not in ("family", "---"):
            rows.append((first.strip(), rest))
    return rows


def with_row(text: str, row: str) -> str:
    """README.md's text with `row` added at the end of its catalog table."""
    start = text.index("\n## The catalog\n")
    lines = text[start:].split("\n")
    last = max(i for i, line in enumerate(lines[: lines.index("", 3) + 1]) if line.startswith("|"))
    return text[:start] + "\n".join([*lines[: last + 1], row, *lines[last + 1 :]])


def mentioned(name: str, cell: str) -> bool:
    """Whether a table cell names `jinit.<name>`: as `jinit.<name>`, or by its own name (its leaf,
    for a namespaced one) or a glob such as `glorot_*`, inside backticks."""
    tokens = re.findall(r"[A-Za-z_][\w.*]*", " ".join(re.findall(r"`([^`]*)`", cell)))
    leaf = name.rpartition(".")[2]
    return any(t == f"jinit.{name}" or fnmatch.fnmatchcase(leaf, t) for t in tokens)


def readme_missing(text: str, families) -> list[str]:
    """What README.md's catalog table lacks: one row per `readme` label of `families`, naming
    each of their names. Empty when the table is complete."""
    rows = readme_rows(text)
    missing = []
    for family in families:
        if family.readme is None:
            continue
        cells = [rest for first, rest in rows if first.startswith(family.readme)]
        if len(cells) != 1:
            missing.append(f"one row beginning {family.readme!r} (found {len(cells)})")
            continue
        missing += [
            f"jinit.{n} in the row {family.readme!r}"
            for n in family.names
            if not mentioned(n, cells[0])
        ]
    return missing


def test_all_is_the_catalogs_top_level_names_in_its_order():
    assert jinit.__all__ == _catalog.top_level_names()
    listed = [n for family in _catalog.FAMILIES for n in family.names]
    assert len(listed) == len(set(listed)), "a name in two families"


def test_every_public_callable_is_in_exactly_one_family():
    """As the docs' catalog page needs: every public callable written in a module of the catalog
    (muP's optimizers, in `jinit/mup/_optimizers.py`, are on the modules page)."""
    private = catalog_modules()
    public = {
        n
        for n in public_callables()
        if any(v is lookup(n) for m in private for v in vars(m).values())
    }
    listed = {n for family in _catalog.FAMILIES for n in family.names}
    assert not public - listed, f"public but in no family: {sorted(public - listed)}"
    assert not listed - public, f"listed but not public: {sorted(listed - public)}"


def test_each_family_is_written_in_its_module(monkeypatch):
    """A family's `module` is where its names are written (the docs' source links and section
    summary come from it)."""
    pytest.importorskip("sphinx")
    monkeypatch.chdir(ROOT / "docs")
    spec = importlib.util.spec_from_file_location("jinit_docs_conf", ROOT / "docs" / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    wrong = [
        f"jinit.{n} is written in jinit.{conf.home(n)}, not jinit.{family.module}"
        for family in _catalog.FAMILIES
        for n in family.names
        if conf.home(n) != family.module
    ]
    assert not wrong, wrong
    assert ".. autofunction:: jinit.torch.kaiming_uniform" in conf.catalog_rst()


def test_the_readme_table_names_every_family():
    text = (ROOT / "README.md").read_text()
    missing = readme_missing(text, _catalog.FAMILIES)
    assert not missing, f"README.md's catalog table lacks: {missing} (jinit/_catalog/__init__.py)"


def test_the_readme_check_names_what_is_missing():
    fam = _catalog.Family("_halton", "Halton", ("halton", "halton_scrambled"), "quasi-random")
    text = (ROOT / "README.md").read_text()
    assert readme_missing(text, [fam]) == ["one row beginning 'quasi-random' (found 0)"]
    added = with_row(text, "| quasi-random | `halton` |")
    assert readme_missing(added, [fam]) == ["jinit.halton_scrambled in the row 'quasi-random'"]


# Run in the copy: the lists as that copy's jinit and docs make them.
PROBE = """
import json, sys
sys.path.insert(0, ".")
import conf, jinit
from jinit import _catalog
assert jinit.__file__.startswith(sys.argv[1]), jinit.__file__
out = {
    "all": jinit.__all__,
    "docs": conf.catalog_rst(),
    "families": [list(f) for f in _catalog.FAMILIES],
}
conf.FAMILIES = tuple(f for f in conf.FAMILIES if f.module != "_catalog.halton")
top = _catalog.top_level_names(conf.FAMILIES)
out["all_without_the_entry_lacks"] = [
    n for n in dir(jinit) if not n.startswith("_") and callable(getattr(jinit, n)) and n not in top
]
try:
    conf.catalog_rst()
except ValueError as e:
    out["docs_without_the_entry"] = str(e)
print(json.dumps(out))
"""

NEW_MODULE = '''"""Halton sequences: a family that tests/test_catalog.py adds to a copy."""


def halton(base=2):
    """The Halton initializer (a stand-in: the test checks the lists, not the values)."""
    return base
'''


def test_a_family_added_by_contributings_steps_alone_reaches_all_docs_and_readme(tmp_path):
    """CONTRIBUTING.md's steps for a new family, on a copy of the package: the body in its module,
    the export line, the catalog entry, the README row (the registry row is checked by
    `tests/test_invariants.py`, not here). The family is then in `jinit.__all__`, on the docs'
    catalog page and in the README's table; without the catalog entry the docs build names it."""
    pytest.importorskip("sphinx")
    steps = (ROOT / "CONTRIBUTING.md").read_text()
    steps_named = ("jinit/_catalog/__init__.py", "catalog table", "tests/registry.py")
    for step in (*steps_named, "jinit/__init__.py"):
        assert step in steps, f"CONTRIBUTING.md's steps do not mention {step}"
    shutil.copytree(
        ROOT / "jinit", tmp_path / "jinit", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "conf.py", tmp_path / "docs" / "conf.py")
    # 1. The body, in the module of its family (a new family: a new module of the catalog).
    (tmp_path / "jinit" / "_catalog" / "halton.py").write_text(NEW_MODULE)
    # 2. The export line.
    init = tmp_path / "jinit" / "__init__.py"
    text = init.read_text()
    init.write_text(
        text.replace(
            "\n__version__",
            "\nfrom jinit._catalog.halton import halton as halton\n\n__version__",
            1,
        )
    )
    # 3. The catalog entry: a new Family at the end of FAMILIES.
    catalog = tmp_path / "jinit" / "_catalog" / "__init__.py"
    text = catalog.read_text()
    entry = '    Family("_catalog.halton", "Halton sequences", ("halton",), "quasi-random"),\n)\n'
    head, _, tail = text.partition("\nFAMILIES: tuple[Family, ...] = (\n")
    body, _, rest = tail.partition("\n)\n")
    catalog.write_text(f"{head}\nFAMILIES: tuple[Family, ...] = (\n{body}\n{entry}{rest}")
    # 4. The README row.
    without_row = (ROOT / "README.md").read_text()
    readme = with_row(without_row, "| quasi-random | `halton` |")

    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        cwd=tmp_path / "docs",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    families = [_catalog.Family(m, t, tuple(n), r) for m, t, n, r in out["families"]]

    assert out["all"][-1] == "halton", "not in jinit.__all__"
    assert "Halton sequences\n----------------\n\nHalton sequences: a family that" in out["docs"]
    assert ".. autofunction:: jinit.halton" in out["docs"], "not on the docs' catalog page"
    assert not readme_missing(readme, families), readme_missing(readme, families)
    # And each list names what it lacks when a step is left out.
    assert readme_missing(without_row, families) == ["one row beginning 'quasi-random' (found 0)"]
    assert "['halton']" in out["docs_without_the_entry"], out["docs_without_the_entry"]
    assert out["all_without_the_entry_lacks"] == ["halton"]  # tests/test_tooling.py's check

"""Sphinx configuration: the API reference is built from jinit's docstrings.

``python -m sphinx -W -b html docs docs/_build/html`` (``tests/test_docs.py`` builds it with
warnings as errors). The catalog page is built from the families of ``jinit/_catalog/__init__.py``,
and the build fails naming any public callable that no family lists.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

sys.path.insert(0, os.path.abspath(".."))
import jinit
from jinit._catalog import FAMILIES, NAMESPACES  # the families, in reading order: one table

project = "jinit"
author = "the jinit authors"
copyright = "2026, the jinit authors"
release = version = jinit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"jinit {version}"
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]  # RESULTS.md links to files outside the docs
nitpicky = False


def lookup(name: str):
    """``jinit.<name>``, for a top-level (``lecun_normal``) or namespaced
    (``torch.kaiming_uniform``) name."""
    obj = jinit
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def private(modname: str) -> bool:
    """Whether ``modname`` is one of jinit's private modules (``jinit._catalog.variance``,
    ``jinit.torch._initializers``): a component after ``jinit`` starts with ``_``."""
    head, *parts = modname.split(".")
    return head == "jinit" and any(p.startswith("_") for p in parts)


# The modules the catalog's families are written in; a namespace's other modules (muP's
# optimizers) are on the modules page.
FAMILY_MODULES = frozenset(f"jinit.{family.module}" for family in FAMILIES)


@functools.cache
def definition(name: str) -> tuple[str, str] | None:
    """``(private module, name written there)`` for ``jinit.<name>``: the module whose ``def``,
    ``class`` or alias line writes it (``("torch._initializers", "kaiming_uniform")``), or
    None."""
    obj = lookup(name)
    for modname, module in sorted(sys.modules.items()):
        if not private(modname):
            continue
        source = None
        for written, value in vars(module).items():
            if value is not obj:
                continue
            source = source or inspect.getsource(module)
            defines = (f"def {written}(", f"class {written}(", f"class {written}:")
            if any(d in source for d in (*defines, f"\n{written} = ")):  # (the last: an alias)
                return modname.removeprefix("jinit."), written
    return None


@functools.cache
def public_names() -> tuple[str, ...]:
    """Every public callable of jinit written in a private module: the top level's and the
    family namespaces' written in a family's module (``torch.kaiming_uniform``)."""
    top = [n for n in dir(jinit) if not n.startswith("_") and callable(getattr(jinit, n))]
    spaced = [f"{ns}.{n}" for ns in NAMESPACES for n in getattr(jinit, ns).__all__]
    found = {n: definition(n) for n in spaced}
    spaced = [n for n, d in found.items() if d is not None and f"jinit.{d[0]}" in FAMILY_MODULES]
    return tuple(sorted(top + spaced))


def home(name: str) -> str:
    """The private module that defines ``jinit.<name>`` (its ``def``, ``class`` or alias line)."""
    found = definition(name)
    if found is None:
        raise ValueError(f"jinit.{name}: no private module of jinit defines it")
    return found[0]


class JinitCatalog(SphinxDirective):
    """Every public callable of jinit, by family, with its docstring (formula, arguments,
    example, reference) and a link to its source."""

    def run(self) -> list[nodes.Node]:
        try:
            text = catalog_rst()
        except ValueError as e:
            raise self.error(str(e)) from e
        return self.parse_text_to_nodes(text, allow_section_headings=True)


def catalog_rst() -> str:
    """The catalog page: a section per family of ``jinit._catalog``, in its order, with the
    family's title, its module's summary line and an entry per name. Raises ``ValueError``
    naming a public callable that no family lists, or a listed name jinit does not export."""
    listed = [name for family in FAMILIES for name in family.names]
    if twice := sorted({n for n in listed if listed.count(n) > 1}):
        raise ValueError(f"jinit._catalog lists these names in more than one family: {twice}")
    if missing := sorted(set(public_names()) - set(listed)):
        raise ValueError(f"public callables in no family of jinit._catalog: {missing}")
    lines: list[str] = []
    for family in FAMILIES:
        if absent := [n for n in family.names if not exported(n)]:
            raise ValueError(
                f"jinit._catalog lists {absent} in {family.title!r}, but jinit does not "
                "export them (CONTRIBUTING.md: the export line)"
            )
        summary = (importlib.import_module(f"jinit.{family.module}").__doc__ or "").strip()
        title = family.title
        lines += [title, "-" * len(title), "", summary.splitlines()[0] if summary else "", ""]
        for name in family.names:
            obj = lookup(name)
            space, _, leaf = name.rpartition(".")
            real = getattr(obj, "__name__", leaf)
            parent = lookup(space) if space else jinit
            if real != leaf and getattr(parent, real, None) is obj:  # an alias
                target = f"{space}.{real}" if space else real
                lines += [
                    f".. py:function:: jinit.{name}",
                    "",
                    f"   Alias of :func:`jinit.{target}`.",
                    "",
                ]
                continue
            kind = "autoclass" if inspect.isclass(obj) else "autofunction"
            lines += [f".. {kind}:: jinit.{name}", ""]
    return "\n".join(lines)


def exported(name: str) -> bool:
    """Whether ``jinit.<name>`` is exported: in ``jinit.__all__``, or in its namespace's."""
    space, _, leaf = name.rpartition(".")
    if not space:
        return name in jinit.__all__ and hasattr(jinit, name)
    return space in NAMESPACES and leaf in getattr(jinit, space).__all__


def follow_imported(app, modname: str, attribute: str) -> str | None:
    """viewcode: public objects that report ``jinit`` or a family namespace as their module live
    in a private one."""
    space = (modname or "").removeprefix("jinit").removeprefix(".")
    if modname != "jinit" and space not in NAMESPACES:
        return None
    name = f"{space}.{attribute}" if space else attribute
    if name in public_names():
        return f"jinit.{home(name)}"
    return None


def setup(app):
    app.add_directive("jinit-catalog", JinitCatalog)
    app.connect("viewcode-follow-imported", follow_imported)

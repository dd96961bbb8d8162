"""Sphinx configuration: the API reference is built from jinit's docstrings.

``python -m sphinx -W -b html docs docs/_build/html`` (``tests/test_docs.py`` builds it with
warnings as errors). The catalog page is generated from the package itself, so a public
initializer cannot be missing from it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

sys.path.insert(0, os.path.abspath(".."))
import jinit

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

# The catalog's families, in reading order: (private module, title). Every public callable of
# jinit must belong to one of them (``JinitCatalog`` raises otherwise).
FAMILIES = (
    ("_basic", "Constants and plain distributions"),
    ("_variance", "Variance scaling: Glorot, He, LeCun"),
    ("_torch", "PyTorch's schemes and layer defaults"),
    ("_torch_rules", "PyTorch's defaults for a whole Flax model"),
    ("_keras", "Keras 3 semantics"),
    ("_haiku", "Haiku semantics"),
    ("_orthogonal", "Orthogonal"),
    ("_structured", "Structured: identity, Dirac, sparse"),
    ("_zero", "ZerO and Hadamard"),
    ("_combinators", "Combinators"),
    ("_research", "Depth-aware research schemes"),
    ("_gates", "Residual gates"),
    ("_deepnorm", "DeepNorm"),
    ("_mup", "Maximal update parametrisation (muP)"),
    ("_stacked", "Stacked (scanned) layers"),
    ("_tree", "Whole trees"),
    ("_portable_init", "The same values on every backend"),
    ("_rules", "Rules"),
    ("_explain", "Which rule gives which parameter"),
    ("_keys", "Path keys"),
    ("_describe", "Describing an initializer"),
    ("_signal", "Signal propagation"),
    ("_fans", "Fans"),
    ("_sampling", "The sampling protocol"),
    ("_typing", "Types"),
)


def public_names() -> list[str]:
    return sorted(n for n in dir(jinit) if not n.startswith("_") and callable(getattr(jinit, n)))


def home(name: str) -> str:
    """The private module that defines ``jinit.<name>`` (its ``def``, ``class`` or alias line)."""
    obj = getattr(jinit, name)
    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith("jinit._") or getattr(module, name, None) is not obj:
            continue
        source = inspect.getsource(module)
        defines = (f"def {name}(", f"class {name}(", f"class {name}:", f"\n{name} = ")
        if any(d in source for d in defines):  # (the last: an alias)
            return modname.removeprefix("jinit.")
    raise ValueError(f"jinit.{name}: no private module of jinit defines it")


class JinitCatalog(SphinxDirective):
    """Every public callable of jinit, by family, with its docstring (formula, arguments,
    example, reference) and a link to its source."""

    def run(self) -> list[nodes.Node]:
        by_family: dict[str, list[str]] = {}
        for name in public_names():
            by_family.setdefault(home(name), []).append(name)
        known = {m for m, _ in FAMILIES}
        if unknown := set(by_family) - known:
            raise self.error(f"modules without a catalog family in docs/conf.py: {unknown}")
        lines: list[str] = []
        for module, title in FAMILIES:
            names = by_family.get(module)
            if not names:
                continue
            summary = (importlib.import_module(f"jinit.{module}").__doc__ or "").strip()
            lines += [title, "-" * len(title), "", summary.splitlines()[0] if summary else "", ""]
            for name in names:
                obj = getattr(jinit, name)
                real = getattr(obj, "__name__", name)
                if real != name and getattr(jinit, real, None) is obj:  # an alias
                    lines += [
                        f".. py:function:: jinit.{name}",
                        "",
                        f"   Alias of :func:`jinit.{real}`.",
                        "",
                    ]
                    continue
                kind = "autoclass" if inspect.isclass(obj) else "autofunction"
                lines += [f".. {kind}:: jinit.{name}", ""]
        return self.parse_text_to_nodes("\n".join(lines), allow_section_headings=True)


def follow_imported(app, modname: str, attribute: str) -> str | None:
    """viewcode: public objects that report ``jinit`` as their module live in a private one."""
    if modname == "jinit" and callable(getattr(jinit, attribute, None)):
        return f"jinit.{home(attribute)}"
    return None


def setup(app):
    app.add_directive("jinit-catalog", JinitCatalog)
    app.connect("viewcode-follow-imported", follow_imported)

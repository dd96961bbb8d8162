"""The entry points' shared parameters come from one table (`jinit/_tree/options.py`): their
signatures, their docs and their checks."""

from __future__ import annotations

import inspect
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest
from flax import linen as nn

import jinit
import jinit.equinox
import jinit.flax
from jinit._tree import options

ENTRY_POINTS = {
    "init_tree": jinit.init_tree,
    "explain": jinit.explain,
    "init_linen": jinit.flax.init_linen,
    "init_nnx": jinit.flax.init_nnx,
    "explain_linen": jinit.flax.explain_linen,
    "explain_nnx": jinit.flax.explain_nnx,
    "init_eqx": jinit.equinox.init_eqx,
}
ROWS = {o.name for o in vars(options).values() if isinstance(o, options.Option)}
TREE = {"w": jax.ShapeDtypeStruct((2, 3), jnp.float32)}


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_entry_point_is_made_from_the_table():
    assert set(options.ENTRY_POINTS) == set(ENTRY_POINTS)
    for where, fn in ENTRY_POINTS.items():
        rows = {o.name: o for o in options.ENTRY_POINTS[where]}
        params = inspect.signature(fn).parameters
        # no entry point writes a parameter the table has, other than as the table says
        assert {n for n in params if n in ROWS} == set(rows), where
        for name, row in rows.items():
            p = params[name]
            assert (p.default, p.annotation) == (row.default, row.annotation), (where, name)
            if row.default is not options.REQUIRED:
                assert p.kind is p.KEYWORD_ONLY, (where, name)


def test_every_parameter_is_documented_once_with_the_tables_paragraph():
    for where, fn in ENTRY_POINTS.items():
        doc = inspect.getdoc(fn)
        assert doc is not None
        args = doc.split("Args:\n", 1)[1].split("\n\n", 1)[0]
        names = re.findall(r"^  (\*{0,2}\w+): ", args, re.M)
        params = inspect.signature(fn).parameters.values()
        shown = [
            {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name for p in params
        ]
        assert names == shown, where
        for row in options.ENTRY_POINTS[where]:
            assert _flat(f"{row.name}: {row.doc}") in _flat(args), (where, row.name)


def _call(where: str, key: object = 0, **kwargs):
    """Calls the entry point with placeholders for its positional parameters (but ``key``):
    the shared options are checked before any of them is looked at."""
    fn = ENTRY_POINTS[where]
    params = inspect.signature(fn).parameters.values()
    positional = [
        key if p.name == "key" else None for p in params if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    return fn(*positional, **kwargs)


BAD = [
    ("group", "yes", TypeError, "must be a bool or None; got 'yes'"),
    ("portable", 1, TypeError, "must be a bool; got 1"),
    ("mesh", 3, TypeError, "must be a jax.sharding.Mesh or None; got 3"),
    ("resize", "grow", ValueError, "must be one of None, 'scratch', 'mean'; got 'grow'"),
    ("shrink", 1, TypeError, "must be a bool; got 1"),
    ("unused", "drop", ValueError, "must be 'raise' or 'return'; got 'drop'"),
    ("reinit", 3, TypeError, "must be a regex"),
    ("reinit", "h", ValueError, "applies to the leaves of `keep=`; got none"),
    ("shrink", True, ValueError, "applies to the leaves of `keep=`; got none"),
    ("unused", "return", ValueError, "applies to the leaves of `keep=`; got none"),
]


@pytest.mark.parametrize(
    ("where", "name", "value", "error", "message"),
    [
        (where, *bad)
        for where, fn in ENTRY_POINTS.items()
        for bad in BAD
        if bad[0] in inspect.signature(fn).parameters
    ],
)
def test_a_bad_value_raises_at_once_naming_the_entry_point(where, name, value, error, message):
    with pytest.raises(error, match=re.escape(f"`{where}({name}=...)` {message}")):
        _call(where, **{name: value})


@pytest.mark.parametrize("where", ENTRY_POINTS)
def test_allow_unused_rules_is_checked_as_its_row_says(where):
    row = next(o for o in options.ENTRY_POINTS[where] if o.name == "allow_unused_rules")
    expected = "a bool or None" if row.default is None else "a bool"
    with pytest.raises(
        TypeError, match=re.escape(f"`{where}(allow_unused_rules=...)` must be {expected};")
    ):
        _call(where, allow_unused_rules="yes")


@pytest.mark.parametrize("where", [w for w in ENTRY_POINTS if w.startswith("init_")])
def test_a_bad_key_is_refused_before_the_target(where):
    with pytest.raises(TypeError, match=re.escape(f"`{where}(key=...)` must be a typed key")):
        _call(where, key="k")


def test_a_misspelt_keyword_names_the_entry_point():
    with pytest.raises(TypeError, match=r"`init_tree`: got an unexpected keyword argument 'gruop'"):
        jinit.init_tree(0, TREE, [("w", jinit.zeros)], gruop=True)
    with pytest.raises(TypeError, match=r"`explain`: missing a required argument: 'rules'"):
        jinit.explain(TREE)


def test_explain_refuses_surgery_options_without_keep():
    with pytest.raises(ValueError, match=r"`explain\(reinit=...\)` applies to the leaves of"):
        jinit.explain(TREE, [("w", jinit.zeros)], reinit="w")


def test_init_linen_passes_other_keywords_to_module_init():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, wide: bool = False):
            return nn.Dense(8 if wide else 4)(x)

    rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
    x = jnp.ones((1, 3))
    narrow = jinit.flax.init_linen(Net(), 0, rules, x, group=False)
    wide = jinit.flax.init_linen(Net(), 0, rules, x, wide=True, group=False)
    assert narrow["params"]["Dense_0"]["kernel"].shape == (3, 4)
    assert wide["params"]["Dense_0"]["kernel"].shape == (3, 8)
    rows = jinit.flax.explain_linen(Net(), rules, x, wide=True)
    assert rows[1].shape == (3, 8)


def test_a_change_to_a_row_shows_in_every_entry_point_that_takes_it():
    """Every row mutated in place, the entry points' modules made again: each shows the new
    default, annotation and paragraph (none writes a row of its own)."""
    script = textwrap.dedent(
        """
        import importlib, inspect
        import jinit, jinit.flax, jinit.equinox
        from jinit import _explain
        from jinit._tree import api, options
        rows = [o for o in vars(options).values() if isinstance(o, options.Option)]
        for o in rows:
            object.__setattr__(o, "annotation", "Changed" + o.name)
            object.__setattr__(o, "doc", "changed paragraph of " + o.name + ".")
            if o.default is not options.REQUIRED:
                object.__setattr__(o, "default", "changed " + o.name)
        for module in (api, _explain, jinit.flax, jinit.equinox):
            importlib.reload(module)
        fns = [api.init_tree, _explain.explain, jinit.flax.init_linen, jinit.flax.init_nnx,
               jinit.flax.explain_linen, jinit.flax.explain_nnx, jinit.equinox.init_eqx]
        seen = 0
        for fn in fns:
            doc = " ".join(inspect.getdoc(fn).split())
            for p in inspect.signature(fn).parameters.values():
                if any(p.name == o.name for o in rows):
                    assert p.annotation == "Changed" + p.name, (fn, p)
                    assert p.default in (inspect.Parameter.empty, "changed " + p.name), (fn, p)
                    assert p.name + ": changed paragraph of " + p.name + "." in doc, (fn, p)
                    seen += 1
        print(seen)
        """
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=root,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    expected = sum(len(options.ENTRY_POINTS[w]) for w in ENTRY_POINTS)
    assert int(out.stdout.split()[-1]) == expected

"""Rule diagnostics (jinit.explain), unused rules, re.search and full_match."""

import importlib.util
import pathlib
import sys

import jax
import jax.numpy as jnp
import pytest

import jinit

SDS = jax.ShapeDtypeStruct
TREE = {
    "conv": {"kernel": SDS((3, 3, 8, 16), jnp.float32), "bias": SDS((16,), jnp.float32)},
    "gconv": {"kernel": SDS((3, 3, 4, 16), jnp.bfloat16), "bias": SDS((16,), jnp.float32)},
    "head": {"kernel": SDS((16, 10), jnp.float32)},
}


def test_explain_reports_every_parameter_like_describe():
    rules = [(r"conv/kernel$", jinit.he_normal()), (r"bias$", jinit.zeros)]
    rows = {r.path: r for r in jinit.explain(TREE, rules, default=jinit.lecun_normal())}
    assert list(rows) == ["conv/bias", "conv/kernel", "gconv/bias", "gconv/kernel", "head/kernel"]
    g = rows["gconv/kernel"]
    assert (g.shape, g.dtype, g.rule) == ((3, 3, 4, 16), "bfloat16", r"conv/kernel$")
    d = jinit.describe(g.init, g.shape)
    assert (g.fan_in, g.fan_out, g.target_std) == (d.fan_in, d.fan_out, d.target_std)
    assert g.target_std == pytest.approx((2 / 36) ** 0.5)
    head = rows["head/kernel"]
    assert head.rule == "default" and head.note == "default= on a weight-like parameter"
    assert rows["conv/bias"].note is None and rows["conv/bias"].target_std == 0.0
    table = str(jinit.explain(TREE, rules, default=jinit.lecun_normal()))
    assert "gconv/kernel" in table.splitlines()[4] and "conv/kernel$" in table.splitlines()[4]


def test_explain_matches_init_tree(key):
    # explain's verdict is what init_tree does: each parameter equals its rule's initializer.
    rules = [(r"gconv", jinit.ones), (r"kernel$", jinit.he_normal()), (r"bias$", jinit.zeros)]
    params = jinit.init_tree(key, TREE, rules)
    for r in jinit.explain(TREE, rules):
        got = params
        for part in r.path.split("/"):
            got = got[part]
        want = r.init(jinit.key_for_path(key, r.path), r.shape, r.dtype)
        assert bool((got == want).all()), r.path


def test_misspelt_rule_is_an_error():
    rules = [(r"kernal$", jinit.he_normal()), (r"bias$", jinit.zeros)]
    msg = r"`explain`: the rule 'kernal\$' applies to no parameter: it matches none of the 5"
    with pytest.raises(ValueError, match=msg):
        jinit.explain(TREE, rules, default=jinit.zeros)
    # With default=, init_tree would leave every kernel at zero without a word: it raises too.
    with pytest.raises(ValueError, match=r"`init_tree`: the rule 'kernal\$' applies to no"):
        jinit.init_tree(0, TREE, rules, default=jinit.zeros)
    rows = jinit.explain(TREE, rules, default=jinit.zeros, allow_unused_rules=True)
    assert [r.note is not None for r in rows] == [False, True, False, True, True]


def test_shadowed_rule_is_named():
    rules = [(r"kernel$", jinit.he_normal()), (r"head/kernel$", jinit.zeros), (".", jinit.zeros)]
    with pytest.raises(ValueError, match=r"every parameter it matches \('head/kernel', \.\.\.\)"):
        jinit.explain(TREE, rules)


def test_search_semantics_and_full_match():
    # re.search: "conv/bias$" also matches "gconv/bias" (first match wins) ...
    rows = jinit.explain(TREE, [(r"conv/bias$", jinit.zeros)], default=jinit.ones)
    assert [r.rule for r in rows if r.path.endswith("bias")] == ["conv/bias$"] * 2
    # ... full_match matches the whole path only, and is labelled as written.
    rows = jinit.explain(TREE, [(jinit.full_match("conv/bias"), jinit.zeros)], default=jinit.ones)
    assert {r.path: r.rule for r in rows}["conv/bias"] == "full_match('conv/bias')"
    assert {r.path: r.rule for r in rows}["gconv/bias"] == "default"
    with pytest.raises(ValueError, match=r"`full_match\(pattern=...\)`: 'a\(' is not a valid"):
        jinit.full_match("a(")


def test_explain_argument_checks():
    with pytest.raises(TypeError, match=r"`explain\(allow_unused_rules=...\)` must be a bool"):
        jinit.explain(TREE, [], default=jinit.zeros, allow_unused_rules="yes")
    with pytest.raises(ValueError, match=r"`explain`: no rule matches the parameter 'conv/bias'"):
        jinit.explain(TREE, [(r"kernel$", jinit.zeros)])


def test_describe_model_example_uses_explain(capsys, monkeypatch):
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "describe_model.py"
    spec = importlib.util.spec_from_file_location("describe_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "describe_model", module)  # flax's dataclasses look it up
    spec.loader.exec_module(module)
    module.main()
    lines = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[1:]}
    assert lines["params/block_3/proj/kernel"][-5] == "proj/kernel$"
    assert lines["params/head/kernel"][-5] == "head/kernel$"

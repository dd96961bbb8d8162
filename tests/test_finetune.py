"""Fine-tuning surgery: `keep=` returns a trained tree's leaves as they are and draws only the
new ones, with exactly their from-scratch values; `reinit=` redraws trained leaves; nothing is
dropped or reshaped silently."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
from jinit._tree import api as _api

F32 = jnp.float32
RULES = [(r"embed", jinit.normal(0.02)), (r"bias", jinit.zeros), (r".", jinit.lecun_normal())]


def target(layers: int, head: bool = True) -> dict:
    tree = {
        "embed": jax.ShapeDtypeStruct((100, 16), F32),
        "h": [{"k": jax.ShapeDtypeStruct((16, 16), F32)} for _ in range(layers)],
    }
    if head:
        tree["head"] = {"kernel": jax.ShapeDtypeStruct((16, 5), F32)}
    return tree


def trained_base(key):
    """A 'trained' two-layer model without a head: from-scratch values moved away from them."""
    base = jinit.init_tree(key, target(2, head=False), RULES)
    return jax.tree.map(lambda x: x * 3.0 + 1.0, base)


def leaves(tree):
    return {
        jinit.path_str(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def test_kept_leaves_are_returned_and_new_ones_get_their_from_scratch_values(key):
    trained = trained_base(key)
    out = leaves(jinit.init_tree(key, target(3), RULES, keep=trained))
    scratch = leaves(jinit.init_tree(key, target(3), RULES))
    for path, value in leaves(trained).items():
        np.testing.assert_array_equal(out[path], value)
    for path in ("h/2/k", "head/kernel"):
        np.testing.assert_array_equal(out[path], scratch[path])


def test_only_the_new_leaves_are_built(monkeypatch, key):
    trained = trained_base(key)
    built = []
    run = _api.run

    def spy(key, leaves, *args, **kwargs):
        built.append([leaf.path for leaf in leaves])
        return run(key, leaves, *args, **kwargs)

    monkeypatch.setattr(_api, "run", spy)
    jinit.init_tree(key, target(3), RULES, keep=trained)
    assert built == [["h/2/k", "head/kernel"]]
    built.clear()
    jinit.init_tree(key, target(2, head=False), RULES, keep=trained)
    assert built == []  # everything kept: nothing compiled


def test_reinit_draws_trained_leaves_afresh(key):
    trained = trained_base(key)
    out = leaves(jinit.init_tree(key, target(2, head=False), RULES, keep=trained, reinit=r"h/1/"))
    scratch = leaves(jinit.init_tree(key, target(2, head=False), RULES))
    np.testing.assert_array_equal(out["h/1/k"], scratch["h/1/k"])
    np.testing.assert_array_equal(out["h/0/k"], leaves(trained)["h/0/k"])


def test_kept_leaves_take_the_targets_sharding(key):
    mesh = jax.make_mesh((2, 4), ("a", "b"))
    shardings = {"embed": NamedSharding(mesh, P(None, "b")), "h": None, "head": None}
    out = jinit.init_tree(
        key, target(2), RULES, keep=trained_base(key), shardings=shardings, mesh=mesh
    )
    assert out["embed"].sharding.is_equivalent_to(shardings["embed"], 2)
    np.testing.assert_array_equal(out["embed"], leaves(trained_base(key))["embed"])


def test_nothing_is_dropped_or_reshaped_silently(key):
    trained = trained_base(key)
    with pytest.raises(
        ValueError,
        match=r"`init_tree\(keep=...\)`: the trained parameter "
        r"'embed' is float32\[100, 16\], but the target's is float32\[120, 16\]",
    ):
        jinit.init_tree(
            key, {**target(2), "embed": jax.ShapeDtypeStruct((120, 16), F32)}, RULES, keep=trained
        )
    with pytest.raises(ValueError, match=r"is float32\[16, 16\], but the target's is bfloat16"):
        jinit.init_tree(
            key,
            {**target(2), "h": [{"k": jax.ShapeDtypeStruct((16, 16), jnp.bfloat16)}] * 2},
            RULES,
            keep=trained,
        )
    with pytest.raises(
        ValueError,
        match=r"1 trained parameters have no place in the target "
        r"\(they would be dropped\): 'h/1/k'",
    ):
        jinit.init_tree(key, target(1), RULES, keep=trained)
    # a reshaped leaf may be re-initialised instead
    grown = {**target(2), "embed": jax.ShapeDtypeStruct((120, 16), F32)}
    out = jinit.init_tree(key, grown, RULES, keep=trained, reinit="embed")
    assert out["embed"].shape == (120, 16)


def test_bad_keep_and_reinit_are_refused(key):
    with pytest.raises(
        ValueError,
        match=r"`init_tree\(reinit=...\)` applies to the leaves of "
        r"`keep=`; got none",
    ):
        jinit.init_tree(key, target(1), RULES, reinit="h")
    with pytest.raises(TypeError, match=r"`init_tree\(reinit=...\)` must be a regex"):
        jinit.init_tree(key, target(1), RULES, keep=trained_base(key), reinit=3)
    with pytest.raises(ValueError, match=r"`init_tree\(reinit=...\)`: '\(' is not a valid regex"):
        jinit.init_tree(key, target(2), RULES, keep=trained_base(key), reinit="(")
    with pytest.raises(
        TypeError,
        match=r"`init_tree\(keep=...\)`: the trained parameter 'embed' "
        r"must be an array",
    ):
        jinit.init_tree(key, target(2), RULES, keep=target(2, head=False))


def test_linen_model_with_a_new_head(key):
    import flax.linen as nn

    import jinit.flax

    class Body(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(32, name="body")(x)

    class WithHead(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3, name="head")(nn.Dense(32, name="body")(x))

    x = jnp.ones((2, 8))
    rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
    trained = jax.tree.map(lambda v: v + 0.5, jinit.flax.init_linen(Body(), 1, rules, x))
    out = jinit.flax.init_linen(WithHead(), 0, rules, x, keep=trained)
    scratch = jinit.flax.init_linen(WithHead(), 0, rules, x)
    np.testing.assert_array_equal(
        out["params"]["body"]["kernel"], trained["params"]["body"]["kernel"]
    )
    np.testing.assert_array_equal(
        out["params"]["head"]["kernel"], scratch["params"]["head"]["kernel"]
    )
    assert WithHead().apply(out, x).shape == (2, 3)


def test_resize_keeps_the_trained_slice_and_draws_the_rest_from_scratch(key):
    trained = trained_base(key)
    grown = {**target(2, head=False), "embed": jax.ShapeDtypeStruct((130, 20), F32)}
    out = leaves(jinit.init_tree(key, grown, RULES, keep=trained, resize="scratch"))
    scratch = leaves(jinit.init_tree(key, grown, RULES))
    np.testing.assert_array_equal(out["embed"][:100, :16], leaves(trained)["embed"])
    np.testing.assert_array_equal(out["embed"][100:], scratch["embed"][100:])
    np.testing.assert_array_equal(out["embed"][:, 16:], scratch["embed"][:, 16:])
    np.testing.assert_array_equal(out["h/0/k"], leaves(trained)["h/0/k"])


def test_mean_resizing_draws_new_rows_at_the_trained_rows_mean(key):
    trained = trained_base(key)
    grown = {**target(2, head=False), "embed": jax.ShapeDtypeStruct((110, 16), F32)}
    out = leaves(jinit.init_tree(key, grown, RULES, keep=trained, resize="mean"))
    old = leaves(trained)["embed"]
    np.testing.assert_array_equal(out["embed"][:100], old)
    # Hugging Face's law: N(mean, 1e-9 cov): the new rows sit at the mean, within ~1e-4 sd
    spread = np.sqrt(1e-9) * old.std(axis=0).max()
    assert np.abs(out["embed"][100:] - old.mean(axis=0)).max() <= 6 * spread + 1e-6
    assert not np.array_equal(out["embed"][100], out["embed"][101])  # drawn, not repeated
    with pytest.raises(
        ValueError,
        match=r"`init_tree\(resize='mean'\)`: the trained parameter "
        r"'embed' is float32\[100, 16\], but the target's is float32\[110, 20\]",
    ):
        wide = {**grown, "embed": jax.ShapeDtypeStruct((110, 20), F32)}
        jinit.init_tree(key, wide, RULES, keep=trained, resize="mean")


def test_shrinking_is_refused_unless_asked_for(key):
    trained = trained_base(key)
    small = {**target(2, head=False), "embed": jax.ShapeDtypeStruct((90, 16), F32)}
    with pytest.raises(ValueError, match=r"shrinking it drops values: pass `shrink=True`"):
        jinit.init_tree(key, small, RULES, keep=trained, resize="scratch")
    out = jinit.init_tree(key, small, RULES, keep=trained, resize="scratch", shrink=True)
    np.testing.assert_array_equal(out["embed"], leaves(trained)["embed"][:90])
    with pytest.raises(
        ValueError,
        match=r"`init_tree\(resize=...\)` must be one of None, "
        r"'scratch', 'mean'; got 'grow'",
    ):
        jinit.init_tree(key, small, RULES, keep=trained, resize="grow")


def test_explain_shows_each_leafs_fate(key):
    trained = trained_base(key)
    grown = {**target(3), "embed": jax.ShapeDtypeStruct((120, 16), F32)}
    rows = {
        r.path: r.note
        for r in jinit.explain(
            grown, RULES, keep=trained, reinit="h/1/", resize="scratch", allow_unused_rules=True
        )
    }
    assert rows == {
        "embed": "resized",
        "h/0/k": "kept",
        "h/1/k": "re-initialised",
        "h/2/k": "new",
        "head/kernel": "new",
    }


def test_keep_under_a_2x2x2_mesh_is_the_same(key):
    mesh = jax.make_mesh((2, 2, 2), ("a", "b", "c"))
    shardings = {"embed": NamedSharding(mesh, P("a", ("b", "c"))), "h": None, "head": None}
    trained = trained_base(key)
    plain = leaves(jinit.init_tree(key, target(3), RULES, keep=trained))
    out = jinit.init_tree(key, target(3), RULES, keep=trained, shardings=shardings, mesh=mesh)
    assert out["embed"].sharding.is_equivalent_to(shardings["embed"], 2)
    for path, value in leaves(out).items():
        np.testing.assert_array_equal(value, plain[path])


def test_lora_adapters_on_a_trained_nnx_base_leave_its_output_unchanged(key):
    """peft's adapter init by rules: A Kaiming-uniform with a = sqrt(5) (fan-in of A's input
    axis), B zeros; the base kept, so the adapted model computes the base model's function."""
    from flax import nnx

    import jinit.flax

    base_rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.normal(0.1))]
    base = jinit.flax.init_nnx(
        nnx.eval_shape(lambda: nnx.Linear(32, 16, rngs=nnx.Rngs(0))), key, base_rules
    )
    rules = [
        (r"lora_a$", jinit.torch.kaiming_uniform(a=np.sqrt(5))),
        (r"lora_b$", jinit.zeros),
        *base_rules,
    ]
    abstract = nnx.eval_shape(lambda: nnx.LoRALinear(32, 16, lora_rank=4, rngs=nnx.Rngs(0)))
    adapted = jinit.flax.init_nnx(abstract, 1, rules, keep=base)
    np.testing.assert_array_equal(adapted.kernel[...], base.kernel[...])
    a = np.asarray(adapted.lora.lora_a[...])
    bound = np.sqrt(6 / ((1 + 5) * 32))  # kaiming_uniform(a=sqrt(5)) over fan_in = 32
    assert a.shape == (32, 4) and np.abs(a).max() <= bound and np.abs(a).max() > 0.8 * bound
    assert not np.asarray(adapted.lora.lora_b[...]).any()
    x = jax.random.normal(jax.random.key(5), (3, 32))
    np.testing.assert_allclose(adapted(x), base(x), rtol=1e-6, atol=1e-6)


def test_equinox_model_with_a_new_readout(key):
    import equinox as eqx

    import jinit.equinox

    rules = [(r"weight$", jinit.he_normal()), (r"bias$", jinit.zeros)]
    make = lambda out: eqx.filter_eval_shape(eqx.nn.MLP, 8, out, 16, 2, key=jax.random.key(0))
    trained = jinit.equinox.init_eqx(make(3), 1, rules)
    trained = jax.tree.map(lambda x: x + 0.25 if eqx.is_inexact_array(x) else x, trained)
    with pytest.raises(
        ValueError,
        match=r"'layers/2/weight' is float32\[3, 16\], but the "
        r"target's is float32\[5, 16\]",
    ):
        jinit.equinox.init_eqx(make(5), 0, rules, keep=trained)
    out = jinit.equinox.init_eqx(make(5), 0, rules, keep=trained, reinit=r"layers/2/")
    scratch = jinit.equinox.init_eqx(make(5), 0, rules)
    np.testing.assert_array_equal(out.layers[0].weight, trained.layers[0].weight)
    np.testing.assert_array_equal(out.layers[2].weight, scratch.layers[2].weight)
    with pytest.raises(TypeError, match=r"`init_eqx\(keep=...\)` must be a trained equinox"):
        jinit.equinox.init_eqx(make(5), 0, rules, keep={"w": 1})


def test_lora_adapters_on_a_trained_linen_dense(key):
    """The linen equivalent: a Dense with LoRA factors beside its kernel, from a trained
    ``nn.Dense``: the base kept, A by peft's rule, B zeros: the same function."""
    import flax.linen as nn

    import jinit.flax

    class LoRADense(nn.Module):
        features: int
        rank: int = 4

        @nn.compact
        def __call__(self, x):
            init = nn.initializers.zeros  # (the rules give the values)
            kernel = self.param("kernel", init, (x.shape[-1], self.features))
            bias = self.param("bias", init, (self.features,))
            a = self.param("lora_a", init, (x.shape[-1], self.rank))
            b = self.param("lora_b", init, (self.rank, self.features))
            return x @ kernel + (x @ a) @ b + bias[None, :]

    x = jax.random.normal(jax.random.key(3), (4, 32))
    base_rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.normal(0.1))]
    base = jinit.flax.init_linen(nn.Dense(16), key, base_rules, x)
    rules = [
        (r"lora_a$", jinit.torch.kaiming_uniform(a=np.sqrt(5))),
        (r"lora_b$", jinit.zeros),
        *base_rules,
    ]
    adapted = jinit.flax.init_linen(LoRADense(16), 1, rules, x, keep=base)
    np.testing.assert_array_equal(adapted["params"]["kernel"], base["params"]["kernel"])
    assert np.asarray(adapted["params"]["lora_a"]).std() > 0
    np.testing.assert_allclose(
        LoRADense(16).apply(adapted, x), nn.Dense(16).apply(base, x), rtol=1e-6, atol=1e-6
    )


def test_unused_trained_leaves_are_returned_when_asked(key):
    """``unused='return'``: trained leaves with no place in the target come back beside it (a
    dict by path, the arrays themselves), the target as with every trained leaf placed."""
    trained = trained_base(key)
    out, unused = jinit.init_tree(key, target(1), RULES, keep=trained, unused="return")
    assert list(unused) == ["h/1/k"]
    assert unused["h/1/k"] is trained["h"][1]["k"]
    np.testing.assert_array_equal(out["h"][0]["k"], trained["h"][0]["k"])
    scratch = jinit.init_tree(key, target(1), RULES)
    np.testing.assert_array_equal(out["head"]["kernel"], scratch["head"]["kernel"])
    # every trained leaf placed: an empty dict
    _, none = jinit.init_tree(key, target(2), RULES, keep=trained, unused="return")
    assert none == {}
    with pytest.raises(ValueError, match=r"`init_tree\(unused=...\)` must be 'raise' or 'return'"):
        jinit.init_tree(key, target(1), RULES, keep=trained, unused="drop")
    with pytest.raises(ValueError, match=r"`init_tree\(unused=...\)` applies to the leaves of"):
        jinit.init_tree(key, target(1), RULES, unused="return")


def test_unused_on_the_flax_and_equinox_entry_points(key):
    import equinox as eqx
    import flax.linen as nn
    from flax import nnx

    import jinit.equinox
    import jinit.flax

    rules = [(r"kernel$|weight$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
    x = jnp.ones((2, 8))
    two = jinit.flax.init_linen(nn.Sequential([nn.Dense(8), nn.Dense(4)]), 1, rules, x)
    one, unused = jinit.flax.init_linen(
        nn.Sequential([nn.Dense(8)]), 0, rules, x, keep=two, unused="return"
    )
    assert sorted(unused) == ["params/layers_1/bias", "params/layers_1/kernel"]
    kept = one["params"]["layers_0"]["kernel"]
    np.testing.assert_array_equal(kept, two["params"]["layers_0"]["kernel"])
    with pytest.raises(ValueError, match=r"`init_linen\(keep=...\)`: 2 trained parameters"):
        jinit.flax.init_linen(nn.Sequential([nn.Dense(8)]), 0, rules, x, keep=two)

    big = jinit.flax.init_nnx(
        nnx.eval_shape(lambda: nnx.LoRALinear(8, 4, lora_rank=2, rngs=nnx.Rngs(0))),
        1,
        [(r"lora_a$|lora_b$", jinit.normal()), *rules],
    )
    small = nnx.eval_shape(lambda: nnx.Linear(8, 4, rngs=nnx.Rngs(0)))
    model, unused = jinit.flax.init_nnx(small, 0, rules, keep=big, unused="return")
    assert sorted(unused) == ["lora/lora_a", "lora/lora_b"]
    np.testing.assert_array_equal(model.kernel[...], big.kernel[...])

    make = lambda out: eqx.filter_eval_shape(eqx.nn.MLP, 8, out, 16, 2, key=jax.random.key(0))
    mlp = jinit.equinox.init_eqx(make(3), 1, rules)
    lin = eqx.filter_eval_shape(eqx.nn.Linear, 8, 16, use_bias=False, key=jax.random.key(0))
    out, unused = jinit.equinox.init_eqx(lin, 0, rules, keep=mlp.layers[0], unused="return")
    assert list(unused) == ["bias"]
    np.testing.assert_array_equal(unused["bias"], mlp.layers[0].bias)
    np.testing.assert_array_equal(out.weight, mlp.layers[0].weight)

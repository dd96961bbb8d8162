"""A rule means what ``kernel_init=`` means in linen: multi-head, DenseGeneral and scanned or
vmapped layers get the fans their module's own init uses (jinit/_flax_calls.py)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
import jinit.equinox
import jinit.flax

LECUN = nn.initializers.lecun_normal()
RULES = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]


class Attention(nn.Module):
    heads: int = 12
    width: int = 768

    @nn.compact
    def __call__(self, x):
        mha = nn.MultiHeadDotProductAttention(num_heads=self.heads, kernel_init=LECUN)
        return mha(x, x)


class Layer(nn.Module):
    width: int = 64

    @nn.compact
    def __call__(self, x, _):
        return nn.Dense(self.width, kernel_init=LECUN)(x), None


def scanned(length: int, width: int) -> nn.Module:
    class Scan(nn.Module):
        @nn.compact
        def __call__(self, x):
            stack = nn.scan(
                Layer, variable_axes={"params": 0}, split_rngs={"params": True}, length=length
            )
            return stack(width, name="layers")(x, None)[0]

    return Scan()


def vmapped(count: int, width: int) -> nn.Module:
    class Experts(nn.Module):
        @nn.compact
        def __call__(self, x):
            dense = nn.vmap(
                nn.Dense,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                in_axes=None,
                axis_size=count,
            )
            return dense(width, kernel_init=LECUN, name="experts")(x)

    return Experts()


def kernels(tree):
    return {
        jax.tree_util.keystr(p): np.asarray(x)
        for p, x in jax.tree_util.tree_flatten_with_path(nn.unbox(tree))[0]
        if "kernel" in jax.tree_util.keystr(p)
    }


CASES = {
    "multi-head attention": (Attention(), jnp.ones((1, 4, 768))),
    "DenseGeneral(features=(4, 16))": (
        nn.DenseGeneral(features=(4, 16), kernel_init=LECUN),
        jnp.ones((1, 32)),
    ),
    "DenseGeneral(axis=(-2, -1))": (
        nn.DenseGeneral(features=24, axis=(-2, -1), kernel_init=LECUN),
        jnp.ones((1, 6, 8)),
    ),
    "nn.scan of 16 Dense(64)": (scanned(16, 64), jnp.ones((1, 64))),
    "nn.vmap of 8 Dense(128)": (vmapped(8, 128), jnp.ones((1, 128))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rule_gives_the_std_of_the_modules_own_init(case):
    model, x = CASES[case]
    own = kernels(model.init(jax.random.key(1), x))
    ours = kernels(jinit.flax.init_linen(model, 0, RULES, x))
    assert own.keys() == ours.keys()
    for path, want in own.items():
        got = ours[path]
        assert got.shape == want.shape, path
        # the two are independent draws of the same law: the std within sampling error
        tol = 4 * np.sqrt(2 / got.size) + 0.01
        assert abs(got.std() / want.std() - 1) < max(tol, 0.03), (path, got.std(), want.std())


def test_a_scanned_layer_equals_its_unrolled_twin():
    model, x = CASES["nn.scan of 16 Dense(64)"]
    w = np.asarray(
        jinit.flax.init_linen(model, 0, RULES, x)["params"]["layers"]["Dense_0"]["kernel"]
    )
    for i in (0, 3, 15):
        path = f"params/layers/{i}/Dense_0/kernel"
        twin = jinit.lecun_normal()(jinit.key_for_path(0, path), (64, 64))
        np.testing.assert_array_equal(w[i], twin)


def test_same_bits_as_the_explicit_forms():
    """The multi-head kernel equals ``jinit.equinox.layout`` with the flattened axes; the
    scanned kernel equals ``jinit.stacked`` written in the rule (which is left as written)."""
    model, x = CASES["multi-head attention"]
    got = jinit.flax.init_linen(model, 0, RULES, x)["params"]["MultiHeadDotProductAttention_0"]
    path = "params/MultiHeadDotProductAttention_0/query/kernel"
    explicit = jinit.equinox.layout(jinit.lecun_normal(), in_axis=0, out_axis=(1, 2))
    want = explicit(jinit.key_for_path(0, path), (768, 12, 64))
    np.testing.assert_array_equal(got["query"]["kernel"], want)
    path = "params/MultiHeadDotProductAttention_0/out/kernel"
    explicit = jinit.equinox.layout(jinit.lecun_normal(), in_axis=(0, 1), out_axis=2)
    want = explicit(jinit.key_for_path(0, path), (12, 64, 768))
    np.testing.assert_array_equal(got["out"]["kernel"], want)

    model, x = CASES["nn.scan of 16 Dense(64)"]
    plain = jinit.flax.init_linen(model, 0, RULES, x)
    rules = [(r"kernel$", jinit.stacked(jinit.lecun_normal(), unroll="layers")), *RULES[1:]]
    explicit_tree = jinit.flax.init_linen(model, 0, rules, x)
    np.testing.assert_array_equal(
        *(kernels(t)["['params']['layers']['Dense_0']['kernel']"] for t in (plain, explicit_tree))
    )


def test_structured_rules_follow_the_flattened_kernel():
    """An orthogonal rule on a DenseGeneral kernel is orthogonal as the module's own init makes
    it: the flattened ``(in, prod(out))`` matrix has orthonormal rows."""
    model = nn.DenseGeneral(features=(4, 16), kernel_init=nn.initializers.orthogonal())
    x = jnp.ones((1, 32))
    w = np.asarray(
        jinit.flax.init_linen(model, 0, [("kernel", jinit.orthogonal()), ("bias", jinit.zeros)], x)[
            "params"
        ]["kernel"]
    ).reshape(32, 64)
    np.testing.assert_allclose(w @ w.T, np.eye(32), atol=1e-5)


def test_init_tree_on_a_raw_tree_keeps_jax_semantics():
    """Without a module there is nothing to read the fans from: the stored shape's fans, as
    ``jax.nn.initializers`` computes them on a raw array."""
    tree = {"kernel": jax.ShapeDtypeStruct((768, 12, 64), jnp.float32)}
    got = jinit.init_tree(0, tree, RULES)["kernel"]
    want = jinit.lecun_normal()(jinit.key_for_path(0, "kernel"), (768, 12, 64))
    np.testing.assert_array_equal(got, want)

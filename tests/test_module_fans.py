"""A rule means what ``kernel_init=`` means in linen: multi-head, DenseGeneral and scanned or
vmapped layers get the fans their module's own init uses (jinit/_flax_calls.py)."""

from __future__ import annotations

import warnings

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


# --- a LLaMA-style linen decoder, as MaxText writes it: remat + scan, GQA, logical axes ---


class Decoder(nn.Module):
    d: int = 128
    heads: int = 8
    kv_heads: int = 2
    mlp: int = 256

    @nn.compact
    def __call__(self, x, _):
        init = lambda *names: nn.with_logical_partitioning(LECUN, names)
        hd = self.d // self.heads
        q = nn.DenseGeneral((self.heads, hd), kernel_init=init("embed", "heads", "kv"), name="q")
        kv_init = init("embed", "kv_heads", "kv")
        k = nn.DenseGeneral((self.kv_heads, hd), kernel_init=kv_init, name="k")
        v = nn.DenseGeneral((self.kv_heads, hd), kernel_init=kv_init, name="v")
        o_init = init("heads", "kv", "embed")
        o = nn.DenseGeneral(self.d, axis=(-2, -1), kernel_init=o_init, name="o")
        rep = self.heads // self.kv_heads
        qs, ks, vs = q(x), jnp.repeat(k(x), rep, axis=-2), jnp.repeat(v(x), rep, axis=-2)
        x = x + o(nn.dot_product_attention(qs, ks, vs))
        gate = nn.Dense(self.mlp, use_bias=False, kernel_init=init("embed", "mlp"))(x)
        up = nn.Dense(self.mlp, use_bias=False, kernel_init=init("embed", "mlp"))(x)
        down = nn.Dense(self.d, use_bias=False, kernel_init=init("mlp", "embed"))
        return x + down(nn.silu(gate) * up), None


class Llama(nn.Module):
    layers: int = 6

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(512, 128, name="embed")(tokens)
        block = nn.remat(Decoder, prevent_cse=False)
        stack = nn.scan(
            block,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            length=self.layers,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )
        x, _ = stack(name="layers")(x, None)
        return nn.Dense(512, use_bias=False, kernel_init=LECUN, name="head")(x)


LLAMA_RULES = [
    (r"kernel$", jinit.lecun_normal()),
    (r"bias$", jinit.zeros),
    (r"embedding$", jinit.normal(1.0)),
]
LOGICAL = [
    ("embed", None),
    ("heads", "model"),
    ("kv_heads", None),
    ("kv", None),
    ("mlp", "model"),
    ("layers", None),
]


def test_llama_decoder_with_remat_scan_gqa_and_logical_axes():
    model, tokens = Llama(), jnp.ones((1, 8), jnp.int32)
    own = kernels(model.init(jax.random.key(1), tokens))
    ours = kernels(jinit.flax.init_linen(model, 0, LLAMA_RULES, tokens))
    assert len(own) == 8 and own.keys() == ours.keys()
    for path, want in own.items():
        assert abs(ours[path].std() / want.std() - 1) < 0.03, (path, ours[path].std(), want.std())
    # layer 2 of the stack is its unrolled twin, with the flattened fans of a GQA key kernel
    got = ours["['params']['layers']['k']['kernel']"][2]
    twin = jinit.equinox.layout(jinit.lecun_normal(), in_axis=0, out_axis=(1, 2))
    want = twin(jinit.key_for_path(0, "params/layers/2/k/kernel"), (128, 2, 16))
    np.testing.assert_array_equal(got, want)
    # under a mesh, through the logical axes: the same bits, sharded as the boxes say
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    sharded = jinit.flax.init_linen(
        model, 0, LLAMA_RULES, tokens, mesh=mesh, logical_axis_rules=LOGICAL
    )
    up = nn.unbox(sharded)["params"]["layers"]["Dense_1"]["kernel"]
    assert up.sharding.spec == jax.P(None, None, "model")
    for path, value in kernels(sharded).items():
        np.testing.assert_array_equal(value, ours[path])


class Experts(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        experts = nn.vmap(
            nn.Dense,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            axis_size=4,
        )
        return experts(32, kernel_init=LECUN, name="experts")(x).sum(0), None


def test_nested_stacks_scan_of_vmapped_experts():
    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            stack = nn.scan(
                Experts, variable_axes={"params": 0}, split_rngs={"params": True}, length=3
            )
            return stack(name="blocks")(x, None)[0]

    model, x = Model(), jnp.ones((1, 32))
    own = kernels(model.init(jax.random.key(1), x))
    ours = kernels(jinit.flax.init_linen(model, 0, RULES, x))
    (path,) = own
    assert ours[path].shape == (3, 4, 32, 32)
    assert abs(ours[path].std() / own[path].std() - 1) < 0.03
    # both layer indices go after the innermost transform's scope
    twin = jinit.lecun_normal()(jinit.key_for_path(0, "params/blocks/experts/1/2/kernel"), (32, 32))
    np.testing.assert_array_equal(ours[path][1, 2], twin)


def test_stack_axes_that_are_not_leading_are_refused_for_fan_based_rules():
    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            stack = nn.scan(
                Layer, variable_axes={"params": 1}, split_rngs={"params": True}, length=4
            )
            return stack(16, name="layers")(x, None)[0]

    model, x = Model(), jnp.ones((1, 16))
    with pytest.raises(
        ValueError,
        match=r"`init_linen`: the parameter 'params/layers/Dense_0/"
        r"kernel' \(16, 4, 16\) is made by its module with the shape \(16, 16\)",
    ):
        jinit.flax.init_linen(model, 0, RULES, x)
    # a fan-free initializer means the same on any shape: accepted
    out = jinit.flax.init_linen(
        model, 0, [("kernel", jinit.normal(0.02)), ("bias", jinit.zeros)], x
    )
    assert out["params"]["layers"]["Dense_0"]["kernel"].shape == (16, 4, 16)


def test_explain_linen_shows_the_fans_used_and_why():
    model, x = CASES["multi-head attention"]
    rows = {r.path: r for r in jinit.flax.explain_linen(model, RULES, x)}
    q = rows["params/MultiHeadDotProductAttention_0/query/kernel"]
    assert q.note == "fans of (768, 768), the shape linen calls kernel_init with"
    assert q.target_std == pytest.approx(1 / np.sqrt(768))
    model, x = CASES["nn.scan of 16 Dense(64)"]
    row = jinit.flax.explain_linen(model, RULES, x)[1]
    assert row.path == "params/layers/Dense_0/kernel" and row.target_std == pytest.approx(1 / 8)
    assert row.note == "one layer of a stack (16,) (linen transform)"


# --- every linen layer that takes a kernel_init: swept from flax.linen, not hand-picked ---


def _linen_layers() -> list[str]:
    import dataclasses
    import inspect

    return sorted(
        name
        for name, c in vars(nn).items()
        if inspect.isclass(c)
        and issubclass(c, nn.Module)
        and dataclasses.is_dataclass(c)
        and "kernel_init" in {f.name for f in dataclasses.fields(c)}
    )


def _cell(cls, **kw):
    class Run(nn.Module):
        @nn.compact
        def __call__(self, x):
            cell = cls(kernel_init=LECUN, recurrent_kernel_init=LECUN, **kw)
            return cell(cell.initialize_carry(jax.random.key(0), x.shape), x)

    return Run()


# how to build each layer with kernel_init=LECUN, and an input
LAYERS = {
    "Conv": lambda: (nn.Conv(8, (3, 3), kernel_init=LECUN), jnp.ones((1, 6, 6, 4))),
    "ConvLocal": lambda: (nn.ConvLocal(8, (3, 3), kernel_init=LECUN), jnp.ones((1, 6, 6, 4))),
    "ConvTranspose": lambda: (
        nn.ConvTranspose(8, (3, 3), kernel_init=LECUN),
        jnp.ones((1, 6, 6, 4)),
    ),
    "Dense": lambda: (nn.Dense(24, kernel_init=LECUN), jnp.ones((1, 40))),
    "DenseGeneral": lambda: (
        nn.DenseGeneral((3, 8), axis=(-2, -1), kernel_init=LECUN),
        jnp.ones((1, 5, 8)),
    ),
    "Einsum": lambda: (
        nn.Einsum((4, 8, 16), "abc,bcd->ad", kernel_init=LECUN),
        jnp.ones((2, 4, 8)),
    ),
    "GRUCell": lambda: (_cell(nn.GRUCell, features=16), jnp.ones((1, 8))),
    "LSTMCell": lambda: (_cell(nn.LSTMCell, features=16), jnp.ones((1, 8))),
    "MGUCell": lambda: (_cell(nn.MGUCell, features=16), jnp.ones((1, 8))),
    "OptimizedLSTMCell": lambda: (_cell(nn.OptimizedLSTMCell, features=16), jnp.ones((1, 8))),
    "SimpleCell": lambda: (_cell(nn.SimpleCell, features=16), jnp.ones((1, 8))),
    "MultiHeadAttention": lambda: (
        nn.MultiHeadAttention(4, kernel_init=LECUN),
        jnp.ones((1, 3, 32)),
    ),
    "MultiHeadDotProductAttention": lambda: (
        nn.MultiHeadDotProductAttention(4, kernel_init=LECUN),
        jnp.ones((1, 3, 32)),
    ),
    "SelfAttention": lambda: (nn.SelfAttention(4, kernel_init=LECUN), jnp.ones((1, 3, 32))),
}


def test_the_layer_table_covers_every_linen_layer_with_a_kernel_init():
    assert _linen_layers() == sorted(LAYERS), "a Flax layer is missing from LAYERS"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_linen_layer_agrees_with_its_own_init(name):
    model, x = LAYERS[name]()
    rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
    with warnings.catch_warnings():  # Flax's own notice, not the behaviour under test
        warnings.filterwarnings("ignore", "SelfAttention will be deprecated", DeprecationWarning)
        own = kernels(model.init(jax.random.key(1), x))
        ours = kernels(jinit.flax.init_linen(model, 0, rules, x))
    assert own and own.keys() == ours.keys()
    for path, want in own.items():
        # std within sampling error: both are draws of the module's law (>= 96 entries each)
        tol = 5 * np.sqrt(1 / (2 * want.size)) + 0.01
        assert abs(ours[path].std() / want.std() - 1) < tol, (path, ours[path].std(), want.std())


# --- nnx: the module types whose shapes are known; vmapped layers ---

from flax import nnx  # noqa: E402


def _nnx_kernels(model):
    return {
        "/".join(map(str, p)): np.asarray(v.get_value())
        for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))
        if p[-1] == "kernel"
    }


def _nnx_vmapped(count, make):
    @nnx.split_rngs(splits=count)
    @nnx.vmap(in_axes=0, out_axes=0)
    def stack(rngs):
        return make(rngs)

    return stack


NNX_CASES = {
    "LinearGeneral(64, (4, 16))": lambda r: nnx.LinearGeneral(
        64, (4, 16), kernel_init=LECUN, rngs=r
    ),
    "MultiHeadAttention(12, 768)": lambda r: nnx.MultiHeadAttention(
        12, 768, 768, kernel_init=LECUN, rngs=r, decode=False
    ),
    "split_rngs(16) + vmap of Linear(128, 128)": _nnx_vmapped(
        16, lambda r: nnx.Linear(128, 128, kernel_init=LECUN, rngs=r)
    ),
}
NNX_RULES = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]


@pytest.mark.parametrize("case", list(NNX_CASES))
def test_nnx_rule_gives_the_std_of_the_layers_own_init(case):
    make = NNX_CASES[case]
    own = _nnx_kernels(make(nnx.Rngs(1)))
    ours = _nnx_kernels(
        jinit.flax.init_nnx(nnx.eval_shape(lambda: make(nnx.Rngs(0))), 0, NNX_RULES)
    )
    assert own.keys() == ours.keys()
    for path, want in own.items():
        assert abs(ours[path].std() / want.std() - 1) < 0.03, (path, ours[path].std(), want.std())


class Block(nnx.Module):
    def __init__(self, rngs):
        self.attn = nnx.MultiHeadAttention(4, 64, 64, kernel_init=LECUN, rngs=rngs, decode=False)
        self.mlp = nnx.Linear(64, 64, kernel_init=LECUN, rngs=rngs)
        self.norm = nnx.LayerNorm(64, rngs=rngs)


class ScannedModel(nnx.Module):
    """Flax's documented scan-over-layers: layers made by vmap, applied by nnx.scan."""

    def __init__(self, rngs):
        self.embed = nnx.Linear(8, 64, kernel_init=LECUN, rngs=rngs)
        self.blocks = _nnx_vmapped(6, Block)(rngs)

    def __call__(self, x):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        def step(x, block):
            return x + block.mlp(block.attn(block.norm(x)))

        return step(self.embed(x), self.blocks)


def test_nnx_scanned_model_equals_its_layers_own_init_and_unrolled_twin():
    rules = [*NNX_RULES, (r"scale$", jinit.ones)]
    own = _nnx_kernels(ScannedModel(nnx.Rngs(1)))
    model = jinit.flax.init_nnx(nnx.eval_shape(lambda: ScannedModel(nnx.Rngs(0))), 0, rules)
    ours = _nnx_kernels(model)
    assert ours["blocks/attn/query/kernel"].shape == (6, 64, 4, 16)
    for path, want in own.items():
        tol = 5 * np.sqrt(1 / (2 * want.size)) + 0.01  # two draws' std, within sampling error
        assert abs(ours[path].std() / want.std() - 1) < tol, (path, ours[path].std(), want.std())
    twin = jinit.lecun_normal()(jinit.key_for_path(0, "blocks/4/mlp/kernel"), (64, 64))
    np.testing.assert_array_equal(ours["blocks/mlp/kernel"][4], twin)
    assert model(jnp.ones((2, 3, 8))).shape == (2, 3, 64)  # the scanned forward pass runs


def test_explain_nnx_notes_flattened_and_stacked_fans():
    abstract = nnx.eval_shape(lambda: ScannedModel(nnx.Rngs(0)))
    rows = {
        r.path: r for r in jinit.flax.explain_nnx(abstract, [*NNX_RULES, ("scale", jinit.ones)])
    }
    q = rows["blocks/attn/query/kernel"]
    assert q.target_std == pytest.approx(1 / 8)
    assert q.note == (
        "fans of (64, 64), the shape nnx.LinearGeneral calls kernel_init with; "
        "one layer of a stack (6,) (nnx.LinearGeneral transform)"
    )
    assert rows["embed/kernel"].note is None


# --- equinox: eqx.filter_vmap of a layer ---


def test_equinox_vmapped_layers_get_one_layers_fans_and_twin_keys():
    import equinox as eqx

    make = lambda k: eqx.nn.Linear(128, 128, key=k)
    own = eqx.filter_vmap(make)(jax.random.split(jax.random.key(1), 16))
    abstract = eqx.filter_eval_shape(
        lambda: eqx.filter_vmap(make)(jax.random.split(jax.random.key(0), 16))
    )
    rules = [(r"weight$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
    ours = jinit.equinox.init_eqx(abstract, 0, rules)
    assert ours.weight.shape == (16, 128, 128)
    # the module's own init is uniform(+-1/sqrt(128)); lecun_normal's std is 1/sqrt(128) too
    assert abs(float(ours.weight.std()) * np.sqrt(128) - 1) < 0.03
    assert abs(float(own.weight.std()) * np.sqrt(3 * 128) - 1) < 0.03
    twin = jinit.equinox.layout(jinit.lecun_normal())(jinit.key_for_path(0, "3/weight"), (128, 128))
    np.testing.assert_array_equal(ours.weight[3], twin)


# --- every nnx layer that takes a kernel_init: swept from flax.nnx, not hand-picked ---


def _nnx_layers() -> list[str]:
    import inspect

    out = []
    for name, c in vars(nnx).items():
        if inspect.isclass(c) and issubclass(c, nnx.Module):
            try:
                params = inspect.signature(c.__init__).parameters
            except (TypeError, ValueError):
                continue
            if "kernel_init" in params:
                out.append(name)
    return sorted(out)


_CELL = {"kernel_init": LECUN, "recurrent_kernel_init": LECUN}
# how to build each nnx layer with kernel_init=LECUN (a function of its rngs)
NNX_LAYERS = {
    "Conv": lambda r: nnx.Conv(4, 8, (3, 3), kernel_init=LECUN, rngs=r),
    "ConvTranspose": lambda r: nnx.ConvTranspose(4, 8, (3, 3), kernel_init=LECUN, rngs=r),
    "Einsum": lambda r: nnx.Einsum("abc,bcd->ad", (4, 8, 16), kernel_init=LECUN, rngs=r),
    "GRUCell": lambda r: nnx.GRUCell(8, 16, **_CELL, rngs=r),
    "LSTMCell": lambda r: nnx.LSTMCell(8, 16, **_CELL, rngs=r),
    "Linear": lambda r: nnx.Linear(40, 24, kernel_init=LECUN, rngs=r),
    "LinearGeneral": lambda r: nnx.LinearGeneral(
        (5, 8), (3, 8), axis=(-2, -1), kernel_init=LECUN, rngs=r
    ),
    "MultiHeadAttention": lambda r: nnx.MultiHeadAttention(
        4, 32, 32, kernel_init=LECUN, rngs=r, decode=False
    ),
    "OptimizedLSTMCell": lambda r: nnx.OptimizedLSTMCell(8, 16, **_CELL, rngs=r),
    "SimpleCell": lambda r: nnx.SimpleCell(8, 16, **_CELL, rngs=r),
}


def test_the_layer_table_covers_every_nnx_layer_with_a_kernel_init():
    assert _nnx_layers() == sorted(NNX_LAYERS), "an nnx layer is missing from NNX_LAYERS"


@pytest.mark.parametrize("name", sorted(NNX_LAYERS))
def test_every_nnx_layer_agrees_with_its_own_init(name):
    make = NNX_LAYERS[name]
    own = _nnx_kernels(make(nnx.Rngs(1)))
    rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
    ours = _nnx_kernels(jinit.flax.init_nnx(nnx.eval_shape(lambda: make(nnx.Rngs(0))), 0, rules))
    assert own and own.keys() == ours.keys()
    for path, want in own.items():
        tol = 5 * np.sqrt(1 / (2 * want.size)) + 0.01  # two draws' std, within sampling error
        assert abs(ours[path].std() / want.std() - 1) < tol, (path, ours[path].std(), want.std())


@pytest.mark.parametrize("layer", ["Conv2d", "ConvTranspose2d"])
def test_equinox_vmapped_convolutions_are_stacks(layer):
    """Each convolution's one-layer shape is read from its own attributes (a transposed one
    stores its weight as ``(out, in / groups, *kernel)`` too): 4 vmapped layers are a stack."""
    import equinox as eqx

    make = lambda k: getattr(eqx.nn, layer)(4, 6, 3, groups=2, key=k)
    abstract = eqx.filter_eval_shape(
        lambda: eqx.filter_vmap(make)(jax.random.split(jax.random.key(0), 4))
    )
    rules = [(r"weight$", jinit.he_normal()), (r"bias$", jinit.zeros)]
    ours = jinit.equinox.init_eqx(abstract, 0, rules)
    assert ours.weight.shape == (4, 6, 2, 3, 3)
    one = jinit.equinox.layout(jinit.he_normal(), in_axis=1, out_axis=0)  # (out, in, kh, kw)
    twin = one(jinit.key_for_path(0, "2/weight"), (6, 2, 3, 3))
    np.testing.assert_array_equal(ours.weight[2], twin)

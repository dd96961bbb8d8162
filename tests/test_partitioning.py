"""Partitioned linen models: metadata only with no mesh (as ``model.init``), sharded as their
names say under a mesh, the same bits either way; unresolvable partitionings raise by name."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
import jinit.flax

# MaxText's way: every parameter names its logical axes; the rules map them to mesh axes.
AXIS_RULES = [
    ("batch", "data"),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("vocab", "tensor"),
]
VOCAB, EMBED, HEADS, HEAD_DIM, MLP = 64, 16, 4, 8, 32
RULES = [
    (r"embedding$", jinit.normal(1.0)),
    (r"kernel$", jinit.lecun_normal()),
    (r"bias$", jinit.zeros),
    (r"scale$", jinit.ones),
]


def _logical(init, *names):
    return nn.with_logical_partitioning(init, names)


LECUN = nn.initializers.lecun_normal()


class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm(use_bias=False, scale_init=_logical(nn.initializers.ones, "embed"))(x)
        q = nn.Dense(
            HEADS * HEAD_DIM, use_bias=False, kernel_init=_logical(LECUN, "embed", "heads")
        )
        kv = nn.Dense(HEAD_DIM, use_bias=False, kernel_init=_logical(LECUN, "embed", "kv"))
        o = nn.Dense(EMBED, use_bias=False, kernel_init=_logical(LECUN, "heads", "embed"))
        x = x + o(q(h) * jnp.tile(kv(h), HEADS))
        h = nn.Dense(
            MLP,
            kernel_init=_logical(LECUN, "embed", "mlp"),
            bias_init=_logical(nn.initializers.zeros, "mlp"),
            name="mlp_in",
        )(x)
        return x + nn.Dense(EMBED, kernel_init=_logical(LECUN, "mlp", "embed"), name="mlp_out")(h)


class Transformer(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        embed = nn.Embed(
            VOCAB, EMBED, embedding_init=_logical(nn.initializers.normal(1.0), "vocab", "embed")
        )
        x = embed(tokens)
        x = Block(name="layers_0")(x)
        x = Block(name="layers_1")(x)
        return nn.Dense(VOCAB, kernel_init=_logical(LECUN, "embed", "vocab"), name="logits")(x)


TOKENS = jnp.ones((2, 8), jnp.int32)

# What the logical names say under AXIS_RULES, written out by hand ("kv" has no rule: replicated).
EXPECTED = {
    "params/Embed_0/embedding": P("tensor", "fsdp"),
    "params/layers_0/LayerNorm_0/scale": P("fsdp"),
    "params/layers_0/Dense_0/kernel": P("fsdp", "tensor"),
    "params/layers_0/Dense_1/kernel": P("fsdp", None),
    "params/layers_0/Dense_2/kernel": P("tensor", "fsdp"),
    "params/layers_0/mlp_in/kernel": P("fsdp", "tensor"),
    "params/layers_0/mlp_in/bias": P("tensor"),
    "params/layers_0/mlp_out/kernel": P("tensor", "fsdp"),
    "params/layers_0/mlp_out/bias": P(),  # not partitioned: replicated over the mesh
    "params/logits/kernel": P("fsdp", "tensor"),
}


def _flat(tree) -> dict:
    """path -> box or array, a Flax box being one parameter."""
    flat = jax.tree_util.tree_flatten_with_path(
        tree, is_leaf=lambda x: isinstance(x, nn.Partitioned)
    )
    return {jinit.path_str(kp): x for kp, x in flat[0]}


def _array(x):
    return x.value if isinstance(x, nn.Partitioned) else x


def _same_bits(a, b) -> None:
    a, b = np.asarray(_array(a)), np.asarray(_array(b))
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.fixture
def mesh(devices):
    return jax.make_mesh(
        (2, 2, 2), ("data", "fsdp", "tensor"), devices=devices, axis_types=(AxisType.Auto,) * 3
    )


def test_without_a_mesh_the_partitioning_is_metadata_as_in_model_init(key):
    flax_vars = Transformer().init(jax.random.key(0), TOKENS)
    v = jinit.flax.init_linen(Transformer(), key, RULES, TOKENS)
    # The same boxes (types, logical names, no rules, no mesh) around the same shapes ...
    assert jax.tree.structure(v) == jax.tree.structure(flax_vars)
    ours, theirs = _flat(v), _flat(flax_vars)
    for path, box in theirs.items():
        if isinstance(box, nn.Partitioned):
            assert type(ours[path]) is type(box) and ours[path].names == box.names, path
        # ... with the arrays where model.init puts them: jax's default device.
        assert _array(ours[path]).sharding == _array(box).sharding, path
        assert _array(ours[path]).sharding.device_set == {jax.devices()[0]}, path
    emb = jinit.normal(1.0)(jinit.key_for_path(key, "params/Embed_0/embedding"), (VOCAB, EMBED))
    _same_bits(ours["params/Embed_0/embedding"], emb)
    # The model runs on them as on model.init's.
    assert Transformer().apply(v, TOKENS).shape == (2, 8, VOCAB)


@pytest.mark.parametrize("how", ["mesh= and logical_axis_rules=", "jax.set_mesh and the context"])
def test_under_a_mesh_the_same_bits_sharded_as_the_names_say(mesh, key, how):
    unsharded = _flat(jinit.flax.init_linen(Transformer(), key, RULES, TOKENS))
    if how == "mesh= and logical_axis_rules=":
        kw = {"mesh": mesh, "logical_axis_rules": AXIS_RULES}
        v = jinit.flax.init_linen(Transformer(), key, RULES, TOKENS, **kw)
    else:  # Explicit axes this time: the sharding does not depend on the axis types
        explicit = jax.make_mesh(
            (2, 2, 2), ("data", "fsdp", "tensor"), axis_types=(AxisType.Explicit,) * 3
        )
        with jax.set_mesh(explicit), nn.logical_axis_rules(AXIS_RULES):
            v = jinit.flax.init_linen(Transformer(), key, RULES, TOKENS)
        mesh = explicit
    sharded = _flat(v)
    assert sharded.keys() == unsharded.keys()
    for path, x in sharded.items():
        _same_bits(x, unsharded[path])
    for path, spec in EXPECTED.items():
        for layer in ("layers_0", "layers_1"):
            arr = _array(sharded[path.replace("layers_0", layer)])
            want = NamedSharding(mesh, spec)
            assert arr.sharding.is_equivalent_to(want, arr.ndim), (path, arr.sharding.spec, spec)
            # Each device holds its shard only.
            assert arr.addressable_shards[0].data.shape == want.shard_shape(arr.shape), path
    # Flax reads the names the same way.
    abstract = jax.eval_shape(Transformer().init, jax.random.key(0), TOKENS)
    flax_shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(abstract), mesh, AXIS_RULES)
    for path, s in _flat(flax_shardings).items():
        arr = _array(sharded[path])
        assert arr.sharding.is_equivalent_to(s, arr.ndim), path


def test_init_tree_and_explain_with_and_without_a_mesh(mesh, key):
    abstract = jax.eval_shape(Transformer().init, jax.random.key(0), TOKENS)  # no mesh: no sharding
    plain = jinit.init_tree(key, abstract, RULES)
    linen = _flat(jinit.flax.init_linen(Transformer(), key, RULES, TOKENS))
    assert all(isinstance(_array(x), jax.Array) for x in _flat(plain).values())
    for path, x in _flat(plain).items():
        _same_bits(x, linen[path])
        assert _array(x).sharding.device_set == {jax.devices()[0]}, path
    rows = jinit.explain(abstract, RULES)
    assert {r.sharding for r in rows} == {None}
    assert all(line.endswith("one device") for line in str(rows).splitlines()[1:])

    with nn.logical_axis_rules(AXIS_RULES):
        sharded = _flat(jinit.init_tree(key, abstract, RULES, mesh=mesh))
        rows = jinit.explain(abstract, RULES, mesh=mesh)
    assert rows == jinit.explain(abstract, RULES, mesh=mesh, logical_axis_rules=AXIS_RULES)
    by_path = {r.path: r for r in rows}
    for path, spec in EXPECTED.items():
        arr = _array(sharded[path])
        _same_bits(arr, linen[path])
        # explain says what init_tree does.
        assert by_path[path].sharding == arr.sharding, path
        assert by_path[path].sharding.is_equivalent_to(NamedSharding(mesh, spec), arr.ndim)
    table = {line.split()[0]: line for line in str(rows).splitlines()}
    assert "P('fsdp', 'tensor')" in table["params/layers_0/mlp_in/kernel"]
    assert "replicated" in table["params/layers_0/mlp_out/bias"]


def test_mesh_axis_partitioning_and_a_box_with_its_own_mesh(mesh, key):
    def model(box_mesh):
        init = nn.with_partitioning(LECUN, (None, "tensor"), mesh=box_mesh)
        return nn.Dense(8, kernel_init=init)

    x = jnp.ones((2, 4))
    rules = RULES[1:]
    alone = jinit.flax.init_linen(model(None), key, rules, x)["params"]["kernel"]
    assert isinstance(alone, nn.Partitioned) and alone.value.sharding.device_set == {
        jax.devices()[0]
    }
    with jax.set_mesh(mesh):
        ambient = jinit.flax.init_linen(model(None), key, rules, x)["params"]["kernel"]
    # A box that carries its own mesh is sharded on it, with no other mesh around.
    own = jinit.flax.init_linen(model(mesh), key, rules, x)["params"]["kernel"]
    for k in (ambient, own):
        assert k.value.sharding == NamedSharding(mesh, P(None, "tensor"))
        _same_bits(k, alone)


def test_an_unresolvable_partitioning_under_a_mesh_raises_naming_the_parameter(mesh, key):
    no_rules = (
        r"`init_linen`: the parameter 'params/Embed_0/embedding' is partitioned by logical "
        r"names \('vocab', 'embed'\), but no logical axis rules map them to mesh axes; pass "
        r"`logical_axis_rules=` or use `nn.logical_axis_rules\(...\)`\.$"
    )
    with pytest.raises(ValueError, match=no_rules):
        jinit.flax.init_linen(Transformer(), key, RULES, TOKENS, mesh=mesh)
    with jax.set_mesh(mesh), pytest.raises(ValueError, match=no_rules):
        jinit.flax.init_linen(Transformer(), key, RULES, TOKENS)
    abstract = jax.eval_shape(Transformer().init, jax.random.key(0), TOKENS)
    with pytest.raises(ValueError, match=no_rules.replace("init_linen", "init_tree")):
        jinit.init_tree(key, abstract, RULES, mesh=mesh)
    with pytest.raises(ValueError, match=no_rules.replace("init_linen", "explain")):
        jinit.explain(abstract, RULES, mesh=mesh)

    # A logical name mapped to an axis the mesh lacks, and a mesh axis name it lacks.
    lacks = (
        r"`init_linen`: the parameter 'params/Embed_0/embedding' is partitioned as "
        r"P\('model', 'fsdp'\) on a mesh with axes \('data', 'fsdp', 'tensor'\): "
        r"Resource axis: model of P\('model', 'fsdp'\) is not found in mesh"
    )
    rules = [("vocab", "model"), *AXIS_RULES]
    with pytest.raises(ValueError, match=lacks):
        jinit.flax.init_linen(
            Transformer(), key, RULES, TOKENS, mesh=mesh, logical_axis_rules=rules
        )
    dense = nn.Dense(8, kernel_init=nn.with_partitioning(LECUN, (None, "model")))
    with pytest.raises(ValueError, match=r"`init_tree`: the parameter 'params/kernel' is "):
        abstract = jax.eval_shape(dense.init, jax.random.key(0), jnp.ones((2, 4)))
        jinit.init_tree(key, abstract, RULES, mesh=mesh)

    # A dimension the partitioning does not divide, named before jit would refuse it.
    odd = nn.Dense(5, kernel_init=nn.with_partitioning(LECUN, (None, "tensor")))
    with pytest.raises(
        ValueError,
        match=r"`init_linen`: the parameter 'params/kernel' of shape \(4, 5\) is partitioned as "
        r"P\(None, 'tensor'\), which splits dimension 1 \(size 5\) into 2 shards; 2 must divide 5",
    ):
        jinit.flax.init_linen(odd, key, RULES, jnp.ones((2, 4)), mesh=mesh)
    # The same tree with no mesh is metadata, as in model.init.
    kernel = jinit.flax.init_linen(odd, key, RULES, jnp.ones((2, 4)))["params"]["kernel"]
    assert kernel.value.shape == (4, 5) and kernel.names == (None, "tensor")


def test_nnx_keeps_needing_a_mesh_as_flax_does(mesh, key):
    init = nnx.with_partitioning(LECUN, (None, "tensor"))
    with pytest.raises(ValueError, match=r"mesh context or metadata is required"):
        nnx.Linear(4, 8, kernel_init=init, rngs=nnx.Rngs(0))  # Flax itself, without a mesh
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: nnx.Linear(4, 8, kernel_init=init, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"`init_nnx`: the parameter '.*' is sharded over an"):
        jinit.flax.init_nnx(abstract, key, RULES)
    model = jinit.flax.init_nnx(abstract, key, RULES, mesh=mesh)
    assert model.kernel[...].sharding == NamedSharding(mesh, P(None, "tensor"))

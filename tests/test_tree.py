"""init_tree: rule matching, path-stable values, one sharded computation, vmap ensembles."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
from jinit import _tree

SDS = jax.ShapeDtypeStruct
RULES = [
    (r"embed/table$", jinit.normal(0.02)),
    (
        r"attn/(q|k|v)/kernel$",
        jinit.variance_scaling(1.0, "fan_in", "truncated_normal", einsum="btd,dnh->btnh"),
    ),
    (r"kernel$", jinit.glorot_uniform()),
    (r"(bias|shift)$", jinit.zeros),
    (r"scale$", jinit.ones),
]


def reference_tree():
    blocks = {
        f"Block_{i}": {
            "attn": {n: {"kernel": SDS((32, 4, 8), jnp.float32)} for n in "qkv"},
            "mlp": {"kernel": SDS((32, 64), jnp.bfloat16), "bias": SDS((64,), jnp.float32)},
            "norm": {"scale": SDS((32,), jnp.float32)},
        }
        for i in range(2)
    }
    return {"params": {"embed": {"table": SDS((128, 32), jnp.float32)}, **blocks}}


def checksums(tree):
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        jinit.path_str(p): hashlib.sha256(np.asarray(x).tobytes()).hexdigest()[:16] for p, x in flat
    }


# Computed once from this implementation (jax 0.10.2, threefry2x32, CPU) and pinned: a change
# that alters any value here alters users' initial weights, and must be deliberate.
GOLDEN = {
    "params/Block_0/attn/k/kernel": "92ac1960100a90b9",
    "params/Block_0/attn/q/kernel": "2393c81eb34acbe4",
    "params/Block_0/attn/v/kernel": "93236b30fa4635e0",
    "params/Block_0/mlp/bias": "5341e6b2646979a7",
    "params/Block_0/mlp/kernel": "043625e0b09b230d",
    "params/Block_0/norm/scale": "b638277a8690e175",
    "params/Block_1/attn/k/kernel": "54f5b7c236d40c3b",
    "params/Block_1/attn/q/kernel": "bf4e918d281932f9",
    "params/Block_1/attn/v/kernel": "e9531fa8cf38c636",
    "params/Block_1/mlp/bias": "5341e6b2646979a7",
    "params/Block_1/mlp/kernel": "8deba7a95892121d",
    "params/Block_1/norm/scale": "b638277a8690e175",
    "params/embed/table": "38a8814637bb64c8",
}


def assert_trees_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_golden_checksums():
    assert checksums(jinit.init_tree(jax.random.key(0), reference_tree(), RULES)) == GOLDEN


def test_shapes_dtypes_and_rules_applied(key):
    out = jinit.init_tree(key, reference_tree(), RULES)
    p = out["params"]
    assert jax.tree.map(lambda x: (x.shape, x.dtype), out) == jax.tree.map(
        lambda s: (s.shape, s.dtype), reference_tree()
    )
    assert (np.asarray(p["Block_0"]["mlp"]["bias"]) == 0).all()
    assert (np.asarray(p["Block_1"]["norm"]["scale"]) == 1).all()
    expected = jinit.normal(0.02)(jinit.key_for_path(key, "params/embed/table"), (128, 32))
    np.testing.assert_array_equal(np.asarray(p["embed"]["table"]), np.asarray(expected))


def test_each_leaf_is_its_initializer_called_with_its_path_key(key):
    out = jinit.init_tree(key, reference_tree(), RULES)
    path = "params/Block_1/mlp/kernel"
    expected = jinit.glorot_uniform()(jinit.key_for_path(key, path), (32, 64), jnp.bfloat16)
    np.testing.assert_array_equal(
        np.asarray(out["params"]["Block_1"]["mlp"]["kernel"]), np.asarray(expected)
    )


def test_adding_removing_reordering_parameters_changes_nothing_else(key):
    full = jinit.init_tree(key, reference_tree(), RULES)
    tree = reference_tree()
    del tree["params"]["Block_0"]  # remove a block
    tree["params"]["Block_9"] = {"mlp": {"kernel": SDS((8, 8), jnp.float32)}}  # add one
    tree["params"] = dict(reversed(list(tree["params"].items())))  # reorder
    part = jinit.init_tree(key, tree, RULES)
    assert_trees_equal(part["params"]["Block_1"], full["params"]["Block_1"])
    assert_trees_equal(part["params"]["embed"], full["params"]["embed"])


def test_same_values_every_run_under_jit_and_for_arrays(key):
    a = jinit.init_tree(key, reference_tree(), RULES)
    b = jinit.init_tree(key, reference_tree(), RULES)
    c = jax.jit(lambda k: jinit.init_tree(k, reference_tree(), RULES))(key)
    d = jinit.init_tree(key, a, RULES)  # arrays work as abstract leaves
    for other in (b, c, d):
        assert_trees_equal(a, other)


def test_key_forms(key):
    a = jinit.init_tree(7, reference_tree(), RULES)
    b = jinit.init_tree(jax.random.PRNGKey(7), reference_tree(), RULES)
    c = jinit.init_tree(jax.random.key(7), reference_tree(), RULES)
    assert_trees_equal(a, b)
    assert_trees_equal(a, c)


def test_first_match_wins_and_dict_rules_are_ordered(key):
    tree = {"mlp": {"kernel": SDS((4, 4), jnp.float32)}}
    first = jinit.init_tree(key, tree, {r"kernel": jinit.ones, r"mlp": jinit.zeros})
    second = jinit.init_tree(key, tree, [(r"mlp", jinit.zeros), (r"kernel", jinit.ones)])
    assert (np.asarray(first["mlp"]["kernel"]) == 1).all()
    assert (np.asarray(second["mlp"]["kernel"]) == 0).all()


def test_default(key):
    out = jinit.init_tree(key, {"w": SDS((3,), jnp.float32)}, [], default=jinit.ones)
    assert (np.asarray(out["w"]) == 1).all()


def test_no_recompile_on_second_call(key):
    traces = []

    def counting(k, shape, dtype=None, out_sharding=None):
        traces.append(1)
        return jinit.zeros(k, shape, dtype, out_sharding)

    tree = {"w": SDS((3,), jnp.float32)}
    jinit.init_tree(key, tree, [("w", counting)])
    jinit.init_tree(jax.random.key(1), tree, [("w", counting)])
    assert len(traces) == 1


# --- Sharding -------------------------------------------------------------------------------

BIG = {f"layer_{i}": {"kernel": SDS((512, 1024), jnp.float32)} for i in range(4)}
BIG_BYTES = 4 * 512 * 1024 * 4
MESHES = [(1, 1), (2, 4), (4, 2), (8, 1)]


def make_mesh(shape, devices, axis_type=AxisType.Auto):
    n = shape[0] * shape[1]
    return jax.make_mesh(shape, ("a", "b"), devices=devices[:n], axis_types=(axis_type,) * 2)


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit])
@pytest.mark.parametrize("shape", MESHES)
def test_sharded_equals_unsharded(shape, axis_type, devices, key):
    mesh = make_mesh(shape, devices, axis_type)
    ref = jinit.init_tree(key, reference_tree(), RULES)
    spec = jax.tree.map(lambda s: P("a", "b") if s.ndim >= 2 else P("b"), reference_tree())
    out = jinit.init_tree(key, reference_tree(), RULES, shardings=spec, mesh=mesh)
    assert_trees_equal(out, ref)
    table = out["params"]["embed"]["table"]
    assert table.sharding == NamedSharding(mesh, P("a", "b"))


@pytest.mark.parametrize("shape", MESHES)
def test_peak_memory_per_device_is_one_shard(shape, devices, key):
    n = shape[0] * shape[1]
    mesh = make_mesh(shape, devices)
    leaves, _ = _tree.plan(
        BIG, [("kernel", jinit.he_normal())], None, NamedSharding(mesh, P("a", "b")), None
    )
    fn = _tree.compiled_builder(leaves, "threefry2x32", "init_tree")
    mem = fn.lower(jax.random.key_data(key)).compile().memory_analysis()
    # The output buffers are exactly one shard per leaf (plus 8 bytes per leaf: the output tuple).
    assert mem.output_size_in_bytes == BIG_BYTES // n + 8 * len(BIG)
    # Temporaries: the shard of one chunk's stacked draws (here the whole group: the tree is
    # below the chunk budget) and the loop's hoisted uint32 counters of one leaf's shard.
    assert mem.temp_size_in_bytes <= (BIG_BYTES + BIG_BYTES // len(BIG)) // n + 4096


def test_shardings_from_tree_prefix_and_leaves(devices, key):
    mesh = make_mesh((2, 4), devices)
    s = NamedSharding(mesh, P("a", "b"))
    ref = jinit.init_tree(key, BIG, [("kernel", jinit.he_normal())])
    by_tree = jinit.init_tree(
        key, BIG, [("kernel", jinit.he_normal())], shardings=jax.tree.map(lambda _: s, BIG)
    )
    by_prefix = jinit.init_tree(key, BIG, [("kernel", jinit.he_normal())], shardings=s)
    carried = jax.tree.map(lambda x: SDS(x.shape, x.dtype, sharding=s), BIG)
    by_leaf = jinit.init_tree(key, carried, [("kernel", jinit.he_normal())])
    for out in (by_tree, by_prefix, by_leaf):
        assert_trees_equal(out, ref)
        assert all(x.sharding == s for x in jax.tree.leaves(out))
    replicated = jinit.init_tree(key, BIG, [("kernel", jinit.he_normal())], mesh=mesh)
    assert all(x.sharding == NamedSharding(mesh, P()) for x in jax.tree.leaves(replicated))


# --- Seed ensembles -------------------------------------------------------------------------


def test_vmap_over_keys_gives_each_replica(devices):
    keys = jax.random.split(jax.random.key(0), 3)
    ens = jax.vmap(lambda k: jinit.init_tree(k, reference_tree(), RULES))(keys)
    seeds = jax.vmap(lambda s: jinit.init_tree(s, reference_tree(), RULES))(jnp.arange(3))
    for i in range(3):
        one = jinit.init_tree(keys[i], reference_tree(), RULES)
        assert_trees_equal(jax.tree.map(lambda x, i=i: x[i], ens), one)
        assert_trees_equal(
            jax.tree.map(lambda x, i=i: x[i], seeds), jinit.init_tree(i, reference_tree(), RULES)
        )


def test_vmap_with_shardings(devices):
    mesh = make_mesh((2, 4), devices)
    keys = jax.random.split(jax.random.key(0), 2)
    ens = jax.vmap(
        lambda k: jinit.init_tree(
            k, BIG, [("kernel", jinit.he_normal())], shardings=P("a", "b"), mesh=mesh
        )
    )(keys)
    one = jinit.init_tree(keys[1], BIG, [("kernel", jinit.he_normal())])
    assert_trees_equal(jax.tree.map(lambda x: x[1], ens), one)


# --- Errors ---------------------------------------------------------------------------------


def test_unmatched_leaf_names_path_and_patterns(key):
    with pytest.raises(
        ValueError,
        match=r"no rule matches the parameter 'params/Block_0/norm/scale'; "
        r"the patterns are 'kernel\$', 'bias\$'\. Add a rule "
        r"or pass `default=`\.",
    ):
        jinit.init_tree(key, reference_tree(), [("kernel$", jinit.zeros), ("bias$", jinit.zeros)])


@pytest.mark.parametrize(
    "rules, error, message",
    [
        ([("k(", jinit.zeros)], ValueError, r"the pattern 'k\(' is not a valid regular expression"),
        ([("k", 3)], TypeError, r"the initializer for pattern 'k' must be callable.*got 3"),
        ([(3, jinit.zeros)], TypeError, r"a rule's pattern must be a str; got 3"),
        ([("k",)], TypeError, r"each rule must be a \(pattern, initializer\) pair; got \('k',\)"),
        ("kernel", TypeError, r"`init_tree\(rules=...\)` must be a sequence of .*got 'kernel'"),
    ],
)
def test_bad_rules_fail_before_any_work(rules, error, message, key):
    with pytest.raises(error, match=message):
        jinit.init_tree(key, {"w": SDS((2,), jnp.float32)}, rules)


def test_bad_default(key):
    with pytest.raises(TypeError, match=r"`init_tree\(default=...\)` must be an initializer"):
        jinit.init_tree(key, {"w": SDS((2,), jnp.float32)}, [], default="zeros")


def test_bad_leaf(key):
    with pytest.raises(
        TypeError,
        match=r"the parameter 'w/0' must be a jax.ShapeDtypeStruct or "
        r"an array; got 'x'",
    ):
        jinit.init_tree(key, {"w": ["x"]}, [("w", jinit.zeros)])


def test_initializer_errors_name_the_path(key):
    with pytest.raises(
        TypeError,
        match=r"the parameter 'step' \(rule 'step'\): `normal`: "
        r"`dtype` must be a floating",
    ):
        jinit.init_tree(key, {"step": SDS((), jnp.int32)}, [("step", jinit.normal())])


def test_initializer_returning_wrong_shape(key):
    def bad(k, shape, dtype=None, out_sharding=None):
        return jnp.zeros((1,), dtype)

    with pytest.raises(
        ValueError,
        match=r"the initializer for 'w' \(rule 'w'\) returned "
        r"float32\[1\]; expected float32\[2, 3\]",
    ):
        jinit.init_tree(key, {"w": SDS((2, 3), jnp.float32)}, [("w", bad)])


def test_sharding_errors(devices, key):
    tree = {"w": SDS((8,), jnp.float32), "b": SDS((8,), jnp.float32)}
    with pytest.raises(ValueError, match=r"the parameter 'b' has PartitionSpec .*; pass `mesh=`"):
        jinit.init_tree(key, tree, [("", jinit.zeros)], shardings=P("a"))
    with pytest.raises(
        ValueError,
        match=r"`init_tree\(shardings=...\)` must be a sharding, or a "
        r"pytree of shardings whose structure is a prefix",
    ):
        jinit.init_tree(key, tree, [("", jinit.zeros)], shardings={"w": P()})
    abstract_mesh = make_mesh((2, 4), devices).abstract_mesh
    leafy = {"w": SDS((8,), jnp.float32, sharding=NamedSharding(abstract_mesh, P("b")))}
    with pytest.raises(
        ValueError,
        match=r"'w' is sharded over an abstract mesh .*pass the "
        r"concrete `mesh=`",
    ):
        jinit.init_tree(key, leafy, [("", jinit.zeros)])


def test_a_flat_path_keyed_dict_keeps_the_nested_values(key):
    """'/' in a key reads as nesting, on purpose: flattening a tree keeps its values."""
    nested = jinit.init_tree(key, {"a": {"b": SDS((4,), jnp.float32)}}, [(".*", jinit.normal())])
    flat = jinit.init_tree(key, {"a/b": SDS((4,), jnp.float32)}, [(".*", jinit.normal())])
    np.testing.assert_array_equal(flat["a/b"], nested["a"]["b"])


def test_init_tree_calls_a_three_argument_initializer(key):
    def init(key, shape, dtype):
        return jnp.full(shape, 3.0, dtype)

    out = jinit.init_tree(key, {"w": SDS((2, 3), jnp.bfloat16)}, [(".*", init)])
    assert out["w"].dtype == jnp.bfloat16 and float(out["w"].sum()) == 18.0


def test_init_tree_lays_out_a_three_argument_initializer_on_explicit_axes(key):
    """Under an Explicit-axis sharding a 3-argument init is called without `out_sharding`."""

    def init(key, shape, dtype):
        return jinit.normal(1.0)(key, shape, dtype)

    mesh = jax.make_mesh((2, 4), ("x", "y"), axis_types=(AxisType.Explicit,) * 2)
    sharding = jax.sharding.NamedSharding(mesh, jax.P("x", "y"))
    tree = {"w": SDS((8, 16), jnp.float32)}
    out = jinit.init_tree(key, tree, [(".*", init)], shardings=sharding)
    assert out["w"].sharding.is_equivalent_to(sharding, 2)
    want = jinit.normal(1.0)(jinit.key_for_path(key, "w"), (8, 16))
    np.testing.assert_array_equal(np.asarray(out["w"]), np.asarray(want))

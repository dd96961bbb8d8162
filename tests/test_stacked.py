"""jinit.stacked: scanned (stacked) parameters keyed like their unrolled twins."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit

SDS = jax.ShapeDtypeStruct
L, D = 5, 16


def scanned_tree(dtype=jnp.float32):
    return {
        "params": {
            "embed": SDS((32, D), dtype),
            "layers": {
                "mlp": {"kernel": SDS((L, D, 4 * D), dtype), "bias": SDS((L, 4 * D), dtype)},
                "attn": {"kernel": SDS((L, D, 3, 8), dtype)},
            },
        }
    }


def unrolled_tree(dtype=jnp.float32):
    layers = {
        str(i): {
            "mlp": {"kernel": SDS((D, 4 * D), dtype), "bias": SDS((4 * D,), dtype)},
            "attn": {"kernel": SDS((D, 3, 8), dtype)},
        }
        for i in range(L)
    }
    return {"params": {"embed": SDS((32, D), dtype), "layers": layers}}


def layer_rules(wrap):
    return [
        ("embed", jinit.normal(0.02)),
        ("mlp/kernel", wrap(jinit.he_normal())),
        ("bias", wrap(jinit.uniform(0.1))),
        ("attn/kernel", wrap(jinit.lecun_normal(in_axis=0, out_axis=(1, 2)))),
    ]


@pytest.mark.parametrize("group", [True, False])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_scanned_equals_unrolled_both_ways(key, dtype, group):
    scanned = jinit.init_tree(
        key,
        scanned_tree(dtype),
        layer_rules(lambda i: jinit.stacked(i, unroll="layers")),
        group=group,
    )
    unrolled = jinit.init_tree(key, unrolled_tree(dtype), layer_rules(lambda i: i))
    s, u = scanned["params"], unrolled["params"]
    np.testing.assert_array_equal(np.asarray(s["embed"]), np.asarray(u["embed"]))
    for i in range(L):  # each layer of the stack is its unrolled twin ...
        for name in ("mlp/kernel", "mlp/bias", "attn/kernel"):
            a, b = name.split("/")
            np.testing.assert_array_equal(
                np.asarray(s["layers"][a][b][i]), np.asarray(u["layers"][str(i)][a][b])
            )
    # ... and the unrolled layers stacked are the scanned parameter.
    stacked = jnp.stack([u["layers"][str(i)]["mlp"]["kernel"] for i in range(L)])
    np.testing.assert_array_equal(np.asarray(stacked), np.asarray(s["layers"]["mlp"]["kernel"]))


def test_fans_exclude_the_stack_axis(key):
    w = jinit.init_tree(
        key,
        {"layers": {"kernel": SDS((64, 256, 256), jnp.float32)}},
        [("kernel", jinit.stacked(jinit.variance_scaling(1.0, "fan_in", "normal"), "layers"))],
    )["layers"]["kernel"]
    assert abs(float(jnp.var(w)) * 256 - 1.0) < 0.02  # fan_in 256, not 256 * 64


def test_two_stack_axes_and_callable_unroll(key):
    unroll = lambda path, idx: path.replace("stages", f"stage_{idx[0]}/layer_{idx[1]}")
    rules = [("w", jinit.stacked(jinit.glorot_uniform(), unroll, axes=2))]
    out = jinit.init_tree(key, {"stages": {"w": SDS((2, 3, 8, 4), jnp.float32)}}, rules)
    twin = jinit.glorot_uniform()(jinit.key_for_path(key, "stage_1/layer_2/w"), (8, 4))
    np.testing.assert_array_equal(np.asarray(out["stages"]["w"][1, 2]), np.asarray(twin))


def test_one_loop_whatever_the_depth():
    """The stacked leaf is one loop: its lowered program holds one sampler, at any depth."""
    from jinit import _tree

    def samplers(layers):
        tree = {"layers": {"kernel": SDS((layers, 16, 64), jnp.float32)}}
        rules = [("kernel", jinit.stacked(jinit.lecun_normal(), "layers"))]
        leaves, _ = _tree.plan(tree, rules, None, None, None)
        fn = _tree.compiled_builder(leaves, "threefry2x32", "init_tree")
        return fn.lower(jax.random.key_data(jax.random.key(0))).as_text().count("stablehlo.while")

    assert samplers(4) == samplers(64) >= 1


def test_direct_call_uses_fold_in(key):
    init = jinit.stacked(jinit.normal(1.0), "layers")
    w = init(key, (3, 4, 5))
    np.testing.assert_array_equal(
        np.asarray(w[1]), np.asarray(jinit.normal(1.0)(jax.random.fold_in(key, 1), (4, 5)))
    )


def test_errors():
    with pytest.raises(ValueError, match=r"`stacked\(axes=...\)` must be a positive int; got 0"):
        jinit.stacked(jinit.zeros, "layers", axes=0)
    with pytest.raises(TypeError, match=r"`stacked\(unroll=...\)` must be a non-empty path"):
        jinit.stacked(jinit.zeros, "")
    with pytest.raises(ValueError, match=r"'params/blocks/w' has no path component 'layers'"):
        jinit.init_tree(
            0,
            {"params": {"blocks": {"w": SDS((2, 3), jnp.float32)}}},
            [("w", jinit.stacked(jinit.zeros, "layers"))],
        )
    with pytest.raises(ValueError, match=r"needs a shape with at least 2 axes; got \(3,\)"):
        jinit.init_tree(
            0,
            {"layers": SDS((3,), jnp.float32)},
            [("", jinit.stacked(jinit.zeros, "layers", axes=2))],
        )


@pytest.mark.parametrize("axis_type", ["Auto", "Explicit"])
def test_a_sharded_stack_is_drawn_shard_by_shard(key, devices, axis_type):
    """On a 2x4 mesh each device holds one shard of the stack and draws only that: the output
    is one shard, the temporaries a fraction of one layer's shard (the loop's counters); values
    equal the unsharded stack's."""
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    from jinit import _tree

    mesh = jax.make_mesh((2, 4), ("a", "b"), (getattr(AxisType, axis_type),) * 2, devices=devices)
    tree = {"params": {"layers": {"mlp": {"kernel": SDS((6, 512, 1024), jnp.float32)}}}}
    rules = [("kernel", jinit.stacked(jinit.he_normal(), "layers"))]
    sharding = NamedSharding(mesh, P(None, "a", "b"))
    leaves, _ = _tree.plan(tree, rules, None, sharding, None)
    fn = _tree.compiled_builder(leaves, "threefry2x32", "init_tree")
    mem = fn.lower(jax.random.key_data(key)).compile().memory_analysis()
    shard = 6 * 512 * 1024 * 4 // 8
    assert mem.output_size_in_bytes == shard  # (one leaf: no output tuple)
    assert mem.temp_size_in_bytes <= shard // 6 + 4096  # one layer's shard of counters
    out = jinit.init_tree(key, tree, rules, shardings=sharding)["params"]["layers"]["mlp"]
    ref = jinit.init_tree(key, tree, rules)["params"]["layers"]["mlp"]
    assert out["kernel"].sharding == sharding
    np.testing.assert_array_equal(np.asarray(out["kernel"]), np.asarray(ref["kernel"]))

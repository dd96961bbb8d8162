"""Grouped generation in init_tree: the sampling protocol, kernel counts and memory bounds."""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding as NS
from jax.sharding import PartitionSpec as P

import jinit
from jinit import _tree
from jinit._rng import draws as _draws
from jinit._rng import portable as _portable
from jinit._tree import build as _build
from jinit._tree import stream as _stream

SDS = jax.ShapeDtypeStruct
ERF_INV = r"chlo\.erf_inv "  # one per normal sampler kernel in the lowered StableHLO
# Flax's defaults, as in bench/presets.py.
RULES = [
    (r"embedding$", jinit.variance_scaling(1.0, "fan_in", "normal", out_axis=0)),
    (r"kernel$", jinit.lecun_normal()),
    (r"bias$", jinit.zeros),
    (r"scale$", jinit.ones),
]


def gpt2_tree(layers: int, d: int = 32, vocab: int = 96, ctx: int = 16, dtype=jnp.float32):
    """GPT-2's parameter paths and shapes (untied head), small widths."""
    tree = {
        "wte": {"embedding": SDS((vocab, d), dtype)},
        "wpe": {"embedding": SDS((ctx, d), dtype)},
    }
    for i in range(layers):
        tree[f"h_{i}"] = {
            "ln_1": {"scale": SDS((d,), dtype), "bias": SDS((d,), dtype)},
            "attn": {
                "c_attn": {"kernel": SDS((d, 3 * d), dtype), "bias": SDS((3 * d,), dtype)},
                "c_proj": {"kernel": SDS((d, d), dtype), "bias": SDS((d,), dtype)},
            },
            "ln_2": {"scale": SDS((d,), dtype), "bias": SDS((d,), dtype)},
            "mlp": {
                "c_fc": {"kernel": SDS((d, 4 * d), dtype), "bias": SDS((4 * d,), dtype)},
                "c_proj": {"kernel": SDS((4 * d, d), dtype), "bias": SDS((d,), dtype)},
            },
        }
    tree["ln_f"] = {"scale": SDS((d,), dtype), "bias": SDS((d,), dtype)}
    tree["lm_head"] = {"kernel": SDS((d, vocab), dtype)}
    return {"params": tree}


def sampler_kernels(tree, rules=RULES, group=True) -> int:
    """``erf_inv`` ops (one per normal sampler kernel) in the program XLA compiles.

    Counted in the lowered StableHLO with its function calls inlined, as XLA inlines them: jax
    lowers each distinct jitted kernel once and calls it, so a bare count of the text would see
    one per distinct shape even when every leaf has its own copy. A loop body counts once.
    """
    leaves, _ = _tree.plan(tree, rules, None, None, None)
    fn = _tree.compiled_builder(leaves, "threefry2x32", "init_tree", group)
    text = fn.lower(jax.random.key_data(jax.random.key(0))).as_text()
    bodies = dict(
        re.findall(r"func\.func (?:public |private )?@(\w+)(.*?)(?=\n  func\.func|\Z)", text, re.S)
    )

    @functools.cache
    def inlined(name: str) -> int:
        body = bodies[name]
        calls = re.findall(r"call @(\w+)\(", body)
        return len(re.findall(ERF_INV, body)) + sum(inlined(c) for c in calls)

    return inlined("main")


def test_sampler_kernels_do_not_grow_with_depth():
    """The program for 48 layers holds as many erf_inv chains (one per sampler kernel) as 12."""
    counts = {n: sampler_kernels(gpt2_tree(n)) for n in (12, 48)}
    assert counts[12] == counts[48], counts
    # One per draw, whatever the shapes: the embeddings' normal and the kernels' truncated
    # normal, each drawn in one loop body (jinit._tree.build.Stream).
    assert counts[12] == 2, counts


def test_per_leaf_path_would_grow_with_depth():
    """The same count on a user's own per-leaf initializer grows with depth: the test can fail."""

    def own(key, shape, dtype):  # a plain function: no `sampling`, one kernel per leaf
        return jax.lax.erf_inv(jax.random.uniform(key, shape, dtype, -0.9, 0.9))

    rules = [(r"(kernel|embedding)$", own), (r".*", jinit.zeros)]
    counts = {n: sampler_kernels(gpt2_tree(n), rules) for n in (2, 4)}
    assert counts[4] > counts[2], counts
    counts = {n: sampler_kernels(gpt2_tree(n), group=False) for n in (2, 4)}
    assert counts == {2: 2 * 4 + 3, 4: 4 * 4 + 3}, counts  # per leaf: kernels, head, embeddings


def test_three_argument_user_initializer():
    """Flax's documented signature init(key, shape, dtype) works, leaf by leaf."""

    def own(key, shape, dtype):
        return jax.random.uniform(key, shape, dtype)

    tree = {"a": SDS((4, 8), jnp.float32), "b": SDS((4, 8), jnp.float32)}
    out = jinit.init_tree(0, tree, [(".*", own)])
    expected = own(jinit.key_for_path(0, "a"), (4, 8), jnp.float32)
    np.testing.assert_array_equal(np.asarray(out["a"]), np.asarray(expected))


def test_jax_catalog_implements_the_protocol():
    f32 = np.dtype(np.float32)
    for init in (
        jinit.lecun_normal(),
        jinit.glorot_uniform(),
        jinit.he_normal(),
        jinit.normal(0.02),
        jinit.uniform(),
        jinit.truncated_normal(),
        jinit.orthogonal(),
        jinit.torch.linear_default(),
        jinit.scaled_residual(12),
    ):
        s = init.sampling((8, 16), f32)
        assert isinstance(s, _draws.Sampling), init
    # Complex dtypes and traced bounds are drawn leaf by leaf.
    assert jinit.normal().sampling((8, 16), np.dtype(np.complex64)) is None
    assert jinit.lecun_normal().sampling((8, 16), np.dtype(np.complex64)) is None


def test_equal_draws_group_and_different_ones_do_not():
    f32 = np.dtype(np.float32)
    a = jinit.lecun_normal().sampling((8, 16), f32)
    b = jinit.he_normal().sampling((8, 16), f32)  # same truncated normal, other scale
    c = jinit.glorot_uniform().sampling((8, 16), f32)
    assert a.draw == b.draw and hash(a.draw) == hash(b.draw)
    assert a.draw != c.draw


def test_bad_sampling_result_names_the_parameter():
    def init(key, shape, dtype=None, out_sharding=None):
        return jnp.zeros(shape, dtype)

    init.sampling = lambda shape, dtype: "not a sampling"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=r"the parameter 'w'.*must return a jinit Sampling"):
        jinit.init_tree(0, {"w": SDS((2, 2), jnp.float32)}, [(".*", init)])


def test_chunks_bound_temporaries_of_a_large_tree():
    """A 1.2 GB tree: XLA's temporaries stay under 10% of the parameter bytes (compiled only)."""
    tree = {f"layer_{i}": {"kernel": SDS((4096, 4096), jnp.float32)} for i in range(18)}
    nbytes = 18 * 4096 * 4096 * 4
    leaves, _ = _tree.plan(tree, [("kernel", jinit.lecun_normal())], None, None, None)
    assert _build.chunk_budget(leaves) < 0.1 * nbytes
    fn = _tree.compiled_builder(leaves, "threefry2x32", "init_tree")
    mem = fn.lower(jax.random.key_data(jax.random.key(0))).compile().memory_analysis()
    assert mem.output_size_in_bytes >= nbytes
    assert mem.temp_size_in_bytes <= 0.1 * nbytes, mem.temp_size_in_bytes / nbytes


def llama_like(dtype, layers=12):
    square, wide = SDS((1024, 1024), dtype), SDS((1024, 2816), dtype)
    layer = {"q": square, "o": square, "up": wide, "down": SDS((2816, 1024), dtype)}
    tree = {f"layer_{i}": layer for i in range(layers)}
    nbytes = layers * 2 * (1024 * 1024 + 1024 * 2816) * np.dtype(dtype).itemsize
    return tree, nbytes


def chunked_temporaries(monkeypatch, tree, nbytes, chunks=20) -> float:
    """XLA's temporaries for ``tree`` drawn in about ``chunks`` chunks, over one chunk's bytes."""
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: nbytes // chunks)
    rules = [("q|o", jinit.lecun_normal()), ("up|down", jinit.he_normal())]
    leaves, _ = _tree.plan(tree, rules, None, None, None)
    budget = _build.chunk_budget(leaves)
    fn = _tree.compiled_builder(leaves, "threefry2x32", "init_tree")
    mem = fn.lower(jax.random.key_data(jax.random.key(0))).compile().memory_analysis()
    return mem.temp_size_in_bytes / budget


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_chunks_share_one_buffer(monkeypatch, dtype):
    """A tree of LLaMA-like layers in 20 chunks: XLA's temporaries stay within 1.25 chunks, one
    buffer reused by every chunk and the loop's draw.

    (Each loop used to start from one zeros array that XLA shared between the loops of a shape
    and made first; its buffers then stepped through memory, 7.6 chunks in bfloat16. A float32
    chunk's buffer is only reused because its loop carries the leaves cut from it before: 2.7
    chunks without.)"""
    assert chunked_temporaries(monkeypatch, *llama_like(dtype)) <= 1.25


def test_chunk_budget_follows_the_buffers_xla_keeps():
    """8% of the bytes a device holds when one buffer serves every chunk (unsharded), 1.25% for
    sharded stacks (two buffers alive at once), counted per device (a split leaf's shard); a
    tree under 1 GiB a device is budgeted as one of 1 GiB."""
    big = {f"w{i}": SDS((8192, 8192), jnp.float32) for i in range(8)}  # 2 GiB
    rules = [(".*", jinit.lecun_normal())]

    def budget(tree, mesh):
        return _build.chunk_budget(_tree.plan(tree, rules, None, None, mesh)[0])

    assert budget(big, None) == int(0.08 * 2**31)
    half = {k: SDS(v.shape, jnp.bfloat16) for k, v in big.items()}  # 1 GiB
    assert budget(half, None) == int(0.08 * 2**30)
    assert budget({"w": SDS((16, 16), jnp.float32)}, None) == int(0.08 * 2**30)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:2]), ("x",))
    sharded = {
        k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=NS(mesh, P("x"))) for k, v in big.items()
    }
    assert budget(sharded, mesh) == int(0.0125 * 2**30)  # 1 GiB on each of 2 devices
    # split over a mesh axis of one device, a leaf is whole: budgeted (and streamed) as unsharded
    one = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("x",))
    whole = {k: SDS(v.shape, v.dtype, sharding=NS(one, P("x"))) for k, v in big.items()}
    assert budget(whole, one) == int(0.08 * 2**31)


def test_chunking_keeps_bits(monkeypatch, key):
    """Leaves cut from chunks of one, two or all equal the leaves drawn alone."""
    tree = {f"w{i}": SDS((16, 32), jnp.float32) for i in range(5)}
    rules = [(".*", jinit.he_uniform())]
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: 16 * 32 * 4 * 2)  # two per chunk
    _tree.compiled_builder.cache_clear()
    chunked = jinit.init_tree(key, tree, rules)
    _tree.compiled_builder.cache_clear()
    for path, x in chunked.items():
        alone = jinit.he_uniform()(jinit.key_for_path(key, path), (16, 32))
        np.testing.assert_array_equal(np.asarray(x), np.asarray(alone))


def test_group_false_same_values_one_kernel_per_leaf(key):
    tree = gpt2_tree(3)
    grouped = jinit.init_tree(key, tree, RULES)
    per_leaf = jinit.init_tree(key, tree, RULES, group=False)
    for a, b in zip(jax.tree.leaves(grouped), jax.tree.leaves(per_leaf), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# The factories without fans, each stated as one formula (jinit._rng.formula): the grouped draw
# and the eager call derive from it.
BASIC = {
    "normal": jinit.normal(0.3),
    "uniform": jinit.uniform(-2.5),
    "truncated_normal": jinit.truncated_normal(0.7),
    "truncated_normal_bounds": jinit.truncated_normal(0.7, lower=-1.5, upper=3.0),
    "scaled_normal": jinit.scaled(jinit.normal(0.3), 0.5),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
def test_basic_families_grouped_equal_each_leaf_alone(dtype, key):
    """Several leaves of one family, of two shapes (a group and a stream), each equal to the
    eager call with its path's key, and to ``group=False``."""
    shapes = {"a": (16, 32), "b": (16, 32), "c": (3, 3, 8, 16)}
    tree = {f"{n}/{p}": SDS(shape, dtype) for n in BASIC for p, shape in shapes.items()}
    rules = [(rf"^{n}/", init) for n, init in BASIC.items()]
    grouped = jinit.init_tree(key, tree, rules)
    per_leaf = jinit.init_tree(key, tree, rules, group=False)
    for path, x in grouped.items():
        alone = BASIC[path.split("/")[0]](jinit.key_for_path(key, path), x.shape, dtype)
        assert x.dtype == dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(alone), err_msg=path)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(per_leaf[path]), err_msg=path)


def test_group_must_be_a_bool():
    message = r"`init_tree\(group=...\)` must be a bool or None; got 'yes'"
    with pytest.raises(TypeError, match=message):
        jinit.init_tree(0, {"w": SDS((2, 2), jnp.float32)}, [(".*", jinit.zeros)], group="yes")


def test_empty_leaves_beside_a_group(key):
    """Zero-size leaves are made leaf by leaf; their neighbours keep their bits."""
    tree = {n: SDS((0, 4) if n in "ab" else (3, 4), jnp.float32) for n in "abcde"}
    out = jinit.init_tree(key, tree, [(".*", jinit.normal())])
    assert out["a"].shape == (0, 4)
    for n in "cde":
        alone = jinit.normal()(jinit.key_for_path(key, n), (3, 4))
        np.testing.assert_array_equal(np.asarray(out[n]), np.asarray(alone))


@pytest.mark.parametrize("group", [True, False])
def test_empty_tree(key, group):
    """A tree without parameters raises (initialising it would silently do nothing); a tree of
    zero-size parameters is built."""
    with pytest.raises(ValueError, match=r"`init_tree`: the tree holds no parameter"):
        jinit.init_tree(key, {}, [(".*", jinit.normal())], group=group)
    out = jinit.init_tree(key, {"w": SDS((0, 3), jnp.float32)}, [(".*", jinit.normal())])
    assert out["w"].shape == (0, 3)


BLOCK_DRAWS = [
    _draws.uniform(-1.0, 1.0),
    _draws.uniform(0.25, 3.0),
    _draws.normal(),
    _draws.truncated_normal(-2.0, 2.0),
    _draws.truncated_normal(-1.5, 3.0),
]


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("draw", BLOCK_DRAWS, ids=lambda d: f"{d.name}{d.args}")
def test_block_form_gives_the_kernels_values(draw, portable):
    """``Draw.block`` on explicit counters, a key per row, equals each key's whole draw read at
    those row-major indices: out of order, across rows of different keys, to the last element."""
    if portable:
        draw = _draws.portable_sampling(_draws.Sampling(draw, lambda z: z)).draw
    shape = (37, 129)  # 4773 elements, not a multiple of a stream's row
    keys = [jax.random.key(3), jax.random.key(11)]
    with _portable.mode(portable):
        # (Both under jit, as in init_tree: the bounds are constants XLA folds, and its folded
        # erf may differ by an ulp from the one an eager call computes.)
        whole = [np.asarray(jax.jit(lambda k: draw(k, shape))(k)).ravel() for k in keys]
        rng = np.random.default_rng(0)
        idx = np.stack([rng.permutation(4773)[:64], rng.permutation(4773)[:64]])
        idx[1, -1] = 4772
        words = np.stack([np.asarray(jax.random.key_data(k)) for k in keys])  # (2, 2)
        k0, k1 = jnp.asarray(words[:, :1]), jnp.asarray(words[:, 1:])
        got = jax.jit(lambda c: draw.block(k0, k1, c, *draw.args))(jnp.asarray(idx, jnp.uint32))
    np.testing.assert_array_equal(np.asarray(got), np.stack([whole[r][idx[r]] for r in range(2)]))


def test_streams_keep_the_bits_of_uncommon_bounds(key):
    """Truncated normals with bounds whose erf XLA folds differently from the kernels' (and a
    uniform of odd bounds), streamed with other shapes, equal the same leaves drawn alone."""
    tree = {
        "a": SDS((37, 129), jnp.float32),
        "b": SDS((5, 7, 11), jnp.bfloat16),
        "c": SDS((2048,), jnp.float32),
        "u": SDS((3, 1000), jnp.float32),
    }
    rules = [
        ("a|b|c", jinit.truncated_normal(0.7, lower=-1.5, upper=3.0)),
        ("u", jinit.uniform(0.3)),
    ]
    grouped = jinit.init_tree(key, tree, rules)
    alone = jinit.init_tree(key, tree, rules, group=False)
    for k in tree:
        np.testing.assert_array_equal(np.asarray(grouped[k]), np.asarray(alone[k]), err_msg=k)


def test_a_small_draw_of_one_shape_is_grouped_not_streamed(monkeypatch, key):
    """On a CPU a draw whose leaves share one shape and are small (LoRA adapters) is one kernel
    for that shape, not a stream (its loop compiles slower); with two shapes it is a stream.
    The bits are the same either way."""
    made = []
    real = _stream.Stream.__init__

    def counting(self, *args, **kwargs):
        made.append(len(args[2]))  # the stream's paths
        real(self, *args, **kwargs)

    monkeypatch.setattr(_stream.Stream, "__init__", counting)
    adapters = {f"a{i}": SDS((64, 8), jnp.float32) for i in range(12)}
    rules = [(".*", jinit.lecun_normal())]
    out = jinit.init_tree(key, adapters, rules, group=True)
    assert made == []
    two_shapes = {**adapters, "b": SDS((8, 64), jnp.float32)}
    both = jinit.init_tree(key, two_shapes, rules, group=True)
    assert made == [13]
    alone = jinit.init_tree(key, two_shapes, rules, group=False)
    for name, x in out.items():
        np.testing.assert_array_equal(x, alone[name])
        np.testing.assert_array_equal(both[name], alone[name])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_a_small_group_of_one_finish_is_one_stacked_kernel_with_per_leaf_bits(dtype):
    """LoRA-style adapters (twelve leaves of one shape, draw and finish) are drawn and finished
    by one kernel on a CPU and cut into leaves on the host: the same bits as each leaf drawn
    alone with its path key, eagerly and under a caller's ``jit``; independent arrays."""
    init = jinit.torch.kaiming_uniform(a=float(np.sqrt(5)))
    tree = {f"lora_{i}": {"a": SDS((48, 8), dtype), "b": SDS((8, 96), dtype)} for i in range(12)}
    tree["head"] = SDS((48, 10), dtype)  # another shape: drawn alone
    rules = [(r"/a$", init), (r"/b$", jinit.zeros), ("head", jinit.normal(0.02))]
    key = jax.random.key(7)
    out = jinit.init_tree(key, tree, rules)
    for i in range(12):
        path = f"lora_{i}/a"
        want = init(jinit.key_for_path(key, path), (48, 8), dtype)
        got = out[f"lora_{i}"]["a"]
        assert got.dtype == dtype and isinstance(got, jax.Array)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=path)
    traced = jax.jit(lambda k: jinit.init_tree(k, tree, rules))(key)
    jax.tree.map(np.testing.assert_array_equal, traced, out)
    # One kernel for the twelve (the plan's stacked parts), and the parts are their own arrays.
    leaves, _ = _tree.plan(tree, rules, None, None, None)
    fn = _tree.compiled_builder(tuple(leaves), "threefry2x32", "init_tree")
    fn.lower(jax.random.key_data(key))
    assert len(fn.layout) == 12 and {k for k, _ in fn.layout.values()} == {0}
    first = out["lora_0"]["a"]
    first.delete()
    np.testing.assert_array_equal(np.asarray(out["lora_1"]["a"]), np.asarray(traced["lora_1"]["a"]))


def test_groups_of_different_finishes_are_not_stacked():
    """Same draw and shape but different scales: two finishes, no stacked kernel (each leaf
    keeps its own finish: the values of each drawn alone)."""
    tree = {"a": SDS((16, 8), jnp.float32), "b": SDS((16, 8), jnp.float32)}
    rules = [("a", jinit.normal(0.5)), ("b", jinit.normal(2.0))]
    leaves, _ = _tree.plan(tree, rules, None, None, None)
    fn = _tree.compiled_builder(tuple(leaves), "threefry2x32", "init_tree")
    fn.lower(jax.random.key_data(jax.random.key(0)))
    assert fn.layout == {}
    out = jinit.init_tree(0, tree, rules)
    for p, init in rules:
        want = init(jinit.key_for_path(jax.random.key(0), p), (16, 8))
        np.testing.assert_array_equal(out[p], want)

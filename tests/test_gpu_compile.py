"""The tree builder as the GPU compiler sees it: structural checks, no timings.

The CUDA plugin (the ``aot`` extra) compiles for an H100 without a GPU (``bench/gpu.py``), so
the program a GPU would run is checked here on any machine: the schedule jinit picks for GPU
devices, how many copies of the hash XLA:GPU compiles (each one LLVM and ptxas time), the loops
and what they carry. The platform-only branch of the threefry kernels is executed here on the
CPU, forced, and checked bit for bit. Figures (compile seconds) are in bench/RESULTS.md, from
``python -m bench --aot cuda:h100``.
"""

import functools
import math
import re
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jinit
from bench import gpu
from jinit import _jax_compat, _tree
from jinit._rng import threefry
from jinit._tree import build as _build
from jinit._tree import shards as _shards
from jinit._tree import stream as _stream


@functools.cache
def h100() -> Mesh:
    path, topology = gpu.parse_target("cuda:h100")
    return Mesh(np.array(gpu.devices(path, topology)[:1]), ("model",))


def tree(layers: int) -> dict:
    """A small transformer-like tree: an embedding and ``layers`` blocks of four kernels."""
    f32 = jnp.float32
    block = {
        "qkv": jax.ShapeDtypeStruct((128, 384), f32),
        "proj": jax.ShapeDtypeStruct((128, 128), f32),
        "up": jax.ShapeDtypeStruct((128, 512), f32),
        "down": jax.ShapeDtypeStruct((512, 128), f32),
        "bias": jax.ShapeDtypeStruct((128,), f32),
    }
    return {"embed": jax.ShapeDtypeStruct((1000, 128), f32), "h": [block] * layers}


RULES = [(r"embed", jinit.normal(0.02)), (r"bias", jinit.zeros), (r".", jinit.lecun_normal())]


@functools.cache
def compiled(layers: int, group: bool | None) -> dict:
    mesh = h100()
    abstract = tree(layers)
    shardings = jax.tree.map(lambda _: NamedSharding(mesh, PartitionSpec()), abstract)
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=shardings["embed"])

    def body(k):
        return jinit.init_tree(k, abstract, RULES, shardings=shardings, group=group)

    exe = jax.jit(body, out_shardings=shardings).trace(key).lower().compile()
    memory = exe.memory_analysis()
    params = sum(int(np.prod(s.shape)) * 4 for s in jax.tree.leaves(abstract))
    text = exe.as_text()
    return {
        **gpu.structure(text),
        "temp_bytes": int(memory.temp_size_in_bytes),
        "params": params,
        "text": text,
    }


def test_the_schedule_follows_the_platform():
    abstract = {"w": jax.ShapeDtypeStruct((8, 4), np.float32)}
    rules = [(r"w$", jinit.lecun_normal())]
    on_gpu, _ = _tree.plan(abstract, rules, None, NamedSharding(h100(), PartitionSpec()), None)
    assert _build.platform_of(on_gpu) in _build.GPU_PLATFORMS
    assert _build.default_group(on_gpu) is (_build.GPU_SCHEDULE == "streams")


@pytest.mark.parametrize("name", sorted(gpu.TARGETS))
def test_every_target_loads_and_compiles_a_tree(name):
    """Each of ``bench/gpu.py``'s GPUs (XLA's target descriptions, trimmed for this jaxlib)
    loads as a deviceless device of its own kind, states its HBM bandwidth, and compiles a
    2-leaf ``init_tree`` for one device."""
    path, topology = gpu.parse_target(f"cuda:{name}")
    (device,) = gpu.devices(path, topology)
    assert device.platform == "gpu" and "NVIDIA" in device.device_kind
    assert 1e12 < gpu.bandwidth(path) < 1e13
    sharding = NamedSharding(Mesh(np.array([device]), ("model",)), PartitionSpec())
    abstract = {
        "w": jax.ShapeDtypeStruct((16, 8), np.float32),
        "b": jax.ShapeDtypeStruct((8,), np.float32),
    }
    shardings = jax.tree.map(lambda _: sharding, abstract)
    rules = [(r"b$", jinit.zeros), (r"w$", jinit.lecun_normal())]
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=sharding)

    def body(k):
        return jinit.init_tree(k, abstract, rules, shardings=shardings)

    exe = jax.jit(body, out_shardings=shardings).trace(key).lower().compile()
    assert gpu.structure(exe.as_text())["kernels"] >= 1


def test_streams_compile_one_hash_per_draw_whatever_the_depth():
    """The draws' kernels depend on the tree's draws, not on its depth: at 2 and at 6 layers the
    program holds the same number of hashing kernels (each a copy of threefry for LLVM and
    ptxas), while one kernel per leaf grows with the leaves."""
    shallow, deep = compiled(2, True), compiled(6, True)
    assert shallow["samplers"] == deep["samplers"] <= 4
    per_leaf = compiled(6, False)
    assert per_leaf["samplers"] > deep["samplers"]
    # temporaries: a chunk's buffer, never the tree again
    assert deep["temp_bytes"] <= 0.5 * deep["params"] + 2**24


def test_structure_reads_kernels_loops_and_hashes():
    row = compiled(2, True)
    assert row["loops"] >= 2 and row["kernels_per_trip"] >= 1  # key table, a stream per draw
    assert row["kernels"] >= 2
    # the streams' steps and the key table hash with jax's CUDA kernel (a custom call each, no
    # code generated); only a leaf drawn alone fuses jinit's unrolled rounds with its transform
    assert row["hash_custom_calls"] == row["custom_calls"] >= 2
    assert row["samplers"] <= 1
    est = gpu.estimate(row, 100, row["params"], 0, gpu.parse_target("cuda:h100")[0])
    assert est > 100 * gpu.LAUNCH_S


def test_the_gpu_and_tpu_branch_of_the_counters_gives_the_same_bits(monkeypatch, key):
    """``threefry._counter_zero`` ties the counters to the key on a CPU and not elsewhere
    (``lax.platform_dependent``); forced here to the other platforms' branch, every draw is
    jax.random's bits and the tree is unchanged."""
    abstract = tree(2)
    cpu = jinit.init_tree(key, abstract, RULES)
    bits = jax.random.bits(key, (64, 33), np.uint32)

    def default_branch(*args, cpu=None, default=None, **_):
        return default(*args)

    monkeypatch.setattr(threefry.lax, "platform_dependent", default_branch)
    jax.clear_caches()
    _tree.compiled_builder.cache_clear()
    forced = jinit.init_tree(key, abstract, RULES)
    k0, k1 = threefry.key_words(key)
    w0, w1 = jax.jit(lambda a, b: threefry.random_words(a, b, (64, 33)))(k0, k1)
    np.testing.assert_array_equal(np.asarray(w0) ^ np.asarray(w1), bits)
    for a, b in zip(jax.tree.leaves(cpu), jax.tree.leaves(forced), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_gpu_step_of_the_streams_gives_the_same_bits(monkeypatch, key):
    """The streams' GPU path (``GPU_STEP_ROWS`` rows a trip, leaves of any dtype carried through
    the next chunk's loop), forced on the CPU: the same bits as one kernel per leaf, and as the
    CPU's path."""
    abstract = tree(3)
    abstract["h"][1] = {
        k: jax.ShapeDtypeStruct(v.shape, jnp.bfloat16) for k, v in abstract["h"][1].items()
    }
    # small chunks: several loops, bfloat16 leaves carried through the next chunk's loop (on GPU)
    monkeypatch.setattr(_build, "SMALL_TREE_BYTES", 1 << 20)
    monkeypatch.setattr(_build, "CHUNK_FRACTION", {"flat": 0.4, "stacked": 0.025})
    cpu_step = jinit.init_tree(key, abstract, RULES, group=True)
    per_leaf = jinit.init_tree(key, abstract, RULES, group=False)
    monkeypatch.setattr(_build, "GPU_PLATFORMS", frozenset({"cpu"}))
    for rows in (_stream.GPU_STEP_ROWS, 96):  # one step for the tree; several, the last ragged
        monkeypatch.setattr(_stream, "GPU_STEP_ROWS", rows)
        _tree.compiled_builder.cache_clear()
        gpu_step = jinit.init_tree(key, abstract, RULES, group=True)
        for a, b, c in zip(*map(jax.tree.leaves, (gpu_step, cpu_step, per_leaf)), strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    _tree.compiled_builder.cache_clear()


def test_the_streams_hash_with_jax_cuda_kernel():
    """On CUDA a stream's step and the key table hash by jaxlib's threefry kernel (the FFI target
    that ``jax_threefry_gpu_kernel_lowering`` uses): one custom call per loop, no copy of the
    rounds to compile for them, and a step's words (not the tree's) in temporaries."""
    assert _jax_compat.gpu_hash_targets().get("cuda") == "cu_threefry2x32_ffi"
    row = compiled(6, True)
    assert row["hash_custom_calls"] == row["loops"]  # the key table's loop and each stream's
    assert row["temp_bytes"] <= 0.5 * row["params"] + 2**24


def test_the_kernel_branch_of_the_hash_gives_jax_random_bits(monkeypatch, key):
    """The CUDA branch of ``threefry.block_hash`` (the words broadcast to one shape, a kernel
    with ``threefry2x32_p``'s contract), forced on the CPU with jax's own ``threefry2x32_p`` as
    the kernel: every stream and the key table give the bits they give unforced, which are
    jax.random's."""
    abstract = tree(3)
    unforced = jinit.init_tree(key, abstract, RULES, group=True)
    calls = []

    def kernel(target, *words):
        calls.append(target)
        assert len({w.shape for w in words}) == 1 and all(w.dtype == np.uint32 for w in words)
        return tuple(jax.extend.random.threefry2x32_p.bind(*words))

    monkeypatch.setattr(_jax_compat, "gpu_hash_targets", lambda: {"cpu": "cpu_kernel"})
    monkeypatch.setattr(threefry, "_ffi_hash", kernel)
    _tree.compiled_builder.cache_clear()
    jax.clear_caches()
    forced = jinit.init_tree(key, abstract, RULES, group=True)
    assert calls  # the branch ran
    for a, b in zip(jax.tree.leaves(unforced), jax.tree.leaves(forced), strict=True):
        np.testing.assert_array_equal(a, b)
    # a block of counters under per-row keys, as a stream's step draws it
    keys = jax.random.split(key, 3)
    counters = jnp.arange(3 * 40, dtype=np.uint32).reshape(3, 40) + np.uint32(5000)
    words = jax.random.key_data(keys)
    w0, w1 = threefry.random_words(words[:, 0:1], words[:, 1:2], (3, 40), counters)
    for r in range(3):
        full = jax.random.bits(keys[r], (5120,), np.uint32)
        np.testing.assert_array_equal(np.asarray(w0 ^ w1)[r], full[counters[r]])
    _tree.compiled_builder.cache_clear()


def test_large_leaves_drawn_in_blocks_on_gpu_give_the_same_bits(monkeypatch, key):
    """On GPU a leaf drawn alone (more than half a chunk) is drawn a block at a time into its
    own buffer (``build._draw_in_blocks``); forced on the CPU with small blocks and chunks
    (float32 and bfloat16, sizes that are no multiple of a block: the last block overlaps the
    one before), the same bits as one kernel per leaf."""
    f32, bf16 = jnp.float32, jnp.bfloat16
    abstract = {
        "embed": jax.ShapeDtypeStruct((1000, 130), f32),
        "head": jax.ShapeDtypeStruct((130, 1001), bf16),
        "h": [{"qkv": jax.ShapeDtypeStruct((128, 384), f32)}],
        "bias": jax.ShapeDtypeStruct((130,), f32),
    }
    per_leaf = jinit.init_tree(key, abstract, RULES, group=False)
    monkeypatch.setattr(_build, "GPU_PLATFORMS", frozenset({"cpu"}))
    monkeypatch.setattr(_stream, "GPU_STEP_ROWS", 7)  # blocks of 7 * 1024 elements
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: 4 * 200_000)
    blocks = drawn_in_blocks(monkeypatch)
    _tree.compiled_builder.cache_clear()
    forced = jinit.init_tree(key, abstract, RULES, group=True)
    assert sorted(blocks) == ["embed", "head"]
    for a, b in zip(jax.tree.leaves(per_leaf), jax.tree.leaves(forced), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    _tree.compiled_builder.cache_clear()


def drawn_in_blocks(monkeypatch) -> list[str]:
    """The paths of the leaves ``build._draw_in_blocks`` draws from now on (a list it fills)."""
    blocks: list[str] = []
    real = _build._draw_in_blocks
    monkeypatch.setattr(
        _build,
        "_draw_in_blocks",
        lambda k, leaf, *rest: blocks.append(leaf.path) or real(k, leaf, *rest),
    )
    return blocks


def split_tree() -> tuple[dict, dict, list]:
    """Leaves split over a 2x4 CPU mesh in several ways (both axes, one, a tuple of axes, a
    float32 leaf and a bfloat16 one), a group of three of one shape, and an orthogonal leaf (a
    draw without a block form: drawn as before)."""
    f32, bf16 = jnp.float32, jnp.bfloat16
    abstract = {
        "embed": jax.ShapeDtypeStruct((1000, 64), f32),
        "big": jax.ShapeDtypeStruct((512, 256), bf16),
        "h": [
            {"w": jax.ShapeDtypeStruct((64, 256), f32), "u": jax.ShapeDtypeStruct((256, 64), f32)}
            for _ in range(3)
        ],
        "odd": jax.ShapeDtypeStruct((10, 6), f32),
        "rot": jax.ShapeDtypeStruct((32, 32), f32),
    }
    P = PartitionSpec
    specs = {
        "embed": P(None, "model"),
        "big": P(("data", "model"), None),
        "h": [{"w": P("data", "model"), "u": P("model", None)} for _ in range(3)],
        "odd": P("data", None),
        "rot": P("data", None),
    }
    rules = [
        (r"embed", jinit.normal(0.02)),
        (r"big", jinit.truncated_normal(0.5)),
        (r"u$", jinit.uniform(0.3)),
        (r"rot", jinit.orthogonal()),
        (r".", jinit.lecun_normal()),
    ]
    return abstract, specs, rules


def test_split_leaves_hash_their_own_shards_with_the_same_bits(monkeypatch, key, devices):
    """On GPU a split leaf is drawn in ``shard_map``, each device hashing only its own shard's
    counters with the draw's block form (``shards.draw``), so that the hash is jax's
    CUDA kernel, which XLA does not partition. Forced on 8 CPU devices: every leaf has the bits
    it has unsharded, drawn whole, a block at a time (small blocks, a last block that
    overlaps) and as one larger block (``shards.PAD_FRACTION``), in float32 and bfloat16; the
    draws went through the shards' path (all but the orthogonal one), and the chunks' buffers
    were made on each device from its own parts (``shards.zeros_after_parts``)."""
    abstract, specs, rules = split_tree()
    mesh = Mesh(np.array(devices).reshape(2, 4), ("data", "model"))
    shardings = jax.tree.map(
        lambda p: NamedSharding(mesh, p), specs, is_leaf=lambda x: isinstance(x, PartitionSpec)
    )
    whole = jinit.init_tree(key, abstract, rules)
    monkeypatch.setattr(_shards, "PLATFORMS", frozenset({"cpu"}))
    # a device's bytes of float32 draw: the `u` leaves (a (64, 64) shard each) 2 per chunk
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: 4 * 2 * 64 * 64)
    shards, parts = [], []
    real_draw, real_zeros = _shards.draw, _shards.zeros_after_parts
    monkeypatch.setattr(_shards, "draw", lambda *a, **k: shards.append(a[2]) or real_draw(*a, **k))
    monkeypatch.setattr(
        _shards, "zeros_after_parts", lambda *a, **k: parts.append(a[2]) or real_zeros(*a, **k)
    )
    # the blocks' size: the default (each shard whole), small, and larger than the `w` and `u`
    # shards (2048 and 4096 elements a device: each drawn as one block, its start kept, as
    # blocks above the floor are)
    monkeypatch.setattr(_stream, "MIN_BLOCK", 1024)
    for block in (0, 1000, 8192):
        if block:
            monkeypatch.setattr(_build, "block_size", lambda leaves, size=block: size)
        shards.clear()
        _tree.compiled_builder.cache_clear()
        split = jinit.init_tree(key, abstract, rules, shardings=shardings)
        assert (32, 32) not in shards
        assert {(1000, 64), (512, 256), (64, 256), (256, 64), (10, 6)} <= set(shards)
        for (path, a), b in zip(
            jax.tree_util.tree_leaves_with_path(split), jax.tree.leaves(whole), strict=True
        ):
            assert a.sharding.is_equivalent_to(NamedSharding(mesh, specs_at(specs, path)), a.ndim)
            np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    assert parts  # a chunk after a chunk of split leaves
    _tree.compiled_builder.cache_clear()


def specs_at(specs: dict, path: tuple) -> PartitionSpec:
    for k in path:
        specs = specs[getattr(k, "key", getattr(k, "idx", None))]
    return specs


def test_split_leaves_compile_no_copy_of_the_hash_for_eight_gpus():
    """GPT-2-like leaves split over an 8-GPU node (``cuda:h100:1x1x8``): every split draw
    hashes with jax's CUDA kernel in ``shard_map`` (no copy of the twenty rounds for XLA:GPU to
    compile, none partitioned), no chunk's buffer waits on a collective, and the temporaries
    stay below a tenth of a device's part of the tree."""
    path, _ = gpu.parse_target("cuda:h100")
    mesh = Mesh(np.array(gpu.devices(path, "1x1x8")), ("model",))
    abstract = tree(3)
    P = PartitionSpec
    specs = {
        "embed": P(None, "model"),
        "h": [
            {
                "qkv": P(None, "model"),
                "proj": P("model", None),
                "up": P(None, "model"),
                "down": P("model", None),
                "bias": P(),
            }
            for _ in range(3)
        ],
    }
    shardings = jax.tree.map(
        lambda p: NamedSharding(mesh, p), specs, is_leaf=lambda x: isinstance(x, PartitionSpec)
    )
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=NamedSharding(mesh, P()))

    def body(k):
        return jinit.init_tree(k, abstract, RULES, shardings=shardings)

    exe = jax.jit(body, out_shardings=shardings).trace(key).lower().compile()
    text, row = exe.as_text(), gpu.structure(exe.as_text())
    assert row["samplers"] == 0 and row["hash_custom_calls"] >= 4
    assert "all-reduce" not in text and "all-gather" not in text
    leaves = zip(jax.tree.leaves(abstract), jax.tree.leaves(shardings), strict=True)
    held = sum(int(np.prod(s.shard_shape(a.shape))) * 4 for a, s in leaves)
    assert exe.memory_analysis().temp_size_in_bytes <= 0.1 * held + 2**20
    _tree.compiled_builder.cache_clear()


def test_the_kernels_to_compile_do_not_grow_with_depth(monkeypatch):
    """Chunks of a few leaves each (a small chunk budget; a fixed step), at 8 and at 24
    layers: the deeper tree has more chunks, cuts and launches, but the kernels that write its
    leaves are the same (each is LLVM and ptxas time), and none writes two leaves: every
    cut of one shape and finish is one computation (``Stream.cut(apart=True)``), not fused with
    its chunk's other cuts into a kernel of several outputs that differs from chunk to chunk
    (without it, XLA cuts the 8-layer tree's leaves in pairs: three two-output kernels)."""
    monkeypatch.setattr(_build, "SMALL_TREE_BYTES", 1 << 21)
    monkeypatch.setattr(_stream, "GPU_STEP_ROWS", _stream.STEP_ROWS)
    sizes = {math.prod(a.shape) for a in jax.tree.leaves(tree(1)["h"][0]) if len(a.shape) == 2}
    leaf = re.compile(rf"f32\[({'|'.join(map(str, sizes))})\]\{{")
    rows, cuts = {}, {}
    for layers in (8, 24):
        _tree.compiled_builder.cache_clear()
        rows[layers] = compiled.__wrapped__(layers, True)
        outputs = [out for out, _, _ in gpu.kernels(rows[layers].pop("text"))]
        assert not [out for out in outputs if len(leaf.findall(out)) > 1]  # two leaves' cuts
        cuts[layers] = sorted(out for out in outputs if leaf.fullmatch(out.split("{")[0] + "{"))
    assert rows[24]["loops"] > rows[8]["loops"] and rows[24]["kernels"] > rows[8]["kernels"]
    assert cuts[24] == cuts[8] and len(cuts[8]) <= 2 * len(sizes)
    _tree.compiled_builder.cache_clear()


def test_each_draw_has_one_transform_kernel_for_blocks_and_streams(monkeypatch):
    """On GPU a leaf drawn alone in blocks and a stream's step hash blocks of one shape and
    transform them in one kernel per draw (``stream.block_rows``, the block behind a barrier),
    XLA:GPU's costliest kernels to compile: two draws (a normal and LeCun's truncated normal),
    each with a large leaf drawn in blocks and small leaves in a stream, compile two."""
    monkeypatch.setattr(_stream, "GPU_STEP_ROWS", 8)  # blocks of 8 * 1024 elements
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: 600_000)  # 2 chunks: blocks
    mesh = h100()
    f32 = jnp.float32
    abstract = {
        **tree(2),
        "pos": jax.ShapeDtypeStruct((64, 128), f32),
        "head": jax.ShapeDtypeStruct((128, 1000), f32),
    }
    rules = [(r"pos", jinit.normal(0.02)), *RULES]
    shardings = jax.tree.map(lambda _: NamedSharding(mesh, PartitionSpec()), abstract)
    blocks = drawn_in_blocks(monkeypatch)
    row = gpu_structure(abstract, rules, shardings, shardings["embed"])
    assert sorted(blocks) == ["embed", "head"]
    assert row["loops"] >= 4  # the key table's, two leaves' blocks, the streams' chunks
    assert row["transform_kernels"] == 2


def gpu_structure(abstract: dict, rules: list, shardings: dict, key_sharding: Any) -> dict:
    """``gpu.structure`` of ``init_tree``'s program for ``shardings``' GPU devices."""
    return gpu.structure(gpu_program(abstract, rules, shardings, key_sharding))


def gpu_program(abstract: dict, rules: list, shardings: dict, key_sharding: Any) -> str:
    """The compiled HLO text of ``init_tree``'s program for ``shardings``' GPU devices."""
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=key_sharding)
    _tree.compiled_builder.cache_clear()
    try:
        exe = (
            jax.jit(
                lambda k: jinit.init_tree(k, abstract, rules, shardings=shardings),
                out_shardings=shardings,
            )
            .trace(key)
            .lower()
            .compile()
        )
    finally:
        _tree.compiled_builder.cache_clear()
    return exe.as_text()


def test_split_shards_of_several_shapes_share_one_transform_kernel(monkeypatch):
    """On 8 H100s, split leaves whose shards have four shapes (two larger than a block, two
    smaller but of at least 1/PAD_FRACTION of one), float32, in batched loops and alone: each
    shard is transformed in blocks of one shape (a small one as one block), so the draw's
    transform, XLA:GPU's costliest kernel to compile, is one kernel, not one per shape."""
    monkeypatch.setattr(_stream, "GPU_STEP_ROWS", 8)  # blocks of 8 * 1024 elements,
    monkeypatch.setattr(_stream, "MIN_BLOCK", 1024)  # above the floor (padded shards)
    path, topology = gpu.parse_target("cuda:h100:1x1x8")
    mesh = Mesh(np.array(gpu.devices(path, topology)), ("model",))
    f32 = jnp.float32
    shapes = {"a": (512, 512), "b": (256, 512), "c": (128, 256), "d": (64, 256)}
    abstract = {
        f"{name}{j}": jax.ShapeDtypeStruct(shape, f32)
        for name, shape in shapes.items()
        for j in range(2)
    }
    shardings = {p: NamedSharding(mesh, PartitionSpec(None, "model")) for p in abstract}
    row = gpu_structure(abstract, RULES, shardings, NamedSharding(mesh, PartitionSpec()))
    assert row["hash_custom_calls"] >= 2 and row["samplers"] == 0
    assert row["transform_kernels"] == 1


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_a_narrow_tree_finished_in_the_gpu_step_gives_the_same_bits(monkeypatch, key, dtype):
    """On GPU, a tree whose streamed leaves are all of one narrower dtype, each finished by a
    factor (``Sampling.factor``), is finished in the stream's step (each row times its leaf's
    factor, cast) into a buffer of that dtype, and the cuts only copy; forced on the CPU with
    small chunks (several loops, several factors in a step): the same bits as one kernel per
    leaf. A leaf whose finish is not a factor (a shift) keeps the float32 buffer."""
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, dtype), tree(3))
    monkeypatch.setattr(_build, "SMALL_TREE_BYTES", 1 << 20)
    monkeypatch.setattr(_build, "CHUNK_FRACTION", {"flat": 0.4, "stacked": 0.025})
    monkeypatch.setattr(_build, "GPU_PLATFORMS", frozenset({"cpu"}))
    seen = []
    real = _build.finished_in_step
    monkeypatch.setattr(_build, "finished_in_step", lambda *a: seen.append(real(*a)) or seen[-1])
    shifted = [(r"h/1/up", jinit.keras.random_normal(mean=0.25, stddev=0.5)), *RULES]
    for rules, finished in ((RULES, np.dtype(dtype)), (shifted, None)):
        per_leaf = jinit.init_tree(key, abstract, rules, group=False)
        _tree.compiled_builder.cache_clear()
        gpu_step = jinit.init_tree(key, abstract, rules, group=True)
        assert seen[-1] == finished
        for a, b in zip(jax.tree.leaves(per_leaf), jax.tree.leaves(gpu_step), strict=True):
            assert a.dtype == b.dtype == dtype
            np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    _tree.compiled_builder.cache_clear()


def test_a_narrow_tree_takes_fewer_loops_on_gpu(monkeypatch):
    """Compiled for an H100, the same tree in bfloat16 holds twice the leaves in a chunk of the
    same bytes (the steps finish the rows into a bfloat16 buffer), so its streams take about
    half the loops (each loop's body is a copy of the draw's transform for XLA's passes)."""
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: 600_000)
    rows = {}
    for dtype in (jnp.float32, jnp.bfloat16):
        abstract = jax.tree.map(lambda a, d=dtype: jax.ShapeDtypeStruct(a.shape, d), tree(12))
        shardings = jax.tree.map(lambda _: NamedSharding(h100(), PartitionSpec()), abstract)
        key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=shardings["embed"])
        _tree.compiled_builder.cache_clear()
        body = lambda k, a=abstract, s=shardings: jinit.init_tree(k, a, RULES, shardings=s)
        exe = jax.jit(body, out_shardings=shardings).trace(key).lower().compile()
        rows[dtype] = gpu.structure(exe.as_text())["loops"] - 1  # (-1: the key table's loop)
    assert rows[jnp.float32] >= 6
    assert rows[jnp.bfloat16] <= (rows[jnp.float32] + 1) // 2
    _tree.compiled_builder.cache_clear()


def test_split_narrow_groups_finished_in_the_loop_give_the_same_bits(monkeypatch, key, devices):
    """On GPU a group of split leaves of one narrower dtype, each finished by a factor, is
    finished in its loop (each leaf times its factor, cast) into a stacked buffer of that dtype,
    which holds twice the bfloat16 leaves in the same bytes (``build._finished_in_batch``).
    Forced on 8 CPU devices (the GPU's schedule, small chunks): every leaf has its unsharded
    bits, drawn whole and a block at a time, and only the bfloat16 groups whose finishes are
    factors were finished in the loop."""
    abstract, specs, rules = split_tree()
    rules = [(r"h/1/w", jinit.he_normal()), *rules]  # one group, two factors
    bf16 = jnp.bfloat16
    abstract["h"] = [
        {k: jax.ShapeDtypeStruct(v.shape, bf16) for k, v in h.items()} for h in abstract["h"]
    ]
    mesh = Mesh(np.array(devices).reshape(2, 4), ("data", "model"))
    shardings = jax.tree.map(
        lambda p: NamedSharding(mesh, p), specs, is_leaf=lambda x: isinstance(x, PartitionSpec)
    )
    whole = jinit.init_tree(key, abstract, rules)
    monkeypatch.setattr(_shards, "PLATFORMS", frozenset({"cpu"}))
    monkeypatch.setattr(_build, "GPU_PLATFORMS", frozenset({"cpu"}))
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: 4 * 2 * 64 * 64)
    finished = {}
    real = _build._finished_in_batch
    monkeypatch.setattr(
        _build,
        "_finished_in_batch",
        lambda leaves, g, ms: finished.setdefault(g[1], real(leaves, g, ms)),
    )
    for block in (0, 1000):  # each shard drawn whole; in blocks (the last one overlapping)
        if block:
            monkeypatch.setattr(_build, "block_size", lambda leaves, size=block: size)
        _tree.compiled_builder.cache_clear()
        split = jinit.init_tree(key, abstract, rules, shardings=shardings)
        assert finished[(64, 256)] == np.dtype(bf16)  # LeCun's truncated normal: a factor
        assert finished[(256, 64)] == np.dtype(bf16)  # a uniform: a factor
        assert finished[(1000, 64)] is None  # float32
        for a, b in zip(jax.tree.leaves(split), jax.tree.leaves(whole), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    _tree.compiled_builder.cache_clear()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_a_chunk_loop_waits_for_the_last_chunk_without_a_kernel(monkeypatch, dtype):
    """Each chunk's loop carries the leaves cut from the chunk before (so that it may overwrite
    their buffer) through a barrier with its counter, not by reading one element of each: no
    kernel takes a leaf as a parameter (such a kernel differs with every set of carried shapes,
    seven of LLaMA-1B's 47 on GPU). (That the chunks still share one buffer,
    ``tests/test_grouping.py`` checks on a CPU, where XLA would otherwise make a second.)"""
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: 600_000)
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, dtype), tree(12))
    shardings = jax.tree.map(lambda _: NamedSharding(h100(), PartitionSpec()), abstract)
    text = gpu_program(abstract, RULES, shardings, shardings["embed"])
    row = gpu.structure(text)
    assert row["loops"] - 1 >= 3  # chunks after the first carry the leaves before them
    name = jnp.dtype(dtype).name.replace("float32", "f32").replace("bfloat16", "bf16")
    shapes = {f"{name}[{','.join(map(str, a.shape))}]" for a in jax.tree.leaves(abstract)}
    fused = [b for b in text.split("\n\n") if b.lstrip().startswith("%fused")]
    leaf_param = [re.compile(rf"= {re.escape(s)}\{{[^}}]*\}} parameter\(") for s in shapes]
    reads = [b.splitlines()[0] for b in fused if any(p.search(b) for p in leaf_param)]
    assert reads == []


def test_streams_and_blocks_share_their_hash_operands_cuts_and_updates(monkeypatch):
    """On one H100, two draws (a normal and LeCun's truncated normal), each with small leaves
    in a stream (streams of 7 and 2 leaves, of several factors) and a large leaf drawn alone in
    blocks: every hash's keys and counters come from one kernel (the streams' tables have one
    length, a block is drawn by a stream's step), the key table's two aside; the cuts of one
    shape are one kernel whatever their factors (read from a table)."""
    monkeypatch.setattr(_stream, "GPU_STEP_ROWS", 8)  # blocks of 8 * 1024 elements
    monkeypatch.setattr(_build, "chunk_budget", lambda leaves: 600_000)
    f32 = jnp.float32
    abstract = {
        "embed": jax.ShapeDtypeStruct((1000, 128), f32),
        "head": jax.ShapeDtypeStruct((128, 1000), f32),
        "pos": [jax.ShapeDtypeStruct((64, 128), f32)] * 2,
        "h": [{"w": jax.ShapeDtypeStruct((128, 128), f32)} for _ in range(7)],
    }
    rules = [
        (r"embed|pos", jinit.normal(0.02)),
        (r"h/[0-3]/", jinit.lecun_normal()),
        (r".", jinit.variance_scaling(0.5, "fan_in", "truncated_normal")),
    ]
    mesh = h100()
    shardings = jax.tree.map(lambda _: NamedSharding(mesh, PartitionSpec()), abstract)
    blocks = drawn_in_blocks(monkeypatch)
    text = gpu_program(abstract, rules, shardings, shardings["embed"])
    row = gpu.structure(text)
    assert sorted(blocks) == ["embed", "head"]
    assert row["hash_custom_calls"] >= 4 and row["transform_kernels"] == 2
    assert row["hash_operand_kernels"] == 1 + 1 + 2  # keys and counters, zeros, the key table

    def kernels(shape: str) -> int:  # distinct fused computations of that output
        return sum(out.startswith(shape + "{") for out, _, _ in gpu.kernels(text))

    assert kernels("f32[16384]") == 1  # the 128x128 cuts: two factors

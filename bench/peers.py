"""The ways to build one parameter tree that the benchmark compares, all on the same tree.

Each peer turns a :class:`Context` into a :class:`Case`: ``make()`` returns a fresh zero-argument
thunk that builds the whole tree (a fresh ``jax.jit`` object for the jit peers, so the first call
after ``jax.clear_caches()`` is a true cold start), and ``flat(out)`` maps the result to
path -> array for the correctness checks. For the jit peers the thunk is a :class:`Compiled`, which
also serves ``memory_analysis`` and abstract runs of trees too large to materialise.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jinit
from bench import models, treeinit
from bench.presets import FLAX_DEFAULT_RULES, Preset, Scheme, flatten, nest


@dataclasses.dataclass
class Context:
    preset: Preset
    dtype: np.dtype
    seed: int = 0
    mesh: jax.sharding.Mesh | None = None

    def __post_init__(self) -> None:
        self.shapes = self.preset.leaves()
        self.abstract = nest(
            {p: jax.ShapeDtypeStruct(s, self.dtype) for p, s in self.shapes.items()}
        )
        self.shardings = (
            None
            if self.mesh is None
            else nest({p: leaf_sharding(s, self.mesh) for p, s in self.shapes.items()})
        )

    def key(self) -> jax.Array:
        return jax.random.key(self.seed)

    def rules(self, module: Any) -> list[tuple[str, Callable]]:
        """FLAX_DEFAULT_RULES with the initializers taken from `module` (jinit or jax.nn)."""
        return [(rx, scheme_init(module, s)) for rx, s in FLAX_DEFAULT_RULES]


def scheme_init(module: Any, scheme: Scheme) -> Callable:
    name, args, kwargs = scheme
    f = getattr(module, name)
    return f if args is None else f(*args, **kwargs)


def leaf_sharding(
    shape: tuple[int, ...], mesh: jax.sharding.Mesh, min_size: int = 1 << 16
) -> jax.sharding.NamedSharding:
    """Big kernels: last axis over 'model', first axis over 'data' where they divide; else
    replicated."""
    spec: list[str | None] = [None] * len(shape)
    if len(shape) >= 2 and int(np.prod(shape)) >= min_size:
        sizes = dict(zip(mesh.axis_names, mesh.devices.shape, strict=True))
        if "model" in sizes and shape[-1] % sizes["model"] == 0:
            spec[-1] = "model"
        if "data" in sizes and shape[0] % sizes["data"] == 0:
            spec[0] = "data"
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))


@dataclasses.dataclass
class Case:
    make: Callable[[], Callable[[], Any]]
    flat: Callable[[Any], dict[str, Any]]
    block: Callable[[Any], Any] = jax.block_until_ready
    sharded: bool = False
    notes: str = ""


class Compiled:
    """A jit peer's thunk: ``jax.jit(fn).lower(*args).compile()`` (timed), then called on args.

    Building it is the compile half of a cold start; ``memory_analysis()`` comes for free and
    abstract runs stop here without executing.
    """

    def __init__(self, fn: Callable, args: tuple, out_shardings: Any = None):
        t0 = time.perf_counter()
        self.compiled = jax.jit(fn, out_shardings=out_shardings).lower(*args).compile()
        self.compile_s = time.perf_counter() - t0
        self.args = args

    def __call__(self) -> Any:
        return self.compiled(*self.args)


def _jit_case(ctx: Context, body: Callable[[jax.Array], Any], notes: str = "") -> Case:
    return Case(
        lambda: Compiled(body, (ctx.key(),), ctx.shardings),
        flatten,
        sharded=ctx.mesh is not None,
        notes=notes,
    )


def jinit_case(ctx: Context) -> Case:
    rules = ctx.rules(jinit)
    note = (
        "jinit.init_tree absent: bench.treeinit._fallback_init_tree (same spec) used"
        if treeinit.USING_FALLBACK
        else "jinit.init_tree"
    )

    def body(key):
        return treeinit.init_tree(key, ctx.abstract, rules, shardings=ctx.shardings)

    return _jit_case(ctx, body, notes=note)


def jinit_api_case(ctx: Context) -> Case:
    """``jinit.init_tree(...)`` called directly each time, as a user would: includes its per-call
    planning (rule matching, sharding resolution) and its own jit cache."""
    rules = ctx.rules(jinit)

    def make():
        builder = getattr(getattr(jinit, "_tree", None), "compiled_builder", None)
        if hasattr(builder, "cache_clear"):  # jinit caches its jitted builder; a cold start
            # clears it too
            builder.cache_clear()
        key = ctx.key()
        return lambda: treeinit.init_tree(key, ctx.abstract, rules, shardings=ctx.shardings)

    return Case(
        make,
        flatten,
        sharded=ctx.mesh is not None,
        notes="direct calls of init_tree (per-call planning included)",
    )


def _rules_body(ctx: Context) -> Callable[[jax.Array], Any]:
    pick = treeinit._match(ctx.rules(jax.nn.initializers), None)

    def body(key):
        def leaf(keypath, sds):
            path = treeinit.path_str(keypath)
            return pick(path)(treeinit.key_for_path(key, path), sds.shape, sds.dtype)

        return jax.tree_util.tree_map_with_path(leaf, ctx.abstract)

    return body


def jax_jit_case(ctx: Context) -> Case:
    return _jit_case(ctx, _rules_body(ctx), notes="jax.nn.initializers, jinit's path keys")


def jax_eager_case(ctx: Context) -> Case:
    body = _rules_body(ctx)
    return Case(
        lambda: lambda: body(ctx.key()), flatten, notes="leaf by leaf, op-by-op dispatch, unsharded"
    )


def flax_case(ctx: Context) -> Case:
    model, x = models.flax_model(ctx.preset, ctx.dtype)
    x = jnp.zeros(x.shape, x.dtype)
    return Case(
        lambda: Compiled(model.init, (ctx.key(), x), ctx.shardings),
        flatten,
        sharded=ctx.mesh is not None,
        notes="jax.jit(model.init), Flax's own keys",
    )


def fill_case(ctx: Context) -> Case:
    def body(key):
        del key
        return jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), ctx.abstract)

    return _jit_case(ctx, body, notes="jnp.full(0.5) under one jit: the write-bandwidth limit")


def numpy_case(ctx: Context) -> Case:
    import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy)

    out_dtype = ctx.dtype
    compiled = [(re.compile(rx), s) for rx, s in FLAX_DEFAULT_RULES]

    def scheme_of(path):
        return next(s for rx, s in compiled if rx.search(path))

    plan = []
    for path, shape in ctx.shapes.items():
        name = scheme_of(path)[0]
        if name in ("zeros", "ones"):
            plan.append((path, shape, name, 0.0))
        else:  # lecun_normal is a truncated normal in jax; NumPy has none, so plain normal
            out_axis = 0 if name == "variance_scaling" else -1
            fan_in, _ = jinit.compute_fans(shape, -2, out_axis, ())
            plan.append((path, shape, "normal", (1.0 / fan_in) ** 0.5))

    def build():
        rng = np.random.default_rng(ctx.seed)
        out = {}
        for path, shape, kind, std in plan:
            if kind == "zeros":
                out[path] = np.zeros(shape, out_dtype)
            elif kind == "ones":
                out[path] = np.ones(shape, out_dtype)
            else:
                a = rng.standard_normal(shape, dtype=np.float32)
                a *= np.float32(std)
                out[path] = a if out_dtype == np.float32 else a.astype(out_dtype)
        return out

    return Case(
        lambda: build,
        lambda o: o,
        block=lambda o: o,
        notes="default_rng().standard_normal(float32) * std; plain normal "
        "(NumPy has no truncated normal)",
    )


def torch_case(ctx: Context) -> Case:
    import torch

    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[str(ctx.dtype)]

    def flat(module):
        tensors = dict(module.named_parameters())
        tensors |= {n: b for n, b in module.named_buffers() if b.is_floating_point()}
        return {
            n: t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()
            for n, t in tensors.items()
        }

    return Case(
        lambda: lambda: models.torch_model(ctx.preset, tdtype),
        flat,
        block=lambda o: o,
        notes=f"torch.nn module construction, torch's default init, "
        f"{torch.get_num_threads()} threads",
    )


def torch_missing() -> str | None:
    try:
        import torch  # noqa: F401
    except ImportError:
        return "PyTorch is not importable (pip install torch==2.13.0 for the CPU wheel)"
    return None


@dataclasses.dataclass(frozen=True)
class Peer:
    name: str
    label: str
    build: Callable[[Context], Case]
    keys: str  # "path": jinit's path-derived keys (bits comparable); "own": its own scheme
    jax_based: bool = True
    missing: Callable[[], str | None] = lambda: None


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer("jinit", "jinit.init_tree (one jit)", jinit_case, "path"),
        Peer("jinit-api", "jinit.init_tree, direct call", jinit_api_case, "path"),
        Peer("flax", "jax.jit(flax model.init)", flax_case, "own"),
        Peer("jax-jit", "jax.nn.initializers, one jit", jax_jit_case, "path"),
        Peer("jax-eager", "jax.nn.initializers, eager", jax_eager_case, "path"),
        Peer(
            "torch",
            "PyTorch module (CPU)",
            torch_case,
            "own",
            jax_based=False,
            missing=torch_missing,
        ),
        Peer("numpy", "NumPy default_rng fill", numpy_case, "own", jax_based=False),
        Peer("fill", "jnp.full, one jit (limit)", fill_case, "none"),
    )
}

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
from bench import bodies, models, torch_models, trees
from bench.presets import FLAX_DEFAULT_RULES, Preset, flatten, rules
from bench.trees import leaf_sharding as leaf_sharding  # re-exported: the tests use it


@dataclasses.dataclass
class Context:
    preset: Preset
    dtype: np.dtype
    seed: int = 0
    mesh: jax.sharding.Mesh | None = None

    def __post_init__(self) -> None:
        self.shapes = self.preset.leaves()
        self.scope = self.preset.scope  # a --scan preset's scan scope, else None
        self.abstract = trees.abstract_tree(self.shapes, self.dtype)
        self.shardings = trees.shardings_tree(self.shapes, self.mesh, self.preset.stack_axes)

    def key(self) -> jax.Array:
        return jax.random.key(self.seed)

    def rules(self, module: Any) -> list[tuple[str, Callable]]:
        """FLAX_DEFAULT_RULES with the initializers taken from `module` (jinit, or jax.nn for
        an unscanned preset), the stacked leaves' rules wrapped in ``jinit.stacked``."""
        return rules(module, self.scope)


@dataclasses.dataclass
class Case:
    make: Callable[[], Callable[[], Any]]
    flat: Callable[[Any], dict[str, Any]]
    block: Callable[[Any], Any] = jax.block_until_ready
    sharded: bool = False
    notes: str = ""
    label: str = ""  # overrides the peer's label for this run (e.g. the device it ran on)


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


def _jinit_notes(ctx: Context, call: str) -> str:
    scanned = f", jinit.stacked rules under params/{ctx.scope}" if ctx.scope else ""
    return call + scanned


def jinit_case(ctx: Context) -> Case:
    body = bodies.jinit_body(ctx.abstract, ctx.shardings, scope=ctx.scope)
    return _jit_case(ctx, body, notes=_jinit_notes(ctx, "jinit.init_tree"))


def jinit_per_leaf_case(ctx: Context) -> Case:
    """``init_tree(..., group=False)``: one sampler kernel per leaf, the same values."""
    body = bodies.jinit_body(ctx.abstract, ctx.shardings, group=False, scope=ctx.scope)
    return _jit_case(ctx, body, notes=_jinit_notes(ctx, "jinit.init_tree(group=False)"))


def jinit_streams_case(ctx: Context) -> Case:
    """``init_tree(..., group=True)``: the CPU's streams, on any platform; the same values."""
    body = bodies.jinit_body(ctx.abstract, ctx.shardings, group=True, scope=ctx.scope)
    return _jit_case(ctx, body, notes=_jinit_notes(ctx, "jinit.init_tree(group=True)"))


def jinit_api_case(ctx: Context) -> Case:
    """``jinit.init_tree(...)`` called directly each time, as a user would: includes its per-call
    planning (rule matching, sharding resolution) and its own jit cache."""
    rules = ctx.rules(jinit)

    def make():
        builder: Any = getattr(getattr(jinit, "_tree", None), "compiled_builder", None)
        if hasattr(builder, "cache_clear"):  # jinit caches its jitted builder; a cold start
            # clears it too
            builder.cache_clear()
        key = ctx.key()
        return lambda: jinit.init_tree(key, ctx.abstract, rules, shardings=ctx.shardings)

    return Case(
        make,
        flatten,
        sharded=ctx.mesh is not None,
        notes=_jinit_notes(ctx, "direct calls of init_tree (per-call planning included)"),
    )


def _jax_nn_notes(ctx: Context, notes: str) -> str:
    return notes + (", jax.vmap over the stacked leaves' layers" if ctx.scope else "")


def jax_jit_case(ctx: Context) -> Case:
    body = bodies.jax_nn_body(ctx.abstract, ctx.scope)
    return _jit_case(ctx, body, notes=_jax_nn_notes(ctx, "jax.nn.initializers, jinit's path keys"))


def jax_eager_case(ctx: Context) -> Case:
    body = bodies.jax_nn_body(ctx.abstract, ctx.scope)
    notes = _jax_nn_notes(ctx, "leaf by leaf, op-by-op dispatch, unsharded")
    return Case(lambda: lambda: body(ctx.key()), flatten, notes=notes)


def _flax_notes(ctx: Context) -> str:
    return f", nn.scan(nn.remat(block)) as {ctx.scope!r}" if ctx.scope else ""


def flax_case(ctx: Context) -> Case:
    model, sds = models.flax_model(ctx.preset, ctx.dtype)
    x = jnp.zeros(sds.shape, sds.dtype)
    return Case(
        lambda: Compiled(model.init, (ctx.key(), x), ctx.shardings),
        flatten,
        sharded=ctx.mesh is not None,
        notes="jax.jit(model.init), Flax's own keys" + _flax_notes(ctx),
    )


def flax_threefry_case(ctx: Context) -> Case:
    """Flax's fastest cold configuration on GPU: jax's hand-written Threefry kernel, which keeps
    XLA from inlining (and compiling) a copy of the hash at every draw. A no-op off GPU."""
    model, sds = models.flax_model(ctx.preset, ctx.dtype)
    x = jnp.zeros(sds.shape, sds.dtype)

    def make():
        old = getattr(jax.config, "jax_threefry_gpu_kernel_lowering", None)
        if old is None:
            raise ValueError(
                f"peer 'flax-threefry' needs the config flag `jax_threefry_gpu_kernel_lowering`; "
                f"jax {jax.__version__} has none."
            )
        jax.config.update("jax_threefry_gpu_kernel_lowering", True)
        try:  # the flag acts when lowering; the compiled program keeps it
            return Compiled(model.init, (ctx.key(), x), ctx.shardings)
        finally:
            jax.config.update("jax_threefry_gpu_kernel_lowering", old)

    gpu = jax.default_backend() == "gpu"
    return Case(
        make,
        flatten,
        sharded=ctx.mesh is not None,
        notes="jax.jit(model.init) with jax_threefry_gpu_kernel_lowering=True" + _flax_notes(ctx),
        label="" if gpu else f"{PEERS['flax-threefry'].label} (no-op on {jax.default_backend()})",
    )


def fill_case(ctx: Context) -> Case:
    return _jit_case(
        ctx,
        bodies.fill_body(ctx.abstract),
        notes="jnp.full(0.5) under one jit: the write-bandwidth limit",
    )


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
            layer = shape[ctx.preset.stack_axes(path) :]  # a stacked leaf: one layer's fans
            fan_in, _ = jinit.compute_fans(layer, -2, out_axis, ())
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
    cuda = jax.default_backend() == "gpu" and torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"

    def flat(module):
        tensors = dict(module.named_parameters())
        tensors |= {n: b for n, b in module.named_buffers() if b.is_floating_point()}
        return {
            n: (t.detach().float() if t.dtype == torch.bfloat16 else t.detach()).cpu().numpy()
            for n, t in tensors.items()
        }

    def block(module):
        if cuda:
            torch.cuda.synchronize()
        return module

    return Case(
        lambda: lambda: torch_models.torch_model(ctx.preset, tdtype, device),
        flat,
        block=block,
        notes=f"torch.nn module construction on {device}, torch's default init"
        + ("" if cuda else f", {torch.get_num_threads()} threads")
        + (", unrolled (torch has no scan)" if ctx.scope else ""),
        label=f"PyTorch module ({'CUDA' if cuda else 'CPU'})",
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
        Peer("jinit-per-leaf", "jinit.init_tree(group=False)", jinit_per_leaf_case, "path"),
        Peer("jinit-streams", "jinit.init_tree(group=True)", jinit_streams_case, "path"),
        Peer("jinit-api", "jinit.init_tree, direct call", jinit_api_case, "path"),
        Peer("flax", "jax.jit(flax model.init)", flax_case, "own"),
        Peer("flax-threefry", "jax.jit(flax init), threefry kernel", flax_threefry_case, "own"),
        Peer("jax-jit", "jax.nn.initializers, one jit", jax_jit_case, "path"),
        Peer("jax-eager", "jax.nn.initializers, eager", jax_eager_case, "path"),
        Peer(
            "torch",
            "PyTorch module",
            torch_case,
            "own",
            jax_based=False,
            missing=torch_missing,
        ),
        Peer("numpy", "NumPy default_rng fill", numpy_case, "own", jax_based=False),
        Peer("fill", "jnp.full, one jit (limit)", fill_case, "none"),
    )
}

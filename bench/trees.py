"""Abstract trees, ``--mesh`` meshes and per-leaf shardings: jax only (no Flax, no jinit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bench.presets import nest, parse_mesh


def np_dtype(name: str) -> np.dtype:
    """'float32' or 'bfloat16' as a NumPy dtype."""
    return np.dtype(jnp.bfloat16 if name == "bfloat16" else name)


def abstract_tree(shapes: dict[str, tuple[int, ...]], dtype: Any) -> dict[str, Any]:
    """The nested tree of ``jax.ShapeDtypeStruct`` leaves that `shapes` describes."""
    return nest({p: jax.ShapeDtypeStruct(s, dtype) for p, s in shapes.items()})


def make_mesh(text: str | None) -> jax.sharding.Mesh | None:
    """The mesh `text` names ('8' or '2x4'); it must use every device present."""
    if not text:
        return None
    dims, names = parse_mesh(text)
    n = int(np.prod(dims))
    if n != jax.device_count():
        raise ValueError(
            f"`--mesh {text}` needs {n} devices; found {jax.device_count()} "
            f"({jax.default_backend()}). Pass `--devices {n}` on CPU."
        )
    return jax.make_mesh(dims, names)


def leaf_sharding(
    shape: tuple[int, ...], mesh: jax.sharding.Mesh, min_size: int = 1 << 16, stack: int = 0
) -> jax.sharding.NamedSharding:
    """Big kernels: last axis over 'model', first axis over 'data' where they divide; else
    replicated. The `stack` leading (layer) axes of a scanned leaf are replicated and the rest
    is sharded as one layer would be, as pods shard a scanned model."""
    inner = shape[stack:]
    spec: list[str | None] = [None] * len(inner)
    if len(inner) >= 2 and int(np.prod(inner)) >= min_size:
        sizes = dict(zip(mesh.axis_names, mesh.devices.shape, strict=True))
        if "model" in sizes and inner[-1] % sizes["model"] == 0:
            spec[-1] = "model"
        if "data" in sizes and inner[0] % sizes["data"] == 0:
            spec[0] = "data"
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*[None] * stack, *spec))


def shardings_tree(
    shapes: dict[str, tuple[int, ...]],
    mesh: jax.sharding.Mesh | None,
    stack_axes: Callable[[str], int] = lambda path: 0,
) -> Any:
    """Each leaf's :func:`leaf_sharding` on `mesh` (`stack_axes(path)`: its leading layer axes),
    nested like the tree; None without a mesh."""
    if mesh is None:
        return None
    return nest({p: leaf_sharding(s, mesh, stack=stack_axes(p)) for p, s in shapes.items()})

"""Leaves that leave the compiled program stacked, and are cut out of their stack after it.

On a CPU, XLA compiles a kernel for each output it cuts out of a buffer, about as long to compile
as the draw itself; a group of small leaves of one draw, shape and finish is therefore one kernel
whose stacked output the program returns whole (:func:`jinit._tree.build._draw_groups`), and
the leaves are cut from it here, on the host (a CPU's buffers are host memory): a copy each, no
compile.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


class Part:
    """Leaf ``j`` of a stacked output ``stack``: one kernel drew and finished the whole group
    (:func:`jinit._tree.build._stacks`), and the stack leaves the program whole (:func:`pack`)."""

    def __init__(self, stack: jax.Array, j: int) -> None:
        self.stack, self.j = stack, j


def pack(outs: list[Any]) -> tuple[list[Any], list[jax.Array], dict[int, tuple[int, int]]]:
    """The program's outputs: each leaf's array (``None`` for a :class:`Part`), the stacks, and
    where each part is (leaf -> (stack, row))."""
    arrays: list[Any] = []
    stacks: dict[int, tuple[int, jax.Array]] = {}
    layout: dict[int, tuple[int, int]] = {}
    for i, x in enumerate(outs):
        if isinstance(x, Part):
            k = stacks.setdefault(id(x.stack), (len(stacks), x.stack))[0]
            layout[i] = (k, x.j)
            arrays.append(None)
        else:
            arrays.append(x)
    return arrays, [z for _, z in stacks.values()], layout


def unpack(arrays: list[Any], stacks: list[Any], layout: dict[int, tuple[int, int]]) -> list[Any]:
    """The leaves from :func:`pack`'s outputs: a part is cut from its stack on the host (a
    CPU's buffers are host memory), or by indexing where the stack is traced (``init_tree``
    under a caller's ``jit``)."""
    out = list(arrays)
    views: dict[int, Any] = {}
    for i, (k, j) in layout.items():
        stack = stacks[k]
        if isinstance(stack, jax.core.Tracer):
            out[i] = stack[j]
            continue
        if k not in views:
            views[k] = (np.asarray(stack), next(iter(stack.devices())))
        view, device = views[k]
        out[i] = jax.device_put(view[j], device, may_alias=False)
    return out

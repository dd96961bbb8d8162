"""Rule-based whole-tree initialisation, built as one compiled, sharded computation: the entry
points (:func:`init_tree`, :func:`initialize`), the cached builder and its run."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jinit import _value
from jinit._tree import build as _build
from jinit._tree import keep as _keep
from jinit._tree import keys as _keys
from jinit._tree import options as _options
from jinit._tree import parts as _parts
from jinit._tree import rules as _rules
from jinit._tree.leaf import Leaf
from jinit._tree.plan import plan
from jinit._typing import Initializer, public

Rules = _rules.Rules


@functools.lru_cache(maxsize=128)
def compiled_builder(
    leaves: tuple[Leaf, ...], impl: str, where: str, group: bool = True, portable: bool = False
) -> Callable[[Any], Any]:
    """One jitted function making every leaf from the root key's data and its key table (or
    ``None``: derived in the program); cached per static plan."""

    layout: dict[int, tuple[int, int]] = {}  # the stacked parts (_build.pack), when traced

    def build(key_data, table=None):
        root = jax.random.wrap_key_data(key_data, impl=impl)
        arrays, stacks, parts = _parts.pack(
            _build.build_all(root, leaves, where, group, portable, table)
        )
        layout.clear()
        layout.update(parts)
        return arrays, stacks

    fn = jax.jit(build, out_shardings=([leaf.sharding for leaf in leaves], None))
    fn.layout = layout  # type: ignore[attr-defined]
    return fn


def run(
    key: Any,
    leaves: tuple[Leaf, ...],
    where: str,
    group: bool | None = None,
    portable: bool = False,
) -> list[jax.Array]:
    """Builds every leaf in one compiled call. The key travels as raw data: a host numpy array
    when concrete (so every process of a multi-controller run passes the same global value)."""
    root = _keys.as_key(key, where)
    impl = str(jax.random.key_impl(root))
    data: Any = jax.random.key_data(root)
    table = None
    if not isinstance(data, jax.core.Tracer):
        data = np.asarray(data)
        table = _keys.KeyTable.host_table(data, impl, _build.key_paths(leaves, where))
    if group is None:
        group = _build.default_group(leaves)
    build: Callable[..., Any] = compiled_builder
    if any(_value.traced_within(leaf.init) for leaf in leaves):
        # An initializer built from a traced hyperparameter (a scale swept under `jax.vmap`)
        # closes over the tracer: a cached builder would keep the tracer alive after its trace
        # ends, and never be hit again (the next trace builds new initializers).
        build = compiled_builder.__wrapped__
    fn = build(leaves, impl, where, group, portable)
    arrays, stacks = fn(data, table)
    return _parts.unpack(arrays, stacks, fn.layout)


def initialize(
    key: Any,
    abstract_tree: Any,
    rules: Rules,
    where: str,
    *,
    default: Initializer | None = None,
    shardings: Any = None,
    mesh: Mesh | None = None,
    group: bool | None = None,
    portable: bool = False,
    allow_unused_rules: bool | None = None,
    logical_axis_rules: Any = None,
    adapt: Any = None,
    keep: Any = None,
    reinit: Any = None,
    resize: str | None = None,
    shrink: bool = False,
    unused: str = "raise",
) -> Any:
    """:func:`init_tree` for the entry point ``where`` (its name is in every error), whose
    options :func:`~jinit._tree.options.entry_point` has checked; ``adapt`` as for
    :func:`~jinit._tree.plan.plan`."""
    if allow_unused_rules is None:  # a rule that matches nothing is silent only with a default
        allow_unused_rules = default is None
    leaves, structure = plan(
        abstract_tree,
        rules,
        default,
        shardings,
        mesh,
        where,
        allow_unused_rules=allow_unused_rules,
        logical_axis_rules=logical_axis_rules,
        adapt=adapt,
    )
    if keep is None:  # (then `reinit`, `resize`, `shrink` and `unused` are their defaults)
        return structure.unflatten(run(key, leaves, where, group, portable))
    fates, trained, extra = _keep.statuses(leaves, keep, reinit, where, resize, shrink, unused)
    new = tuple(leaf for leaf, fate in zip(leaves, fates, strict=True) if fate != _keep.KEPT)
    drawn = iter(run(key, new, where, group, portable) if new else [])
    root = _keys.as_key(key, where)
    outs = []
    for leaf, fate in zip(leaves, fates, strict=True):
        if fate == _keep.KEPT:
            outs.append(_keep.place(trained[leaf.path], leaf))
        elif fate == _keep.RESIZED:
            outs.append(_keep.resized(trained[leaf.path], next(drawn), root, leaf, resize))
        else:
            outs.append(next(drawn))
    out = structure.unflatten(outs)
    return (out, extra) if unused == "return" else out


@public("init_tree")
@_options.entry_point(
    "init_tree",
    _options.KEY,
    _options.RULES,
    _options.DEFAULT,
    _options.SHARDINGS,
    _options.MESH,
    *_options.DRAW,
    *_options.SURGERY,
    _options.UNUSED,
)
def init_tree(call: _options.Call, key, abstract_tree: Any, rules) -> Any:
    r"""Initialises a whole parameter tree from path rules, in one compiled, sharded computation.

    Each leaf's path string (:func:`jinit.path_str`, e.g. ``"params/Dense_0/kernel"``) is matched
    against the rules' patterns with ``re.search``, in order; the first match's initializer is
    called as ``init(key_for_path(key, path), shape, dtype)``. ``re.search`` matches anywhere in
    the path (``"conv/bias$"`` also matches ``"params/gconv/bias"``): anchor a pattern
    (``"(^|/)conv/bias$"``) or write it as :func:`jinit.full_match`; :func:`jinit.explain` shows
    which rule each parameter gets. A rule that applies to no parameter (misspelt, or shadowed by
    an earlier one) raises when ``default=`` is given, where it would otherwise go unnoticed.

    Values depend only on ``key`` and the path, so they are the same under ``jit`` or not, on
    any mesh, in one or many processes, and whatever other parameters the tree holds. Works
    under ``jax.vmap`` over ``key``.

    Flax's boxes are parameters too: an ``nn.Partitioned`` / ``nn.LogicallyPartitioned`` (linen)
    or an ``nnx.Variable`` (e.g. in ``nnx.state(nnx.eval_shape(...))``) is matched at its own
    path (never ``.../value``), its partitioning becomes its sharding, and the result holds the
    same box around the new array.

    Sharding: each leaf gets, in order of precedence, its entry in ``shardings``, its box's
    partitioning, the ``NamedSharding`` carried by the leaf (a
    ``ShapeDtypeStruct(..., sharding=...)`` or an array), or replication over ``mesh``, which
    defaults to the mesh of ``jax.set_mesh``. Each device then generates only its own shard.
    With no mesh at all (no ``mesh=``, no ``jax.set_mesh``, none on the box), a linen box's
    partitioning is metadata only, as in Flax's ``model.init``: the box is kept and its array
    is on jax's default device, the same bits as under any mesh. With a mesh, a partitioning
    that cannot be resolved (logical names that no rules map, an axis the mesh lacks, a
    dimension its shards do not divide) raises, naming the parameter.

    Two leaves with the same path string (``{"a/b": w, "a": {"b": v}}``) would get the same key
    and identical values, so such a tree raises ``ValueError`` naming both.

    Schedule (the values are the same bits either way): with ``group=True``, leaves whose
    initializers sample alike (the same :class:`jinit.Draw`) are drawn together, whatever their
    shapes, by one compiled step kernel per draw, and cut apart (sharded leaves, and draws
    without a block form, by draw, shape and sharding), so the compile time depends on the
    tree's draws, not on its depth. With ``group=False`` each leaf is drawn on its own and
    written once, in place (XLA may fuse draws of one shape into one kernel with several
    outputs). ``group=None`` (the default) chooses by the platform the tree is
    built on (its shardings' devices, else jax's default backend): grouped on a CPU, a GPU and
    a TPU (whose compilers compile the hash once per kernel that holds it: seconds, where the
    grouped program's longer run is milliseconds). On TPU a leaf split over chips is drawn
    alone with either ``True`` or ``None`` (batched loops compile slower there). Figures and
    commands are in ``bench/RESULTS.md``.

    Args:
      abstract_tree: a pytree of ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``) or arrays.

    Returns:
      A pytree like ``abstract_tree`` of arrays with its shapes, dtypes and shardings; with
      ``unused='return'``, the pair ``(tree, unused)``.

    Examples:
      >>> import jax, jinit
      >>> abstract = {"dense": {"kernel": jax.ShapeDtypeStruct((64, 128), "float32"),
      ...                       "bias": jax.ShapeDtypeStruct((128,), "bfloat16")}}
      >>> rules = [(r"kernel$", jinit.glorot_uniform()), (r"bias$", jinit.zeros)]
      >>> params = jinit.init_tree(jax.random.key(0), abstract, rules)
      >>> jax.tree.map(lambda x: (x.shape, str(x.dtype)), params)
      {'dense': {'bias': ((128,), 'bfloat16'), 'kernel': ((64, 128), 'float32')}}
    """
    return initialize(key, abstract_tree, rules, call.where, **call.options)

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
from jinit._tree import rules as _rules
from jinit._tree import sharding as _sharding
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
        arrays, stacks, parts = _build.pack(
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
    if group is not None and not isinstance(group, bool):
        raise TypeError(f"`{where}(group=...)` must be a bool or None; got {group!r}.")
    if not isinstance(portable, bool):
        raise TypeError(f"`{where}(portable=...)` must be a bool; got {portable!r}.")
    if group is None:
        group = _build.default_group(leaves)
    build: Callable[..., Any] = compiled_builder
    if any(_traced(leaf.init) for leaf in leaves):
        # An initializer built from a traced hyperparameter (a scale swept under `jax.vmap`)
        # closes over the tracer: a cached builder would keep the tracer alive after its trace
        # ends, and never be hit again (the next trace builds new initializers).
        build = compiled_builder.__wrapped__
    fn = build(leaves, impl, where, group, portable)
    arrays, stacks = fn(data, table)
    return _build.unpack(arrays, stacks, fn.layout)


def _traced(init: Any) -> bool:
    """Whether ``init``, or an initializer it wraps, closes over a traced hyperparameter."""
    return any(v.traced for v in map(_value.of, _value.chain(init)) if v is not None)


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
    """:func:`init_tree` for the entry point ``where`` (its name is in every error); ``adapt``
    as for :func:`~jinit._tree.plan.plan`."""
    if allow_unused_rules is None:  # a rule that matches nothing is silent only with a default
        allow_unused_rules = default is None
    if not isinstance(allow_unused_rules, bool):
        raise TypeError(
            f"`{where}(allow_unused_rules=...)` must be a bool or None; got {allow_unused_rules!r}."
        )
    mesh = _sharding.check_mesh(mesh, where)
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
    if keep is None:
        given = {"reinit": reinit, "resize": resize, "shrink": shrink or None}
        given["unused"] = None if unused == "raise" else unused
        if name := next((n for n, v in given.items() if v is not None), None):
            raise ValueError(f"`{where}({name}=...)` applies to the leaves of `keep=`; got none.")
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
def init_tree(
    key: Any,
    abstract_tree: Any,
    rules: Rules,
    *,
    default: Initializer | None = None,
    shardings: Any = None,
    mesh: Mesh | None = None,
    group: bool | None = None,
    portable: bool = False,
    allow_unused_rules: bool | None = None,
    keep: Any = None,
    reinit: Any = None,
    resize: str | None = None,
    shrink: bool = False,
    unused: str = "raise",
) -> Any:
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
    built on (its shardings' devices, else jax's default backend): grouped on a CPU and a GPU
    (where XLA compiles the hash once per kernel that holds it), one kernel per leaf on TPU,
    where it runs at the speed of writing the bytes and grouped loops do not pay (figures and
    commands in ``bench/RESULTS.md``).

    Args:
      key: the root key: a typed key, a legacy ``uint32[2]`` key or an int seed.
      abstract_tree: a pytree of ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``) or arrays.
      rules: ``(pattern, initializer)`` pairs (a pattern is a ``str`` regex or a compiled one,
        e.g. from :func:`jinit.full_match`) or a dict of them, first match wins; a rule set such
        as :func:`jinit.torch.defaults` may stand in the list, or alone.
      default: the initializer for leaves no rule matches; without it they raise ``ValueError``.
      shardings: a ``Sharding``/``PartitionSpec`` or a pytree of them (``None`` entries: use the
        leaf's own), whose structure is a prefix of ``abstract_tree``'s.
      mesh: turns ``PartitionSpec`` entries, box partitionings and abstract-mesh shardings into
        ``NamedSharding`` (default: the ``jax.set_mesh`` mesh, if any).
      group: draw alike leaves together (``True``), one kernel per leaf (``False``) or choose
        by platform (``None``, the default); the same values.
      portable: draw with the portable samplers (:func:`jinit.portable`): values that are the
        same bits on every backend (CPU, GPU, TPU), not jax's. Every leaf's initializer must
        be jinit's.
      allow_unused_rules: whether a rule may apply to no parameter; ``None`` (the default):
        only without ``default=``.
      keep: a trained tree (fine-tuning surgery): each of its leaves at a path of
        ``abstract_tree``, with its shape and dtype, is returned as it is (with the target's
        sharding), and only the other leaves are drawn (and compiled), with exactly their
        from-scratch values. A trained leaf of another shape or dtype, or with no place in the
        target, raises ``ValueError`` naming it.
      reinit: regexes (``re.search`` on the path, like the rules'): trained leaves to draw
        afresh (the top layers, the head), with their from-scratch values.
      resize: grow trained leaves smaller than the target's: ``'scratch'`` (the new slice
        has the larger leaf's from-scratch values) or ``'mean'`` (new embedding rows from the
        trained rows' mean and 1e-9 times their covariance, as Hugging Face's
        ``mean_resizing``); ``None``: a size mismatch raises.
      shrink: with ``resize``, a trained leaf larger than the target's keeps its leading slice
        (otherwise shrinking raises).
      unused: trained leaves of ``keep`` with no place in the target raise ``ValueError``
        listing them (``'raise'``, the default), or are returned beside the result
        (``'return'``).

    Returns:
      A pytree like ``abstract_tree`` of arrays with its shapes, dtypes and shardings; with
      ``unused='return'``, the pair ``(tree, unused)``, ``unused`` a dict from path to the
      trained leaves that have no place in it (empty when all do).

    Examples:
      >>> import jax, jinit
      >>> abstract = {"dense": {"kernel": jax.ShapeDtypeStruct((64, 128), "float32"),
      ...                       "bias": jax.ShapeDtypeStruct((128,), "bfloat16")}}
      >>> rules = [(r"kernel$", jinit.glorot_uniform()), (r"bias$", jinit.zeros)]
      >>> params = jinit.init_tree(jax.random.key(0), abstract, rules)
      >>> jax.tree.map(lambda x: (x.shape, str(x.dtype)), params)
      {'dense': {'bias': ((128,), 'bfloat16'), 'kernel': ((64, 128), 'float32')}}
    """
    return initialize(
        key,
        abstract_tree,
        rules,
        "init_tree",
        default=default,
        shardings=shardings,
        mesh=mesh,
        group=group,
        portable=portable,
        allow_unused_rules=allow_unused_rules,
        keep=keep,
        reinit=reinit,
        resize=resize,
        shrink=shrink,
        unused=unused,
    )

"""Rule-based whole-tree initialisation, built as one compiled, sharded computation."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

from jinit import _boxes, _build, _eqx_tree, _jax_compat, _keys, _rules, _value
from jinit._typing import Initializer

Rules = _rules.Rules


def ambient_mesh() -> Mesh | None:
    """The concrete mesh set by ``jax.set_mesh`` (None outside one), also inside ``jit``
    (where the public ``jax.sharding.get_mesh`` refuses to answer)."""
    m = _jax_compat.concrete_mesh()
    return None if m is None or m.empty else m


def check_mesh(mesh: Any, where: str) -> Mesh | None:
    """``mesh=``, checked: a ``Mesh``, or None for the ``jax.set_mesh`` one (None if unset)."""
    if mesh is not None and not isinstance(mesh, Mesh):
        raise TypeError(f"`{where}(mesh=...)` must be a jax.sharding.Mesh or None; got {mesh!r}.")
    return mesh if mesh is not None else ambient_mesh()


@dataclasses.dataclass(frozen=True)
class Leaf:
    """What one parameter needs, all static: its path, shape, dtype, sharding and initializer."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    sharding: Sharding | None
    pattern: str
    init: Initializer


class _Wrap:
    """Marks a broadcast sharding (possibly None) as a leaf while matching prefixes."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _is_sharding_leaf(x: Any) -> bool:
    return x is None or isinstance(x, (Sharding, PartitionSpec))


def _broadcast_shardings(shardings: Any, tree: Any, where: str) -> list[Any]:
    """Per-leaf shardings from a pytree prefix of `tree` (a single sharding is a prefix too)."""
    is_box = _boxes.is_leaf_fn()
    try:
        wrapped = jax.tree.map(
            lambda s, sub: jax.tree.map(lambda _: _Wrap(s), sub, is_leaf=is_box),
            shardings,
            tree,
            is_leaf=_is_sharding_leaf,
        )
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"`{where}(shardings=...)` must be a sharding, or a pytree of shardings "
            f"whose structure is a prefix of the abstract tree's: {e}"
        ) from None
    return [w.value for w in jax.tree.leaves(wrapped, is_leaf=lambda x: isinstance(x, _Wrap))]


def _named(mesh: Mesh, spec: PartitionSpec, path: str, where: str) -> NamedSharding:
    """``NamedSharding(mesh, spec)``, or a ValueError naming the parameter (e.g. an axis the mesh
    lacks)."""
    try:
        return NamedSharding(mesh, spec)
    except ValueError as e:
        raise ValueError(
            f"`{where}`: the parameter {path!r} is partitioned as {spec} on a mesh with axes "
            f"{mesh.axis_names}: {e}"
        ) from None


def _check_fits(s: Any, shape: tuple[int, ...], path: str, where: str) -> None:
    """A NamedSharding's spec must have at most one entry per dimension, and each dimension must
    split evenly into its shards; else a ValueError naming the parameter (not jit's, later)."""
    if not isinstance(s, NamedSharding):
        return
    if len(s.spec) > len(shape):
        raise ValueError(
            f"`{where}`: the parameter {path!r} of shape {shape} is partitioned as {s.spec}, "
            f"which has {len(s.spec)} entries for its {len(shape)} dimensions."
        )
    sizes = dict(s.mesh.shape)
    for dim, (size, entry) in enumerate(zip(shape, s.spec, strict=False)):
        axes = (entry,) if isinstance(entry, str) else entry
        if not isinstance(axes, tuple):  # None (or UNCONSTRAINED): not split
            continue
        shards = int(np.prod([sizes[a] for a in axes]))
        if size % shards:
            raise ValueError(
                f"`{where}`: the parameter {path!r} of shape {shape} is partitioned as "
                f"{s.spec}, which splits dimension {dim} (size {size}) into {shards} shards; "
                f"{shards} must divide {size}."
            )


def _resolve_sharding(s: Any, leaf: Any, mesh: Mesh | None, path: str, where: str):
    """A concrete Sharding (or None) from an explicit sharding, a spec or the leaf's own."""
    if s is None:
        s = getattr(leaf, "sharding", None)
        if not isinstance(s, NamedSharding):  # e.g. a single-device array's placement
            s = None if mesh is None else NamedSharding(mesh, PartitionSpec())
    if isinstance(s, PartitionSpec):
        if mesh is None:
            raise ValueError(
                f"`{where}`: the parameter {path!r} has PartitionSpec {s}; pass "
                "`mesh=` (or run under `jax.set_mesh`) to turn partition specs into shardings."
            )
        s = _named(mesh, s, path, where)
    if isinstance(s, NamedSharding) and not isinstance(s.mesh, Mesh):  # an AbstractMesh
        if mesh is None:
            raise ValueError(
                f"`{where}`: the parameter {path!r} is sharded over an abstract mesh "
                f"({s.spec}); pass the concrete `mesh=` (or run under `jax.set_mesh`)."
            )
        s = _named(mesh, s.spec, path, where)
    return s


def _box_sharding(box: Any, mesh: Mesh | None, logical: Any, path: str, where: str) -> Any:
    """The sharding a Flax box's metadata asks for (None: the box carries no partitioning, or
    is linen metadata with no mesh anywhere, as in Flax's ``model.init``)."""
    if mesh is None and _boxes.is_metadata_without_mesh(box):
        return None
    box_mesh, spec = _boxes.spec(box, logical, path, where)
    if spec is None:
        return None
    box_mesh = box_mesh if box_mesh is not None else mesh
    if box_mesh is None:
        raise ValueError(
            f"`{where}`: the parameter {path!r} is partitioned as {spec}, but there is no mesh; "
            "pass `mesh=` or run under `jax.set_mesh(mesh)`."
        )
    if not isinstance(box_mesh, Mesh):  # an nnx variable's AbstractMesh
        if mesh is None:
            raise ValueError(
                f"`{where}`: the parameter {path!r} is partitioned as {spec} over an abstract "
                "mesh; pass the concrete `mesh=` (or run under `jax.set_mesh`)."
            )
        box_mesh = mesh
    return _named(box_mesh, spec, path, where)


def resolve_leaf_sharding(
    box: Any, leaf: Any, mesh: Mesh | None, logical: Any, path: str, where: str
) -> Any:
    """A leaf's sharding when none is given: its Flax box's partitioning, else its own."""
    s = None if box is None else _box_sharding(box, mesh, logical, path, where)
    return _resolve_sharding(s, leaf, mesh, path, where)


def plan(
    abstract_tree: Any,
    rules: Rules,
    default: Initializer | None,
    shardings: Any,
    mesh: Mesh | None,
    where: str = "init_tree",
    *,
    allow_unused_rules: bool = True,
    logical_axis_rules: Any = None,
) -> tuple[tuple[Leaf, ...], _boxes.Structure]:
    """Resolves every leaf's initializer and sharding, statically; raises naming the path."""
    module = _eqx_tree.adapt(abstract_tree, where)  # an equinox model: its arrays
    if module is not None:
        abstract_tree, rules = module.params, module.bind(rules)
        shardings = module.shardings(shardings, where)  # path rules: a pytree of them
    flat, structure = _boxes.flatten(abstract_tree)
    if not flat:
        raise ValueError(_no_parameter(abstract_tree, where))
    _refuse_equal_paths(abstract_tree, [path for path, _, _ in flat], where)
    for path, leaf, _ in flat:
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            raise TypeError(
                f"`{where}`: the parameter {path!r} must be a jax.ShapeDtypeStruct or "
                f"an array; got {leaf!r}."
            )
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            raise TypeError(
                f"`{where}`: the parameter {path!r} is an RNG key ({leaf.dtype}), not a weight; "
                "initialise an nnx model with `jinit.flax.init_nnx` (which fills RNG state), or "
                "leave the key out of the tree."
            )
    params = [(path, tuple(leaf.shape)) for path, leaf, _ in flat]
    compiled = _rules.compile_rules(rules, default, where, params)
    mesh = mesh if mesh is not None else ambient_mesh()
    if shardings is None:
        per_leaf: list[Any] = [None] * len(flat)
    else:
        per_leaf = _broadcast_shardings(shardings, abstract_tree, where)
    leaves, used = [], set()
    for (path, leaf, box), s in zip(flat, per_leaf, strict=True):
        index, pattern, init = _rules.match(compiled, default, path, where)
        init = init if module is None else module.laid_out(path, init)
        used.add(index)
        if s is None:
            sharding = resolve_leaf_sharding(box, leaf, mesh, logical_axis_rules, path, where)
        else:
            sharding = _resolve_sharding(s, leaf, mesh, path, where)
        _check_fits(sharding, tuple(leaf.shape), path, where)
        leaves.append(Leaf(path, tuple(leaf.shape), np.dtype(leaf.dtype), sharding, pattern, init))
    if not allow_unused_rules:
        _rules.check_used(compiled, used, [p for p, _ in params], where)
    if compiled and used == {-1}:
        raise ValueError(
            f"`{where}`: no rule matches any of the {len(flat)} parameters (every one got "
            f"`default=`); the patterns are {', '.join(repr(r.label) for r in compiled)} and "
            f"the paths are like {flat[0][0]!r}."
        )
    return tuple(leaves), structure if module is None else module.structure(structure)


def _no_parameter(tree: Any, where: str) -> str:
    """Why a tree without parameters is refused (initialising it would silently do nothing)."""
    nones = len(jax.tree.leaves(tree, is_leaf=lambda x: x is None))
    msg = f"`{where}`: the tree holds no parameter (no array or jax.ShapeDtypeStruct leaf)"
    if nones:
        return (
            f"{msg}: its {nones} leaves are None, as in `eqx.partition(model, eqx.is_array)` "
            "of a model from `eqx.filter_eval_shape` (its leaves are ShapeDtypeStructs, not "
            "arrays); pass the model itself (`jinit.equinox.init_eqx(model, ...)`)."
        )
    return f"{msg}; got {tree!r}."


def _refuse_equal_paths(abstract_tree: Any, paths: list[str], where: str) -> None:
    """Two leaves with the same path string (one key, hence one value) raise, naming both."""
    if len(set(paths)) == len(paths):
        return
    keypaths = [
        kp
        for kp, _ in jax.tree_util.tree_flatten_with_path(
            abstract_tree, is_leaf=_boxes.is_leaf_fn()
        )[0]
    ]
    seen: dict[str, Any] = {}
    for path, keypath in zip(paths, keypaths, strict=True):
        if path in seen:
            raise ValueError(
                f"`{where}`: the leaves {jax.tree_util.keystr(seen[path])} and "
                f"{jax.tree_util.keystr(keypath)} have the same path string {path!r}, hence the "
                "same key and the same values; rename one of them."
            )
        seen[path] = keypath


@functools.lru_cache(maxsize=128)
def compiled_builder(
    leaves: tuple[Leaf, ...], impl: str, where: str, group: bool = True, portable: bool = False
) -> Callable[[Any], Any]:
    """One jitted function making every leaf from the root key's data; cached per static plan."""

    def build(key_data):
        root = jax.random.wrap_key_data(key_data, impl=impl)
        return _build.build_all(root, leaves, where, group, portable)

    return jax.jit(build, out_shardings=[leaf.sharding for leaf in leaves])


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
    if not isinstance(data, jax.core.Tracer):
        data = np.asarray(data)
    if group is not None and not isinstance(group, bool):
        raise TypeError(f"`{where}(group=...)` must be a bool or None; got {group!r}.")
    if not isinstance(portable, bool):
        raise TypeError(f"`{where}(portable=...)` must be a bool; got {portable!r}.")
    if group is None:
        group = _build.default_group(leaves)
    build: Callable[..., Callable[[Any], Any]] = compiled_builder
    if any(_traced(leaf.init) for leaf in leaves):
        # An initializer built from a traced hyperparameter (a scale swept under `jax.vmap`)
        # closes over the tracer: a cached builder would keep the tracer alive after its trace
        # ends, and never be hit again (the next trace builds new initializers).
        build = compiled_builder.__wrapped__
    return build(leaves, impl, where, group, portable)(data)


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
) -> Any:
    """:func:`init_tree` for the entry point ``where`` (its name is in every error)."""
    if allow_unused_rules is None:  # a rule that matches nothing is silent only with a default
        allow_unused_rules = default is None
    if not isinstance(allow_unused_rules, bool):
        raise TypeError(
            f"`{where}(allow_unused_rules=...)` must be a bool or None; got {allow_unused_rules!r}."
        )
    mesh = check_mesh(mesh, where)
    leaves, structure = plan(
        abstract_tree,
        rules,
        default,
        shardings,
        mesh,
        where,
        allow_unused_rules=allow_unused_rules,
        logical_axis_rules=logical_axis_rules,
    )
    return structure.unflatten(run(key, leaves, where, group, portable))


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
    built on (its shardings' devices, else jax's default backend): grouped on a CPU, one kernel
    per leaf on TPU and GPU, where it runs at the speed of writing the bytes and grouped loops
    do not pay (figures and commands in ``bench/RESULTS.md``).

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

    Returns:
      A pytree like ``abstract_tree`` of arrays with its shapes, dtypes and shardings.

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
    )

"""Rule-based whole-tree initialisation, built as one compiled, sharded computation."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

from jinit import _build, _keys
from jinit._typing import Initializer

Rules = Sequence[tuple[str, Initializer]] | Mapping[str, Initializer]


def compile_rules(
    rules: Rules, default: Initializer | None = None, where: str = "init_tree"
) -> tuple[tuple[re.Pattern, Initializer], ...]:
    """Validates `rules` and returns them as ``(compiled regex, initializer)`` pairs, in order."""
    items = list(rules.items()) if isinstance(rules, Mapping) else rules
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(
            f"`{where}(rules=...)` must be a sequence of (pattern, initializer) pairs "
            f"or a dict; got {rules!r}."
        )
    out = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise TypeError(
                f"`{where}(rules=...)`: each rule must be a (pattern, initializer) "
                f"pair; got {item!r}."
            )
        pattern, init = item
        if not isinstance(pattern, str):
            raise TypeError(
                f"`{where}(rules=...)`: a rule's pattern must be a str; got {pattern!r}."
            )
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise ValueError(
                f"`{where}(rules=...)`: the pattern {pattern!r} is not a valid "
                f"regular expression: {e}."
            ) from None
        if not callable(init):
            raise TypeError(
                f"`{where}(rules=...)`: the initializer for pattern {pattern!r} must "
                f"be callable as init(key, shape, dtype); got {init!r}."
            )
        out.append((regex, init))
    if default is not None and not callable(default):
        raise TypeError(f"`{where}(default=...)` must be an initializer or None; got {default!r}.")
    return tuple(out)


def match(
    rules: tuple[tuple[re.Pattern, Initializer], ...],
    default: Initializer | None,
    path: str,
    where: str = "init_tree",
) -> tuple[str, Initializer]:
    """The first rule whose pattern `re.search`-es `path`, as (pattern, initializer)."""
    for regex, init in rules:
        if regex.search(path):
            return regex.pattern, init
    if default is not None:
        return "default", default
    patterns = ", ".join(repr(r.pattern) for r, _ in rules) or "(no rules)"
    raise ValueError(
        f"`{where}`: no rule matches the parameter {path!r}; the patterns are "
        f"{patterns}. Add a rule or pass `default=`."
    )


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
    try:
        wrapped = jax.tree.map(
            lambda s, sub: jax.tree.map(lambda _: _Wrap(s), sub),
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
                "`mesh=` to turn partition specs into shardings."
            )
        s = NamedSharding(mesh, s)
    if isinstance(s, NamedSharding) and not isinstance(s.mesh, Mesh):  # an AbstractMesh
        if mesh is None:
            raise ValueError(
                f"`{where}`: the parameter {path!r} is sharded over an abstract mesh "
                f"({s.spec}); pass the concrete `mesh=`."
            )
        s = NamedSharding(mesh, s.spec)
    return s


def plan(
    abstract_tree: Any,
    rules: Rules,
    default: Initializer | None,
    shardings: Any,
    mesh: Mesh | None,
    where: str = "init_tree",
) -> tuple[tuple[Leaf, ...], Any]:
    """Resolves every leaf's initializer and sharding, statically; raises naming the path."""
    compiled = compile_rules(rules, default, where)
    flat, treedef = jax.tree_util.tree_flatten_with_path(abstract_tree)
    if shardings is None:
        per_leaf: list[Any] = [None] * len(flat)
    else:
        per_leaf = _broadcast_shardings(shardings, abstract_tree, where)
    leaves = []
    seen: dict[str, Any] = {}
    for (keypath, leaf), s in zip(flat, per_leaf, strict=True):
        path = _leaf_path(keypath, seen, where)
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            raise TypeError(
                f"`{where}`: the parameter {path!r} must be a jax.ShapeDtypeStruct or "
                f"an array; got {leaf!r}."
            )
        pattern, init = match(compiled, default, path, where)
        sharding = _resolve_sharding(s, leaf, mesh, path, where)
        leaves.append(Leaf(path, tuple(leaf.shape), np.dtype(leaf.dtype), sharding, pattern, init))
    return tuple(leaves), treedef


def _leaf_path(keypath: Any, seen: dict[str, Any], where: str) -> str:
    """The leaf's path string; two leaves with the same string (one key, one value) raise."""
    path = _keys.path_str(keypath)
    if path in seen:
        raise ValueError(
            f"`{where}`: the leaves {jax.tree_util.keystr(seen[path])} and "
            f"{jax.tree_util.keystr(keypath)} have the same path string {path!r}, hence the same "
            "key and the same values; rename one of them."
        )
    seen[path] = keypath
    return path


@functools.lru_cache(maxsize=128)
def compiled_builder(
    leaves: tuple[Leaf, ...], impl: str, where: str, group: bool = True
) -> Callable[[Any], Any]:
    """One jitted function making every leaf from the root key's data; cached per static plan."""

    def build(key_data):
        root = jax.random.wrap_key_data(key_data, impl=impl)
        return _build.build_all(root, leaves, where, group)

    out_shardings = [leaf.sharding for leaf in leaves]
    return jax.jit(build, out_shardings=out_shardings)


def run(key: Any, leaves: tuple[Leaf, ...], where: str, group: bool = True) -> list[jax.Array]:
    """Builds every leaf in one compiled call. The key travels as raw data: a host numpy array
    when concrete (so every process of a multi-controller run passes the same global value)."""
    root = _keys.as_key(key, where)
    impl = str(jax.random.key_impl(root))
    data: Any = jax.random.key_data(root)
    if not isinstance(data, jax.core.Tracer):
        data = np.asarray(data)
    if not isinstance(group, bool):
        raise TypeError(f"`{where}(group=...)` must be a bool; got {group!r}.")
    return compiled_builder(leaves, impl, where, group)(data)


def init_tree(
    key: Any,
    abstract_tree: Any,
    rules: Rules,
    *,
    default: Initializer | None = None,
    shardings: Any = None,
    mesh: Mesh | None = None,
    group: bool = True,
) -> Any:
    r"""Initialises a whole parameter tree from path rules, in one compiled, sharded computation.

    Each leaf's path string (:func:`jinit.path_str`, e.g. ``"params/Dense_0/kernel"``) is matched
    against the rules' patterns with ``re.search``, in order; the first match's initializer is
    called as ``init(key_for_path(key, path), shape, dtype)``. Values depend only on ``key`` and
    the path, so they are the same under ``jit`` or not, on any mesh, in one or many processes,
    and whatever other parameters the tree holds. Works under ``jax.vmap`` over ``key``.

    Two leaves with the same path string (``{"a/b": w, "a": {"b": v}}``) would get the same key
    and identical values, so such a tree raises ``ValueError`` naming both.

    Sharding: each leaf gets, in order of precedence, its entry in ``shardings``, the
    ``NamedSharding`` carried by the leaf (a ``ShapeDtypeStruct(..., sharding=...)`` or an array),
    or, with ``mesh=``, replication over ``mesh``. Each device then generates only its own shard.

    Compile time: leaves whose initializers sample alike (same :class:`jinit.Draw`, shape and
    sharding) are drawn together by one compiled kernel and cut apart, so the compile time
    depends on the tree's distinct shapes, not on its depth; the values are the same bits as
    each initializer called alone. ``group=False`` compiles one kernel per leaf instead: slower
    to compile, and on a CPU about 1.5-2x faster to run warm (see ``bench/RESULTS.md``), which
    can pay when one compiled tree is re-initialised many times.

    Args:
      key: the root key: a typed key, a legacy ``uint32[2]`` key or an int seed.
      abstract_tree: a pytree of ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``) or arrays.
      rules: ``(regex, initializer)`` pairs, or a dict of them, first match wins.
      default: the initializer for leaves no rule matches; without it they raise ``ValueError``.
      shardings: a ``Sharding``/``PartitionSpec`` or a pytree of them (``None`` entries: use the
        leaf's own), whose structure is a prefix of ``abstract_tree``'s.
      mesh: turns ``PartitionSpec`` entries and abstract-mesh shardings into ``NamedSharding``.
      group: draw alike leaves together (the default) or one kernel per leaf; same values.

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
    leaves, treedef = plan(abstract_tree, rules, default, shardings, mesh)
    return jax.tree_util.tree_unflatten(treedef, run(key, leaves, "init_tree", group))

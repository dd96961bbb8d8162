"""Per-parameter keys derived from the parameter's path through a fixed, documented digest.

The digest (stable across versions; changing it changes users' initial weights)::

    path  = "params/Block_3/attn/kernel"        # path_str(keypath)
    d     = SHA-256(path.encode("utf-8"))        # 32 bytes
    hi    = uint32 big-endian of d[0:4]
    lo    = uint32 big-endian of d[4:8]
    k     = fold_in(fold_in(root, hi), lo)       # jax.random.fold_in

``root`` is a typed key; an int seed ``s`` means ``jax.random.key(s)`` and a legacy ``uint32[2]``
key means ``jax.random.wrap_key_data(k)``. With the default ``threefry2x32`` implementation every
step is integer arithmetic, so the derived key is the same on every backend, mesh and process.

Path strings and collisions: an entry's text is used as it is, so a dict key containing ``'/'``
reads as nested entries: the flat ``{"a/b": w}`` (as made by
``flax.traverse_util.flatten_dict(params, sep="/")``, or by :func:`jinit.flax.init_nnx`) is the
parameter ``"a/b"`` with the key of the nested ``{"a": {"b": w}}``, on purpose, so flattening a
tree keeps its values. Two *leaves of one tree* with the same path string (``{"a/b": w,
"a": {"b": v}}``; an ``OrderedDict`` with keys ``1`` and ``"1"``) would get the same key and
identical values, so :func:`jinit.init_tree` and :func:`jinit.keys_like` refuse such a tree,
naming both leaves. Neither escaping ``'/'`` (which would change the values of every existing
flat tree) nor refusing it (which would break them) is needed for that guarantee.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey

from jinit import _checks
from jinit._rng import threefry as _threefry
from jinit._tree import xla
from jinit._typing import KeyArray, public

KeyLike = Any  # a typed key, a legacy uint32[2] key, or an int seed
PathLike = str | Sequence[Any]


@public("path_str")
def path_str(keypath: PathLike) -> str:
    """Joins a jax key path into the ``'/'``-separated string that rules and keys are derived from.

    ``DictKey`` gives its key, ``GetAttrKey`` its name, ``SequenceKey`` and ``FlattenedIndexKey``
    their index; plain ``str`` and ``int`` entries (as in ``flax.nnx`` state paths) are taken as
    they are. A string is returned unchanged.

    An entry's text is used as it is: ``("a/b",)`` and ``("a", "b")`` are the same path, so a
    flat dict keyed by path strings has the keys of the nested tree; :func:`jinit.init_tree`
    refuses a tree in which two leaves share a path string (see the module docstring).

    Args:
      keypath: a tuple of key entries, as from ``jax.tree_util.tree_flatten_with_path``, or a str.

    Returns:
      The path string, e.g. ``"params/Dense_0/kernel"``.

    Examples:
      >>> import jax, jinit
      >>> tree = {"params": {"layers": [{"kernel": 0}]}}
      >>> [jinit.path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
      ['params/layers/0/kernel']
    """
    if isinstance(keypath, str):
        return keypath
    parts = []
    for entry in keypath:
        if isinstance(entry, DictKey):
            part = str(entry.key)
        elif isinstance(entry, GetAttrKey):
            part = entry.name
        elif isinstance(entry, SequenceKey):
            part = str(entry.idx)
        elif isinstance(entry, FlattenedIndexKey):
            part = str(entry.key)
        elif isinstance(entry, (str, int, np.integer)) and not isinstance(entry, bool):
            part = str(entry)
        else:
            raise TypeError(
                f"`path_str(keypath=...)`: expected DictKey, GetAttrKey, SequenceKey, "
                f"FlattenedIndexKey, str or int entries; got {entry!r} in {keypath!r}."
            )
        parts.append(part)
    return "/".join(parts)


@functools.lru_cache(maxsize=65536)
def path_words(path: str) -> tuple[int, int]:
    """The two uint32 words folded into the root key: SHA-256 of the UTF-8 path, bytes 0-8."""
    d = hashlib.sha256(path.encode("utf-8")).digest()
    return int.from_bytes(d[0:4], "big"), int.from_bytes(d[4:8], "big")


def as_key(key: KeyLike, where: str = "key_for_path") -> KeyArray:
    """Returns `key` as a scalar typed key: int seeds and legacy uint32[2] keys are converted.

    The same forms, checked the same way, as every initializer's key (:func:`_checks.check_key`).
    """
    key = _checks.check_key(where, key, argument=True)
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):  # a legacy uint32[2] key
        return jax.random.wrap_key_data(key)
    return key


@public("key_for_path")
def key_for_path(key: KeyLike, path: PathLike) -> KeyArray:
    """Derives a parameter's key from the root key and the parameter's path.

    The key depends only on ``key`` and the path string, never on the other parameters or their
    order, so adding, removing or reordering parameters leaves this one's values unchanged. See the
    module docstring for the digest; it is fixed, and works under ``jit`` and ``vmap``.

    Args:
      key: the root key: a typed key, a legacy ``uint32[2]`` key or an int seed.
      path: a ``'/'``-joined path string such as ``"params/Dense_0/kernel"`` or a jax key path.

    Returns:
      A typed key (always typed, whatever form ``key`` had).

    Examples:
      >>> import jax, jinit
      >>> k = jinit.key_for_path(jax.random.key(0), "params/Dense_0/kernel")
      >>> k.shape, jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key)
      ((), True)
      >>> bool((jax.random.key_data(k) == jax.random.key_data(
      ...     jinit.key_for_path(0, ("params", "Dense_0", "kernel")))).all())
      True
    """
    hi, lo = path_words(path_str(path))
    return fold_words(as_key(key), np.uint32(hi), np.uint32(lo))


def fold_words(root: KeyArray, hi: Any, lo: Any) -> KeyArray:
    """``fold_in(fold_in(root, hi), lo)``: the digest's last step (``hi``/``lo`` may be traced)."""
    return jax.random.fold_in(jax.random.fold_in(root, hi), lo)


@public("keys_like")
def keys_like(key: KeyLike, tree: Any) -> Any:
    """Returns a tree of the same structure whose leaves are ``key_for_path(key, leaf_path)``.

    Args:
      key: the root key (typed key, ``uint32[2]`` key or int seed).
      tree: any pytree; only its structure and paths are used.

    Returns:
      A pytree of typed keys.

    Examples:
      >>> import jax, jinit
      >>> keys = jinit.keys_like(jax.random.key(0), {"w": 1.0, "b": [2.0, 3.0]})
      >>> jax.tree.map(lambda k: k.shape, keys)
      {'b': [(), ()], 'w': ()}
    """
    root = as_key(key, "keys_like")
    seen: dict[str, Any] = {}

    def leaf_key(keypath: Any, _: Any) -> KeyArray:
        path = path_str(keypath)
        if path in seen:
            raise ValueError(
                f"`keys_like`: the leaves {jax.tree_util.keystr(seen[path])} and "
                f"{jax.tree_util.keystr(keypath)} have the same path string {path!r}, hence "
                "the same key; rename one of them."
            )
        seen[path] = keypath
        return key_for_path(root, path)

    return jax.tree_util.tree_map_with_path(leaf_key, tree)


class KeyTable:
    """Every path key a tree needs, derived at once: the two ``fold_in``s of
    :func:`jinit.key_for_path` over a table of path digests. For a threefry root, as a loop of
    two steps, one straight-line hash each (:func:`jinit._rng.threefry.fold_step`): the two hashes
    unrolled are one kernel twice the size, and jax's ``fold_in`` is compiled as loops of a few
    kernels each. The loop is :class:`xla.Opaque`'s, whose scalars the keys are read with. The same
    keys as :func:`jinit.key_for_path`."""

    def __init__(self, root: jax.Array, paths: Sequence[str], table: Any = None) -> None:
        self.index = {p: i for i, p in enumerate(dict.fromkeys(paths))}
        words = _words(self.index)
        n, root_data = len(self.index), jax.random.key_data(root)
        if table is not None:  # made on the host (host_table): the loop only hands out indices
            self.opaque = xla.Opaque(n + 1, table, root_data)
            self.data = self.opaque.x
        elif str(jax.random.key_impl(root)) == "threefry2x32" and n:
            k = tuple(jnp.broadcast_to(k, (n,)) for k in _threefry.key_words(root))
            w = (jnp.asarray(words[:, 0]), jnp.asarray(words[:, 1]))
            # (+ 1: a Stream's end)
            self.opaque = xla.Opaque(
                n + 1, k, root_data, lambda i, k: _threefry.fold_step(i, k, w), trips=2
            )
            self.data = jnp.stack(self.opaque.x, axis=1)
        else:
            data = jax.random.key_data(jax.vmap(lambda w: fold_words(root, w[0], w[1]))(words))
            # The table leaves the Opaque loop: a computed array, which XLA would otherwise
            # fuse (recompute) into every kernel that reads a key.
            self.opaque = xla.Opaque(n + 1, data, root_data)
            self.data = self.opaque.x
        self.keys = jax.random.wrap_key_data(self.data, impl=jax.random.key_impl(root))

    @staticmethod
    def host_table(key_data: np.ndarray, impl: str, paths: Sequence[str]) -> np.ndarray | None:
        """The table of a concrete threefry root, made on the host (its hashes are
        microseconds of numpy, where the loop that makes it costs XLA tens of milliseconds to
        compile, on every backend): an argument of the builder; ``None`` for another key
        implementation (derived in the program)."""
        unique = dict.fromkeys(paths)  # (the table's rows, as KeyTable indexes them)
        if impl != "threefry2x32" or len(unique) < 1:
            return None
        words = _words(unique)
        return _threefry.host_fold(key_data, words)

    def one(self, path: str) -> jax.Array:
        """``path``'s key, read at an index XLA sees as a parameter (:class:`xla.Opaque`): a leaf
        drawn alone then compiles to the same kernel as any other of its shape and scheme."""
        return xla.row(self.keys, self.opaque(self.index[path]))

    def take(self, paths: Sequence[str]) -> jax.Array:
        return self.keys[np.array([self.index[p] for p in paths], np.int32)]


def _words(paths: Any) -> np.ndarray:
    """The digest words of each path (in order): ``uint32[n, 2]``."""
    return np.array([path_words(p) for p in paths], np.uint32).reshape(-1, 2)


def stack_depth(path: str, stack: tuple[int, ...], shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Path components before the layer index of a stacked parameter (the ``depth`` of
    :class:`jinit._value.InsertAfter`): the outermost module on ``path`` (below the model itself,
    unless the model is one layer) under which every parameter starts with ``stack``: the module
    a transform stacked (``blocks`` -> ``blocks/3/mlp/kernel``)."""
    parts = path.split("/")
    for depth in range(1 if len(parts) > 1 else 0, len(parts)):
        prefix = "/".join(parts[:depth])
        under = [s for p, s in shapes.items() if not prefix or p.startswith(prefix + "/")]
        if all(s[: len(stack)] == stack for s in under):
            return depth
    return len(parts) - 1

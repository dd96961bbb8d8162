"""`init_tree` and `key_for_path`: jinit's when it has them, else a local stand-in.

The stand-ins (``_fallback_*``) do what ``jinit.init_tree`` is specified to do: one ``jax.jit``
over a ``tree_map_with_path`` that applies the first rule whose regex ``re.search``-matches the
leaf's '/'-joined path, with a per-leaf key folded in from a fixed digest of the path. They exist
only so the benchmark runs before ``jinit.init_tree`` lands; :data:`USING_FALLBACK` says which is
in use and every report prints it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax

import jinit


def path_str(keypath: Sequence[Any]) -> str:
    """A jax key path as the '/'-joined string the rules match, e.g. 'params/h_0/ln_1/scale'."""
    parts = []
    for k in keypath:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def _fallback_key_for_path(key: jax.Array, path: str) -> jax.Array:
    """jinit's documented digest: fold in the first two big-endian uint32 words of SHA-256."""
    d = hashlib.sha256(path.encode()).digest()
    hi, lo = int.from_bytes(d[0:4], "big"), int.from_bytes(d[4:8], "big")
    return jax.random.fold_in(jax.random.fold_in(key, hi), lo)


def _match(rules: Sequence[tuple[str, Callable]], default: Callable | None) -> Callable:
    compiled = [(re.compile(pattern), init) for pattern, init in rules]

    def pick(path: str) -> Callable:
        for rx, init in compiled:
            if rx.search(path):
                return init
        if default is None:
            raise ValueError(
                f"`init_tree(rules=...)`: no rule matches the parameter {path!r} and "
                "no `default=` was given."
            )
        return default

    return pick


def _fallback_init_tree(
    key: jax.Array,
    abstract_tree: Any,
    rules: Sequence[tuple[str, Callable]],
    *,
    default: Callable | None = None,
    shardings: Any = None,
) -> Any:
    pick = _match(rules, default)

    def build(key):
        def leaf(keypath, sds):
            path = path_str(keypath)
            return pick(path)(key_for_path(key, path), sds.shape, sds.dtype)

        return jax.tree_util.tree_map_with_path(leaf, abstract_tree)

    return jax.jit(build, out_shardings=shardings)(key)


USING_FALLBACK = not hasattr(jinit, "init_tree")
init_tree: Callable[..., Any] = _fallback_init_tree if USING_FALLBACK else jinit.init_tree
key_for_path: Callable[[jax.Array, str], jax.Array] = getattr(
    jinit, "key_for_path", _fallback_key_for_path
)
path_str = getattr(jinit, "path_str", path_str)
if not USING_FALLBACK and not hasattr(jinit, "key_for_path"):  # pragma: no cover
    raise ImportError(
        "jinit has `init_tree` but no `key_for_path`; the benchmark needs both to "
        "key its jax.nn peers like jinit."
    )

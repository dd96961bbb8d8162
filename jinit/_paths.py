"""Paths into nested dicts of parameters: tuples of keys, ``("Dense_0", "kernel")``.

Shared by :mod:`jinit.data_init` and :mod:`jinit._signal`, which find layers by their paths in a
Flax parameter tree and read (or rewrite) the arrays there.
"""

from __future__ import annotations

from typing import Any

Path = tuple[Any, ...]


def get(tree: Any, path: Path) -> Any:
    """The value of ``tree`` at ``path``: ``tree[path[0]][path[1]]...``."""
    for k in path:
        tree = tree[k]
    return tree


def replace(tree: Any, path: Path, value: Any) -> Any:
    """A copy of the nested dict ``tree`` with ``value`` at ``path`` (``tree`` is unchanged)."""
    if not path:
        return value
    out = dict(tree)
    out[path[0]] = replace(tree[path[0]], path[1:], value)
    return out

"""The functions the jit peers compile, built from jax (and jinit) alone, without Flax.

Shared by the in-process peers (:mod:`bench.peers`) and the fresh-process cold runs
(:mod:`bench.cold`), so both time exactly the same program. Each ``*_body`` returns a function
of one key that builds the whole tree; ``jax.jit`` it (with ``out_shardings``) to compile it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from bench import treeinit
from bench.presets import rules


def jinit_body(
    abstract: Any, shardings: Any = None, group: bool = True
) -> Callable[[jax.Array], Any]:
    """``jinit.init_tree`` with Flax's default schemes (``group=False``: one kernel per leaf)."""
    import jinit

    tree_rules = rules(jinit)
    options = {} if group else {"group": False}

    def body(key):
        return treeinit.init_tree(key, abstract, tree_rules, shardings=shardings, **options)

    return body


def jax_nn_body(abstract: Any) -> Callable[[jax.Array], Any]:
    """The same rules from ``jax.nn.initializers``, each leaf keyed from its path like jinit."""
    pick = treeinit._match(rules(jax.nn.initializers), None)

    def body(key):
        def leaf(keypath, sds):
            path = treeinit.path_str(keypath)
            return pick(path)(treeinit.key_for_path(key, path), sds.shape, sds.dtype)

        return jax.tree_util.tree_map_with_path(leaf, abstract)

    return body


def fill_body(abstract: Any) -> Callable[[jax.Array], Any]:
    """``jnp.full(0.5)`` for every leaf: the write-bandwidth limit."""

    def body(key):
        del key
        return jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), abstract)

    return body

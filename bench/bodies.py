"""The functions the jit peers compile, built from jax (and jinit) alone, without Flax.

Shared by the in-process peers (:mod:`bench.peers`) and the fresh-process cold runs
(:mod:`bench.cold`), so both time exactly the same program. Each ``*_body`` returns a function
of one key that builds the whole tree; ``jax.jit`` it (with ``out_shardings``) to compile it.
A scan ``scope`` (a ``--scan`` preset's) marks the leaves under ``params/<scope>/`` as stacked:
layer ``i`` is drawn with one layer's shape under the key of ``params/<scope>/<i>/...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

import jinit
from bench.presets import rules, stacked_prefix


def jinit_body(
    abstract: Any, shardings: Any = None, group: bool | None = None, scope: str | None = None
) -> Callable[[jax.Array], Any]:
    """``jinit.init_tree`` with Flax's default schemes (``group``: as ``init_tree``'s; by
    default the platform's schedule; ``scope``: the stacked leaves' rules wrapped in
    ``jinit.stacked``, see :func:`bench.presets.rules`)."""
    tree_rules = rules(jinit, scope)
    options = {} if group is None else {"group": group}

    def body(key):
        return jinit.init_tree(key, abstract, tree_rules, shardings=shardings, **options)

    return body


def hand_written_body(
    tree_rules: Sequence[tuple[str, Callable]], abstract: Any, scope: str | None = None
) -> Callable[[jax.Array], Any]:
    """What users write without jinit: ``tree_map_with_path`` applying the first rule whose
    regex ``re.search``-matches the leaf's path, each leaf keyed by ``jinit.key_for_path`` (so
    the values are comparable with jinit's). Under a scan ``scope``, ``jax.vmap`` of the rule
    over the layers' keys (``params/<scope>/<i>/...``), each on one layer's shape, so the fans
    are one layer's, as in Flax's ``nn.scan``."""
    compiled = [(re.compile(pattern), init) for pattern, init in tree_rules]
    prefix = None if scope is None else stacked_prefix(scope)

    def pick(path: str) -> Callable:
        return next(init for rx, init in compiled if rx.search(path))

    def body(key):
        def leaf(keypath, sds):
            path = jinit.path_str(keypath)
            init = pick(path)
            if prefix is None or not path.startswith(prefix):
                return init(jinit.key_for_path(key, path), sds.shape, sds.dtype)
            rest = path[len(prefix) :]
            keys = [jinit.key_for_path(key, f"{prefix}{i}/{rest}") for i in range(sds.shape[0])]
            return jax.vmap(lambda k: init(k, sds.shape[1:], sds.dtype))(jnp.stack(keys))

        return jax.tree_util.tree_map_with_path(leaf, abstract)

    return body


def jax_nn_body(abstract: Any, scope: str | None = None) -> Callable[[jax.Array], Any]:
    """The same rules from ``jax.nn.initializers``, written by hand as above."""
    return hand_written_body(rules(jax.nn.initializers), abstract, scope)


def fill_body(abstract: Any) -> Callable[[jax.Array], Any]:
    """``jnp.full(0.5)`` for every leaf: the write-bandwidth limit."""

    def body(key):
        del key
        return jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), abstract)

    return body

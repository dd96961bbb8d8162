"""Fine-tuning surgery: keep a trained tree's leaves, draw only what is new.

``init_tree(key, target, rules, keep=trained, reinit=patterns)``: a leaf of ``trained`` at a
target path, with the target's shape and dtype, is returned as it is (placed with the target's
sharding); every other leaf, and every leaf a ``reinit`` pattern matches, is drawn exactly as in
a from-scratch ``init_tree(key, target, rules)``: its key comes from its path alone, so what the
tree also holds changes none of its bits. Only the drawn leaves are compiled. Nothing is lost
silently: a trained leaf whose shape or dtype differs raises (naming the path and both shapes),
and trained leaves with no place in the target raise, listed.

``resize="scratch"`` grows a trained leaf instead (a larger vocabulary, more positions): the
trained values keep their slice and the new slice has the from-scratch values of the larger
leaf. ``resize="mean"`` fills new rows of a leaf grown on its first axis as Hugging Face's
``resize_token_embeddings(mean_resizing=True)`` does: drawn from the normal with the trained
rows' mean and ``1e-9`` times their covariance (the mean itself where that is not positive
definite). Shrinking takes ``shrink=True`` (the trained leaf's leading slice is kept).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._tree import boxes as _boxes
from jinit._tree import keys as _keys
from jinit._tree.leaf import Leaf

KEPT, NEW, REINIT, RESIZED = "kept", "new", "re-initialised", "resized"
RESIZE = (None, "scratch", "mean")
UNUSED = ("raise", "return")


def patterns(reinit: Any, where: str) -> list[re.Pattern]:
    """``reinit=`` as compiled patterns: a regex (``str`` or compiled) or a sequence of them,
    matched with ``re.search`` like the rules' patterns."""
    if reinit is None:
        return []
    items = [reinit] if isinstance(reinit, str | re.Pattern) else reinit
    if not isinstance(items, Sequence) or not all(isinstance(p, str | re.Pattern) for p in items):
        raise TypeError(
            f"`{where}(reinit=...)` must be a regex (str or compiled) or a sequence of them; "
            f"got {reinit!r}."
        )
    out = []
    for p in items:
        try:
            out.append(re.compile(p) if isinstance(p, str) else p)
        except re.error as e:
            raise ValueError(f"`{where}(reinit=...)`: {p!r} is not a valid regex: {e}.") from None
    return out


def trained_leaves(keep: Any, where: str) -> dict[str, Any]:
    """``keep``'s parameters by path (a Flax box is one parameter, at its path)."""
    flat, _ = _boxes.flatten(keep)
    out = {}
    for path, x, _ in flat:
        if isinstance(x, jax.ShapeDtypeStruct) or not hasattr(x, "shape"):
            raise TypeError(
                f"`{where}(keep=...)`: the trained parameter {path!r} must be an array; got {x!r}."
            )
        out[path] = x
    return out


def statuses(
    leaves: Sequence[Leaf],
    keep: Any,
    reinit: Any,
    where: str,
    resize: str | None = None,
    shrink: bool = False,
    unused: str = "raise",
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Each leaf's fate (:data:`KEPT`, :data:`NEW`, :data:`REINIT` or :data:`RESIZED`), the
    trained leaves by path and those with no place in the target (``unused='return'``); raises
    for a trained leaf that does not fit (and may not be resized) or, by default, has no place
    in the target. (The entry point has checked ``unused``, ``resize`` and ``shrink``:
    :mod:`jinit._tree.options`.)"""
    trained = trained_leaves(keep, where)
    compiled = patterns(reinit, where)
    out, seen = [], set()
    for leaf in leaves:
        x = trained.get(leaf.path)
        if x is not None:
            seen.add(leaf.path)
        if any(p.search(leaf.path) for p in compiled):
            out.append(REINIT if x is not None else NEW)
        elif x is None:
            out.append(NEW)
        elif tuple(x.shape) == leaf.shape and np.dtype(x.dtype) == leaf.dtype:
            out.append(KEPT)
        else:
            _check_resize(x, leaf, where, resize, shrink)
            out.append(RESIZED)
    extra = sorted(set(trained) - seen)
    if extra and unused == "raise":
        shown = ", ".join(repr(p) for p in extra[:10]) + (" ..." if len(extra) > 10 else "")
        raise ValueError(
            f"`{where}(keep=...)`: {len(extra)} trained parameters have no place in the target "
            f"(they would be dropped): {shown}. Remove them from `keep=` or add them to the "
            "target, or pass `unused='return'` to have them returned beside the result."
        )
    return out, trained, {p: trained[p] for p in extra}


def _check_resize(x: Any, leaf: Leaf, where: str, resize: str | None, shrink: bool) -> None:
    have, want = tuple(x.shape), leaf.shape
    what = (
        f"the trained parameter {leaf.path!r} is {np.dtype(x.dtype)}{list(have)}, but the "
        f"target's is {leaf.dtype}{list(want)}"
    )
    if np.dtype(x.dtype) != leaf.dtype or len(have) != len(want):
        raise ValueError(f"`{where}(keep=...)`: {what}; re-initialise it (`reinit=`).")
    if resize is None:
        raise ValueError(
            f"`{where}(keep=...)`: {what}; grow it (`resize='scratch'` or 'mean'), "
            "re-initialise it (`reinit=`) or give the trained tree the target's shapes."
        )
    if not shrink and any(h > w for h, w in zip(have, want, strict=True)):
        raise ValueError(
            f"`{where}(keep=...)`: {what}; shrinking it drops values: pass "
            "`shrink=True` to keep its leading slice."
        )
    if resize == "mean" and (have[1:] != want[1:] or len(have) != 2 or want[0] < have[0]):
        raise ValueError(
            f"`{where}(resize='mean')`: {what}; mean resizing adds rows to a 2-D leaf (an "
            "embedding table) along its first axis only; use `resize='scratch'`."
        )


def resized(x: Any, drawn: Any, key: Any, leaf: Leaf, resize: str | None) -> Any:
    """``drawn`` (the from-scratch larger leaf) with ``x``'s values in their slice, and, for
    ``resize='mean'``, its new rows drawn from the trained rows' mean and covariance."""
    common = tuple(slice(0, min(h, w)) for h, w in zip(x.shape, leaf.shape, strict=True))
    out = drawn.at[common].set(jnp.asarray(x)[common].astype(drawn.dtype))
    if resize == "mean" and leaf.shape[0] > x.shape[0]:
        rows = jnp.asarray(x, jnp.float32)
        mean = rows.mean(axis=0, keepdims=True)
        centered = rows - mean
        cov = 1e-9 * (centered.T @ centered) / rows.shape[0]
        chol = jnp.linalg.cholesky(cov)
        k = jax.random.fold_in(_keys.key_for_path(key, leaf.path), 0x6D65616E)  # "mean"
        z = jax.random.normal(k, (leaf.shape[0] - x.shape[0], rows.shape[1]), jnp.float32)
        sampled = mean + z @ chol.T
        new = jnp.where(jnp.isnan(chol).any(), jnp.broadcast_to(mean, sampled.shape), sampled)
        out = out.at[x.shape[0] :].set(new.astype(drawn.dtype))
    return place(out, leaf)


def place(x: Any, leaf: Leaf) -> Any:
    """A kept leaf with the target's sharding (as it is where the target has none)."""
    return x if leaf.sharding is None else jax.device_put(x, leaf.sharding)

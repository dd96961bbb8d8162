"""Rule diagnostics: which rule and initializer each parameter of a tree gets, and what it aims
for, without drawing any weights."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from jax.sharding import Mesh, NamedSharding, Sharding

from jinit import _describe, _tree, _value
from jinit._tree import keep as _keep
from jinit._tree import options as _options
from jinit._tree import rules as _rules
from jinit._tree import sharding as _sharding
from jinit._typing import Initializer, public

# A parameter whose last path component is one of these is a weight: `default=` on it is noted.
WEIGHT_NAMES = frozenset({"kernel", "weight", "weights", "w", "embedding"})


@public("ParamRule")
class ParamRule(NamedTuple):
    """What :func:`explain` reports for one parameter."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    rule: str
    init: Initializer
    initializer: str
    fan_in: float | None
    fan_out: float | None
    target_mean: float | None
    target_std: float | None
    note: str | None
    sharding: Sharding | None = None


@public("Explanation")
class Explanation(tuple):
    """The :class:`ParamRule` of every parameter, in tree order; ``str()`` is a table."""

    def __str__(self) -> str:
        fmt = lambda v: "-" if v is None else f"{v:.4g}"
        rows = [
            ("parameter", "shape", "dtype", "rule", "initializer", "target std", "sharding", "note")
        ]
        for r in self:
            rows.append(
                (
                    r.path,
                    str(r.shape),
                    r.dtype,
                    r.rule,
                    r.initializer,
                    fmt(r.target_std),
                    _placement(r.sharding),
                    r.note or "",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        )


def _placement(sharding: Sharding | None) -> str:
    """How :func:`explain`'s table shows a parameter's sharding: ``one device`` (None: jax's
    default device), ``replicated`` (over the whole mesh), or the spec (``P(None, 'tensor')``)."""
    if sharding is None:
        return "one device"
    if isinstance(sharding, NamedSharding):
        return str(sharding.spec) if _sharding.is_split(sharding) else "replicated"
    return str(sharding)


@public("explain")
@_options.entry_point(
    "explain",
    _options.RULES,
    _options.DEFAULT,
    _options.ALLOW_UNUSED_RULES_EXPLAINED,
    _options.SHARDINGS,
    _options.MESH,
    _options.LOGICAL_AXIS_RULES,
    *_options.SURGERY,
)
def explain(call: _options.Call, abstract_tree: Any, rules) -> Explanation:
    r"""Which rule, initializer and sharding each parameter gets, and the std it aims for;
    draws nothing.

    The matching is exactly :func:`jinit.init_tree`'s: each parameter's path
    (``"params/Dense_0/kernel"``; a Flax box is one parameter at its own path) is tried against
    the rules in order with :func:`re.search`, which matches anywhere in the path (``"conv/bias"``
    also matches ``"params/gconv/bias"``; anchor the pattern or use :func:`jinit.full_match`),
    and the first match wins. A rule that applies to no parameter (misspelt, or shadowed by an
    earlier rule) is an error unless ``allow_unused_rules=True``; ``default=`` reaching a
    parameter named like a weight (``kernel``, ``weight``, ``w``, ``embedding``) is noted.

    The sharding is :func:`jinit.init_tree`'s too (``shardings``, a box's partitioning, the
    leaf's own, replication over ``mesh`` or the ``jax.set_mesh`` mesh), with its errors; with
    no mesh at all, a linen partitioning box is metadata and its parameter is on one device.

    With ``keep=`` (fine-tuning surgery), each parameter's note says whether it is kept, new,
    resized or re-initialised, with :func:`jinit.init_tree`'s errors.

    Args:
      abstract_tree: a pytree of ``jax.ShapeDtypeStruct`` or arrays (Flax boxes allowed).

    Returns:
      An :class:`Explanation`: a tuple of :class:`ParamRule` (path, shape, dtype, rule,
      initializer and its name, fans, target mean and std from :func:`jinit.describe`'s
      formula, note, and the ``Sharding`` or None for jax's default device), whose ``str()`` is
      a table.

    Examples:
      >>> import jax, jinit
      >>> abstract = {"conv": {"kernel": jax.ShapeDtypeStruct((3, 3, 16, 32), "float32")},
      ...             "head": {"kernel": jax.ShapeDtypeStruct((32, 10), "float32")}}
      >>> rules = [(r"conv/kernel$", jinit.he_normal())]
      >>> for r in jinit.explain(abstract, rules, default=jinit.zeros):
      ...     print(r.path, r.rule, r.target_std and round(r.target_std, 4), r.note)
      conv/kernel conv/kernel$ 0.1179 None
      head/kernel default 0.0 default= on a weight-like parameter
    """
    return explain_with(abstract_tree, rules, where=call.where, **call.options)


def explain_with(
    abstract_tree: Any,
    rules: _rules.Rules,
    *,
    default: Initializer | None = None,
    allow_unused_rules: bool = False,
    shardings: Any = None,
    mesh: Mesh | None = None,
    logical_axis_rules: Any = None,
    adapt: Any = None,
    where: str = "explain",
    keep: Any = None,
    reinit: Any = None,
    resize: str | None = None,
    shrink: bool = False,
) -> Explanation:
    """:func:`explain` for the entry point ``where``, whose options
    :func:`~jinit._tree.options.entry_point` has checked, with an ``adapt`` (the Flax helpers'
    module fans, whose ``note`` says which fans a parameter gets and why)."""
    leaves, _ = _tree.plan(
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
    fates: list[str | None] = [None] * len(leaves)
    if keep is not None:
        fates = list(_keep.statuses(leaves, keep, reinit, where, resize, shrink)[0])
    out = []
    for leaf, fate in zip(leaves, fates, strict=True):
        fan_in, fan_out, mean, std = _describe.intended(leaf.init, leaf.shape)
        weight = leaf.path.rsplit("/", 1)[-1] in WEIGHT_NAMES
        notes = [
            "default= on a weight-like parameter" if leaf.pattern == "default" and weight else None,
            getattr(adapt, "note", lambda *_: None)(leaf.path, leaf.shape),
            fate,
        ]
        note = "; ".join(n for n in notes if n) or None
        out.append(
            ParamRule(
                leaf.path,
                leaf.shape,
                str(np.dtype(leaf.dtype)),
                leaf.pattern,
                leaf.init,
                _value.short_name(leaf.init),
                fan_in,
                fan_out,
                mean,
                std,
                note,
                leaf.sharding,
            )
        )
    return Explanation(out)

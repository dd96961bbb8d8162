"""Path rules: which initializer each parameter gets, checked so that a rule cannot fail silently.

A rule is ``(pattern, initializer)``. A ``str`` pattern is matched with :func:`re.search`
against the parameter's path (``"params/Dense_0/kernel"``): it may match anywhere, so
``"conv/bias$"`` also matches ``"params/gconv/bias"``; anchor it (``"(^|/)conv/bias$"``) or use
:func:`full_match`. A rule set (such as :func:`jinit.torch.defaults`) stands for one rule per
parameter it recognises, resolved against the tree. The first rule that matches wins.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from jinit._typing import Initializer, public

Pattern = str | re.Pattern


@runtime_checkable
class RuleSet(Protocol):
    """Rules derived from the tree: ``expand(params, taken, where)`` returns
    ``(pattern, init, label)`` triples for the ``(path, shape)`` pairs it covers, skipping paths
    for which ``taken(path)`` (an earlier rule matches them); errors name ``where``."""

    def expand(
        self,
        params: Sequence[tuple[str, tuple[int, ...]]],
        taken: Callable[[str], bool],
        where: str,
    ) -> list[tuple[Pattern, Initializer, str]]: ...


Rules = Sequence[Any] | Mapping[Pattern, Initializer] | RuleSet


@dataclasses.dataclass(frozen=True)
class Rule:
    """One compiled rule: its regex, initializer and the label diagnostics show for it."""

    regex: re.Pattern
    init: Initializer
    label: str


@public("full_match")
def full_match(pattern: str) -> re.Pattern:
    r"""A rule pattern that must match the whole path, not just part of it (``re.fullmatch``).

    A ``str`` pattern is matched with ``re.search``: ``"conv/bias"`` matches
    ``"params/conv/bias"`` and ``"params/gconv/bias"`` alike. ``full_match("params/conv/bias")``
    matches that path only.

    Args:
      pattern: a regular expression the whole ``'/'``-joined path must match.

    Returns:
      A compiled pattern, usable wherever a rule takes a pattern.

    Examples:
      >>> import jinit
      >>> p = jinit.full_match(r"params/conv/bias")
      >>> bool(p.search("params/conv/bias")), bool(p.search("params/gconv/bias"))
      (True, False)
    """
    if not isinstance(pattern, str):
        raise TypeError(f"`full_match(pattern=...)` must be a str; got {pattern!r}.")
    try:
        return re.compile(rf"\A(?:{pattern})\Z")
    except re.error as e:
        raise ValueError(
            f"`full_match(pattern=...)`: {pattern!r} is not a valid regular expression: {e}."
        ) from None


def _label(regex: re.Pattern) -> str:
    m = re.fullmatch(r"\\A\(\?:(.*)\)\\Z", regex.pattern, re.DOTALL)
    return f"full_match({m.group(1)!r})" if m else regex.pattern


def _compile_one(item: Any, where: str) -> Rule:
    if not (isinstance(item, tuple | list) and len(item) == 2):
        raise TypeError(
            f"`{where}(rules=...)`: each rule must be a (pattern, initializer) pair; got {item!r}."
        )
    pattern, init = item
    if isinstance(pattern, re.Pattern):
        regex = pattern
    elif isinstance(pattern, str):
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise ValueError(
                f"`{where}(rules=...)`: the pattern {pattern!r} is not a valid "
                f"regular expression: {e}."
            ) from None
    else:
        raise TypeError(
            f"`{where}(rules=...)`: a rule's pattern must be a str; got {pattern!r} "
            "(a compiled `re.Pattern`, e.g. from `jinit.full_match`, is accepted too)."
        )
    if not callable(init):
        raise TypeError(
            f"`{where}(rules=...)`: the initializer for pattern {regex.pattern!r} must "
            f"be callable as init(key, shape, dtype); got {init!r}."
        )
    return Rule(regex, init, regex.pattern if isinstance(pattern, str) else _label(regex))


def _items(rules: Rules, where: str) -> list[Any]:
    if isinstance(rules, RuleSet):
        return [rules]
    items = list(rules.items()) if isinstance(rules, Mapping) else rules
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise TypeError(
            f"`{where}(rules=...)` must be a sequence of (pattern, initializer) pairs "
            f"or a dict; got {rules!r}."
        )
    return list(items)


def compile_rules(
    rules: Rules,
    default: Initializer | None = None,
    where: str = "init_tree",
    params: Sequence[tuple[str, tuple[int, ...]]] = (),
) -> tuple[Rule, ...]:
    """Validates ``rules`` and compiles them, in order; rule sets are expanded against
    ``params`` (the tree's ``(path, shape)`` pairs)."""
    out: list[Rule] = []
    for item in _items(rules, where):
        if isinstance(item, RuleSet):
            done = tuple(out)
            taken = lambda path, done=done: any(r.regex.search(path) for r in done)
            for pattern, init, label in item.expand(params, taken, where):
                rule = _compile_one((pattern, init), where)
                out.append(dataclasses.replace(rule, label=label))
        else:
            out.append(_compile_one(item, where))
    if default is not None and not callable(default):
        raise TypeError(f"`{where}(default=...)` must be an initializer or None; got {default!r}.")
    return tuple(out)


def match(
    rules: Sequence[Rule], default: Initializer | None, path: str, where: str = "init_tree"
) -> tuple[int, str, Initializer]:
    """The first rule whose pattern ``re.search``-es ``path``: (index, label, initializer);
    index -1 for ``default``."""
    for i, rule in enumerate(rules):
        if rule.regex.search(path):
            return i, rule.label, rule.init
    if default is not None:
        return -1, "default", default
    patterns = ", ".join(repr(r.label) for r in rules) or "(no rules)"
    raise ValueError(
        f"`{where}`: no rule matches the parameter {path!r}; the patterns are "
        f"{patterns}. Add a rule or pass `default=`."
    )


def check_used(rules: Sequence[Rule], used: set[int], paths: Sequence[str], where: str) -> None:
    """Raises for the first rule that no parameter got (a misspelt or shadowed pattern)."""
    for i, rule in enumerate(rules):
        if i in used:
            continue
        shadowed = [p for p in paths if rule.regex.search(p)]
        if shadowed:
            why = f"every parameter it matches ({shadowed[0]!r}, ...) is taken by an earlier rule"
        else:
            shown = ", ".join(repr(p) for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
            why = f"it matches none of the {len(paths)} parameters ({shown})"
        raise ValueError(
            f"`{where}`: the rule {rule.label!r} applies to no parameter: {why}. Fix or remove "
            "it, or pass `allow_unused_rules=True`."
        )

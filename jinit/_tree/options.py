"""The options the entry points share, each written once: its name, default, annotation, one
doc paragraph and its check.

:func:`jinit.init_tree`, :func:`jinit.flax.init_linen`, :func:`jinit.flax.init_nnx`,
:func:`jinit.equinox.init_eqx`, :func:`jinit.explain`, :func:`jinit.flax.explain_linen` and
:func:`jinit.flax.explain_nnx` take the same keywords (``default``, ``mesh``, ``keep``, ...).
Each is an :class:`Option` row below, and :func:`entry_point` makes a function an entry point
with a list of rows: its visible signature (``inspect.signature``, ``help()``, the docs) lists
them with the row's default and annotation, its docstring's ``Args`` holds the row's paragraph,
and every call checks the values the caller gave, at once, before anything is planned or traced,
with errors naming the entry point called (```init_linen(unused=...)` must be ...``).

The function's own parameters (``module``, ``*args``, ``filter``, ...) are written in its ``def``
and documented in its own ``Args``; it receives the shared options, checked and with their
defaults filled, as its first argument, a :class:`Call`.

Why the signatures are built rather than written out (jinit's docstrings are otherwise written
in the source, as jax's are): seven functions wrote the same dozen keywords with their defaults
and paragraphs, and forwarded each by name; the copies had drifted (``group``'s "grouped on a
CPU" in the wrappers after GPUs were grouped too), and most checks ran only after a linen model
was traced. Written-out signatures held equal by a test would keep the copies. ``help()``, the
API reference and IDEs that ask ``inspect.signature`` show the same as before; a static checker
sees ``Callable[..., R]`` and no longer flags a misspelt keyword, which raises at the call,
naming the entry point. ``tests/test_options.py`` holds every entry point to this table.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import textwrap
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from jinit import _checks
from jinit._tree import keep as _keep
from jinit._tree import sharding as _sharding

R = TypeVar("R")
REQUIRED = inspect.Parameter.empty


@dataclasses.dataclass(frozen=True)
class Option:
    """One shared parameter: ``check(where, name, value)`` raises for a bad value; ``needs``:
    the option without which a value other than the default is refused (``reinit`` needs
    ``keep``). A row with no default is positional: the entry point writes it in its ``def``
    (where it stands differs), and takes its annotation, doc and check from the row."""

    name: str
    default: Any
    annotation: str
    doc: str
    check: Callable[[str, str, Any], object] | None = None
    needs: str | None = None

    def parameter(self) -> inspect.Parameter:
        kind = inspect.Parameter.KEYWORD_ONLY
        return inspect.Parameter(self.name, kind, default=self.default, annotation=self.annotation)


class Call(NamedTuple):
    """What an entry point's body receives first: its public name (for errors) and its keyword
    rows' values, every one present (the caller's, checked, or the row's default)."""

    where: str
    options: dict[str, Any]


def _is_bool(where: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"`{where}({name}=...)` must be a bool; got {value!r}.")


def _is_bool_or_none(where: str, name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"`{where}({name}=...)` must be a bool or None; got {value!r}.")


def _one_of(*choices: Any) -> Callable[[str, str, Any], None]:
    shown = ", ".join(map(repr, choices))
    expected = " or ".join(map(repr, choices)) if len(choices) == 2 else f"one of {shown}"

    def check(where: str, name: str, value: Any) -> None:
        if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
            raise ValueError(f"`{where}({name}=...)` must be {expected}; got {value!r}.")

    return check


KEY = Option(
    "key",
    REQUIRED,
    "Any",
    "the root key: a typed key (``jax.random.key``), a legacy ``uint32[2]`` key or an int seed.",
    lambda where, _, value: _checks.check_key(where, value, argument=True),
)
RULES = Option(
    "rules",
    REQUIRED,
    "Rules",
    "``(pattern, initializer)`` pairs (a pattern is a ``str`` regex, matched with "
    "``re.search``, or a compiled one, e.g. from :func:`jinit.full_match`) or a dict of them, "
    "first match wins; a rule set such as :func:`jinit.torch.defaults` may stand in the list, or "
    "alone.",
)
DEFAULT = Option(
    "default",
    None,
    "Initializer | None",
    "the initializer for parameters no rule matches; without it they raise ``ValueError``.",
)
SHARDINGS = Option(
    "shardings",
    None,
    "Any",
    "a ``Sharding``/``PartitionSpec`` or a pytree of them (``None`` entries: use the "
    "parameter's own) whose structure is a prefix of the tree's; for an equinox model also "
    "``(pattern, spec)`` pairs or a ``{pattern: spec}`` dict, matched against the paths like "
    "rules (first match wins; a pattern matching no parameter raises).",
)
MESH = Option(
    "mesh",
    None,
    "Mesh | None",
    "turns ``PartitionSpec`` entries, box partitionings and abstract-mesh shardings into "
    "``NamedSharding``; a parameter with none of them is replicated over it (default: the "
    "``jax.set_mesh`` mesh, if any; with neither, every parameter is on jax's default device).",
    lambda where, _, value: _sharding.check_mesh(value, where),
)
LOGICAL_AXIS_RULES = Option(
    "logical_axis_rules",
    None,
    "Any",
    "``(logical name, mesh axes)`` pairs for logically partitioned parameters (linen's "
    "``nn.with_logical_partitioning``, logical names in an nnx variable's ``out_sharding``); "
    "without them, the box's or variable's own rules, or the ``nn.logical_axis_rules`` context.",
)
ALLOW_UNUSED_RULES = Option(
    "allow_unused_rules",
    None,
    "bool | None",
    "whether a rule may apply to no parameter (misspelt, or shadowed by an earlier one); "
    "``None`` (the default): only without ``default=``, where a misspelt rule leaves a "
    "parameter unmatched, which raises.",
    _is_bool_or_none,
)
# The explain functions are diagnostics: by default a rule that does nothing is an error there,
# with or without `default=` (`tests/test_explain.py` pins it).
ALLOW_UNUSED_RULES_EXPLAINED = Option(
    "allow_unused_rules",
    False,
    "bool",
    "whether a rule may apply to no parameter (misspelt, or shadowed by an earlier one); by "
    "default such a rule raises, with or without ``default=``.",
    _is_bool,
)
GROUP = Option(
    "group",
    None,
    "bool | None",
    "draw parameters that sample alike together (``True``), one kernel per parameter "
    "(``False``), or choose by platform (``None``, the default: grouped, except a parameter "
    "split over TPU chips); the same values either way (see :func:`jinit.init_tree`).",
    _is_bool_or_none,
)
PORTABLE = Option(
    "portable",
    False,
    "bool",
    "draw with the portable samplers (:func:`jinit.portable`): values that are the same bits on "
    "every backend (CPU, GPU, TPU), not jax's. Every parameter's initializer must be jinit's.",
    _is_bool,
)
KEEP = Option(
    "keep",
    None,
    "Any",
    "trained parameters, for fine-tuning surgery: a tree, or a trained model (an nnx model or "
    "its state, an equinox module). Each trained parameter at a path of the target, with its "
    "shape and dtype, is returned as it is (with the target's sharding), and only the other "
    "parameters are drawn (and compiled), with exactly their from-scratch values. A trained "
    "parameter of another shape or dtype, or with no place in the target, raises ``ValueError`` "
    "naming it (unless ``reinit``, ``resize`` or ``unused`` say otherwise).",
)
REINIT = Option(
    "reinit",
    None,
    "Any",
    "regexes (``re.search`` on the path, like the rules'): trained parameters to draw afresh "
    "(the top layers, the head), with their from-scratch values.",
    lambda where, _, value: _keep.patterns(value, where),
    needs="keep",
)
RESIZE = Option(
    "resize",
    None,
    "str | None",
    "grow trained parameters smaller than the target's: ``'scratch'`` (the new slice has the "
    "larger parameter's from-scratch values) or ``'mean'`` (new embedding rows from the trained "
    "rows' mean and 1e-9 times their covariance, as Hugging Face's ``mean_resizing``); "
    "``None``: a size mismatch raises.",
    _one_of(*_keep.RESIZE),
    needs="keep",
)
SHRINK = Option(
    "shrink",
    False,
    "bool",
    "with ``resize``, a trained parameter larger than the target's keeps its leading slice "
    "(otherwise shrinking raises).",
    _is_bool,
    needs="keep",
)
UNUSED = Option(
    "unused",
    "raise",
    "str",
    "trained parameters of ``keep`` with no place in the target raise ``ValueError`` listing "
    "them (``'raise'``, the default), or are returned beside the result (``'return'``): the call "
    "then returns the pair ``(result, unused)``, ``unused`` a dict from path to those trained "
    "parameters (empty when every one has a place).",
    _one_of(*_keep.UNUSED),
    needs="keep",
)

# What the init functions share after the key, the target and the rules (each takes those of
# them its kind of target has: `init_tree` no logical names, the Flax ones no `shardings=`).
SURGERY = (KEEP, REINIT, RESIZE, SHRINK)  # `unused=`: only where a tree is returned
DRAW = (ALLOW_UNUSED_RULES, GROUP, PORTABLE)

# Every entry point's shared options, by name: filled by `entry_point` (`tests/test_options.py`).
ENTRY_POINTS: dict[str, tuple[Option, ...]] = {}


def entry_point(where: str, *options: Option) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Makes ``fn(call, ...own parameters)`` the entry point ``where`` with the shared
    ``options``. Keyword rows go in its signature after its own keyword-only parameters (before
    its ``**kwargs``); a positional row (``KEY``, ``RULES``) is written in the ``def``, where it
    stands, without annotation (the row's is shown). Each row's paragraph goes in the
    docstring's ``Args``, which lists the parameters in the signature's order; the docstring
    writes the entries of the function's own ones. A call is bound to that signature, every
    row it gives is checked, and ``fn`` gets :class:`Call` first, then its own arguments."""

    def make(fn: Callable[..., R]) -> Callable[..., R]:
        signature = _signature(where, fn, options)
        keywords = [o for o in options if o.default is not REQUIRED]

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> R:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"`{where}`: {e}.") from None
            check(where, options, bound.arguments)
            found = {o.name: bound.arguments.pop(o.name, o.default) for o in keywords}
            return fn(Call(where, found), *bound.args, **bound.kwargs)

        call.__signature__ = signature  # type: ignore[attr-defined]
        call.__doc__ = document(fn.__doc__ or "", where, signature, options)
        ENTRY_POINTS[where] = options
        return call

    return make


def check(where: str, options: tuple[Option, ...], given: dict[str, Any]) -> None:
    """Checks the ``given`` values of ``options`` (by name), in the rows' order; then that an
    option which ``needs`` another is left at its default without it."""
    for o in options:
        if o.check is not None and o.name in given:
            o.check(where, o.name, given[o.name])
        if o.needs and given.get(o.needs) is None and given.get(o.name, o.default) != o.default:
            raise ValueError(
                f"`{where}({o.name}=...)` applies to the leaves of `{o.needs}=`; got none."
            )


def _signature(
    where: str, fn: Callable[..., Any], options: tuple[Option, ...]
) -> inspect.Signature:
    """``fn``'s signature less ``call``, its positional rows annotated, the keyword rows added."""
    rows = {o.name: o for o in options}
    if len(rows) != len(options):
        raise TypeError(f"`{where}`: an option is given twice.")
    own = list(inspect.signature(fn).parameters.values())[1:]
    for i, p in enumerate(own):
        row = rows.get(p.name)
        if row is not None and (row.default is not REQUIRED or p.annotation is not REQUIRED):
            raise TypeError(f"`{where}` writes the shared parameter {p.name!r} itself.")
        if row is not None:
            own[i] = p.replace(annotation=row.annotation)
    missing = {o.name for o in options if o.default is REQUIRED} - {p.name for p in own}
    if missing:
        raise TypeError(f"`{where}` does not say where its positional {sorted(missing)} go.")
    var_keyword = [p for p in own if p.kind is p.VAR_KEYWORD]
    head = [p for p in own if p.kind is not p.VAR_KEYWORD]
    shared = [o.parameter() for o in options if o.default is not REQUIRED]
    return inspect.signature(fn).replace(parameters=[*head, *shared, *var_keyword])


_STARS: dict[Any, str] = {
    inspect.Parameter.VAR_POSITIONAL: "*",
    inspect.Parameter.VAR_KEYWORD: "**",
}
_ENTRY = re.compile(r"(\*{0,2}\w+): ")


def document(
    doc: str, where: str, signature: inspect.Signature, options: tuple[Option, ...]
) -> str:
    """``doc`` with its ``Args`` section listing every parameter of ``signature`` in order: a
    shared one with its row's paragraph, the others as ``doc`` writes them (each must be)."""
    rows = {o.name: o for o in options}
    lines = doc.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "Args:"), None)
    if start is None:
        raise TypeError(f"`{where}`'s docstring has no `Args:` section.")
    indent = _indent(lines[start])
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    while not lines[end - 1].strip():
        end -= 1
    own: dict[str, list[str]] = {}  # the docstring's entries: name -> lines
    for line in lines[start + 1 : end]:
        match = _ENTRY.match(line[indent + 2 :]) if _indent(line) == indent + 2 else None
        if match:
            own[match.group(1)] = []
        if not own:
            raise TypeError(f"`{where}`'s `Args:` section starts with {line.strip()!r}.")
        own[list(own)[-1]].append(line)
    entries = []
    for p in signature.parameters.values():
        name = _STARS.get(p.kind, "") + p.name
        if p.name in rows:
            first, rest = " " * (indent + 2), " " * (indent + 4)
            text = f"{name}: {rows[p.name].doc}"
            entries += textwrap.wrap(text, 100, initial_indent=first, subsequent_indent=rest)
        elif name in own:
            entries += own.pop(name)
        else:
            raise TypeError(f"`{where}`'s docstring does not document {name!r}.")
    if own:
        raise TypeError(f"`{where}`'s docstring documents {sorted(own)}: shared, or unknown.")
    return "\n".join([*lines[: start + 1], *entries, *lines[end:]])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())

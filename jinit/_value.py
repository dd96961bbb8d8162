"""`Init`: the one value every jinit initializer is.

An initializer is a frozen, hashable value: its factory's public name, its hyperparameters,
its default dtype, its sampling protocol (:mod:`jinit._rng.draws`), its ``describe`` target and
magnitude, and what it wraps. Calling it is jax's protocol,
``init(key, shape, dtype=None, out_sharding=None) -> Array``, so Flax and
``jax.nn.initializers`` users see a plain callable.

Equality is the call that made it: ``jinit.lecun_normal() == jinit.lecun_normal()``, so rules
built anew on every call hit :func:`jinit.init_tree`'s compile cache, and ``repr`` reads
``jinit.lecun_normal()``. The :func:`factory` decorator gives a factory's results that identity;
a value built another way (an internal helper) is equal only to itself. A hyperparameter that
cannot be frozen (a traced scale swept under ``jax.vmap``) also leaves the value equal only to
itself, and it is never cached: it must not outlive its trace.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib
import inspect
import itertools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jinit._typing import Array, Axes, DTypeLike, KeyArray, OutSharding, Shape, public

# shape -> (fan_in or None, fan_out or None, target mean, target std): what `describe` reports.
Target = Callable[[tuple[int, ...]], tuple[Any, Any, Any, Any]]
Call = Callable[[KeyArray, Shape, DTypeLike | None, OutSharding], Array]
Unroll = str | Callable[[str, tuple[int, ...]], str]


@dataclasses.dataclass(frozen=True)
class Stack:
    """``axes`` leading layer axes (:func:`jinit.stacked`): layer ``index`` of the parameter at
    ``path`` is made under the key of its unrolled twin's path, ``unroll``'s: the path component
    after which the index goes, or a callable ``(path, index) -> path``."""

    axes: int
    unroll: Unroll

    def split(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(stack shape, one layer's shape), checking that ``shape`` has the stack axes."""
        if len(shape) < self.axes:
            raise ValueError(
                f"`stacked(axes={self.axes})` needs a shape with at least {self.axes} axes; "
                f"got {shape}."
            )
        return shape[: self.axes], shape[self.axes :]

    def path(self, path: str, index: tuple[int, ...]) -> str:
        """The unrolled twin's path of layer ``index`` of the stacked parameter ``path``."""
        if callable(self.unroll):
            out = self.unroll(path, index)
            if not isinstance(out, str):
                raise TypeError(f"`stacked(unroll=...)` must return a str path; got {out!r}.")
            return out
        parts = path.split("/")
        if self.unroll not in parts:
            raise ValueError(
                f"`stacked(unroll={self.unroll!r})`: the parameter {path!r} has no path "
                f"component {self.unroll!r} to put the layer index after."
            )
        at = parts.index(self.unroll) + 1
        return "/".join([*parts[:at], *map(str, index), *parts[at:]])

    def paths(self, path: str, shape: tuple[int, ...]) -> list[str]:
        """The unrolled paths of every layer, row-major (the flattened stack's order)."""
        stack, _ = self.split(shape)
        return [self.path(path, i) for i in itertools.product(*map(range, stack))]

    def layers(self, init: Any, keys: KeyArray, shape: tuple[int, ...], dtype: Any) -> Array:
        """The stack of ``shape`` from its layers' keys, in :meth:`paths` order: ``init`` on one
        layer's shape for each key, in one loop (one kernel, whatever the depth) writing the
        parameter's own buffer."""
        _, inner = self.split(shape)
        return lax.map(lambda k: init(k, inner, dtype), keys).reshape(shape)


@dataclasses.dataclass(frozen=True)
class InsertAfter:
    """A :class:`Stack`'s ``unroll``: the layer index goes after the first ``depth`` path
    components (a value, so equal calls compile once)."""

    depth: int

    def __call__(self, path: str, index: tuple[int, ...]) -> str:
        parts = path.split("/")
        return "/".join([*parts[: self.depth], *map(str, index), *parts[self.depth :]])


class _Doc:
    """``Init.__doc__``: the class's docstring, or an initializer's own where it has one
    (``help(jinit.zeros)`` shows the function ``jinit.zeros`` was written as)."""

    def __init__(self, doc: str | None) -> None:
        self.doc = doc

    def __get__(self, obj: Any, owner: Any = None) -> str | None:
        return self.doc if obj is None or obj.doc is None else obj.doc


@public("Init")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Init:
    """A jinit initializer: ``init(key, shape, dtype=None, out_sharding=None) -> Array``.

    Built by jinit's factories (``jinit.lecun_normal()``, ``jinit.scaled(...)``, ...), never by
    hand. Fields:

    - ``name``: the public name of the factory that made it (``"lecun_normal"``,
      ``"keras.variance_scaling"``); ``repr`` prefixes ``jinit.``.
    - ``args``: its hyperparameters as ``(name, value)`` pairs, those left at their default
      omitted; the first ``positional`` of them print positionally.
    - ``call``: the function the call runs (checks, then one compiled body).
    - ``dtype``: the default output dtype (None: jax's default float).
    - ``sampling``: ``sampling(shape, dtype) -> Sampling | None``, the draw
      :func:`jinit.init_tree` groups with other leaves' (None: made per leaf).
    - ``target``: ``shape -> (fan_in, fan_out, mean, std)``, what :func:`jinit.describe`
      reports (None: unknown); ``magnitude``: ``shape -> bound on |value|`` (overflow check).
    - ``wraps``: the initializer it wraps (``scaled``, ``portable``, ``stacked``, ``layout``).
    - ``stack``: a :class:`Stack` of layers of ``wraps`` (``stacked``): :func:`jinit.init_tree`
      makes each layer under its unrolled path's key (:meth:`layers`), never as one draw.
    - ``layout``: the parameter's ``(in_axis, out_axis)`` that ``wraps``, written for Flax's
      layout, runs on (``jinit.equinox.layout``).
    - ``traced``: a hyperparameter is a tracer (the value must not outlive its trace);
      ``portable``: it always runs in portable mode.
    - ``finish``: ``finish(layer, path, value, abstract)``, the value equinox's constructor
      computes from the built layer (``WeightNorm``'s ``g``): the builder makes this
      initializer's draw, then replaces it on the built model
      (:func:`jinit._tree.equinox.from_layer`).
    - ``doc``: an initializer's own docstring (``jinit.zeros``'s), which ``__doc__`` and
      ``help`` show in place of this class's.
    """

    name: str
    call: Call | None = None
    args: tuple[tuple[str, Any], ...] = ()
    positional: int = 0
    dtype: DTypeLike | None = None
    sampling: Callable[..., Any] | None = None
    target: Target | None = None
    magnitude: Callable[[tuple[int, ...]], float] | None = None
    wraps: Any = None
    stack: Stack | None = None
    layout: tuple[Axes, Axes] | None = None
    traced: bool = False
    portable: bool = False
    bare: bool = False  # an initializer itself (`jinit.zeros`), not a factory's result
    finish: Callable[[Any, str, Any, Any], Any] | None = None
    doc: str | None = None
    # What equality and hashing compare: (name, frozen args) from `factory`, or None (identity).
    identity: Any = None

    def __call__(
        self,
        key: KeyArray,
        shape: Shape,
        dtype: DTypeLike | None = None,
        out_sharding: OutSharding = None,
    ) -> Array:
        if self.call is None:
            raise TypeError(f"{self!r} has no body to call.")
        return self.call(key, shape, dtype, out_sharding)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Init) or self.identity is None or other.identity is None:
            return False
        return type(self) is type(other) and self.identity == other.identity

    def __hash__(self) -> int:
        return id(self) if self.identity is None else hash((type(self), self.identity))

    def __repr__(self) -> str:
        if self.finish is not None:
            return f"<equinox default: {self.name}>"
        if self.bare:
            return f"jinit.{self.name}"
        shown = [repr(v) for _, v in self.args[: self.positional]]
        shown += [f"{k}={_show(v)}" for k, v in self.args[self.positional :]]
        return f"jinit.{self.name}({', '.join(shown)})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the call that made it (the closures it holds are not picklable)."""
        if self.identity is None:
            raise TypeError(
                f"{self!r} cannot be pickled: it was not made by a jinit factory from concrete "
                "hyperparameters (a traced one, or an internal value)."
            )
        return (_rebuild, (self.name, self.args, self.positional, self.bare))

    @property
    def __name__(self) -> str:  # (what docs read from a function)
        return self.name.rpartition(".")[2]

    @property
    def short_name(self) -> str:
        """The name tables show (:func:`jinit.explain`): the factory's public name; a stack's
        or a layout's shows what it wraps (``stacked(he_normal)``, ``he_normal[in=-1,out=-2]``)."""
        if self.stack is not None:
            return f"stacked({short_name(self.wraps)})"
        if self.layout is not None:
            return f"{short_name(self.wraps)}[in={self.layout[0]},out={self.layout[1]}]"
        return self.name

    def layers(self, keys: KeyArray, shape: tuple[int, ...], dtype: Any) -> Array:
        """A stack's value of ``shape`` from its layers' keys (:meth:`Stack.layers`)."""
        if self.stack is None:
            raise TypeError(f"{self!r} is not a stack of layers.")
        return self.stack.layers(self.wraps, keys, shape, dtype)

    __doc__ = _Doc(__doc__)  # (an initializer's own, where it has one)


F = TypeVar("F", bound=Callable[..., Any])

# The wrappers the tree engine applies by itself to an equinox layer's weight: ``"layout"``
# (``jinit.equinox.layout(init, in_axis, out_axis)``: the layer's own axes) and ``"stacked"``
# (``jinit.stacked(init, unroll, axes)``: one layer of a vmapped stack). Each factory registers
# itself where it is defined (:func:`wrapper`), and ``import jinit`` imports both, so the engine
# imports no module of the catalog.
WRAPPERS: dict[str, Callable[..., Init]] = {}


def wrapper(kind: str) -> Callable[[F], F]:
    """Registers the decorated factory as the engine's ``kind`` wrapper (:data:`WRAPPERS`)."""

    def register(fn: F) -> F:
        WRAPPERS[kind] = fn
        return fn

    return register


def _rebuild(name: str, args: tuple[tuple[str, Any], ...], positional: int, bare: bool) -> Any:
    """The value ``jinit.<name>(*args)`` (or ``jinit.<name>`` for a bare one): unpickling."""
    module, _, attr = f"jinit.{name}".rpartition(".")
    obj = getattr(importlib.import_module(module), attr)
    if bare:
        return obj
    return obj(*(v for _, v in args[:positional]), **dict(args[positional:]))


def initializer(**fields: Any) -> Callable[[Call], Init]:
    """Makes the decorated function an initializer that is a value of its own (``jinit.zeros``,
    as in jax): named and documented by the function, with ``fields`` (its ``target``)."""

    def make(fn: Call) -> Init:
        name = fn.__name__
        return Init(name, fn, bare=True, identity=(name,), doc=fn.__doc__, **fields)

    return make


def _show(v: Any) -> str:
    if isinstance(v, np.dtype) or (isinstance(v, type) and _names_dtype(v)):
        return repr(jnp.dtype(v).name)
    return repr(v)


def of(init: Any) -> Init | None:
    """``init`` as an :class:`Init`, or None for a callable of the user's, jax's or Flax's."""
    return init if isinstance(init, Init) else None


def short_name(init: Any) -> str:
    """The name tables show for ``init``: its factory's name, or a function's own name."""
    v = of(init)
    if v is not None:
        return v.short_name
    qualname = getattr(init, "__qualname__", None) or type(init).__qualname__
    return qualname.removesuffix(".<locals>.init")


def target_of(init: Any) -> Target | None:
    """The ``describe`` target of ``init`` (None for a callable that does not carry one)."""
    v = of(init)
    return None if v is None else v.target


def magnitude_of(init: Any) -> Callable[[tuple[int, ...]], float] | None:
    v = of(init)
    return None if v is None else v.magnitude


def chain(init: Any):
    """``init`` and every initializer it wraps, outermost first."""
    for _ in range(64):  # wrappers of wrappers, never a cycle
        yield init
        v = of(init)
        if v is None or v.wraps is None:
            return
        init = v.wraps


def traced_within(init: Any) -> bool:
    """Whether ``init``, or an initializer it wraps, closes over a traced hyperparameter (so it
    must not outlive that trace, and its mean, std and overflow bound are not numbers)."""
    return any(v.traced for v in map(of, chain(init)) if v is not None)


def covers(init: Any) -> bool:
    """Whether ``init`` draws through jinit's samplers (so portable mode reaches its values).

    jinit's initializers and wrappers do; a function of the user's, Flax's or jax's calls
    ``jax.random`` itself and does not.
    """
    *_, innermost = chain(init)
    return of(innermost) is not None


class _Unfrozen(Exception):
    """A hyperparameter with no value identity (a tracer): the Init is equal only to itself."""


def _freeze(x: Any) -> Any:
    """A hashable, type-strict stand-in for a hyperparameter: equal stand-ins make equal bits.

    ``1``, ``1.0`` and ``True`` differ (they can give different dtypes); floats compare by
    their bits (``0.0`` != ``-0.0``); concrete arrays by dtype, shape and bytes; dtype-likes by
    the dtype they name. A tracer raises :class:`_Unfrozen`.
    """
    if isinstance(x, jax.core.Tracer):
        raise _Unfrozen
    if x is None or isinstance(x, (str, bytes)):
        return x
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, int):
        return ("int", x)
    if isinstance(x, float):
        return ("float", x.hex())
    if isinstance(x, complex):
        return ("complex", x.real.hex(), x.imag.hex())
    if isinstance(x, Init):
        if x.identity is None:  # equal only to itself (a traced hyperparameter): not cached
            raise _Unfrozen
        return x
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):
        a = np.asarray(x)
        return ("array", a.dtype.str, a.shape, a.tobytes())
    if isinstance(x, np.dtype) or (isinstance(x, type) and _names_dtype(x)):
        return ("dtype", np.dtype(x).str)
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(_freeze(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple(sorted((_freeze(k), _freeze(v)) for k, v in x.items())))
    try:
        hash(x)
    except TypeError:
        raise _Unfrozen from None
    return ("obj", type(x), x)


def _freeze_arg(name: str, v: Any) -> Any:
    """:func:`_freeze`, with a ``dtype`` argument frozen as the dtype it names (``"bfloat16"``
    and ``jnp.bfloat16`` are one dtype)."""
    if name == "dtype" and v is not None:
        try:
            return ("dtype", jnp.dtype(v).str)
        except TypeError:
            pass  # the factory's own check refuses it
    return _freeze(v)


def _names_dtype(t: type) -> bool:
    try:
        np.dtype(t)
    except TypeError:
        return False
    return True


_CACHE_SIZE = 1024


def factory(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Makes a factory's results values: named ``name`` (default: the function's name), with
    its bound hyperparameters, equal (and identical) for equal hyperparameters.

    Equal calls return the same :class:`Init` (a bounded LRU cache), so its compiled body is
    traced once per shape however often the rules are rebuilt. Arguments the signature refuses
    go to the factory itself, which raises its own error.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        called = name or fn.__name__
        sig = inspect.signature(fn)
        required = [
            p.name
            for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        cache: collections.OrderedDict[Any, Init] = collections.OrderedDict()
        lock = threading.Lock()

        @functools.wraps(fn)
        def make(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError:
                return fn(*args, **kwargs)
            bound.apply_defaults()
            try:
                frozen: Any = (
                    called,
                    tuple((k, _freeze_arg(k, v)) for k, v in bound.arguments.items()),
                )
                hash(frozen)
            except (_Unfrozen, TypeError):
                frozen = None
            if frozen is not None:
                with lock:
                    hit = cache.get(frozen)
                    if hit is not None:
                        cache.move_to_end(frozen)
                        return hit
            out = fn(*args, **kwargs)
            if not isinstance(out, Init) or any(out is v for v in bound.arguments.values()):
                return out  # (not an initializer, or one of its arguments returned unchanged)
            shown = tuple(
                (k, _plain(v))
                for k, v in bound.arguments.items()
                if k in required or not _is_default(v, sig.parameters[k].default)
            )
            positional = sum(1 for k, _ in shown if k in required)
            out = dataclasses.replace(
                out, name=called, args=shown, positional=positional, identity=frozen, bare=False
            )
            if frozen is not None:
                with lock:
                    cache[frozen] = out
                    if len(cache) > _CACHE_SIZE:
                        cache.popitem(last=False)
            return out

        return public(called)(make)

    return wrap


def _plain(v: Any) -> Any:
    """``v`` as the repr shows it: ``np.float64`` (a ``float`` subclass, frozen and cached as
    the equal ``float``) as that ``float``, so the repr does not depend on which equal call
    came first."""
    if isinstance(v, float) and type(v) is not float:
        return float(v)
    if isinstance(v, complex) and type(v) is not complex:
        return complex(v)
    return v


def _is_default(v: Any, default: Any) -> bool:
    if v is default:
        return True
    try:
        return _freeze(v) == _freeze(default)
    except _Unfrozen:
        return False

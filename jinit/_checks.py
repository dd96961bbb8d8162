"""Early validation: every error names the call, what was expected and what was received."""

from __future__ import annotations

import functools
import math
import numbers
import operator
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec, Sharding

from jinit._typing import Axes, DTypeLike


def is_static_number(value: Any) -> bool:
    """True for a Python or NumPy real scalar (not a bool, not a traced value)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _shape_of(value: Any) -> tuple[int, ...] | None:
    """The shape of an array-like value (NumPy or jax array, NumPy scalar), else None."""
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        return tuple(value.shape)
    return None


def scalar(where: str, name: str, value: Any, kind: str = "a real number") -> Any:
    """A Python or NumPy scalar, or a 0-d NumPy/jax array, as a plain Python number.

    NumPy and jax scalars are treated exactly like the Python numbers they hold. Arrays of rank
    >= 1 are refused (a hyperparameter is one number: the output shape is chosen by the caller,
    when the initializer runs), and so are traced values (build factories outside `jit`).
    """
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"`{where}({name}=...)` must be a concrete number, not a traced value (build the "
            f"initializer outside `jit`/`vmap`); got {value!r}."
        )
    shape = _shape_of(value)
    if shape is not None:
        if shape != ():
            raise ValueError(
                f"`{where}({name}=...)` must be a scalar; got an array of shape {shape}."
            )
        dtype = np.dtype(value.dtype)
        if dtype == np.bool_ or not np.issubdtype(dtype, np.number):
            raise TypeError(f"`{where}({name}=...)` must be {kind}; got {value!r}.")
        value = np.asarray(value).item()
    return value


def check_real(
    where: str, name: str, value: Any, *, positive: bool = False, nonnegative: bool = False
) -> float:
    """Checks a real hyperparameter and returns it as a Python float.

    Python, NumPy and jax scalars (0-d arrays included) are accepted alike; arrays of rank >= 1,
    bools, complex and non-finite values raise.
    """
    original = value
    value = scalar(where, name, value)
    if not is_static_number(value):
        raise TypeError(f"`{where}({name}=...)` must be a real number; got {original!r}.")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ValueError(f"`{where}({name}=...)` must be finite; got {original!r}.")
    if positive and not out > 0:
        raise ValueError(f"`{where}({name}=...)` must be positive; got {original!r}.")
    if nonnegative and not out >= 0:
        raise ValueError(f"`{where}({name}=...)` must be non-negative; got {original!r}.")
    return out


def traced(value: Any) -> bool:
    """True for a traced value (a hyperparameter given under ``jit``/``vmap``/``grad``)."""
    return isinstance(value, jax.core.Tracer)


COUNT = "it is a count, which fixes the structure of what is built"
AXIS = "it picks an axis of the shape, which is static under `jit`/`vmap`"
INDEX = "it picks part of the structure (an axis, an operand), which is static under `jit`/`vmap`"


def refuse_traced(where: str, name: str, value: Any, why: str, kind: str = "int") -> None:
    """Raises for a traced structural hyperparameter (a count, an axis), saying ``why``.

    A hyperparameter that only scales or shifts values accepts a tracer
    (:func:`check_real_or_traced`); one that changes what is built cannot vary in a trace.
    """
    if traced(value):
        raise TypeError(
            f"`{where}({name}=...)` must be a concrete {kind}, not a traced value: {why} "
            f"(build the initializer outside `jit`/`vmap`); got {value!r}."
        )


def check_real_or_traced(
    where: str,
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    kind: str = "a real number",
    allow_complex: bool = False,
) -> Any:
    """:func:`check_real`, except that a traced scalar is returned as it is.

    For the hyperparameters ``jax.nn.initializers`` takes as arrays (a ``stddev`` or ``scale``
    swept under ``jax.vmap``): what is static about a tracer (its shape, its dtype) is checked
    here; its value (finite, sign) is not known until it runs, so it is not checked, as in jax.
    ``allow_complex`` admits complex tracers (``constant``'s value).
    """
    if not traced(value):
        return check_real(where, name, value, positive=positive, nonnegative=nonnegative)
    shape, dtype = tuple(value.shape), np.dtype(value.dtype)
    if shape != ():
        raise ValueError(
            f"`{where}({name}=...)` must be a scalar; got a traced array of shape {shape} "
            "(under `jax.vmap`, map over the hyperparameter's leading axis)."
        )
    numeric = jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
    if allow_complex:
        numeric = numeric or jnp.issubdtype(dtype, jnp.complexfloating)
    if dtype == np.bool_ or not numeric:
        raise TypeError(f"`{where}({name}=...)` must be {kind}; got a traced {dtype.name} value.")
    return value


def traced_quotient(x: Any, value: Any, dtype: Any) -> Any:
    """``x / value`` for a traced scalar ``x`` or ``value``, in ``dtype``, one correctly
    rounded division.

    A concrete scale's quotient is a constant, computed once in float64 and rounded to
    ``dtype``; for an ``x`` exact in ``dtype`` and a ``value`` exact in it too (a power of two,
    an integer) one rounded division gives those bits. XLA rewrites ``x / c`` for a constant
    ``c`` as ``x * (1 / c)``, two roundings; a divisor that depends on ``x`` (``x`` itself where
    it is NaN, which gives NaN either way) stays a division. The quotient leaves through a
    barrier, so XLA cannot merge it with a later division (``(x / y) / n`` into
    ``x / (y * n)``, one rounding where the concrete value has two).
    """
    x = jnp.asarray(x, dtype)
    return jax.lax.optimization_barrier(x / jnp.where(jnp.isnan(x), x, jnp.array(value, dtype)))


def as_float32(x: Any) -> Any:
    """A real hyperparameter in float32: a NumPy scalar for a number, an array for a traced one
    (arithmetic on either then rounds alike, operation by operation)."""
    return jnp.asarray(x, np.float32) if traced(x) else np.float32(x)


def quotient(x: Any, value: Any, dtype: Any) -> Any:
    """``x / value`` rounded once in ``dtype``, by the same float operation whether either is
    traced or concrete, so a traced hyperparameter gives the concrete one's bits.

    Concrete: a NumPy scalar of ``dtype`` (the quotient of the two numbers rounded to ``dtype``
    first, as a traced value is); traced: :func:`traced_quotient`.
    """
    if traced(x) or traced(value):
        return traced_quotient(x, value, dtype)
    dt = np.dtype(dtype)
    with np.errstate(all="ignore"):  # inf and NaN as XLA gives them
        return dt.type(dt.type(x) / dt.type(value))


def check_count(where: str, name: str, value: Any, *, minimum: int = 1) -> int:
    """Checks an integer hyperparameter (NumPy and 0-d jax integers too) and returns an int."""
    refuse_traced(where, name, value, COUNT)
    original = value
    value = scalar(where, name, value, "an int")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{where}({name}=...)` must be an int; got {original!r}.")
    value = int(value)
    if value < minimum:
        expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"`{where}({name}=...)` must be {expected}; got {original!r}.")
    if value >= 2**63:
        raise ValueError(f"`{where}({name}=...)` must be below 2**63; got {original!r}.")
    return value


def check_bool(where: str, name: str, value: Any) -> bool:
    """Checks a flag: a Python or NumPy bool (a string such as ``'false'`` is not taken as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{where}({name}=...)` must be a bool; got {value!r}.")
    return bool(value)


def check_one_of(where: str, name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{where}({name}=...)` must be one of {expected}; got {value!r}.")


def _index(value: Any) -> int | None:
    """An int from a Python/NumPy integer or a 0-d integer array (not a bool), else None."""
    if isinstance(value, (bool, np.bool_, jax.core.Tracer)):
        return None
    shape = _shape_of(value)
    if shape is not None:
        if shape != () or not np.issubdtype(np.dtype(value.dtype), np.integer):
            return None
        return int(np.asarray(value).item())
    if isinstance(value, numbers.Integral):
        return int(value)
    return None


def check_int(where: str, name: str, value: Any) -> int:
    """Checks an int argument of any sign (NumPy and 0-d jax integers too); returns an int."""
    refuse_traced(where, name, value, INDEX)
    out = _index(value)
    if out is None:
        raise TypeError(f"`{where}({name}=...)` must be an int; got {value!r}.")
    return out


def check_axes(where: str, name: str, axes: Axes) -> int | tuple[int, ...]:
    """Checks an axis argument (an int or a sequence of ints; NumPy and 0-d jax integers too)
    and returns it as a Python int or a tuple of them (ranges are checked per shape)."""
    if not isinstance(axes, (str, bytes)) and isinstance(axes, (Sequence, np.ndarray)):
        for a in axes:
            refuse_traced(where, name, a, AXIS)
    refuse_traced(where, name, axes, AXIS)
    single = _index(axes)
    if single is not None:
        return single
    bad = TypeError(f"`{where}({name}=...)` must be an int or a sequence of ints; got {axes!r}.")
    if isinstance(axes, (str, bytes)) or not isinstance(axes, (Sequence, np.ndarray)):
        raise bad
    out = tuple(_index(a) for a in axes)
    if any(a is None for a in out):
        raise bad
    return out  # type: ignore[return-value]


def normalize_axes(where: str, name: str, axes: Axes, ndim: int) -> tuple[int, ...]:
    """Returns the axes as non-negative ints, raising if any is out of range for `ndim`."""
    items = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    out = []
    for a in items:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ValueError(
                f"`{where}({name}={axes!r})` is out of range for a {ndim}-dimensional shape."
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"`{where}({name}={axes!r})` names the same axis twice.")
    return tuple(out)


def canonical_shape(where: str, shape: Any) -> tuple[int, ...]:
    """Returns `shape` as a tuple of non-negative Python ints, or raises a clear error.

    A shape is an int or an ordered sequence (tuple, list, 1-d integer array) of ints; NumPy and
    0-d jax integers count as ints. Dicts and sets (unordered), floats and bools are refused, and
    so are shapes of more than ``2**63 - 1`` elements (XLA's limit).
    """
    fast = type(shape) is tuple and all(type(d) is int and 0 <= d < 2**63 for d in shape)
    if fast and math.prod(shape) < 2**63:  # the common case
        return shape
    bad = TypeError(f"`{where}`: `shape` must be a sequence of non-negative ints; got {shape!r}.")
    single = _index(shape)
    if single is not None:
        shape = (single,)
    if isinstance(shape, (str, bytes, Mapping, AbstractSet)) or not isinstance(
        shape, (Sequence, np.ndarray, jax.Array)
    ):
        raise bad
    try:
        dims = tuple(shape)
    except TypeError:
        raise bad from None
    out = []
    for d in dims:
        i = _index(d)
        if i is None or i < 0:
            raise bad
        out.append(i)
    if math.prod(out) >= 2**63 or any(d >= 2**63 for d in out):
        raise ValueError(
            f"`{where}`: `shape` {tuple(out)} has more than 2**63 - 1 elements (XLA's limit)."
        )
    return tuple(out)


def default_float_dtype() -> np.dtype:
    """jax's default float dtype: float32, or float64 under `jax_enable_x64`."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def canonical_dtype(where: str, dtype: DTypeLike | None, *, allow_complex: bool = True) -> np.dtype:
    """Resolves `dtype` (None means jax's default float) and checks that jinit can produce it.

    Refused: non-float dtypes; 64-bit dtypes without ``jax_enable_x64`` (jax would silently
    return 32 bits); floats that cannot hold zero and negative values (``float8_e8m0fnu``) and
    sub-byte floats (``float4_*``, ``float6_*``, which XLA's CPU backend cannot convert to).
    """
    try:
        return _canonical_dtype_cached(where, dtype, allow_complex, default_float_dtype())
    except TypeError as e:
        if "unhashable" not in str(e):
            raise
    return _canonical_dtype(where, dtype, allow_complex)


@functools.lru_cache(maxsize=256)
def _canonical_dtype_cached(
    where: str, dtype: Any, allow_complex: bool, default: np.dtype
) -> np.dtype:
    """`_canonical_dtype`, cached (``default`` keys the cache on the x64 setting)."""
    return _canonical_dtype(where, dtype, allow_complex)


def _canonical_dtype(where: str, dtype: Any, allow_complex: bool) -> np.dtype:
    if dtype is None or dtype is float:
        return default_float_dtype()
    if dtype is complex:
        return np.dtype(jax.dtypes.canonicalize_dtype(np.complex128))
    try:
        requested = np.dtype(jnp.dtype(dtype))
        dt = np.dtype(jax.dtypes.canonicalize_dtype(requested))
    except TypeError:
        raise TypeError(f"`{where}`: `dtype` must be a floating dtype; got {dtype!r}.") from None
    floating = jnp.issubdtype(dt, jnp.floating)
    if not (floating or (allow_complex and jnp.issubdtype(dt, jnp.complexfloating))):
        kind = "a floating or complex dtype" if allow_complex else "a real floating dtype"
        raise TypeError(f"`{where}`: `dtype` must be {kind}; got {np.dtype(dt).name}.")
    if dt != requested:
        raise ValueError(
            f"`{where}`: `dtype` {requested.name} needs 64-bit mode "
            "(`jax.config.update('jax_enable_x64', True)`); without it jax would return "
            f"{dt.name}."
        )
    if floating:
        _check_faithful(where, dt)
    return dt


@functools.lru_cache(maxsize=64)
def _check_faithful(where: str, dt: np.dtype) -> None:
    info = jnp.finfo(dt)
    if info.bits < 8:
        raise TypeError(
            f"`{where}`: `dtype` must be a float of 8 bits or more; got {dt.name} "
            f"({info.bits} bits: XLA cannot convert to it on every backend)."
        )
    with np.errstate(all="ignore"):
        faithful = np.array([0.0, -1.0], dt).astype(np.float32).tolist() == [0.0, -1.0]
    if not faithful:
        raise TypeError(
            f"`{where}`: `dtype` must represent zero and negative values; got {dt.name}."
        )


def check_key(where: str, key: Any, *, argument: bool = False) -> Any:
    """Checks an initializer's key: a typed key, a legacy ``uint32[2]`` key or an int seed.

    Returns the key to use: typed and legacy keys unchanged, an int seed ``s`` (a Python/NumPy
    int or a 0-d integer array) as ``jax.random.key(s)`` (what :func:`jinit.init_tree` does).
    Messages read ``"`where`: `key` ..."``, or ``"`where(key=...)` ..."`` with ``argument``.
    """
    name = f"`{where}(key=...)`" if argument else f"`{where}`: `key`"
    expected = "must be a typed key, a uint32[2] key or an int seed"
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"{name} {expected}; got {key!r}.")
    if isinstance(key, numbers.Integral):
        if not -(2**63) <= int(key) < 2**63:
            raise ValueError(f"{name}: an int seed must fit in int64; got {key!r}.")
        return jax.random.key(int(key))
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is not None and shape is not None:
        if _is_key_dtype(dtype):
            if tuple(shape) != ():
                raise ValueError(
                    f"{name} must be a single key; got a key array of shape "
                    f"{tuple(shape)} (use jax.vmap over the keys)."
                )
            return key
        if jnp.issubdtype(dtype, jnp.integer) and not jnp.issubdtype(dtype, jnp.bool_):
            if tuple(shape) == ():
                return jax.random.key(key)
            if tuple(shape) == (2,) and dtype == jnp.uint32:
                return key
        described = f"an array of shape {tuple(shape)} and dtype {dtype}"
    else:
        described = repr(key)
    raise TypeError(f"{name} {expected}; got {described}.")


@functools.lru_cache(maxsize=64)
def _is_key_dtype(dtype: Any) -> bool:
    return bool(jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key))


def check_out_sharding(where: str, out_sharding: Any) -> Any:
    """Checks ``out_sharding``: ``None``, a ``PartitionSpec`` or a ``Sharding``."""
    if out_sharding is None or isinstance(out_sharding, (PartitionSpec, Sharding)):
        return out_sharding
    raise TypeError(
        f"`{where}`: `out_sharding` must be a NamedSharding, a PartitionSpec or None; "
        f"got {out_sharding!r}."
    )


def check_range(where: str, magnitude: float, dtype: np.dtype) -> None:
    """Refuses outputs whose expected magnitude overflows `dtype` (values would be inf)."""
    real = np.dtype(np.array(0, dtype).real.dtype)
    largest = float(jnp.finfo(real).max)
    if not magnitude <= largest:
        raise ValueError(
            f"`{where}`: values up to about {magnitude:.4g} overflow {np.dtype(dtype).name} "
            f"(largest finite value {largest:.4g}); use a wider dtype or a smaller scale."
        )


def check_factory_dtype(where: str, dtype: DTypeLike | None, *, allow_complex: bool = True) -> None:
    """Checks a factory's default `dtype=` argument when the factory is called."""
    if dtype is not None:
        canonical_dtype(where, dtype, allow_complex=allow_complex)


def static_float(x: Any) -> float | None:
    """``x`` as a Python float when it is a static real scalar, else ``None`` (no grouping)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float, np.integer, np.floating)):
        return float(x)
    if isinstance(x, np.ndarray) and x.shape == () and np.issubdtype(x.dtype, np.number):
        return float(x)
    return None

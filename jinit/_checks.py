"""Early validation: every error names the call, what was expected and what was received."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._typing import Axes, DTypeLike


def is_static_number(value: Any) -> bool:
    """True for a Python or NumPy real scalar (not a bool, not a traced value)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_real(
    where: str, name: str, value: Any, *, positive: bool = False, nonnegative: bool = False
) -> None:
    """Checks a real hyperparameter. Arrays (possibly traced) are accepted unchecked."""
    if isinstance(value, (jax.Array, np.ndarray)) and not isinstance(value, np.generic):
        return
    if not is_static_number(value):
        raise TypeError(f"`{where}({name}=...)` must be a real number; got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"`{where}({name}=...)` must be finite; got {value!r}.")
    if positive and not value > 0:
        raise ValueError(f"`{where}({name}=...)` must be positive; got {value!r}.")
    if nonnegative and not value >= 0:
        raise ValueError(f"`{where}({name}=...)` must be non-negative; got {value!r}.")


def check_one_of(where: str, name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{where}({name}=...)` must be one of {expected}; got {value!r}.")


def check_axes(where: str, name: str, axes: Axes) -> None:
    """Checks that an axis argument is an int or a sequence of ints (range is checked per shape)."""
    items = (axes,) if isinstance(axes, (int, np.integer)) else axes
    if isinstance(axes, (str, bytes)) or not isinstance(items, Sequence | tuple | list):
        raise TypeError(
            f"`{where}({name}=...)` must be an int or a sequence of ints; got {axes!r}."
        )
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(
                f"`{where}({name}=...)` must be an int or a sequence of ints; got {axes!r}."
            )


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
    """Returns `shape` as a tuple of non-negative Python ints, or raises a clear error."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(
            f"`{where}`: `shape` must be a sequence of non-negative ints; got {shape!r}."
        ) from None
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
            raise TypeError(
                f"`{where}`: `shape` must be a sequence of non-negative ints; got {shape!r}."
            )
        out.append(int(d))
    return tuple(out)


def default_float_dtype() -> np.dtype:
    """jax's default float dtype: float32, or float64 under `jax_enable_x64`."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def canonical_dtype(where: str, dtype: DTypeLike | None, *, allow_complex: bool = True) -> np.dtype:
    """Resolves `dtype` (None means jax's default float) and checks that it is inexact."""
    if dtype is None:
        return default_float_dtype()
    try:
        dt = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    except TypeError:
        raise TypeError(f"`{where}`: `dtype` must be a floating dtype; got {dtype!r}.") from None
    if jnp.issubdtype(dt, jnp.floating):
        return dt
    if allow_complex and jnp.issubdtype(dt, jnp.complexfloating):
        return dt
    kind = "a floating or complex dtype" if allow_complex else "a real floating dtype"
    raise TypeError(f"`{where}`: `dtype` must be {kind}; got {np.dtype(dt).name}.")


def check_factory_dtype(where: str, dtype: DTypeLike | None, *, allow_complex: bool = True) -> None:
    """Checks a factory's default `dtype=` argument when the factory is called."""
    if dtype is not None:
        canonical_dtype(where, dtype, allow_complex=allow_complex)

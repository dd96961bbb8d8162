"""Introspection: what an initializer does to a shape, intended and measured."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _checks, _value
from jinit._typing import Initializer, Shape, public


@public("Description")
class Description(NamedTuple):
    """What :func:`describe` reports for one initializer and shape."""

    shape: tuple[int, ...]
    dtype: str
    fan_in: float | None
    fan_out: float | None
    target_mean: float | None
    target_std: float | None
    mean: float
    std: float


@public("describe")
def describe(init: Initializer, shape: Shape, dtype: Any = None, key: Any = None) -> Description:
    """Fans, intended mean/std and the measured mean/std of one draw of ``init(key, shape)``.

    The intended values come from the initializer's own formula (jinit initializers carry it);
    for other callables, and for empty shapes (where fans are undefined), they are ``None`` and
    only the measurement is reported (0.0 for an empty draw); an initializer built from a traced
    hyperparameter (under ``jax.vmap``/``jit``) has fans but no target mean or std. Fans are the
    initializer's own (its ``in_axis``/``out_axis``/``einsum``) where it scales by them.

    Args:
      init: an initializer.
      shape: the weight's shape.
      dtype: the weight's dtype (default: jax's default float).
      key: the key for the measured draw (default ``jax.random.key(0)``).

    Returns:
      A :class:`Description`.

    Examples:
      >>> import jinit
      >>> d = jinit.describe(jinit.he_normal(), (3, 3, 64, 128))
      >>> d.fan_in, round(d.target_std, 4), abs(d.std / d.target_std - 1) < 0.01
      (576.0, 0.0589, True)
    """
    if not callable(init):
        raise TypeError(f"`describe(init=...)` must be an initializer; got {init!r}.")
    shape = _checks.canonical_shape("describe", shape)
    key = jax.random.key(0) if key is None else _checks.check_key("describe", key)
    if dtype is not None:
        dtype = _checks.canonical_dtype("describe", dtype)
    out = jnp.asarray(init(key, shape, dtype))
    w = np.asarray(out.astype(jnp.float32), np.float64)
    fan_in = fan_out = mean = std = None
    if w.size:
        fan_in, fan_out, mean, std = intended(init, shape)
    return Description(
        shape,
        str(out.dtype),
        fan_in,
        fan_out,
        mean,
        std,
        float(w.mean()) if w.size else 0.0,
        float(w.std()) if w.size else 0.0,
    )


def intended(init: Initializer, shape: tuple[int, ...]) -> tuple[Any, Any, Any, Any]:
    """(fan_in, fan_out, target mean, target std) from the initializer's own formula, or Nones
    for a callable that does not carry one; draws nothing."""
    target = _value.target_of(init)
    return (None, None, None, None) if target is None else tuple(target(shape))

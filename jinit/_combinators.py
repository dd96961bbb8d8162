"""Combinators: initializers built from another initializer (:func:`scaled`).

A combinator takes any initializer, jinit's or not, and keeps the protocol: its result is called
``init(key, shape, dtype=None, out_sharding=None)`` like the one it wraps.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jinit import _checks, _value
from jinit._core import check_call
from jinit._rng import portable as _portable
from jinit._rng import samplers as _samplers
from jinit._typing import Array, DTypeLike, Initializer, KeyArray, OutSharding, Shape
from jinit._value import Init, factory


@factory()
def scaled(init: Initializer, factor: Any) -> Initializer:
    r"""Builds an initializer that multiplies ``init``'s output by ``factor``: :math:`W = f\,W_0`.

    The product is taken in the compute dtype (float32 for bfloat16/float16 outputs: ``init`` is
    called in float32, which for jinit initializers gives the same draw) and rounded once.
    ``out_sharding`` is passed to ``init``.

    Args:
      init: any initializer.
      factor: the multiplier (a finite real number).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.scaled(jinit.ones, 0.5)(jax.random.key(0), (2, 2))
      >>> w.tolist()
      [[0.5, 0.5], [0.5, 0.5]]
    """
    if not callable(init):
        raise TypeError(f"`scaled(init=...)` must be an initializer (a callable); got {init!r}.")
    factor = _checks.check_real("scaled", "factor", factor)

    # One compiled program for the draw and the product, so eager and jit give the same bits
    # (XLA would otherwise fuse the product into the sampler's arithmetic only under jit).
    # Portable mode is a static argument: a compiled program never serves the other mode.
    @functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
    def apply(
        key: KeyArray, shape: tuple[int, ...], dtype: Any, out_sharding: Any, portable: bool
    ) -> Array:
        with _portable.mode(portable):
            if dtype is None:  # `init`'s own default dtype, still drawn in the compute dtype
                dtype = jax.eval_shape(lambda k: init(k, shape, None, out_sharding), key).dtype
            ct = _samplers.compute_dtype(dtype)
            w = init(key, shape, ct, out_sharding)
        return (w * jnp.array(factor, ct)).astype(dtype)

    def scaled_init(
        key: KeyArray,
        shape: Shape,
        dtype: DTypeLike | None = None,
        out_sharding: OutSharding = None,
    ) -> Array:
        key, shape, dtype, out_sharding = check_call(
            "scaled", key, shape, dtype, out_sharding, inherit_dtype=True
        )
        out = apply(key, shape, dtype, out_sharding, _portable.active())
        if magnitude is not None and 0 not in shape:
            _checks.check_range("scaled", magnitude(shape), out.dtype)
        return out

    inner_target = _value.target_of(init)
    inner_magnitude = _value.magnitude_of(init)
    magnitude = None if inner_magnitude is None else lambda s: abs(factor) * inner_magnitude(s)
    target = None
    if inner_target is not None:

        def target(shape: tuple[int, ...]) -> tuple[Any, Any, float | None, float | None]:
            fan_in, fan_out, mean, std = inner_target(shape)
            if mean is None or std is None:  # an inner initializer with a traced scale
                return fan_in, fan_out, None, None
            return fan_in, fan_out, factor * mean, abs(factor) * std

    return Init(
        "scaled",
        scaled_init,
        target=target,
        magnitude=magnitude,
        wraps=init,
        traced=_checks.traced(factor),
    )

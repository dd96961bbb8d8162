"""Combinators: initializers built from another initializer (:func:`scaled`).

A combinator takes any initializer, jinit's or not, and keeps the protocol: its result is called
``init(key, shape, dtype=None, out_sharding=None)`` like the one it wraps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jinit import _checks, _value
from jinit._core import make_init
from jinit._rng import samplers as _samplers
from jinit._typing import Array, Initializer, KeyArray, OutSharding
from jinit._value import factory


@factory()
def scaled(init: Initializer, factor: Any) -> Initializer:
    r"""Builds an initializer that multiplies ``init``'s output by ``factor``: :math:`W = f\,W_0`.

    The product is taken in the compute dtype (float32 for bfloat16/float16 outputs: ``init`` is
    called in float32, which for jinit initializers gives the same draw) and rounded once.
    ``out_sharding`` is passed to ``init``.

    Args:
      init: any initializer.
      factor: the multiplier (a finite real number), or a traced scalar (under
        ``jax.vmap``/``jit``), which gives the concrete factor's bits around an initializer
        whose own hyperparameters are concrete (XLA folds a product of several scales, traced
        ones among them, in an order of its own: the last bit can differ).

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
    factor = _checks.check_real_or_traced("scaled", "factor", factor)
    traced = _checks.traced(factor)

    def body(key: KeyArray, shape: tuple[int, ...], dtype: Any, out_sharding: OutSharding) -> Array:
        if dtype is None:  # `init`'s own default dtype, still drawn in the compute dtype
            dtype = jax.eval_shape(lambda k: init(k, shape, None, out_sharding), key).dtype
        ct = _samplers.compute_dtype(dtype)

        def run(key: KeyArray, f: Any) -> Array:
            # `init`'s draw and the product in one compiled program (`make_init`'s), so eager
            # and jit give the same bits (XLA would otherwise fuse the product into the
            # sampler's arithmetic only under jit).
            return (init(key, shape, ct, out_sharding) * jnp.asarray(f, ct)).astype(dtype)

        if traced:
            return _per_factor(run, key, factor)
        _checks.check_range(f"scaled(factor={factor!r})", abs(factor), ct)  # (static)
        return run(key, factor)

    inner = _value.target_of(init)
    target = None
    if inner is not None:

        def target(shape: tuple[int, ...]) -> tuple[Any, Any, float | None, float | None]:
            fan_in, fan_out, mean, std = inner(shape)
            if mean is None or std is None:  # a traced scale inside
                return fan_in, fan_out, None, None
            return fan_in, fan_out, factor * mean, abs(factor) * std

    inner_magnitude = _value.magnitude_of(init)
    magnitude = None if inner_magnitude is None else lambda s: abs(factor) * inner_magnitude(s)
    return make_init(
        "scaled", body, None, target=target, magnitude=magnitude, wraps=init, traced=traced
    )


def _per_factor(run: Any, key: KeyArray, factor: Array) -> Array:
    """``run(key, factor)`` for a traced factor; under ``jax.vmap``, a loop over the factors.

    Each step sees one scalar factor, as the concrete call does, so XLA folds it into ``init``'s
    last constant product alike (``x * c * f`` as ``x * (c * f)``) and the bits agree; a batched
    factor would be multiplied last, an ulp away. What ``run`` closes over (a traced inner
    scale) becomes an argument, so the loop also maps over it where it is batched.
    """
    closed = jax.make_jaxpr(run)(key, factor)

    @jax.custom_batching.custom_vmap
    def call(key: KeyArray, factor: Array, *consts: Any) -> Array:
        return jax.core.eval_jaxpr(closed.jaxpr, consts, key, factor)[0]

    @call.def_vmap
    def rule(axis_size: int, in_batched: Any, *args: Any) -> Any:
        def step(mapped: list[Any]) -> Array:
            row = iter(mapped)
            return call(*(next(row) if b else x for x, b in zip(args, in_batched, strict=True)))

        return jax.lax.map(step, [x for x, b in zip(args, in_batched, strict=True) if b]), True

    return call(key, factor, *closed.consts)

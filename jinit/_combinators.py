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

    # One compiled program for the draw and the product, so eager and jit give the same bits
    # (XLA would otherwise fuse the product into the sampler's arithmetic only under jit).
    # Portable mode is a static argument: a compiled program never serves the other mode.
    # A traced factor is an argument `f` (None: the concrete `factor`, a constant).
    @functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
    def apply(
        key: KeyArray,
        shape: tuple[int, ...],
        dtype: Any,
        out_sharding: Any,
        portable: bool,
        f: Array | None = None,
    ) -> Array:
        with _portable.mode(portable):
            if dtype is None:  # `init`'s own default dtype, still drawn in the compute dtype
                dtype = jax.eval_shape(lambda k: init(k, shape, None, out_sharding), key).dtype
            ct = _samplers.compute_dtype(dtype)
            w = init(key, shape, ct, out_sharding)
        if f is None:  # a concrete factor must fit the compute dtype (static: at trace time)
            _checks.check_range(f"scaled(factor={factor!r})", abs(factor), ct)
        return (w * jnp.array(factor if f is None else f, ct)).astype(dtype)

    def scaled_init(
        key: KeyArray,
        shape: Shape,
        dtype: DTypeLike | None = None,
        out_sharding: OutSharding = None,
    ) -> Array:
        key, shape, dtype, out_sharding = check_call(
            "scaled", key, shape, dtype, out_sharding, inherit_dtype=True
        )
        portable = _portable.active()
        if traced:
            run = lambda k, f: apply(k, shape, dtype, out_sharding, portable, f)
            out = _per_factor(run, key, factor)
        else:
            out = apply(key, shape, dtype, out_sharding, portable)
        if magnitude is not None and 0 not in shape:
            _checks.check_range(f"scaled(factor={factor!r})", magnitude(shape), out.dtype)
        return out

    inner_target = _value.target_of(init)
    inner_magnitude = _value.magnitude_of(init)
    magnitude = None
    if inner_magnitude is not None and not traced:  # a traced factor: no overflow check
        magnitude = lambda s: abs(factor) * inner_magnitude(s)
    target = None
    if inner_target is not None:

        def target(shape: tuple[int, ...]) -> tuple[Any, Any, float | None, float | None]:
            fan_in, fan_out, mean, std = inner_target(shape)
            if mean is None or std is None or traced:  # a traced scale, inside or here
                return fan_in, fan_out, None, None
            return fan_in, fan_out, factor * mean, abs(factor) * std

    return Init(
        "scaled",
        scaled_init,
        target=target,
        magnitude=magnitude,
        wraps=init,
        traced=traced,
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

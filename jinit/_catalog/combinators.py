"""Combinators: an initializer built from another (:func:`scaled`, :func:`portable`).

A combinator takes an initializer and keeps the protocol: its result is called
``init(key, shape, dtype=None, out_sharding=None)`` like the one it wraps. Each is built by
:func:`jinit._core.make_init` with ``wraps=``, as every family is: the wrapped initializer's
default dtype, ``describe`` target and overflow bound pass through unless it changes them.
``scaled`` takes any initializer, jinit's or not; ``portable`` a jinit one (it switches on the
portable samplers of :mod:`jinit._rng.portable`, which a function of the user's never calls).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jinit import _checks, _value
from jinit._core import make_init
from jinit._rng import distributions as _distributions
from jinit._rng import draws as _draws
from jinit._rng import portable as _portable
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
        ct = _distributions.compute_dtype(dtype)

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


@factory()
def portable(init: Initializer) -> Initializer:
    r"""Makes ``init`` draw with jinit's portable samplers: the same bits on every backend.

    jax gives the same random *bits* on every backend, but turns them into normal values with
    each backend's own ``erf_inv`` (and a GPU may fuse a multiply and an add into one rounding),
    so the same key gives a CPU and a GPU weights that differ in the last bits. A portable
    initializer turns the bits into uniform, normal and truncated-normal values with integer
    arithmetic and exact floating-point operations only (:mod:`jinit._rng.portable`), so its
    float32 values (and their bfloat16 or float16 roundings) are bit-identical on every
    backend, in every XLA build, and to a NumPy reimplementation. They are not jax's values:
    portable ``normal`` reads the same 32 bits as ``jax.random.normal`` and is within ``2e-6``
    of it where ``|z| < 2`` and ``2e-5`` where ``|z| < 3``; further out they part, since jax
    keeps only 23 of the bits and its tails are coarse (its largest value is about 5.4 sigma,
    portable's 6.34). Portable uniform equals jax's uniform bit for bit when
    ``maxval - minval`` is a power of two; portable truncated normals are another draw.

    The guarantee assumes IEEE-conforming compilation, XLA's default on every backend: a
    mean-shifted finish or a uniform whose width is not a power of two adds exact products in a
    fixed order, which a fast-math flag (``--xla_cpu_enable_fast_math=true``) may reorder; the
    samplers themselves are integer code and keep their bits under any flag.

    Statistics: the normal quantile is a piecewise quadratic in 28-bit fixed point, within
    ``2.5e-7`` of the exact quantile (the float32 rounding of the result dominates), with tails
    to ``6.34`` sigma (the 32-bit resolution: ``Phi^-1(2^-33)``).

    Everything else is unchanged: the key derivation, sharding and mesh invariance, grouping
    in :func:`jinit.init_tree` (use ``init_tree(..., portable=True)`` for a whole tree).
    Portable mode needs a threefry key and a float32, bfloat16, float16 or float8 dtype
    (float64 and complex values raise). Orthogonal initializers (either ``method``) draw their
    Gaussian matrix portably and orthogonalise it by Householder reflectors whose every product
    is exact (:mod:`jinit._rng.exact`), so their float32 values are the same on every CPU and
    equal to a NumPy reimplementation (about 6x the time of jax's QR on a CPU). Their other
    arithmetic (sums in a fixed order, ``sqrt``, division) is IEEE's, so a fast-math flag may
    change them, as it may a mean-shifted finish.

    Args:
      init: a jinit initializer (one that draws through jinit's samplers; a function of your
        own, jax's or Flax's calls ``jax.random`` itself and is refused).

    Returns:
      An initializer with the same signature, hyperparameters and ``describe`` target.

    Examples:
      >>> import jax, jinit
      >>> init = jinit.portable(jinit.lecun_normal())
      >>> w = init(jax.random.key(0), (256, 128))
      >>> round(float(w.std() * 256**0.5), 1)
      1.0
    """
    if not callable(init):
        raise TypeError(f"`portable(init=...)` must be an initializer (a callable); got {init!r}.")
    v = _value.of(init)
    if v is not None and v.portable:
        return init
    if not _value.covers(init):
        raise TypeError(
            f"`portable(init=...)` needs a jinit initializer; got {init!r}, which draws its own "
            "random values (e.g. with jax.random) that portable mode cannot reach."
        )

    body = lambda key, shape, dtype, out_sharding: init(key, shape, dtype, out_sharding)
    inner_sampling = None if v is None else v.sampling
    sampling = None
    if inner_sampling is not None:

        def sampling(shape: tuple[int, ...], dtype: Any) -> Any:
            s = _draws.portable_sampling(inner_sampling(shape, dtype))
            if s is None:
                return None

            def finish(z: Array) -> Array:  # traced in portable mode wherever it is grouped
                with _portable.mode(True):
                    return s.finish(z)

            return _draws.Sampling(s.draw, finish)

    return make_init("portable", body, None, sampling=sampling, wraps=init, portable=True)


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

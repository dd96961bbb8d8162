"""The one wrapper every initializer goes through: validate in Python, then run one compiled body.

Running the numeric body under `jax.jit` even for eager calls makes eager and jitted results
bit-identical. (jax's own initializers differ between the two in the last bit: under `jit`, XLA
reassociates ``sqrt(2) * erfinv(u) * stddev`` into ``erfinv(u) * (sqrt(2) * stddev)``; eagerly the
multiplications are separate programs.) It also makes an eager call one dispatch instead of many.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jinit import _checks, _value
from jinit._rng import distributions as _distributions
from jinit._rng import draws as _draws
from jinit._rng import formula as _formula
from jinit._rng import portable as _portable
from jinit._rng.draws import Sampling
from jinit._rng.formula import Formula
from jinit._typing import Array, DTypeLike, KeyArray, OutSharding, Shape
from jinit._value import Init, Target

Body = Callable[[KeyArray, tuple[int, ...], np.dtype, OutSharding], Array]
SamplingFn = Callable[[tuple[int, ...], Any], Sampling | None]
FormulaFn = Callable[[tuple[int, ...], np.dtype], Formula]
Fans = Callable[[tuple[int, ...]], tuple[float, float]]


def place(x: Array, out_sharding: OutSharding) -> Array:
    """Lays out a result computed whole (replicated: a deterministic fill, or a QR, which is not
    partitionable) as ``out_sharding``."""
    return x if out_sharding is None else jax.sharding.reshard(x, out_sharding)


def check_call(
    where: str,
    key: Any,
    shape: Any,
    dtype: DTypeLike | None,
    out_sharding: Any,
    *,
    allow_complex: bool = True,
    inherit_dtype: bool = False,
    uses_key: bool = True,
) -> tuple[KeyArray, tuple[int, ...], np.dtype | None, OutSharding]:
    """The checks of one initializer call, in the order every initializer makes them.

    The key (typed, ``uint32[2]`` or an int seed, returned as a key), the shape (returned as a
    tuple of ints), the dtype (returned as an ``np.dtype``) and ``out_sharding``, each checked by
    :mod:`jinit._checks` with messages that name ``where``. ``dtype=None`` means jax's default
    float; with ``inherit_dtype`` (a combinator around another initializer, such as
    :func:`jinit.scaled`) it stays None, so the inner initializer's own default applies.

    A deterministic initializer (``uses_key=False``) takes any key unchecked and returns it as
    ``None``, as ``jax.nn.initializers.zeros`` does: Flax passes what it has (``nnx.WeightNorm``
    passes an ``nnx.RngStream``), and a value that is never read cannot be wrong.
    """
    key = _checks.check_key(where, key) if uses_key else None
    shape = _checks.canonical_shape(where, shape)
    if dtype is not None or not inherit_dtype:
        dtype = _checks.canonical_dtype(where, dtype, allow_complex=allow_complex)
    out_sharding = _checks.check_out_sharding(where, out_sharding)
    return key, shape, dtype, out_sharding


def make_init(
    where: str,
    body: Body,
    dtype: DTypeLike | None,
    *,
    allow_complex: bool = True,
    target: Target | None = None,
    sampling: SamplingFn | None = None,
    magnitude: Callable[[tuple[int, ...]], float] | None = None,
    uses_key: bool = True,
    traced: bool = False,
    wraps: Any = None,
    portable: bool = False,
    **fields: Any,
) -> Init:
    """Wraps ``body(key, shape, dtype, out_sharding)`` as a jinit initializer.

    ``body`` receives a canonical shape (tuple of ints) and dtype (``np.dtype``), both static,
    and is traced once per (shape, dtype, out_sharding); shape-dependent checks inside it run at
    trace time on static ints. ``target`` (optional) gives the fans and the intended mean and
    standard deviation for a shape, which :func:`jinit.describe` reports.

    ``sampling`` (optional) describes the draw (:mod:`jinit._rng.draws`) and becomes the
    initializer's ``sampling(shape, dtype)`` method. Where it applies (a threefry key and a
    float32 draw) the initializer computes ``finish(draw(key, shape))``, exactly what
    :func:`jinit.init_tree` computes for a batch of leaves; ``body`` handles everything else.

    Every call checks its arguments the same way (:mod:`jinit._checks`): the key (typed,
    ``uint32[2]`` or an int seed, which means ``jax.random.key(seed)``), the shape, the dtype
    (``None`` means the factory's ``dtype``, itself ``None`` for jax's default float) and
    ``out_sharding``. A shape with a zero-sized axis gives an empty array after the same shape
    checks as any other. Overflow: ``magnitude(shape)`` (default: ``|mean| + 6 * std`` from
    ``target``) bounds the values' size; an output dtype whose largest finite value is below it
    is refused, rather than returning infinities.

    ``uses_key=False`` marks a deterministic initializer: its key is not checked (any value, as
    for ``jax.nn.initializers.zeros``) and ``body`` receives ``None``. ``traced=True`` marks an
    initializer whose hyperparameters include a traced value (a factory called under
    ``jax.vmap``/``jit``, :func:`_checks.traced`): ``body`` closes over the tracer, so the
    initializer must not outlive that trace; it reports no target mean or std (``describe``
    shows ``None``), its magnitude is unknown (no overflow check), and :func:`jinit.init_tree`
    does not cache a builder for it (``Init.traced``). A wrapper around such an initializer
    (``scaled(normal(s), 0.5)``) has no bound derived from its target either, whose mean and
    std are ``None`` too; only a ``magnitude`` it gives is checked. The result is an
    :class:`jinit.Init` named ``where``; :func:`jinit._value.factory` names it after the public
    factory and records its hyperparameters.

    A combinator (:func:`jinit.scaled`, :func:`jinit.portable`) gives ``wraps``, the initializer
    ``body`` calls: ``dtype=None`` then leaves the dtype to it (``body`` receives ``None``), and
    its ``describe`` target and overflow bound are this initializer's unless ``target`` or
    ``magnitude`` says otherwise. ``portable=True``: it always runs in portable mode. ``fields``
    are the :class:`jinit.Init` fields the engine reads (``stack``, ``layout``).
    """
    inherit_dtype = wraps is not None
    if wraps is not None:
        target = _value.target_of(wraps) if target is None else target
        magnitude = _value.magnitude_of(wraps) if magnitude is None else magnitude
    if traced:
        # Fans are static; mean and std depend on the traced value, which is not a number here.
        inner_target = target
        target = None if inner_target is None else lambda s: (*inner_target(s)[:2], None, None)
        magnitude = None
    elif magnitude is None and target is not None and not _value.traced_within(wraps):
        magnitude = lambda shape: _magnitude(target(shape))

    def run(
        key: KeyArray,
        shape: tuple[int, ...],
        dtype: np.dtype,
        out_sharding: OutSharding,
        portable: bool,
    ):
        with _portable.mode(portable):
            s = None if sampling is None else sampling(shape, dtype)
            s = _draws.applicable(s, key, shape, portable, where)
            if s is not None:
                return s.finish(s.draw(key, shape, out_sharding))
            return body(key, shape, dtype, out_sharding)

    # Portable mode is a static argument: a compiled body never serves the other mode.
    compiled = jax.jit(run, static_argnums=(1, 2, 3, 4))
    default_dtype = dtype
    in_range: set[tuple[tuple[int, ...], np.dtype]] = set()

    def init(
        key: KeyArray,
        shape: Shape,
        dtype: DTypeLike | None = default_dtype,
        out_sharding: OutSharding = None,
    ) -> Array:
        key, shape, checked, out_sharding = check_call(
            where,
            key,
            shape,
            default_dtype if dtype is None else dtype,
            out_sharding,
            allow_complex=allow_complex,
            inherit_dtype=inherit_dtype,
            uses_key=uses_key,
        )
        out = compiled(key, shape, checked, out_sharding, portable or _portable.active())
        if magnitude is not None and 0 not in shape and (shape, out.dtype) not in in_range:
            _checks.check_range(where, magnitude(shape), out.dtype)
            in_range.add((shape, out.dtype))  # static: checked once per shape and dtype
        return out

    sampling_method = None
    if sampling is not None:

        def sampling_method(shape: Shape, dtype: DTypeLike | None = default_dtype):
            shape = _checks.canonical_shape(where, shape)
            dtype = default_dtype if dtype is None else dtype
            if dtype is not None or not inherit_dtype:
                dtype = _checks.canonical_dtype(where, dtype, allow_complex=allow_complex)
            return sampling(shape, dtype)  # (None: the wrapped initializer's own dtype)

    return Init(
        where,
        init,
        dtype=default_dtype,
        sampling=sampling_method,
        target=target,
        magnitude=magnitude,
        wraps=wraps,
        traced=traced,
        portable=portable,
        **fields,
    )


def formula_init(
    where: str,
    formula: FormulaFn,
    dtype: DTypeLike | None,
    *,
    fans: Fans | None = None,
    target: Target | None = None,
    allow_complex: bool = True,
    traced: bool = False,
) -> Init:
    """:func:`make_init` for a family stated once, as ``formula(shape, dtype) -> Formula``.

    The eager call, the grouped draw (``sampling``) and ``describe``'s intended mean and std all
    derive from that one statement (:mod:`jinit._rng.formula`), so they cannot drift.
    ``formula`` runs the shape checks (on static ints); ``fans(shape)`` (optional) is what
    ``describe`` reports as the fans; ``target`` replaces the derived target where the draw's
    moments depend on the shape (orthogonal).
    """

    def body(key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding):
        return _formula.value(formula(shape, dtype), key, shape, dtype, out_sharding)

    def sampling(shape: tuple[int, ...], dtype: np.dtype) -> Sampling | None:
        return _formula.sampling(formula(shape, dtype), dtype)

    def derived(shape: tuple[int, ...]) -> tuple[Any, Any, Any, Any]:
        fan_in, fan_out = (None, None) if fans is None else fans(shape)
        if traced:  # the mean and std are not numbers until the traced hyperparameter is
            return fan_in, fan_out, None, None
        return fan_in, fan_out, *_formula.moments(formula(shape, _distributions.F32))

    return make_init(
        where,
        body,
        dtype,
        allow_complex=allow_complex,
        target=derived if target is None else target,
        sampling=sampling,
        traced=traced,
    )


def _magnitude(t: tuple[float | None, float | None, float, float]) -> float:
    """A bound on the values' size from an initializer's target mean and std: |mean| + 6 std."""
    return abs(t[2]) + 6 * abs(t[3])

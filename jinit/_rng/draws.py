"""How an initializer samples: the protocol that lets the tree builder batch many leaves at once.

An initializer that can say *how* it samples exposes ``init.sampling(shape, dtype)``, which
returns a :class:`Sampling` (or ``None`` when it cannot, e.g. for complex dtypes). A sampling is
a :class:`Draw` followed by a ``finish``:

* the **draw** is the expensive, key-dependent part (counters, hash, transform; for orthogonal
  weights also the QR). It is static and hashable: two leaves whose draws are equal and whose
  shapes are equal can be drawn together, by one loop over their keys (or one batched call),
  as one compiled kernel.
* the **finish** is the cheap per-leaf part (scale, shift, cast) applied to that leaf's draw.

The contract that makes grouping exact: ``init(key, shape, dtype)`` equals
``finish(draw(key, shape))`` bit for bit, and the draw's last operation is not one XLA can
combine with the finish's first (a draw ends in ``erf_inv``, ``clip``, ``max`` or a QR, never in
a multiplication by a constant); so cutting the leaf out of a batched draw changes no bit.
A user's own ``init(key, shape, dtype)`` without ``sampling`` still works in ``init_tree``: it is
called once per leaf. jinit's own families do not write a ``Sampling`` by hand: they state a
:class:`~jinit._rng.formula.Formula`, from which the sampling and the eager call both derive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from jinit._rng import distributions as _distributions
from jinit._rng import portable as _portable
from jinit._typing import Array, KeyArray, OutSharding, public


@public("Draw")
@dataclasses.dataclass(frozen=True)
class Draw:
    """A random draw, described statically: ``kernel(key, *args, shape=shape)``.

    ``kernel`` is a module-level jitted function of one key returning the draw in ``dtype``;
    ``args`` are its hashable static arguments. Equal draws group. The tree builder draws a
    group in a loop over its keys, or with ``vmap=True`` as one batched call (for a draw that
    ends in an operation XLA does not fuse, such as a QR: one batched QR for equal shapes).

    ``block``, where given, is the same draw element by element:
    ``block(k0, k1, counters, *args)`` returns, for every element of the uint32 array
    ``counters``, the value that ``kernel`` gives at row-major index ``counters`` under the key
    whose two uint32 words ``k0`` and ``k1`` broadcast to it (for draws of at most ``2**32``
    elements). With it, the tree builder draws leaves of every shape in one loop of fixed-size
    blocks, one compiled kernel per draw for the whole tree. It must give the kernel's bits as
    XLA compiles both: pass ``args`` the way the kernel does (XLA folds a transcendental of a
    constant differently from one of an argument), e.g. jit it like the kernel.
    """

    name: str
    kernel: Callable[..., Array]
    args: tuple[Any, ...]
    dtype: np.dtype
    vmap: bool = False  # batch by jax.vmap (e.g. one batched QR), not by a loop over the keys
    block: Callable[..., Array] | None = None

    def __call__(self, key: KeyArray, shape: tuple[int, ...], out_sharding: OutSharding = None):
        """The draw for one key, laid out as ``out_sharding`` (``jax.random``'s rules)."""
        # The args stay static (closed over, not traced by `auto_axes`).
        kernel = lambda k, shape: self.kernel(k, *self.args, shape=shape)
        return _distributions.run_kernel(self.name, kernel, shape, out_sharding, key)


@public("Sampling")
@dataclasses.dataclass(frozen=True)
class Sampling:
    """How one leaf is made: ``finish(draw(key, shape))``; ``finish`` is element-wise.

    ``same``, where given, is a hashable value such that two samplings with equal ``same``
    have finishes that compute the same function (the tree builder then draws and finishes
    their leaves in one kernel); ``None``: not known. ``factor``, where given, is a float32
    scalar (a number, or an array of one element) such that ``finish(z)`` is
    ``(z * factor).astype(dtype)`` for the leaf's ``dtype``: the builder may then finish a leaf
    by a factor read from a table (one kernel for leaves of many factors); ``None``: not known.
    """

    draw: Draw
    finish: Callable[[Array], Array]
    same: Any = None
    factor: Any = None


def uniform(minval: float, maxval: float) -> Draw:
    """U[minval, maxval) in float32, ``jax.random.uniform``'s bits."""
    return Draw(
        "uniform",
        _distributions.uniform_kernel,
        (float(minval), float(maxval)),
        _distributions.F32,
        block=_distributions.uniform_block,
    )


def normal() -> Draw:
    """``erf_inv(U(-1, 1))`` in float32: a standard normal divided by sqrt(2).

    The finish multiplies by ``sqrt(2) * stddev``, the constant XLA folds ``sqrt(2) * z * stddev``
    into under ``jit``, so the result has ``jax.random.normal(...) * stddev``'s bits.
    """
    return Draw(
        "normal",
        _distributions.erf_inv_kernel,
        (),
        _distributions.F32,
        block=_distributions.erf_inv_block,
    )


def truncated_normal(lower: float, upper: float) -> Draw:
    """A standard normal truncated to (lower, upper), float32, ``jax.random``'s bits."""
    return Draw(
        "truncated_normal",
        _distributions.truncated_normal_kernel,
        (float(lower), float(upper)),
        _distributions.F32,
        block=_distributions.truncated_normal_block,
    )


# The portable twin of each draw: its kernel and block form (the same arguments).
_PORTABLE_TWINS: dict[str, tuple[Callable[..., Array], Callable[..., Array]]] = {
    "uniform": (_portable.uniform_kernel, _portable.uniform_block),
    "normal": (_portable.erf_inv_kernel, _portable.erf_inv_block),
    "truncated_normal": (_portable.truncated_normal_kernel, _portable.truncated_normal_block),
}


# The three standard draws of `variance_scaling` and its Keras/Haiku twins: N(0, 1) truncated
# to (-2, 2); erf_inv(u) = z / sqrt(2) (a finish multiplies by sqrt(2)); U(-1, 1).
STANDARD = {
    "truncated_normal": truncated_normal(-2.0, 2.0),
    "normal": normal(),
    "uniform": uniform(-1.0, 1.0),
}


def portable_sampling(s: Sampling | None) -> Sampling | None:
    """``s`` with its draw replaced by its portable twin (:mod:`jinit._rng.portable`), if any.

    The finish is kept: the twins return the same quantity (``erf_inv`` form for ``normal``,
    standard units for ``truncated_normal``, the same interval for ``uniform``), so the finish's
    scale means the same. ``None`` (the caller traces the initializer's body in portable mode)
    for draws without a twin.
    """
    if s is None:
        return None
    d = s.draw
    if d.name in _PORTABLE_TWINS:
        kernel, block = _PORTABLE_TWINS[d.name]
        twin = Draw(f"portable_{d.name}", kernel, d.args, d.dtype, block=block)
    elif d.name == "orthogonal":  # its kernel's last static argument turns portable mode on
        twin = dataclasses.replace(d, name="portable_orthogonal", args=(*d.args, True))
    else:
        return None
    return Sampling(twin, s.finish)


def applicable(
    s: Sampling | None, key: Any, shape: tuple[int, ...], portable: bool, where: str
) -> Sampling | None:
    """The sampling to draw for ``key`` and ``shape``, or ``None`` (the caller then runs the
    initializer's own body): in portable mode the portable twin (the key checked), otherwise
    ``s`` where jinit's kernels give jax's bits for this key, dtype and shape."""
    if s is None:
        return None
    if portable:
        twin = portable_sampling(s)
        if twin is not None:
            _portable.check_key(where, key)
        return twin
    return s if _distributions.use_kernels(key, s.draw.dtype, shape) else None


def sampling_of(init: Any, shape: tuple[int, ...], dtype: np.dtype) -> Sampling | None:
    """``init.sampling(shape, dtype)`` where ``init`` implements the protocol, else ``None``."""
    method = getattr(init, "sampling", None)
    if method is None:
        return None
    s = method(shape, dtype)
    if s is not None and not isinstance(s, Sampling):
        raise TypeError(
            f"`{init!r}.sampling(shape, dtype)` must return a jinit Sampling or None; got {s!r}."
        )
    return s

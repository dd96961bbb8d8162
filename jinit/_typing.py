"""The types shared by every initializer: the `Initializer` protocol and its arguments."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias

import jax
from jax.sharding import NamedSharding, PartitionSpec

Array: TypeAlias = jax.Array
KeyArray: TypeAlias = jax.Array
Shape: TypeAlias = Sequence[int]
DTypeLike: TypeAlias = Any
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
Axes: TypeAlias = int | Sequence[int]


@typing.runtime_checkable
class Initializer(Protocol):
    """An initializer: ``init(key, shape, dtype=None, out_sharding=None) -> Array``.

    The same protocol as ``jax.nn.initializers.Initializer``, so every jinit initializer can be
    passed to Flax as ``kernel_init=`` / ``bias_init=`` and called positionally as
    ``init(key, shape, dtype)``.
    """

    def __call__(
        self,
        key: KeyArray,
        shape: Shape,
        dtype: DTypeLike | None = None,
        out_sharding: OutSharding = None,
    ) -> Array: ...

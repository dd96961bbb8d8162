"""The types shared by every initializer: the `Initializer` protocol and its arguments, and
:func:`public`, which names a public object where it is defined."""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar

import jax
from jax.sharding import NamedSharding, PartitionSpec

Array: TypeAlias = jax.Array
KeyArray: TypeAlias = jax.Array
Shape: TypeAlias = Sequence[int]
DTypeLike: TypeAlias = Any
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
Axes: TypeAlias = int | Sequence[int]

T = TypeVar("T", bound=Callable[..., Any])


def public(name: str) -> Callable[[T], T]:
    """Says where users find the decorated function or class, where it is defined (jax's
    ``set_module``): ``name`` is its public name under ``jinit`` (``"describe"``,
    ``"torch.defaults"``), which reprs, pickling and the docs show instead of the private module
    it is written in."""
    module, _, attr = f"jinit.{name}".rpartition(".")

    def set_name(obj: T) -> T:
        obj.__module__ = module
        obj.__name__ = obj.__qualname__ = attr
        return obj

    return set_name


@public("Initializer")
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

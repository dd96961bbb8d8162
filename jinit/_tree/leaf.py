"""`Leaf`: one parameter as the engine sees it, everything static. The type every phase of the
engine (:mod:`jinit._tree.plan`, :mod:`jinit._tree.build`) reads."""

from __future__ import annotations

import dataclasses

import numpy as np
from jax.sharding import Sharding

from jinit._typing import Initializer


@dataclasses.dataclass(frozen=True)
class Leaf:
    """What one parameter needs, all static: its path, shape, dtype, sharding and initializer."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    sharding: Sharding | None
    pattern: str
    init: Initializer

"""Every private jax API jinit uses, behind one door (checked against jax 0.10.2).

A jax release may move or change any of these without notice. Each is imported here, when
first used, never at ``import jinit``; where it has moved, the call raises a ``RuntimeError``
naming the API, the jax version and what jinit needed it for, and ``tests/test_jax_compat.py``
fails with that message. Nothing else in jinit imports from ``jax._src``.
"""

from __future__ import annotations

from typing import Any

import jax

CHECKED_WITH = "0.10.2"  # the jax version these were read against


def _moved(api: str, purpose: str) -> RuntimeError:
    return RuntimeError(
        f"jinit needs `{api}` ({purpose}), which jax {jax.__version__} does not have where "
        f"jax {CHECKED_WITH} had it; jinit/_jax_compat.py must follow it. Please report this."
    )


def canonicalize_sharding(out_sharding: Any, api_name: str) -> Any:
    """jax.random's own validation of an ``out_sharding`` (a NamedSharding, a PartitionSpec
    under ``jax.set_mesh``, or None), with jax's errors: jinit's kernels take what it takes."""
    try:
        from jax._src.sharding_impls import canonicalize_sharding as canonicalize
    except ImportError as e:
        raise _moved(
            "jax._src.sharding_impls.canonicalize_sharding", "jax.random's out_sharding checks"
        ) from e
    return canonicalize(out_sharding, api_name)


def concrete_mesh() -> Any:
    """The concrete mesh set by ``jax.set_mesh`` (an empty one outside it), also inside ``jit``,
    where the public ``jax.sharding.get_mesh`` refuses to answer."""
    try:
        from jax._src.mesh import get_concrete_mesh
    except ImportError as e:
        raise _moved("jax._src.mesh.get_concrete_mesh", "the ambient mesh inside jit") from e
    return get_concrete_mesh()

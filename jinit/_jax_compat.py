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


def gpu_hash_targets() -> dict[str, str]:
    """jaxlib's threefry2x32 kernel for each GPU platform that has it, by jax's platform name
    (``{"cuda": "cu_threefry2x32_ffi"}`` with the CUDA plugin; empty without a GPU plugin).

    The kernel is the one ``jax_threefry_gpu_kernel_lowering`` lowers ``threefry2x32_p`` to: an
    FFI target that jaxlib registers with XLA for its platform, outputs the two hashed words of
    four uint32 operands of one shape (key words and counter words), and that ``jax.export``
    keeps among its custom-call targets guaranteed stable. Its registry is ``jaxlib.gpu_prng``.
    """
    try:
        from jaxlib import gpu_prng

        registered = gpu_prng.registrations()
    except (ImportError, AttributeError):  # no GPU plugin, or jaxlib moved it: jinit's own hash
        return {}
    platforms = {"CUDA": "cuda", "ROCM": "rocm"}
    return {
        platforms[p]: name
        for p, targets in registered.items()
        if p in platforms
        for name, *_ in targets
        if name.endswith("_threefry2x32_ffi")
    }

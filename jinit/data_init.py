"""Data-dependent initialisation: LSUV (Mishkin & Matas 2016) and the data-dependent init of
weight normalisation (Salimans & Kingma 2016), for Flax linen and nnx models.

Both take a model whose weights are already initialised (LSUV's first step is an orthonormal
init: use ``jinit.orthogonal()`` for the kernels) and one batch of data, and rescale each layer
so that its outputs on that batch have the wanted statistics. Both are pure JAX and run under
``jit``: the layers are found once, in Python, from the parameter tree; the iterations are a
``lax.while_loop``.

A *layer* is a module with a ``kernel`` parameter (``Dense``, ``DenseGeneral``, ``Conv``, nnx's
``Linear``, ``LinearGeneral``, ``Conv``, ...); its output is what its ``__call__`` returns
(captured with linen's ``capture_intermediates`` or :func:`flax.nnx.capture`), and its ``bias``
is its sibling parameter of that name. The layers are visited in natural order of their paths,
repeatedly, until all of them meet the criterion at once (so the order in which the model calls
them does not matter), or ``max_iters`` sweeps have run.

This module imports flax.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jinit import _checks, _paths
from jinit._paths import Path

Outputs = Callable[[Any, Any], dict[Path, jax.Array]]


def _check(where: str, tol: Any, max_iters: Any) -> tuple[float, int]:
    tol_ = _checks.check_real(where, "tol", tol, positive=True)
    if not tol_ < 1:
        raise ValueError(f"`{where}(tol=...)` must be a number in (0, 1); got {tol!r}.")
    return tol_, _checks.check_count(where, "max_iters", max_iters)


def _kernel_paths(params: Any, prefix: Path = ()) -> list[Path]:
    """The paths of every ``kernel`` in a nested dict, in natural order (``Dense_2`` before
    ``Dense_10``, list index 2 before 10): for Flax's automatic names, the order of creation."""
    out: list[Path] = []
    for k, v in params.items():
        if isinstance(v, dict):
            out += _kernel_paths(v, (*prefix, k))
        elif k == "kernel":
            out.append((*prefix, k))
    return out if prefix else sorted(out, key=_natural)


def _natural(path: Path) -> tuple[Any, ...]:
    return tuple(
        tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(k))) for k in path
    )


def lsuv(
    outputs: Outputs,
    params: Any,
    x: Any,
    kernels: Sequence[Path],
    *,
    tol: float = 0.1,
    max_iters: int = 10,
) -> Any:
    r"""Layer-sequential unit-variance scaling, on a functional model.

    Repeats, layer by layer: compute the layer's output :math:`B` on ``x``; if
    :math:`|\operatorname{Var}(B) - 1| \ge` ``tol``, divide its kernel by
    :math:`\sqrt{\operatorname{Var}(B)}` (Mishkin & Matas 2016, Algorithm 1), until every layer's
    output variance is within ``tol`` of 1 at once, or ``max_iters`` sweeps over the layers.

    Args:
      outputs: ``outputs(params, x) -> {kernel path: the layer's output}``.
      params: a nested dict of parameters.
      x: the batch.
      kernels: the kernel paths to scale, in the order to visit them.
      tol: the tolerance on the variance (the paper's :math:`\text{Tol}_\text{var}` = 0.1).
      max_iters: the most sweeps over the layers (the paper's :math:`T_\text{max}` = 10).

    Returns:
      ``params`` with the kernels rescaled.
    """
    tol, max_iters = _check("lsuv", tol, max_iters)
    kernels = [tuple(p) for p in kernels]
    if not kernels:
        raise ValueError("`lsuv`: no layers to scale (`kernels` is empty).")

    def variances(params: Any) -> jax.Array:
        outs = outputs(params, x)
        return jnp.stack([jnp.var(outs[p].astype(jnp.float32)) for p in kernels])

    def sweep(carry: tuple[Any, jax.Array, jax.Array]) -> tuple[Any, jax.Array, jax.Array]:
        params, _, it = carry
        for i, path in enumerate(kernels):
            v = variances(params)[i]
            factor = jnp.where(jnp.abs(v - 1.0) >= tol, _rsqrt(v), 1.0)
            w = _paths.get(params, path)
            params = _paths.replace(params, path, (w * factor).astype(w.dtype))
        return params, jnp.max(jnp.abs(variances(params) - 1.0)), it + 1

    def more(carry: tuple[Any, jax.Array, jax.Array]) -> jax.Array:
        _, err, it = carry
        return (err >= tol) & (it < max_iters)

    err = jnp.max(jnp.abs(variances(params) - 1.0))
    params, _, _ = jax.lax.while_loop(more, sweep, (params, err, jnp.int32(0)))
    return params


def _rsqrt(v: jax.Array) -> jax.Array:
    """``1/sqrt(v)``, or 1 for a zero (dead) or non-finite variance, which no scale can fix."""
    ok = (v > 0) & jnp.isfinite(v)
    return jnp.where(ok, jax.lax.rsqrt(jnp.where(ok, v, 1.0)), 1.0)


def data_dependent(
    outputs: Outputs,
    params: Any,
    x: Any,
    kernels: Sequence[Path],
    *,
    sweeps: int = 2,
) -> Any:
    r"""Weight normalisation's data-dependent init (Salimans & Kingma 2016, section 3), on a
    functional model.

    For each layer, with :math:`t` its output on ``x`` and :math:`\mu_j, \sigma_j` the mean and
    standard deviation of output unit :math:`j` (the last axis) over the batch and any spatial
    axes: scale the kernel's output column :math:`j` by :math:`1/\sigma_j` and set its bias to
    :math:`(b_j - \mu_j)/\sigma_j`, so that the layer's outputs have mean 0 and variance 1 per
    unit. (For a weight-normalised layer :math:`g\,v\cdot x/\lVert v\rVert + b` this is the
    paper's :math:`g \leftarrow 1/\sigma`, :math:`b \leftarrow -\mu/\sigma`.) A layer without a
    ``bias`` is only scaled.

    Args:
      outputs: ``outputs(params, x) -> {kernel path: the layer's output}``.
      params: a nested dict of parameters.
      x: the batch.
      kernels: the kernel paths, in the order to visit them.
      sweeps: passes over the layers (the second one corrects for the order of the first).

    Returns:
      ``params`` with the kernels and biases set.
    """
    sweeps = _checks.check_count("data_dependent", "sweeps", sweeps)
    kernels = [tuple(p) for p in kernels]
    for _ in range(sweeps):
        for path in kernels:
            t = outputs(params, x)[path].astype(jnp.float32)
            axes = tuple(range(t.ndim - 1))
            mu, sigma = jnp.mean(t, axis=axes), jnp.std(t, axis=axes)
            inv = _rsqrt(sigma**2)
            w = _paths.get(params, path)
            # The unit axis is the last one, of the output and of the kernel.
            params = _paths.replace(
                params, path, (w * inv.reshape((1,) * (w.ndim - 1) + (-1,))).astype(w.dtype)
            )
            bias_path = (*path[:-1], "bias")
            try:
                b = _paths.get(params, bias_path)
            except (KeyError, TypeError):
                continue
            params = _paths.replace(params, bias_path, ((b - mu) * inv).astype(b.dtype))
    return params


# --- linen and nnx --------------------------------------------------------------------------


def layer_outputs(
    model: Any, variables: Any = None, where: str = "layer_outputs"
) -> tuple[Outputs, Any, list[Path]]:
    """A Flax model as a function of its parameters that returns every layer's output.

    Args:
      model: a linen ``Module`` (with ``variables``) or an ``nnx.Module`` (without).
      variables: the linen model's variables dict.
      where: the entry point named in errors.

    Returns:
      ``(outputs, params, kernels)``: ``outputs(params, x)`` maps each kernel path to its layer's
      output on ``x``; ``params`` is the parameters as a nested dict; ``kernels`` the kernel paths
      in the parameter tree's order.
    """
    if isinstance(model, nnx.Module):
        if variables is not None:
            raise TypeError(f"`{where}`: an nnx model carries its own variables; got `variables`.")
        outputs, params, kernels, _ = _nnx(model, where)
        return outputs, params, kernels
    return _linen(model, variables, where)


def _linen(model: Any, variables: Any, where: str) -> tuple[Outputs, Any, list[Path]]:
    if not hasattr(model, "apply") or not isinstance(variables, dict) or "params" not in variables:
        raise TypeError(
            f"`{where}` needs a linen Module and its variables dict (with 'params'); got "
            f"{type(model).__name__} and {type(variables).__name__}."
        )
    params = jax.tree.map(lambda a: a, dict(variables["params"]))
    rest = {k: v for k, v in variables.items() if k != "params"}

    def outputs(params: Any, x: Any) -> dict[Path, jax.Array]:
        _, state = model.apply(
            {"params": params, **rest}, x, capture_intermediates=True, mutable=["intermediates"]
        )
        found = {}
        for path in kernels:
            try:
                found[path] = _paths.get(state["intermediates"], (*path[:-1], "__call__"))[0]
            except (KeyError, TypeError):
                raise ValueError(
                    f"`{where}`: the layer {'/'.join(map(str, path[:-1]))!r} returned no output "
                    "in capture_intermediates (is it called?)."
                ) from None
        return found

    kernels = _kernel_paths(params)
    if not kernels:
        raise ValueError(f"`{where}`: the model has no parameter named 'kernel'.")
    return outputs, params, kernels


def lsuv_linen(model: Any, variables: Any, x: Any, *, tol: float = 0.1, max_iters: int = 10) -> Any:
    """:func:`lsuv` for a linen model: returns new variables.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> from flax import linen as nn
      >>> from jinit import data_init
      >>> model = nn.Sequential([nn.Dense(64, kernel_init=jinit.orthogonal()), nn.relu,
      ...                        nn.Dense(64, kernel_init=jinit.orthogonal())])
      >>> x = jax.random.normal(jax.random.key(0), (256, 32))
      >>> v = data_init.lsuv_linen(model, model.init(jax.random.key(1), x), x)
      >>> abs(float(model.apply(v, x).var()) - 1) < 0.1
      True
    """
    outputs, params, kernels = _linen(model, variables, "lsuv_linen")
    params = lsuv(outputs, params, x, kernels, tol=tol, max_iters=max_iters)
    return {**variables, "params": params}


def data_dependent_linen(model: Any, variables: Any, x: Any, *, sweeps: int = 2) -> Any:
    """:func:`data_dependent` for a linen model: returns new variables."""
    outputs, params, kernels = _linen(model, variables, "data_dependent_linen")
    return {**variables, "params": data_dependent(outputs, params, x, kernels, sweeps=sweeps)}


# --- nnx ------------------------------------------------------------------------------------


def _nnx(model: Any, where: str) -> tuple[Outputs, Any, list[Path], Callable[[Any], None]]:
    if not isinstance(model, nnx.Module):
        raise TypeError(f"`{where}` needs an nnx.Module; got {type(model).__name__}.")
    graphdef, state, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]
    params = nnx.to_pure_dict(state)
    kernels = _kernel_paths(params)
    if not kernels:
        raise ValueError(f"`{where}`: the model has no parameter named 'kernel'.")

    def outputs(params: Any, x: Any) -> dict[Path, jax.Array]:
        s = nnx.State(state)
        nnx.replace_by_pure_dict(s, params)
        m = nnx.merge(graphdef, s, rest)
        _, inter = nnx.capture(m, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
        inter = nnx.to_pure_dict(inter)
        found = {}
        for path in kernels:
            try:
                found[path] = _paths.get(inter, (*path[:-1], "__call__"))[0]
            except (KeyError, TypeError):
                raise ValueError(
                    f"`{where}`: the layer {'/'.join(map(str, path[:-1]))!r} returned no output "
                    "(is it called?)."
                ) from None
        return found

    def write(new: Any) -> None:
        nnx.replace_by_pure_dict(state, new)
        nnx.update(model, state)

    return outputs, params, kernels, write


def lsuv_nnx(model: Any, x: Any, *, tol: float = 0.1, max_iters: int = 10) -> None:
    """:func:`lsuv` for an nnx model: updates its parameters in place.

    Examples:
      >>> import jax, jinit
      >>> from flax import nnx
      >>> from jinit import data_init
      >>> model = nnx.Linear(32, 64, kernel_init=jinit.orthogonal(), rngs=nnx.Rngs(0))
      >>> x = jax.random.normal(jax.random.key(0), (256, 32)) * 3
      >>> data_init.lsuv_nnx(model, x)
      >>> abs(float(model(x).var()) - 1) < 0.1
      True
    """
    outputs, params, kernels, write = _nnx(model, "lsuv_nnx")
    write(
        jax.jit(lambda p, x: lsuv(outputs, p, x, kernels, tol=tol, max_iters=max_iters))(params, x)
    )


def data_dependent_nnx(model: Any, x: Any, *, sweeps: int = 2) -> None:
    """:func:`data_dependent` for an nnx model: updates its parameters in place."""
    outputs, params, kernels, write = _nnx(model, "data_dependent_nnx")
    write(jax.jit(lambda p, x: data_dependent(outputs, p, x, kernels, sweeps=sweeps))(params, x))


__all__ = [
    "data_dependent",
    "data_dependent_linen",
    "data_dependent_nnx",
    "layer_outputs",
    "lsuv",
    "lsuv_linen",
    "lsuv_nnx",
]

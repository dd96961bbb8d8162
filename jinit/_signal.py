"""Signal propagation: how an initialisation's activations and gradients scale layer by layer."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _paths
from jinit._typing import public


@public("LayerSignal")
@dataclasses.dataclass(frozen=True)
class LayerSignal:
    """One layer's forward and backward signal on a batch.

    Attributes:
      path: the layer's kernel path, e.g. ``"Dense_3/kernel"``.
      shape: the layer's output shape.
      act_std: the standard deviation of the layer's output.
      act_mean: the mean of the layer's output.
      grad_std: the standard deviation of the loss gradient with respect to the layer's kernel.
      grad_ratio: ``grad_std`` over the kernel's own standard deviation (the relative size of a
        gradient step).
    """

    path: str
    shape: tuple[int, ...]
    act_std: float
    act_mean: float
    grad_std: float
    grad_ratio: float


@public("SignalReport")
class SignalReport(tuple):
    """The :class:`LayerSignal` of every layer, in natural order of the paths; ``str()`` is a
    table and :meth:`plot` draws the two profiles."""

    def __str__(self) -> str:
        head = ("layer", "output shape", "act std", "act mean", "grad std", "grad/weight")
        rows = [
            (
                s.path,
                str(s.shape),
                f"{s.act_std:.4g}",
                f"{s.act_mean:.3g}",
                f"{s.grad_std:.4g}",
                f"{s.grad_ratio:.4g}",
            )
            for s in self
        ]
        widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
        fmt = lambda r: "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        return "\n".join(fmt(r) for r in (head, *rows))

    def plot(self, path: str | None = None, title: str | None = None) -> Any:
        """Activation std and kernel-gradient std against depth (log scale); saved to ``path``
        if given. Needs matplotlib. Returns the figure."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, g) = plt.subplots(1, 2, figsize=(10, 3.6))
        depth = np.arange(1, len(self) + 1)
        a.semilogy(depth, [s.act_std for s in self], "o-")
        a.set(xlabel="layer", ylabel="std of the layer's output", title="forward")
        g.semilogy(depth, [s.grad_std for s in self], "s-", color="tab:red")
        g.set(xlabel="layer", ylabel="std of dL/dW", title="backward")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig


@public("signal_propagation")
def signal_propagation(
    model: Any, params: Any, batch: Any, *, loss: Any = None, key: Any = None
) -> SignalReport:
    r"""Per-layer forward activation and backward gradient scales of a Flax model on a batch.

    Forward: the standard deviation (and mean) of every layer's output, a layer being a module
    with a ``kernel`` (``Dense``, ``Conv``, nnx's ``Linear``, ...). Backward: the standard
    deviation of the gradient of ``loss`` with respect to each kernel. The default loss is a
    fixed random projection of the model's output, :math:`L = \frac1B\sum_b \langle y_b, r\rangle`
    with :math:`r \sim N(0, I)`, so the backward signal starts at unit scale whatever the task.
    An initialisation that preserves the signal keeps both profiles flat with depth (Glorot &
    Bengio 2010; He et al. 2015).

    Args:
      model: a linen module, its bound ``model.apply``, or an nnx module.
      params: the linen variables (``model.init(...)``); ``None`` for an nnx module.
      batch: the model's input.
      loss: ``loss(output) -> scalar`` (default: the random projection above).
      key: the key of the random projection (default ``jax.random.key(0)``).

    Returns:
      A :class:`SignalReport`.

    Examples:
      >>> import jax, jinit
      >>> from flax import linen as nn
      >>> dense = lambda: nn.Dense(256, kernel_init=jinit.he_normal())
      >>> model = nn.Sequential([f for _ in range(8) for f in (dense(), nn.relu)])
      >>> x = jax.random.normal(jax.random.key(0), (512, 256))
      >>> report = jinit.signal_propagation(model, model.init(jax.random.key(1), x), x)
      >>> len(report), 0.5 < report[-1].act_std / report[0].act_std < 2
      (8, True)
    """
    from jinit import data_init  # imports flax

    where = "signal_propagation"
    owner = getattr(model, "__self__", None)
    if owner is not None and getattr(model, "__name__", "") == "apply":
        model = owner  # a linen model's bound `apply`
    outputs, weights, kernels = data_init.layer_outputs(model, params, where)
    if key is None:
        key = jax.random.key(0)

    def default_loss(y: jax.Array) -> jax.Array:
        r = jax.random.normal(key, y.shape[1:], jnp.float32)
        return jnp.sum(y.astype(jnp.float32) * r[None]) / y.shape[0]

    objective = default_loss if loss is None else loss

    if isinstance(params, dict) and hasattr(model, "apply"):  # linen: the model's real output

        def model_output(w: Any) -> jax.Array:
            return model.apply({**params, "params": w}, batch)
    else:
        from flax import nnx

        graphdef, state, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]

        def model_output(w: Any) -> jax.Array:
            s = nnx.State(state)
            nnx.replace_by_pure_dict(s, w)
            return nnx.merge(graphdef, s, rest)(batch)

    @jax.jit
    def measure(weights: Any) -> tuple[dict, Any]:
        grads = jax.grad(lambda w: objective(model_output(w)))(weights)
        return outputs(weights, batch), grads

    outs, grads = jax.device_get(measure(weights))
    report = []
    for path in kernels:
        y = np.asarray(outs[path], np.float64)
        g = np.asarray(_paths.get(grads, path), np.float64)
        w = np.asarray(_paths.get(weights, path), np.float64)
        w_std = float(w.std())
        report.append(
            LayerSignal(
                "/".join(map(str, path)),
                tuple(y.shape),
                float(y.std()),
                float(y.mean()),
                float(g.std()),
                float(g.std()) / w_std if w_std else float("inf"),
            )
        )
    return SignalReport(report)

"""PyTorch's default initialisation for a whole Flax model: one rule set, resolved per parameter.

torch initialises each module in its ``reset_parameters``; a Flax model ported from torch needs
the same per layer, and a bias needs the fan-in of the kernel beside it. :func:`torch.defaults`
reads both from the tree: a parameter's name says what it is (Flax's names), its sibling kernel
gives a bias its fan-in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from jinit._catalog.basic import ones, zeros
from jinit._typing import Initializer, public
from jinit.torch._initializers import bias_default, embedding_default, linear_default

# Flax's attention projections are DenseGeneral kernels: torch's MultiheadAttention has no
# per-projection default of the same shape (it inits the fused in_proj with xavier_uniform_).
_ATTENTION = frozenset({"query", "key", "value", "out"})


class TorchDefaults:
    """The rule set :func:`torch.defaults` returns (see there)."""

    def __repr__(self) -> str:
        return "jinit.torch.defaults()"

    def expand(
        self,
        params: Sequence[tuple[str, tuple[int, ...]]],
        taken: Callable[[str], bool],
        where: str = "torch.defaults",
    ) -> list[tuple[re.Pattern, Initializer, str]]:
        """One exact-path rule per parameter not ``taken`` by an earlier rule."""
        siblings: dict[str, dict[str, tuple[int, ...]]] = {}
        for path, shape in params:
            parent, _, name = path.rpartition("/")
            siblings.setdefault(parent, {})[name] = shape
        out = []
        for path, shape in params:
            if taken(path):
                continue
            parent, _, name = path.rpartition("/")
            init, what = self._rule(path, parent, name, shape, siblings[parent], where)
            pattern = re.compile(rf"\A{re.escape(path)}\Z")
            out.append((pattern, init, f"torch.defaults(): {what}"))
        return out

    @staticmethod
    def _rule(
        path: str,
        parent: str,
        name: str,
        shape: tuple[int, ...],
        siblings: dict[str, tuple[int, ...]],
        where: str,
    ) -> tuple[Initializer, str]:
        kernel = siblings.get("kernel")
        if parent.rpartition("/")[2] in _ATTENTION and kernel is not None and len(kernel) >= 3:
            raise ValueError(
                f"`{where}`: `jinit.torch.defaults()` has no PyTorch default for the attention "
                f"projection parameter {path!r} of shape {shape} (torch's MultiheadAttention "
                "initialises its fused in_proj with xavier_uniform_); put a rule for it before "
                "the rule set."
            )
        if name == "kernel" and len(shape) >= 2:
            what = "Linear weight" if len(shape) == 2 else "Conv weight"
            return linear_default(), f"{what}, U(±1/sqrt({math.prod(shape[:-1])}))"
        if name == "bias" and kernel is not None and len(kernel) >= 2 and len(shape) == 1:
            fan_in = math.prod(kernel[:-1])
            return bias_default(fan_in), f"bias, U(±1/sqrt({fan_in}))"
        if name == "scale":
            return ones, "norm weight, 1"
        if name == "bias" and "scale" in siblings:
            return zeros, "norm bias, 0"
        if name == "embedding" and len(shape) == 2:
            return embedding_default(), "Embedding weight, N(0, 1)"
        if name in ("mean", "var") and "kernel" not in siblings:
            return (zeros, "running_mean, 0") if name == "mean" else (ones, "running_var, 1")
        raise ValueError(
            f"`{where}`: `jinit.torch.defaults()` has no PyTorch default for the parameter "
            f"{path!r} of shape {shape} (it knows Flax's kernel, bias, scale, embedding, mean "
            "and var); put a rule for it before the rule set."
        )


@public("torch.defaults")
def defaults() -> TorchDefaults:
    r"""A rule set giving a whole Flax model PyTorch's default initialisation.

    Use it as ``rules`` (or as the last entry of a list of rules, after your own) in
    :func:`jinit.init_tree`, :func:`jinit.flax.init_linen` or :func:`jinit.flax.init_nnx`. Each
    parameter gets what torch's ``reset_parameters`` gives the matching torch module, in Flax's
    layouts:

    - ``kernel`` (``Dense``/``Linear``, ``Conv``, grouped or not):
      :math:`U(\pm 1/\sqrt{\text{fan\_in}})` (:func:`jinit.torch.linear_default`), with
      ``fan_in`` the product of all but the last axis;
    - ``bias`` beside a kernel: :math:`U(\pm 1/\sqrt{\text{fan\_in}})` with the kernel's
      ``fan_in`` (:func:`jinit.torch.bias_default`); beside a ``scale`` (a norm): 0;
    - ``scale`` (``LayerNorm``, ``BatchNorm``, ``GroupNorm``, ``RMSNorm``): 1;
    - ``embedding`` (``Embed``/``Embedding``): :math:`N(0, 1)`;
    - ``mean``/``var`` (BatchNorm's running statistics): 0 and 1.

    A parameter it does not know (or a ``DenseGeneral`` attention projection, which torch's
    ``MultiheadAttention`` initialises differently) raises naming its path: put a rule for it
    first. Rules before it take precedence, so ``[(r"head/kernel$", jinit.zeros),
    jinit.torch.defaults()]`` keeps torch's defaults everywhere else.

    Returns:
      A rule set (its ``expand`` resolves it against a tree's parameters).

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit, jinit.flax
      >>> model = nn.Sequential([nn.Dense(64), nn.LayerNorm(), nn.Dense(10)])
      >>> v = jinit.flax.init_linen(model, 0, jinit.torch.defaults(), jnp.ones((1, 400)))
      >>> b = v["params"]["layers_0"]["bias"]
      >>> bool(abs(b).max() <= 1 / 400 ** 0.5), float(v["params"]["layers_1"]["scale"].min())
      (True, 1.0)
      >>> for r in jinit.explain(jax.eval_shape(lambda: v), jinit.torch.defaults())[:2]:
      ...     print(r.path, "|", r.rule)
      params/layers_0/bias | torch.defaults(): bias, U(±1/sqrt(400))
      params/layers_0/kernel | torch.defaults(): Linear weight, U(±1/sqrt(400))

    References:
      ``torch.nn.Linear``, ``torch.nn.Conv2d``, ``torch.nn.Embedding``, ``torch.nn.LayerNorm``
      ``reset_parameters`` (torch 2.13).
    """
    return TorchDefaults()

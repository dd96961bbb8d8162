"""Initialise a real Flax model from rules and print, per parameter, what each initializer meant
to do and what it did: shape, the rule that matched (`jinit.explain`), fans, intended std and
measured std.

    python examples/describe_model.py
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

import jinit


class Block(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm()(x)
        h = nn.Dense(4 * self.width, name="fc")(h)
        return x + nn.Dense(self.width, name="proj")(nn.gelu(h))


class CNNTransformer(nn.Module):
    width: int = 256
    depth: int = 4

    @nn.compact
    def __call__(self, images):
        x = nn.Conv(self.width, (4, 4), strides=(4, 4), name="patchify")(images)
        x = x.reshape(x.shape[0], -1, self.width)
        for i in range(self.depth):
            x = Block(self.width, name=f"block_{i}")(x)
        return nn.Dense(10, name="head")(nn.LayerNorm()(x).mean(axis=1))


def main() -> None:
    model = CNNTransformer()
    images = jnp.ones((1, 32, 32, 3))
    abstract = jax.eval_shape(model.init, jax.random.key(0), images)
    rules = [
        (r"patchify/kernel$", jinit.he_normal()),
        (r"proj/kernel$", jinit.scaled_residual(n_layers=model.depth)),
        (r"head/kernel$", jinit.zeros),
        (r"kernel$", jinit.lecun_normal()),
        (r"scale$", jinit.ones),
        (r"bias$", jinit.zeros),
    ]
    params = jinit.init_tree(0, abstract, rules)
    measured = {jinit.path_str(p): x for p, x in jax.tree_util.tree_flatten_with_path(params)[0]}
    # jinit.explain matches exactly as init_tree does: which rule each parameter got, and why.
    explanation = jinit.explain(abstract, rules)

    print(
        f"{'parameter':34} {'shape':>16} {'rule':>18} {'fan_in':>7} {'fan_out':>7} "
        f"{'target std':>10} {'measured':>9}"
    )
    for r in explanation:
        w = jnp.asarray(measured[r.path], jnp.float32)
        fmt = lambda v: "-" if v is None else f"{v:.4g}"
        print(
            f"{r.path:34} {r.shape!s:>16} {r.rule:>18} {fmt(r.fan_in):>7} {fmt(r.fan_out):>7} "
            f"{fmt(r.target_std):>10} {float(w.std()):>9.4g}"
        )


if __name__ == "__main__":
    main()

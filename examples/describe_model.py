"""Initialise a real Flax model from rules and print, per parameter, what each initializer meant
to do and what it did: shape, fans, intended std and measured std.

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
    initializers = {path: init for path, init in _assignments(abstract, rules)}

    print(
        f"{'parameter':34} {'shape':>16} {'fan_in':>7} {'fan_out':>7} {'target std':>10} "
        f"{'measured':>9}"
    )
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = jinit.path_str(path)
        d = jinit.describe(initializers[name], leaf.shape, leaf.dtype)
        w = jnp.asarray(leaf, jnp.float32)
        fmt = lambda v: "-" if v is None else f"{v:.4g}"
        print(
            f"{name:34} {leaf.shape!s:>16} {fmt(d.fan_in):>7} {fmt(d.fan_out):>7} "
            f"{fmt(d.target_std):>10} {float(w.std()):>9.4g}"
        )


def _assignments(abstract, rules):
    """Which initializer each parameter got: the first rule whose pattern matches its path."""
    import re

    for path, _ in jax.tree_util.tree_flatten_with_path(abstract)[0]:
        name = jinit.path_str(path)
        yield name, next(init for pattern, init in rules if re.search(pattern, name))


if __name__ == "__main__":
    main()

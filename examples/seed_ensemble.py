"""A small seed study: N replicas of an MLP initialised at once with jax.vmap over keys.

    python examples/seed_ensemble.py

Replica i equals ``jinit.init_tree(i, ...)`` exactly, so any run can be reproduced on its own.
The study trains each replica on the same toy regression task and reports how much the final
loss depends on the initial weights alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jinit

SDS = jax.ShapeDtypeStruct
ABSTRACT = {
    "hidden": {"kernel": SDS((8, 64), jnp.float32), "bias": SDS((64,), jnp.float32)},
    "out": {"kernel": SDS((64, 1), jnp.float32), "bias": SDS((1,), jnp.float32)},
}
RULES = [
    (r"hidden/kernel$", jinit.he_normal()),
    (r"out/kernel$", jinit.glorot_uniform()),
    (r"bias$", jinit.zeros),
]


def loss(params, x, y):
    h = jax.nn.relu(x @ params["hidden"]["kernel"] + params["hidden"]["bias"])
    return jnp.mean((h @ params["out"]["kernel"] + params["out"]["bias"] - y) ** 2)


@jax.jit
def train(params, x, y, lr=0.05, steps=200):
    def step(p, _):
        return jax.tree.map(lambda w, g: w - lr * g, p, jax.grad(loss)(p, x, y)), None

    return loss(jax.lax.scan(step, params, None, length=steps)[0], x, y)


def main(n_seeds: int = 16) -> None:
    x = jax.random.normal(jax.random.key(123), (256, 8))
    y = jnp.sin(x.sum(axis=1, keepdims=True))
    seeds = jnp.arange(n_seeds)
    ensemble = jax.vmap(lambda s: jinit.init_tree(s, ABSTRACT, RULES))(seeds)
    one = jinit.init_tree(3, ABSTRACT, RULES)
    same = all(
        bool((a[3] == b).all())
        for a, b in zip(jax.tree.leaves(ensemble), jax.tree.leaves(one), strict=True)
    )
    print(
        f"{n_seeds} replicas, hidden kernel {ensemble['hidden']['kernel'].shape}; "
        f"replica 3 == init_tree(3): {same}"
    )
    final = jax.vmap(train, in_axes=(0, None, None))(ensemble, x, y)
    print(
        f"final loss over seeds: mean {float(final.mean()):.4f}, std {float(final.std()):.4f}, "
        f"min {float(final.min()):.4f} (seed {int(final.argmin())}), max {float(final.max()):.4f}"
    )


if __name__ == "__main__":
    main()

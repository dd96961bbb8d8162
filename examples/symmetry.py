"""Why not initialise every weight to zero (or to one)? Because identical units stay identical.

A 2-8-1 tanh network learns a disc (label 1 inside radius 0.6 of the square [-1, 1]^2) with
Adam, from three initialisations of its kernels (biases start at zero in all three):

- ``jinit.zeros``: every hidden unit computes tanh(0) = 0 and the output weights are 0, so no
  gradient reaches any kernel: only the output bias ever moves;
- ``jinit.ones``: every hidden unit is the same function of the input and receives the same
  gradient, so the units move together forever: 8 units are one unit (a straight decision
  boundary), whatever the optimiser;
- ``jinit.glorot_uniform()``: the units start different and learn different features.

The summary prints, per initialisation, the largest difference between any two hidden units'
incoming weights over the whole run (exactly 0.0 for zeros and ones), the rank of the first
kernel and the final accuracy.

    python examples/symmetry.py [--steps 600] [--out symmetry.png]
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jinit

SDS = jax.ShapeDtypeStruct
HIDDEN = 8
ABSTRACT = {
    "hidden": {"kernel": SDS((2, HIDDEN), jnp.float32), "bias": SDS((HIDDEN,), jnp.float32)},
    "out": {"kernel": SDS((HIDDEN, 1), jnp.float32), "bias": SDS((1,), jnp.float32)},
}
SCHEMES = {"zeros": jinit.zeros, "ones": jinit.ones, "glorot (random)": jinit.glorot_uniform()}


def disc(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` points uniform in [-1, 1]^2, label 1 inside radius 0.6."""
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 2)).astype(np.float32)
    return x, (np.linalg.norm(x, axis=1) < 0.6).astype(np.float32)


def logits(params, x):
    h = jnp.tanh(x @ params["hidden"]["kernel"] + params["hidden"]["bias"][None, :])
    return (h @ params["out"]["kernel"] + params["out"]["bias"][None, :])[:, 0]


def loss_fn(params, x, y):
    return optax.sigmoid_binary_cross_entropy(logits(params, x), y).mean()


def train(params, x, y, steps: int, lr: float = 0.05):
    """Full-batch Adam; returns the final parameters and the first kernel after every step."""
    opt = optax.adam(lr)

    def step(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(loss_fn)(p, x, y), s, p)
        p = optax.apply_updates(p, u)
        return (p, s), p["hidden"]["kernel"]

    (params, _), kernels = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params, kernels


def run(steps: int, n: int = 512, seed: int = 0) -> dict:
    x, y = disc(n, seed=1)
    out = {}
    for name, kernel_init in SCHEMES.items():
        rules = [(r"kernel$", kernel_init), (r"bias$", jinit.zeros)]
        params0 = jinit.init_tree(seed, ABSTRACT, rules)
        params, kernels = jax.jit(train, static_argnums=3)(params0, x, y, steps)
        kernels = np.concatenate([np.asarray(params0["hidden"]["kernel"])[None], kernels])
        accuracy = float(jnp.mean((logits(params, x) > 0) == (y > 0.5)))
        out[name] = {
            "kernels": kernels,  # (steps + 1, 2, HIDDEN)
            # the largest difference between two hidden units' incoming weights, over the run
            "spread": float(np.max(np.abs(kernels - kernels[:, :, :1]))),
            "rank": int(np.linalg.matrix_rank(kernels[-1], tol=1e-6)),
            "accuracy": accuracy,
            "params": params,
        }
    return {"x": x, "y": y, "steps": steps, "schemes": out}


def summary(result: dict) -> str:
    lines = [f"2-{HIDDEN}-1 tanh net, {result['steps']} Adam steps on a disc"]
    for name, r in result["schemes"].items():
        lines.append(
            f"  {name:16} max difference between hidden units {r['spread']:.3g}, "
            f"rank of the first kernel {r['rank']}, accuracy {r['accuracy']:.3f}"
        )
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schemes = result["schemes"]
    fig, axes = plt.subplots(2, len(schemes), figsize=(5 * len(schemes), 8.5))
    grid = np.linspace(-1, 1, 121, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    for col, (name, r) in enumerate(schemes.items()):
        ax = axes[0, col]
        steps = np.arange(r["kernels"].shape[0])
        for j in range(HIDDEN):
            # each unit's weight from input 0; a marker cycle so coinciding lines stay visible
            ax.plot(
                steps,
                r["kernels"][:, 0, j],
                color=f"C{j}",
                lw=1.5,
                ls=["-", "--", ":", "-."][j % 4],
                label=f"unit {j}",
            )
        ax.set_title(
            f"{name}: hidden units' weight from input x0\n"
            f"max difference between units: {r['spread']:.3g}"
        )
        ax.set_xlabel("Adam step")
        ax.grid(True, alpha=0.3)
        if col == 0:
            ax.set_ylabel("W_hidden[0, unit]")
        if col == len(schemes) - 1:
            ax.legend(fontsize=7, ncol=2)
        ax = axes[1, col]
        z = np.asarray(logits(r["params"], points)).reshape(gx.shape)
        ax.contourf(gx, gy, z > 0, levels=[-0.5, 0.5, 1.5], colors=["#f4d7c6", "#c6dbef"])
        ax.scatter(*result["x"].T, c=result["y"], s=4, cmap="coolwarm_r")
        ax.set_title(f"decision region, accuracy {r['accuracy']:.3f}")
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".png")))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.steps)
    print(summary(result))
    plot(result, args.out)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return result


if __name__ == "__main__":
    main()

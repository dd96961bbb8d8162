"""Does the initialisation matter if I train long enough? Only when the loss is not convex.

The same data (two interleaved spirals), the same optimiser (full-batch Adam, then a decaying
step), the same 24 initialisations of every weight, drawn from N(0, s^2) for scales s from 0.01
to 3 (``jinit.normal(s)``, each under its path-derived key):

- **logistic regression** (with a small L2 penalty, so the loss is strictly convex) reaches the
  same minimum, and the same weights, from every start;
- **a two-layer tanh network** (2-8-1, same penalty) ends in different minima: its final losses
  spread over a wide range, and no amount of training moves a run out of its basin.

    python examples/convex_vs_nonconvex.py [--inits 24] [--steps 3000] [--out ...png]
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import two_spirals

import jinit

SDS = jax.ShapeDtypeStruct
HIDDEN = 8
L2 = 3e-4
MODELS = {
    "logistic regression (convex)": {
        "linear": {"kernel": SDS((2, 1), jnp.float32), "bias": SDS((1,), jnp.float32)},
    },
    f"2-{HIDDEN}-1 tanh network (non-convex)": {
        "hidden": {"kernel": SDS((2, HIDDEN), jnp.float32), "bias": SDS((HIDDEN,), jnp.float32)},
        "linear": {"kernel": SDS((HIDDEN, 1), jnp.float32), "bias": SDS((1,), jnp.float32)},
    },
}


def logits(params, x):
    if "hidden" in params:
        x = jnp.tanh(x @ params["hidden"]["kernel"] + params["hidden"]["bias"][None, :])
    return (x @ params["linear"]["kernel"] + params["linear"]["bias"][None, :])[:, 0]


def loss_fn(params, x, y):
    penalty = sum(jnp.sum(w**2) for w in jax.tree.leaves(params))
    return optax.sigmoid_binary_cross_entropy(logits(params, x), y).mean() + L2 * penalty


def train(params, x, y, steps: int):
    """Adam with a cosine-decayed step, so every run settles into the minimum it is in."""
    opt = optax.adam(optax.cosine_decay_schedule(0.05, steps, alpha=1e-3))

    def step(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    grad_norm = optax.tree.norm(jax.grad(loss_fn)(params, x, y))
    return params, jnp.concatenate([losses, loss_fn(params, x, y)[None]]), grad_norm


def run(n_inits: int, steps: int, seed: int = 0) -> dict:
    x, y = two_spirals(100, seed=1)
    scales = np.geomspace(0.01, 3.0, n_inits)
    root = jax.random.key(seed)
    out = {}
    for model, abstract in MODELS.items():
        keys = jnp.stack([jinit.key_for_path(root, f"init_{i}") for i in range(n_inits)])
        params = [
            jinit.init_tree(keys[i], abstract, [(".*", jinit.normal(float(s)))])
            for i, s in enumerate(scales)
        ]
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *params)
        fit = jax.jit(jax.vmap(train, in_axes=(0, None, None, None)), static_argnums=3)
        final, curves, grad_norm = fit(stacked, x, y, steps)
        flat = np.concatenate(
            [np.asarray(w).reshape(n_inits, -1) for w in jax.tree.leaves(final)], axis=1
        )
        out[model] = {
            "curves": np.asarray(curves),
            "final_loss": np.asarray(curves[:, -1]),
            "grad_norm": np.asarray(grad_norm),
            # the largest distance between the final weights of two runs
            "weight_spread": float(np.max(np.linalg.norm(flat[:, None] - flat[None, :], axis=-1))),
        }
    return {"scales": scales, "steps": steps, "models": out}


def summary(result: dict) -> str:
    lines = [
        f"{len(result['scales'])} initialisations N(0, s^2), s in [0.01, 3], "
        f"{result['steps']} Adam steps"
    ]
    for model, r in result["models"].items():
        f = r["final_loss"]
        lines.append(
            f"  {model:32} final loss min {f.min():.6f} max {f.max():.6f} "
            f"(spread {f.max() - f.min():.2g}); largest distance between two runs' final "
            f"weights {r['weight_spread']:.2g}; largest final gradient norm "
            f"{r['grad_norm'].max():.2g}"
        )
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    scales = result["scales"]
    norm = LogNorm(scales.min(), scales.max())
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, (model, r) in zip(axes[:2], result["models"].items(), strict=True):
        for s, curve in zip(scales, r["curves"], strict=True):
            ax.plot(np.arange(len(curve)), curve, color=cmap(norm(s)), lw=1)
        f = r["final_loss"]
        ax.set_title(f"{model}\nfinal loss {f.min():.4f} to {f.max():.4f}")
        ax.set_xlabel("Adam step")
        ax.set_ylabel("training loss (+ L2 penalty)")
        ax.set_ylim(0, 1.0)
        ax.grid(True, alpha=0.3)
    ax = axes[2]
    for i, (model, r) in enumerate(result["models"].items()):
        ax.scatter(scales, r["final_loss"], marker="os"[i], color=f"C{i}", label=model)
    ax.set_xscale("log")
    ax.set_xlabel("initial weight std s")
    ax.set_ylabel("final loss")
    ax.set_title("final loss vs initial scale")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[1], label="initial std s")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inits", type=int, default=24)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".png")))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.inits, args.steps)
    print(summary(result))
    plot(result, args.out)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return result


if __name__ == "__main__":
    main()

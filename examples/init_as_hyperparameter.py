"""Is the initialisation a hyperparameter? Yes, and it interacts with the learning rate.

A 2-32-32-32-32-1 ReLU MLP learns two interleaved spirals with full-batch SGD (momentum 0.9) for
every pair of (initialisation scheme, learning rate) on a grid, 3 seeds per cell, all trained at
once with ``jax.vmap`` (kernels from ``jinit.init_tree`` under path-derived keys, zero biases).
The heat map shows the median final training loss per cell: the best learning rate moves with the
scheme (a larger initial scale wants a smaller step, a vanishing one cannot train at any step on
the grid), so tuning the learning rate under one scheme and then swapping the scheme, or comparing
schemes at one fixed learning rate, answers the wrong question. Tune them together.

    python examples/init_as_hyperparameter.py [--seeds 3] [--steps 200] [--out ...png]
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import symmetric_uniform, two_spirals

import jinit

SDS = jax.ShapeDtypeStruct
WIDTH, DEPTH = 32, 4
LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


SCHEMES: dict[str, jinit.Initializer] = {
    "N(0,1)*0.01": jinit.normal(0.01),
    "torch U(±1/√n)": jinit.torch.linear_default(),
    "lecun": jinit.lecun_normal(),
    "glorot": jinit.glorot_uniform(),
    "he": jinit.he_normal(),
    "orthogonal(√2)": jinit.orthogonal(2**0.5),
    "U[-0.3,0.3]": symmetric_uniform(0.3),
    "U[-1,1]": symmetric_uniform(1.0),
}


def abstract_tree() -> dict:
    sizes = [2] + [WIDTH] * DEPTH + [1]
    return {
        f"layer_{i}": {"kernel": SDS((a, b), jnp.float32), "bias": SDS((b,), jnp.float32)}
        for i, (a, b) in enumerate(itertools.pairwise(sizes))
    }


def logits(params, x):
    h = x
    for i in range(DEPTH + 1):
        layer = params[f"layer_{i}"]
        h = h @ layer["kernel"] + layer["bias"][None, :]
        h = jax.nn.relu(h) if i < DEPTH else h
    return h[:, 0]


def final_loss(params, lr, x, y, steps: int):
    """Full-batch SGD with momentum 0.9 at learning rate `lr` (traced, so it can be vmapped)."""
    opt = optax.sgd(lr, momentum=0.9)

    def loss_fn(p):
        return optax.sigmoid_binary_cross_entropy(logits(p, x), y).mean()

    def step(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(loss_fn)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return loss_fn(params)


def run(n_seeds: int, steps: int, lrs=LEARNING_RATES, schemes=None, seed: int = 0) -> dict:
    schemes = list(schemes or SCHEMES)
    x, y = two_spirals(100, seed=1)
    root = jax.random.key(seed)
    abstract = abstract_tree()
    # Replica (scheme, seed i) has the key of the path "<scheme>/seed_<i>", for every lr.
    params = []
    for s in schemes:
        keys = jnp.stack([jinit.key_for_path(root, f"{s}/seed_{i}") for i in range(n_seeds)])
        rules = [(r"kernel$", SCHEMES[s]), (r"bias$", jinit.zeros)]
        params.append(jax.vmap(lambda k, rules=rules: jinit.init_tree(k, abstract, rules))(keys))
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *params)  # (schemes, seeds, ...)
    lr = jnp.asarray(lrs, jnp.float32)
    over_lr = jax.vmap(final_loss, in_axes=(None, 0, None, None, None))
    over_seeds = jax.vmap(over_lr, in_axes=(0, None, None, None, None))
    over_schemes = jax.vmap(over_seeds, in_axes=(0, None, None, None, None))
    loss = np.asarray(jax.jit(over_schemes, static_argnums=4)(stacked, lr, x, y, steps))
    loss = np.where(np.isfinite(loss), loss, np.inf)  # diverged runs
    return {"schemes": schemes, "lrs": list(lrs), "loss": loss, "steps": steps}  # (S, seeds, L)


def best_lrs(result: dict) -> dict[str, float | None]:
    """The learning rate of the lowest median loss per scheme; None where no learning rate on the
    grid gets below 99% of the loss of a constant guess, ln 2 (nothing trained)."""
    median = np.median(result["loss"], axis=1)
    return {
        s: result["lrs"][int(np.argmin(median[i]))] if median[i].min() < 0.99 * np.log(2) else None
        for i, s in enumerate(result["schemes"])
    }


def summary(result: dict) -> str:
    median = np.median(result["loss"], axis=1)
    n_seeds = result["loss"].shape[1]
    lines = [f"median final training loss over {n_seeds} seeds, {result['steps']} SGD steps"]
    lines.append(f"{'scheme':16}" + "".join(f"{lr:>8g}" for lr in result["lrs"]) + "  best lr")
    best = best_lrs(result)
    for i, s in enumerate(result["schemes"]):
        cells = "".join(f"{v:8.3f}" if np.isfinite(v) else f"{'div':>8}" for v in median[i])
        lines.append(f"{s:16}{cells}  {'none' if best[s] is None else f'{best[s]:g}'}")
    i, j = np.unravel_index(np.argmin(median), median.shape)
    trained = [lr for lr in best.values() if lr is not None]
    lines.append(
        f"best cell: {result['schemes'][i]} at lr {result['lrs'][j]:g} "
        f"(loss {median[i, j]:.3f}); best lr per scheme spans "
        f"{min(trained):g} to {max(trained):g}; schemes that train at no lr: "
        f"{[s for s, lr in best.items() if lr is None]}"
    )
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    median = np.median(result["loss"], axis=1)
    shown = np.where(np.isfinite(median), median, np.nan)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    cmap = plt.get_cmap("viridis_r").with_extremes(bad="#bbbbbb")
    finite = shown[np.isfinite(shown)]
    im = ax.imshow(
        shown,
        cmap=cmap,
        aspect="auto",
        norm=LogNorm(max(finite.min(), 1e-4), max(finite.max(), 1.0)),
    )
    best = best_lrs(result)
    for i, s in enumerate(result["schemes"]):
        for j, lr in enumerate(result["lrs"]):
            v = median[i, j]
            text = "div." if not np.isfinite(v) else f"{v:.2f}" if v >= 0.01 else f"{v:.0e}"
            bold = lr == best[s]
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="k" if np.isfinite(v) and v < 0.05 else "w",
                fontweight="bold" if bold else "normal",
            )
            if bold:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="r", lw=2))
    ax.set_xticks(range(len(result["lrs"])), [f"{lr:g}" for lr in result["lrs"]])
    ax.set_yticks(range(len(result["schemes"])), result["schemes"])
    ax.set_xlabel("learning rate (SGD, momentum 0.9)")
    ax.set_title(
        f"median final training loss, {DEPTH}x{WIDTH} ReLU MLP, two spirals\n"
        "(red: best lr per scheme; grey: diverged; 0.69 = ln 2: nothing learnt)"
    )
    fig.colorbar(im, ax=ax, label="final training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".png")))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.seeds, args.steps)
    print(summary(result))
    plot(result, args.out)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return result


if __name__ == "__main__":
    main()

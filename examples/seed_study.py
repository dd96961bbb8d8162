"""Seed study: does the initial draw matter, which scheme to use, and how many seeds to compare?

Trains a 2-16-16-1 ReLU MLP with Adam on two interleaved spirals, **64 seeds of each of ten
initialisation schemes at once** (``jax.vmap`` over the seeds *and* the schemes: one compiled
program). Each replica's weights come from ``jinit.init_tree`` under the path-derived key
``key_for_path(root, "<scheme>/replica_<i>")``, so any replica can be rerun on its own and
retraces the same loss curve (``--replay he 17``). The biases start at zero in every scheme; the
scheme sets the kernels.

It prints, per scheme, the final test accuracy (mean, bootstrap 95% CI of the mean, worst seed)
and the median final training loss, then the two pitfalls of seed studies:

- two groups of 5 seeds of the *same* configuration differ, by chance alone, by as much as two
  different schemes do (and a t-test calls some of those pairs significant);
- the bootstrap CI of the difference between two schemes shrinks like 1/sqrt(seeds): simulating
  studies with n seeds per scheme (random subsets of the 64), the summary says from which n the
  CI excludes zero in 80% of them. (The percentile bootstrap is too narrow for very few seeds, so
  the figures at n = 3 or 5 flatter them.)

    python examples/seed_study.py [--seeds 64] [--steps 400] [--out seed_study.png]
    python examples/seed_study.py --replay he 17   # rerun one replica alone, compare its curve
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import symmetric_uniform, two_spirals

import jinit

SDS = jax.ShapeDtypeStruct
WIDTH = 16
ABSTRACT = {
    "layer_0": {"kernel": SDS((2, WIDTH), jnp.float32), "bias": SDS((WIDTH,), jnp.float32)},
    "layer_1": {"kernel": SDS((WIDTH, WIDTH), jnp.float32), "bias": SDS((WIDTH,), jnp.float32)},
    "head": {"kernel": SDS((WIDTH, 1), jnp.float32), "bias": SDS((1,), jnp.float32)},
}
LOG_EVERY = 10  # steps between recorded training losses


# Kernel initializer per scheme. The names are the plot's labels.
SCHEMES: dict[str, jinit.Initializer] = {
    "N(0,1)*0.01": jinit.normal(0.01),
    "U[-0.3,0.3]": symmetric_uniform(0.3),
    "U[0,1]": jinit.uniform(1.0),
    "U[-1,1]": symmetric_uniform(1.0),
    "torch U(±1/√n)": jinit.torch.linear_default(),
    "glorot": jinit.glorot_uniform(),
    "he": jinit.he_normal(),
    "lecun": jinit.lecun_normal(),
    "orthogonal": jinit.orthogonal(),
    "zeros": jinit.zeros,
}


def rules(scheme: str) -> list[tuple[str, jinit.Initializer]]:
    return [(r"kernel$", SCHEMES[scheme]), (r"bias$", jinit.zeros)]


def replica_key(root: jax.Array, scheme: str, i: int) -> jax.Array:
    """The key of one replica: derived from its path, never from its position in a batch."""
    return jinit.key_for_path(root, f"{scheme}/replica_{i}")


def init_replica(key: jax.Array, scheme: str):
    return jinit.init_tree(key, ABSTRACT, rules(scheme))


def logits(params, x):
    h = x
    for name in ("layer_0", "layer_1"):
        h = jax.nn.relu(h @ params[name]["kernel"] + params[name]["bias"][None, :])
    return (h @ params["head"]["kernel"] + params["head"]["bias"][None, :])[:, 0]


def loss_fn(params, x, y):
    return optax.sigmoid_binary_cross_entropy(logits(params, x), y).mean()


@functools.partial(jax.jit, static_argnames=("steps", "lr"))
def train(params, x, y, x_test, y_test, *, steps: int, lr: float):
    """Full-batch Adam. Returns (loss every LOG_EVERY steps, final test accuracy)."""
    opt = optax.adam(lr)

    def step(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    curve = jnp.concatenate([losses[::LOG_EVERY], loss_fn(params, x, y)[None]])
    accuracy = jnp.mean((logits(params, x_test) > 0) == (y_test > 0.5))
    return curve, accuracy


def run(
    schemes: list[str], n_seeds: int, steps: int, lr: float = 1e-2, seed: int = 0, n_data: int = 200
) -> dict:
    """Trains `n_seeds` replicas of every scheme in one vmapped program."""
    root = jax.random.key(seed)
    x, y = two_spirals(n_data, seed=1, half_turns=4)
    x_test, y_test = two_spirals(n_data, seed=2, half_turns=4)
    keys = {s: jnp.stack([replica_key(root, s, i) for i in range(n_seeds)]) for s in schemes}
    params = [jax.vmap(functools.partial(init_replica, scheme=s))(keys[s]) for s in schemes]
    stacked = jax.tree.map(lambda *a: jnp.concatenate(a), *params)  # (schemes * seeds, ...)
    fit = jax.vmap(
        functools.partial(train, steps=steps, lr=lr), in_axes=(0, None, None, None, None)
    )
    curves, accuracy = fit(stacked, x, y, x_test, y_test)
    shape = (len(schemes), n_seeds)
    return {
        "schemes": list(schemes),
        "curves": np.asarray(curves).reshape(*shape, -1),
        "loss": np.asarray(curves[:, -1]).reshape(shape),
        "accuracy": np.asarray(accuracy).reshape(shape),
        "steps": steps,
        "lr": lr,
        "seed": seed,
        "n_data": n_data,
    }


def replay(result: dict, scheme: str, i: int) -> np.ndarray:
    """Reruns replica `i` of `scheme` alone (no vmap) from its path key; returns its loss curve."""
    x, y = two_spirals(result["n_data"], seed=1, half_turns=4)
    x_test, y_test = two_spirals(result["n_data"], seed=2, half_turns=4)
    params = init_replica(replica_key(jax.random.key(result["seed"]), scheme, i), scheme)
    curve, _ = train(params, x, y, x_test, y_test, steps=result["steps"], lr=result["lr"])
    return np.asarray(curve)


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, n_boot: int = 4000) -> np.ndarray:
    """Percentile bootstrap 95% CI of the mean of `values`."""
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    return np.percentile(means, [2.5, 97.5])


def power(a: np.ndarray, b: np.ndarray, n: int, rng, studies: int = 300, n_boot: int = 1000):
    """Simulates `studies` comparisons with `n` seeds per scheme (random subsets of the seeds run):
    returns the fraction whose bootstrap 95% CI of mean(a) - mean(b) excludes 0, and the CIs."""
    cis = []
    for _ in range(studies):
        sa = rng.choice(a, n, replace=False)
        sb = rng.choice(b, n, replace=False)
        ma = sa[rng.integers(0, n, (n_boot, n))].mean(axis=1)
        mb = sb[rng.integers(0, n, (n_boot, n))].mean(axis=1)
        cis.append(np.percentile(ma - mb, [2.5, 97.5]))
    ci = np.array(cis)
    return float(np.mean((ci[:, 0] > 0) | (ci[:, 1] < 0))), ci


def five_vs_five(values: np.ndarray, rng, group: int = 5, trials: int = 4000) -> dict:
    """Differences of means between two disjoint random groups of `group` seeds of ONE config,
    and how often a two-sample t-test (pooled, p < 0.05) would call them different."""
    t_table = {3: 2.776, 4: 2.447, 5: 2.306, 6: 2.228, 8: 2.145, 10: 2.101}  # df = 2 group - 2
    if group not in t_table:
        raise ValueError(f"`five_vs_five(group=...)` must be in {sorted(t_table)}; got {group}.")
    t_crit = t_table[group]
    diffs, significant = [], 0
    for _ in range(trials):
        idx = rng.permutation(len(values))
        a, b = values[idx[:group]], values[idx[group : 2 * group]]
        diffs.append(a.mean() - b.mean())
        pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / group)
        significant += bool(pooled > 0 and abs(a.mean() - b.mean()) / pooled > t_crit)
    return {"diffs": np.array(diffs), "false_positive_rate": significant / trials}


def analyse(result: dict, reference: str, compare: tuple[str, str]) -> dict:
    rng = np.random.default_rng(0)
    schemes, acc = result["schemes"], result["accuracy"]
    ci = {s: bootstrap_ci(acc[i], rng) for i, s in enumerate(schemes)}
    a, b = (acc[schemes.index(s)] for s in compare)
    # Subsets of at most half the seeds, so that simulated studies are not all the same seeds.
    ns = [n for n in (3, 5, 8, 12, 16, 24, 32, 48, 64) if 2 * n <= len(a)]
    sims = [power(a, b, n, rng) for n in ns]
    powers = [p for p, _ in sims]
    widths = [float(np.median(c[:, 1] - c[:, 0])) for _, c in sims]
    needed = next((n for n, p in zip(ns, powers, strict=True) if p >= 0.8), None)
    ref = acc[schemes.index(reference)]
    pitfall = five_vs_five(ref, rng) if len(ref) >= 10 else None
    if pitfall is not None:
        pitfall["beyond_gap"] = float(np.mean(np.abs(pitfall["diffs"]) >= abs(a.mean() - b.mean())))
    return {
        "ci": ci,
        "ns": ns,
        "power": powers,
        "ci_width": widths,
        "seeds_needed": needed,
        "gap": float(a.mean() - b.mean()),
        "pitfall": pitfall,
        "reference": reference,
        "compare": compare,
    }


def summary(result: dict, stats: dict) -> str:
    n = result["accuracy"].shape[1]
    lines = [f"{n} seeds per scheme, {result['steps']} Adam steps (lr {result['lr']})"]
    lines.append(f"{'scheme':16} {'test acc: mean [95% CI]':>26} {'worst':>6} {'train loss':>10}")
    for i, s in enumerate(result["schemes"]):
        acc, lo, hi = result["accuracy"][i], *stats["ci"][s]
        lines.append(
            f"{s:16} {acc.mean():10.3f} [{lo:.3f}, {hi:.3f}] {acc.min():6.3f} "
            f"{np.median(result['loss'][i]):10.4f}"
        )
    a, b = stats["compare"]
    if stats["pitfall"] is not None:
        d = np.abs(stats["pitfall"]["diffs"])
        lines.append(
            f"pitfall: two disjoint groups of 5 seeds of the same config ({stats['reference']}) "
            f"differ in mean accuracy by {np.median(d):.3f} (median), {np.percentile(d, 95):.3f} "
            f"(95th pct), {d.max():.3f} (max); {100 * stats['pitfall']['beyond_gap']:.0f}% of "
            f"such splits differ by more than {a} vs {b} ({abs(stats['gap']):.3f}); a t-test "
            f"calls {100 * stats['pitfall']['false_positive_rate']:.1f}% of them significant"
        )
    power = ", ".join(
        f"n={n}: {100 * p:.0f}%" for n, p in zip(stats["ns"], stats["power"], strict=True)
    )
    needed = stats["seeds_needed"]
    if not stats["ns"]:
        verdict = "too few seeds to simulate studies (need at least 6)"
    else:
        verdict = (
            f"share of simulated studies whose bootstrap 95% CI excludes 0: {power}; 80% power "
            + (f"needs {needed} seeds per scheme" if needed else f"needs > {stats['ns'][-1]} seeds")
        )
    lines.append(f"{a} - {b}: mean accuracy gap {stats['gap']:+.3f}; {verdict}")
    return "\n".join(lines)


def plot(result: dict, stats: dict, path: str, replayed: tuple[str, int, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schemes, acc = result["schemes"], result["accuracy"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0, 0]
    rng = np.random.default_rng(0)
    for i, s in enumerate(schemes):
        jitter = rng.uniform(-0.25, 0.25, acc.shape[1])
        ax.scatter(acc[i], i + jitter, s=8, alpha=0.5, color=f"C{i}")
        lo, hi = stats["ci"][s]
        ax.errorbar(
            acc[i].mean(),
            i,
            xerr=[[acc[i].mean() - lo], [hi - acc[i].mean()]],
            fmt="D",
            color="k",
            ms=5,
            capsize=4,
        )
    ax.set_yticks(range(len(schemes)), schemes)
    ax.invert_yaxis()
    ax.set_xlabel("final test accuracy (dots: seeds; black: mean and bootstrap 95% CI)")
    ax.set_title(f"{acc.shape[1]} seeds per scheme, two spirals, 2-16-16-1 ReLU MLP, Adam")
    ax.grid(True, axis="x", alpha=0.3)

    ax = axes[0, 1]
    scheme, idx, curve = replayed
    curves = result["curves"][schemes.index(scheme)]
    x_steps = np.minimum(np.arange(curves.shape[1]) * LOG_EVERY, result["steps"])
    ax.semilogy(x_steps, curves.T, color="C6", alpha=0.25, lw=0.8)
    ax.semilogy(x_steps, curves[idx], color="k", lw=2.5, label=f"replica {idx} (in the vmap)")
    ax.semilogy(x_steps, curve, color="C3", lw=1.2, ls="--", label=f"replica {idx} rerun alone")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"'{scheme}': every seed's curve; one replica replayed from its path key")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)

    ax = axes[1, 0]
    a, b = stats["compare"]
    if stats["pitfall"] is not None:
        ax.hist(stats["pitfall"]["diffs"], bins=40, color="C7", alpha=0.8)
        ax.axvline(stats["gap"], color="C3", lw=2, label=f"true gap: {a} - {b}")
        ax.axvline(-stats["gap"], color="C3", lw=2, ls=":")
        ax.set_title(
            f"pitfall: 5 seeds vs 5 other seeds of the SAME config ('{stats['reference']}')"
        )
        ax.set_xlabel("difference of mean test accuracy between the two groups")
        ax.set_ylabel("count (random disjoint splits)")
        ax.legend()

    ax = axes[1, 1]
    ns = np.array(stats["ns"])
    ax.plot(
        ns,
        100 * np.array(stats["power"]),
        "o-",
        color="C0",
        label="studies whose 95% CI of the gap excludes 0",
    )
    ax.axhline(80, color="k", lw=1, ls=":")
    if stats["seeds_needed"]:
        ax.axvline(
            stats["seeds_needed"],
            color="C3",
            ls="--",
            label=f"80% from n = {stats['seeds_needed']}",
        )
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_ylim(0, 102)
    ax.set_xlabel("seeds per scheme")
    ax.set_ylabel("% of simulated studies", color="C0")
    ax.set_title(f"how many seeds to tell {a} from {b}? (bootstrap CIs)")
    ax.grid(True, alpha=0.3)
    twin = ax.twinx()
    twin.plot(ns, stats["ci_width"], "s--", color="C1", label="median CI width")
    twin.set_ylabel("median width of the 95% CI of the gap", color="C1")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    parser.add_argument("--reference", default="glorot", help="config of the 5-vs-5 pitfall")
    parser.add_argument("--compare", nargs=2, default=["he", "glorot"])
    parser.add_argument(
        "--replay", nargs=2, metavar=("SCHEME", "I"), help="default: he, min(17, seeds - 1)"
    )
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".png")))
    args = parser.parse_args(argv)
    if args.replay is None:
        args.replay = ["he", str(min(17, args.seeds - 1))]
    for name in (args.reference, *args.compare, args.replay[0]):
        if name not in args.schemes:
            parser.error(f"scheme {name!r} is not among --schemes {args.schemes}")
    replay_scheme, replay_i = args.replay[0], int(args.replay[1])
    if not 0 <= replay_i < args.seeds:
        parser.error(f"--replay: the replica index must be in [0, {args.seeds}); got {replay_i}")

    start = time.perf_counter()
    result = run(args.schemes, args.seeds, args.steps, args.lr)
    stats = analyse(result, args.reference, tuple(args.compare))
    print(summary(result, stats))
    root = jax.random.key(0)
    batch_keys = jnp.stack([replica_key(root, replay_scheme, i) for i in range(args.seeds)])
    in_batch = jax.vmap(functools.partial(init_replica, scheme=replay_scheme))(batch_keys)
    single = init_replica(replica_key(root, replay_scheme, replay_i), replay_scheme)
    stats["replay_same_init"] = all(
        bool((a[replay_i] == b).all())
        for a, b in zip(jax.tree.leaves(in_batch), jax.tree.leaves(single), strict=True)
    )
    alone = replay(result, replay_scheme, replay_i)
    in_vmap = result["curves"][args.schemes.index(replay_scheme), replay_i]
    stats["replay_max_diff"] = float(np.max(np.abs(alone - in_vmap)))
    print(
        f"replica {replay_i} of '{replay_scheme}' rerun alone: initial weights bit-identical: "
        f"{stats['replay_same_init']}; max |loss difference| over its curve "
        f"{stats['replay_max_diff']:.2g} (float rounding of batched vs single matmuls; final "
        f"loss {in_vmap[-1]:.4f} vs {alone[-1]:.4f})"
    )
    plot(result, stats, args.out, (replay_scheme, replay_i, alone))
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return {"result": result, "stats": stats}


if __name__ == "__main__":
    main()

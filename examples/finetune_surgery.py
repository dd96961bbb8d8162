"""Fine-tuning surgery: a new head, and the top k layers re-initialised, on a shifted task.

Pretrains a 64-128-128-128-5 ReLU MLP on the handwritten digits 0-4 (scikit-learn's ``digits``:
8x8 images that ship with the package), then fine-tunes it on the digits 5-9 from a few examples
per class, with a new 5-way head and the top ``k`` hidden layers re-initialised, ``k = 0..3``
(Zhang et al., "Revisiting Few-sample BERT Fine-tuning", ICLR 2021, re-initialise the top
layers of a pretrained encoder). Each fine-tuning run is

    jinit.init_tree(seed, target, rules, keep=pretrained_body, reinit=top_k_layers)

so the kept layers are the pretrained ones, bit for bit, and the new head and re-initialised
layers get exactly the values a from-scratch init with that seed gives them. Every (k, seed)
pair is fine-tuned at once (``jax.vmap``), and the plot shows the test accuracy on 5-9 against
``k``, each seed a dot, with the mean and the seed spread.

    python examples/finetune_surgery.py [--seeds 8] [--shots 10] [--out finetune_surgery.png]
"""

from __future__ import annotations

import argparse
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jinit

SDS = jax.ShapeDtypeStruct
WIDTH, HIDDEN, CLASSES = 128, 3, 5
RULES = [(r"kernel$", jinit.he_normal()), (r"bias$", jinit.zeros)]


def abstract() -> dict:
    dims = [64] + [WIDTH] * HIDDEN
    tree = {
        f"layer_{i}": {"kernel": SDS((a, b), jnp.float32), "bias": SDS((b,), jnp.float32)}
        for i, (a, b) in enumerate(itertools.pairwise(dims))
    }
    tree["head"] = {
        "kernel": SDS((WIDTH, CLASSES), jnp.float32),
        "bias": SDS((CLASSES,), jnp.float32),
    }
    return tree


def forward(params: dict, x: jax.Array) -> jax.Array:
    for i in range(HIDDEN):
        layer = params[f"layer_{i}"]
        x = jax.nn.relu(x @ layer["kernel"] + layer["bias"][None, :])
    return x @ params["head"]["kernel"] + params["head"]["bias"][None, :]


def train(params: dict, x: jax.Array, y: jax.Array, steps: int, lr: float) -> dict:
    opt = optax.adam(lr)

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, x), y).mean()

    def step(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params


def accuracy(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    return (forward(params, x).argmax(-1) == y).mean()


def data(shots: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target
    old, new = y < CLASSES, y >= CLASSES
    idx = np.flatnonzero(new)
    rng.shuffle(idx)
    few = np.concatenate([idx[y[idx] == c][:shots] for c in range(CLASSES, 2 * CLASSES)])
    test = np.setdiff1d(idx, few)
    return {
        "pre_x": x[old], "pre_y": y[old],
        "few_x": x[few], "few_y": y[few] - CLASSES,
        "test_x": x[test], "test_y": y[test] - CLASSES,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--shots", type=int, default=10, help="fine-tuning examples per new class")
    ap.add_argument("--pretrain-steps", type=int, default=600)
    ap.add_argument("--steps", type=int, default=150, help="fine-tuning steps")
    ap.add_argument("--out", default="finetune_surgery.png")
    args = ap.parse_args(argv)
    d = {k: jnp.asarray(v) for k, v in data(args.shots, np.random.default_rng(0)).items()}

    pretrained = train(jinit.init_tree(0, abstract(), RULES), d["pre_x"], d["pre_y"],
                       args.pretrain_steps, 3e-3)  # fmt: skip
    body = {k: v for k, v in pretrained.items() if k != "head"}  # the head is the old task's
    pre_acc = float(accuracy(pretrained, d["pre_x"], d["pre_y"]))

    ks = list(range(HIDDEN + 1))
    results = np.zeros((len(ks), args.seeds))
    kept_bitwise = True
    for k in ks:
        reinit = [f"layer_{HIDDEN - 1 - j}/" for j in range(k)] or None

        def start(seed, reinit=reinit):
            return jinit.init_tree(seed, abstract(), RULES, keep=body, reinit=reinit)

        seeds = jnp.arange(args.seeds) + 1
        starts = [start(int(s)) for s in seeds]
        kept = [f"layer_{i}" for i in range(HIDDEN - k)]
        kept_bitwise &= all(
            bool((s[name]["kernel"] == body[name]["kernel"]).all()) for s in starts for name in kept
        )
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *starts)
        tuned = jax.vmap(lambda p: train(p, d["few_x"], d["few_y"], args.steps, 1e-3))(stacked)
        results[k] = np.asarray(jax.vmap(lambda p: accuracy(p, d["test_x"], d["test_y"]))(tuned))
        print(f"k={k} re-initialised: test accuracy on 5-9 {results[k].mean():.3f} "
              f"(seeds {results[k].min():.3f}-{results[k].max():.3f})")  # fmt: skip

    _plot(ks, results, pre_acc, args)
    return {"ks": ks, "accuracy": results, "pretrain_accuracy": pre_acc, "kept": kept_bitwise}


def _plot(ks: list[int], results: np.ndarray, pre_acc: float, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for k in ks:
        jitter = np.linspace(-0.08, 0.08, results.shape[1])
        ax.scatter(k + jitter, results[k], s=12, alpha=0.6, color="tab:blue")
    mean, sd = results.mean(axis=1), results.std(axis=1)
    ax.errorbar(ks, mean, yerr=sd, color="black", capsize=4, marker="o", label="mean ± sd")
    ax.set_xticks(ks)
    ax.set_xlabel("top hidden layers re-initialised (k)")
    ax.set_ylabel("test accuracy, digits 5-9")
    ax.set_title(f"{args.shots}-shot fine-tuning, new head; pretrained on 0-4 ({pre_acc:.2f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {pathlib.Path(args.out)}")


if __name__ == "__main__":
    main()

"""Signal propagation: how the activation scale evolves with depth under different initializers.

A deep MLP (no normalisation, no residuals) forgets its input's scale unless the initializer is
matched to the nonlinearity. Measured (64 layers, width 512): with ReLU, He (variance 2/fan_in)
keeps the activation RMS near 1 (1.64 after 64 layers) while LeCun (1/fan_in) halves the second
moment at every layer (4e-10); with tanh, an orthogonal matrix with tanh's gain 5/3 holds the
scale (0.65) while LeCun drifts down (0.08) and torch's default Linear init, Var = 1/(3 fan_in),
collapses (4e-16).

    python examples/signal_propagation.py [--depth 64] [--width 512] [--out signal_propagation.png]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jinit

SCHEMES = {
    "lecun_normal": jinit.lecun_normal(),
    "he_normal": jinit.he_normal(),
    "glorot_uniform": jinit.glorot_uniform(),
    "orthogonal(gain)": None,  # filled per activation with its torch gain
    "torch default Linear": jinit.torch_linear_default(),
    "normal(0.01)": jinit.normal(0.01),
}
ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


def activation_rms(init, activation, depth: int, width: int, key, batch: int = 256) -> np.ndarray:
    """Root-mean-square of the activations after each of `depth` layers, for N(0, 1) inputs."""
    x = jax.random.normal(jinit.key_for_path(key, "x"), (batch, width))
    rms = []
    for i in range(depth):
        w = init(jinit.key_for_path(key, f"layer_{i}/kernel"), (width, width))
        x = activation(x @ w)
        rms.append(float(jnp.sqrt(jnp.mean(x**2))))
    return np.array(rms)


def run(depth: int, width: int) -> dict[str, dict[str, np.ndarray]]:
    key = jax.random.key(0)
    results: dict[str, dict[str, np.ndarray]] = {}
    for act_name, act in ACTIVATIONS.items():
        gain = jinit.calculate_gain(act_name)
        results[act_name] = {}
        for name, init in SCHEMES.items():
            init = jinit.orthogonal(gain) if init is None else init
            results[act_name][name] = activation_rms(init, act, depth, width, key)
    return results


def plot(results, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), sharey=True)
    for ax, (act_name, curves) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for name, rms in curves.items():
            ax.semilogy(np.arange(1, len(rms) + 1), np.maximum(rms, 1e-30), label=name)
        ax.set_title(f"{act_name} MLP, no normalisation")
        ax.set_xlabel("layer")
        ax.grid(True, which="both", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("activation RMS")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--out", default="signal_propagation.png")
    args = parser.parse_args()
    results = run(args.depth, args.width)
    for act_name, curves in results.items():
        print(f"{act_name}: activation RMS after layers 1 / {args.depth // 2} / {args.depth}")
        for name, rms in curves.items():
            print(f"  {name:22} {rms[0]:.3g} / {rms[args.depth // 2 - 1]:.3g} / {rms[-1]:.3g}")
    plot(results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

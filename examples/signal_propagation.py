"""Which scheme should I use? The one that keeps the signal's scale through depth, both ways.

A 50-layer MLP of width 256 (no normalisation, no residuals, zero biases) is fed N(0, 1) inputs;
for every layer we measure the standard deviation of the activations (forward pass) and of the
back-propagated gradient dL/dz with respect to the layer's pre-activations (backward pass, for a
random N(0, 1) output cotangent). This reproduces the pictures of Glorot & Bengio (2010, figs.
6-7: with the "standard" U(+-1/sqrt(n)) init, tanh activations shrink with depth) and He et al.
(2015, sec. 2.2: with ReLU, variance 2/fan_in keeps the scale while 1/fan_in halves the second
moment at every layer).

Measured with the defaults (std after 50 layers, ReLU / tanh). Activations: He 0.38 / 0.56,
orthogonal with the activation's gain (sqrt 2, 5/3) 0.73 / 0.65, LeCun 3e-8 / 0.10 and Glorot
2.5e-8 / 0.10 (the same variance for square layers), torch's U(+-1/sqrt(n)) 6e-20 / 8e-13,
N(0, 1)*0.01 4e-48 / 1e-40. Gradients at layer 1 (0.7-1 at layer 50): He 0.42 / 6.4, orthogonal
0.62 / 54, LeCun 2e-8 / 0.12, N(0, 1)*0.01 4e-47 / 9e-40. The kernels are drawn in float32 and
the network is run in float64, so the vanishing curves are real numbers, not float32 underflow
(4e-48 is below float32's smallest subnormal, 1.4e-45).

    python examples/signal_propagation.py [--depth 50] [--width 256] [--out signal_propagation.png]
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import jinit


def schemes(activation: str) -> dict[str, jinit.Initializer]:
    """The kernel initializers compared, by label (orthogonal takes the activation's gain)."""
    gain = jinit.calculate_gain(activation)
    return {
        "N(0,1)*0.01": jinit.normal(0.01),
        "U(±1/√n) (G&B 'standard', torch)": jinit.torch.linear_default(),
        "Glorot (uniform)": jinit.glorot_uniform(),
        "LeCun (normal)": jinit.lecun_normal(),
        "He (normal)": jinit.he_normal(),
        f"orthogonal (gain {gain:.3g})": jinit.orthogonal(gain),
    }


ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}
# One style per scheme, so curves that coincide (Glorot = LeCun for square layers, He ~ orthogonal
# for ReLU) stay visible: different dashes and markers at staggered positions.
STYLES = [("C0", "-", "o"), ("C1", "--", "v"), ("C2", "-", "s"), ("C3", ":", "D"),
          ("C4", "-", "^"), ("C5", "-.", "x")]  # fmt: skip


def draw_kernels(inits: dict[str, jinit.Initializer], depth: int, width: int, key):
    """Float32 kernels for every (label: initializer), stacked (depth, width, width) per label.

    One ``jinit.init_tree`` call, one compiled program, for all of them; layer ``i`` of ``label``
    is drawn under the path key ``<label>/layer_<i>/kernel``.
    """
    sds = jax.ShapeDtypeStruct((width, width), jnp.float32)
    names = {f"s{k}": label for k, label in enumerate(inits)}  # regex-safe path names
    abstract = {n: {f"layer_{i}": {"kernel": sds} for i in range(depth)} for n in names}
    rules = [(f"^{n}/", inits[label]) for n, label in names.items()]
    tree = jinit.init_tree(key, abstract, rules)
    return {
        label: jnp.stack([tree[n][f"layer_{i}"]["kernel"] for i in range(depth)])
        for n, label in names.items()
    }


def propagate(init, activation, depth: int, width: int, key, dtype=None, batch: int = 256):
    """Per-layer std of the activations and of the back-propagated gradient dL/dz.

    The float32 kernels come from ``jinit.init_tree`` (see :func:`draw_kernels`); the network
    runs in `dtype` (float64 keeps vanishing signals from underflowing). The loss is
    ``sum(h_depth * g)`` for a fixed N(0, 1) cotangent ``g``. Returns two arrays of length
    `depth`: activation std after each layer, gradient std at each layer's pre-activation.
    """
    kernels = draw_kernels({"w": init}, depth, width, key)["w"]
    return stds(kernels, activation, key, dtype, batch)


def stds(kernels, activation, key, dtype=None, batch: int = 256):
    """:func:`propagate` for given (depth, width, width) kernels."""
    dtype = jnp.dtype(dtype or jnp.float32)
    width = kernels.shape[-1]
    x = jax.random.normal(jinit.key_for_path(key, "inputs"), (batch, width), dtype)
    g = jax.random.normal(jinit.key_for_path(key, "cotangent"), (batch, width), dtype)
    return _stds(kernels.astype(dtype), x, g, activation)


@functools.partial(jax.jit, static_argnums=3)
def _stds(kernels, x, g, activation):
    def forward(shifts):  # shifts: zeros added to the pre-activations, to read dL/dz off
        def layer(h, wz):
            w, shift = wz
            h = activation(h @ w + shift)
            return h, h

        return jax.lax.scan(layer, x, (kernels, shifts))[1]

    hs, pullback = jax.vjp(forward, jnp.zeros((kernels.shape[0], *x.shape), x.dtype))
    (grads,) = pullback(jnp.zeros_like(hs).at[-1].set(g))
    return hs.std(axis=(1, 2)), grads.std(axis=(1, 2))


def activation_rms(init, activation, depth: int, width: int, key, batch: int = 256) -> np.ndarray:
    """Root-mean-square of the activations after each of `depth` layers, for N(0, 1) inputs."""
    x = jax.random.normal(jinit.key_for_path(key, "x"), (batch, width))
    rms = []
    for i in range(depth):
        w = init(jinit.key_for_path(key, f"layer_{i}/kernel"), (width, width))
        x = activation(x @ w)
        rms.append(float(jnp.sqrt(jnp.mean(x**2))))
    return np.array(rms)


def run(depth: int, width: int, seed: int = 0) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``results[activation][scheme] = {"activation": std per layer, "gradient": std per layer}``,
    propagated in float64 (so nothing underflows)."""
    key = jax.random.key(seed)
    inits = {(a, name): init for a in ACTIVATIONS for name, init in schemes(a).items()}
    kernels = draw_kernels({f"{a}/{name}": i for (a, name), i in inits.items()}, depth, width, key)
    results: dict[str, dict[str, dict[str, np.ndarray]]] = {a: {} for a in ACTIVATIONS}
    with jax.enable_x64(True):
        for a, name in inits:
            act, grad = stds(kernels[f"{a}/{name}"], ACTIVATIONS[a], key, jnp.float64)
            results[a][name] = {"activation": np.asarray(act), "gradient": np.asarray(grad)}
    return results


def summary(results) -> str:
    lines = []
    for act_name, curves in results.items():
        depth = len(next(iter(curves.values()))["activation"])
        mid = depth // 2
        lines.append(f"{act_name}: std after layers 1 / {mid} / {depth}")
        for name, c in curves.items():
            a, g = c["activation"], c["gradient"]
            lines.append(
                f"  {name:34} activation {a[0]:.2g} / {a[mid - 1]:.2g} / {a[-1]:.2g}   "
                f"gradient {g[0]:.2g} / {g[mid - 1]:.2g} / {g[-1]:.2g}"
            )
    return "\n".join(lines)


def plot(results, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acts = list(results)
    fig, axes = plt.subplots(2, len(acts), figsize=(7 * len(acts), 9), squeeze=False)
    for col, act_name in enumerate(acts):
        for row, (quantity, label) in enumerate(
            [("activation", "std of activations"), ("gradient", "std of gradient dL/dz")]
        ):
            ax = axes[row, col]
            for k, (name, c) in enumerate(results[act_name].items()):
                y = np.asarray(c[quantity], dtype=float)
                y = np.where(np.isfinite(y) & (y > 0), y, np.nan)  # never draw a fake floor
                layers = np.arange(1, len(y) + 1)
                color, ls, marker = STYLES[k % len(STYLES)]
                every = (k % 5, 5) if len(y) > 10 else None
                ax.semilogy(
                    layers,
                    y,
                    color=color,
                    ls=ls,
                    marker=marker,
                    markevery=every,
                    ms=5,
                    lw=1.6,
                    label=name,
                    mfc="none" if k % 2 else color,
                )
            ax.set_title(f"{act_name} MLP: {label}")
            ax.set_xlabel("layer")
            ax.set_ylabel(label)
            ax.grid(True, which="major", alpha=0.3)
        axes[0, col].legend(fontsize=8)
    depth = len(next(iter(results[acts[0]].values()))["activation"])
    fig.suptitle(
        f"Signal propagation through {depth} layers, N(0, 1) inputs "
        "(float64; no normalisation, no residuals, zero biases)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".png")))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = run(args.depth, args.width)
    print(summary(results))
    plot(results, args.out)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return results


if __name__ == "__main__":
    main()

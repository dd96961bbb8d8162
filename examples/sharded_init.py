"""Initialise a large parameter tree sharded over devices: each device makes only its own shard.

A GPT-2-small-shaped tree (124M float32 parameters, 0.5 GB; the vocabulary padded to 50304 as in
nanoGPT, so that it divides the mesh) is initialised with
``jinit.init_tree(..., shardings=specs, mesh=mesh)`` over 8 simulated CPU devices
(``--xla_force_host_platform_device_count``) in a 2x4 ``("data", "model")`` mesh: matrices are
split over both axes, vectors over ``"model"``. The summary prints, per device, the bytes it
holds (from the arrays' addressable shards) next to the whole tree's size, the compiled
program's per-device output and temporary bytes (XLA's memory analysis), and checks that one
block, initialised alone and unsharded, has the same bits as its shards: keys come from paths, so
neither the mesh nor the rest of the tree changes a parameter's values.

    python examples/sharded_init.py [--layers 12] [--d-model 768] [--mesh 2x4] [--out ...png]
"""

from __future__ import annotations

import os
import sys

if "jax" not in sys.modules:  # simulated devices must be requested before jax starts
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import argparse
import pathlib
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

import jinit

SDS = jax.ShapeDtypeStruct


def gpt2_tree(layers: int, d: int, vocab: int = 50304, context: int = 1024) -> dict:
    """The parameter shapes of a GPT-2 (Flax layout), as ShapeDtypeStructs."""
    f32 = jnp.float32

    def dense(n_in, n_out):
        return {"kernel": SDS((n_in, n_out), f32), "bias": SDS((n_out,), f32)}

    def norm():
        return {"scale": SDS((d,), f32), "bias": SDS((d,), f32)}

    block = {
        "ln_1": norm(),
        "attn": {"c_attn": dense(d, 3 * d), "c_proj": dense(d, d)},
        "ln_2": norm(),
        "mlp": {"c_fc": dense(d, 4 * d), "c_proj": dense(4 * d, d)},
    }
    return {
        "wte": {"embedding": SDS((vocab, d), f32)},
        "wpe": {"embedding": SDS((context, d), f32)},
        **{f"h_{i}": block for i in range(layers)},
        "ln_f": norm(),
    }


def rules(layers: int):
    """GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 layers)."""
    return [
        (r"c_proj/kernel$", jinit.normal(0.02 / (2 * layers) ** 0.5)),
        (r"(kernel|embedding)$", jinit.normal(0.02)),
        (r"ln_.*/scale$", jinit.ones),
        (r"bias$", jinit.zeros),
    ]


def specs(tree: dict, mesh) -> dict:
    """Matrices over ("data", "model") where the dims divide, vectors over "model", else
    replicated."""
    sizes = dict(zip(mesh.axis_names, mesh.devices.shape, strict=True))

    def spec(leaf):
        axes = ("data", "model") if len(leaf.shape) == 2 else ("model",)
        return P(*(a if n % sizes[a] == 0 else None for a, n in zip(axes, leaf.shape, strict=True)))

    return jax.tree.map(spec, tree)


def per_device_bytes(params) -> dict:
    """Bytes each device holds, from every array's addressable shards."""
    held: dict = {}
    for x in jax.tree.leaves(params):
        for shard in x.addressable_shards:
            held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
    return held


def run(layers: int, d: int, mesh_shape: tuple[int, int], vocab: int = 50304, seed: int = 0):
    devices = jax.devices()
    n = mesh_shape[0] * mesh_shape[1]
    if len(devices) < n:
        raise ValueError(
            f"`--mesh {mesh_shape[0]}x{mesh_shape[1]}` needs {n} devices; jax sees "
            f"{len(devices)} (set XLA_FLAGS=--xla_force_host_platform_device_count={n} "
            "before jax starts)."
        )
    mesh = jax.make_mesh(mesh_shape, ("data", "model"), devices=devices[:n])
    tree = gpt2_tree(layers, d, vocab)
    shardings = specs(tree, mesh)
    key = jax.random.key(seed)
    build = jax.jit(lambda k: jinit.init_tree(k, tree, rules(layers), shardings=shardings,
                                              mesh=mesh))  # fmt: skip
    start = time.perf_counter()
    compiled = build.lower(key).compile()
    params = jax.block_until_ready(compiled(key))
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    # One block alone, unsharded, on the default device: the same path, so the same values.
    alone = jinit.init_tree(key, {"h_0": tree["h_0"]}, rules(layers))
    same = all(
        bool((np.asarray(a) == np.asarray(b)).all())
        for a, b in zip(jax.tree.leaves(alone["h_0"]), jax.tree.leaves(params["h_0"]), strict=True)
    )
    total = sum(x.nbytes for x in jax.tree.leaves(params))
    return {
        "mesh": mesh_shape,
        "mesh_obj": mesh,
        "n_params": sum(x.size for x in jax.tree.leaves(params)),
        "total_bytes": total,
        "per_device": per_device_bytes(params),
        "output_bytes": getattr(memory, "output_size_in_bytes", None),
        "temp_bytes": getattr(memory, "temp_size_in_bytes", None),
        "seconds": seconds,
        "same_as_unsharded": same,
        "params": params,
    }


def summary(r: dict) -> str:
    mb = 2**20
    held = r["per_device"]
    lines = [
        f"{r['n_params'] / 1e6:.1f}M parameters, {r['total_bytes'] / mb:.1f} MiB in all, over a "
        f"{r['mesh'][0]}x{r['mesh'][1]} mesh; compile + run {r['seconds']:.1f} s",
    ]
    for device, b in sorted(held.items(), key=lambda kv: kv[0].id):
        lines.append(f"  device {device.id}: {b / mb:8.2f} MiB ({100 * b / r['total_bytes']:.1f}%)")
    if r["output_bytes"] is not None:
        lines.append(
            f"compiled program per device: output {r['output_bytes'] / mb:.2f} MiB, temporaries "
            f"{r['temp_bytes'] / mb:.2f} MiB"
        )
    lines.append(f"block h_0 initialised alone, unsharded: same bits: {r['same_as_unsharded']}")
    return "\n".join(lines)


def plot(r: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mb = 2**20
    devices = sorted(r["per_device"], key=lambda d: d.id)
    kinds = {"embeddings": r"embedding$", "attention": r"attn/", "mlp": r"mlp/",
             "norms": r"ln_"}  # fmt: skip

    per_kind = {k: np.zeros(len(devices)) for k in kinds}
    index = {d: i for i, d in enumerate(devices)}
    for keypath, x in jax.tree_util.tree_flatten_with_path(r["params"])[0]:
        name = jinit.path_str(keypath)
        kind = next(k for k, pattern in kinds.items() if re.search(pattern, name))
        for shard in x.addressable_shards:
            per_kind[kind][index[shard.device]] += shard.data.nbytes / mb
    fig, ax = plt.subplots(figsize=(9, 4.8))
    bottom = np.zeros(len(devices))
    for k, values in per_kind.items():
        ax.bar([str(d.id) for d in devices], values, bottom=bottom, label=k)
        bottom += values
    ax.axhline(
        r["total_bytes"] / mb,
        color="k",
        ls="--",
        label=f"whole tree, if replicated: {r['total_bytes'] / mb:.0f} MiB",
    )
    ax.set_xlabel("device")
    ax.set_ylabel("MiB held")
    ax.set_title(
        f"{r['n_params'] / 1e6:.0f}M-parameter GPT-2 tree, jinit.init_tree over a "
        f"{r['mesh'][0]}x{r['mesh'][1]} mesh: bytes per device"
    )
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--d-model", type=int, default=768)
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--mesh", default="2x4", help="data x model, e.g. 2x4")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".png")))
    args = parser.parse_args(argv)
    try:
        shape = tuple(int(v) for v in args.mesh.split("x"))
        assert len(shape) == 2 and min(shape) > 0
    except (ValueError, AssertionError):
        parser.error(f"--mesh must look like 2x4; got {args.mesh!r}")
    result = run(args.layers, args.d_model, shape, args.vocab)  # type: ignore[arg-type]
    print(summary(result))
    plot(result, args.out)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()

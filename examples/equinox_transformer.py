"""A small equinox transformer initialised by rules, sharded over 8 devices, trained a few steps.

The model is written as equinox users write it: ``eqx.nn`` layers, its blocks built by
``eqx.filter_vmap`` (one stack of weights with a leading layer axis, run by ``jax.lax.scan``).
``eqx.filter_eval_shape`` shapes it without making a weight; ``jinit.equinox.init_eqx`` then
fills it from path rules (GPT-2's N(0, 0.02) for the embedding, He/LeCun for the projections in
equinox's ``(out, in)`` layout, a zero head, ones and zeros for the norms), each device making
only its shard of a 2x4 ``("data", "model")`` mesh of simulated CPU devices. The blocks' rules
are :func:`jinit.stacked`, so every layer has the values of its unrolled twin. A few Adam steps
on a toy next-token task (a repeating sequence) show the loss falling; the summary prints
:func:`jinit.explain`'s table and checks that the sharded model has the unsharded one's bits.

    python examples/equinox_transformer.py [--layers 2] [--d-model 64] [--steps 30]
"""

# (No `from __future__ import annotations`: equinox turns the classes below into dataclasses,
# which read string annotations from `sys.modules`, where a module loaded from its file is not.)
import os
import sys

if "jax" not in sys.modules:  # simulated devices must be requested before jax starts
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

import jinit
import jinit.equinox


class Block(eqx.Module):
    norm1: eqx.nn.LayerNorm
    attn: eqx.nn.MultiheadAttention
    norm2: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP

    def __init__(self, d: int, heads: int, key: jax.Array):
        k1, k2 = jax.random.split(key)
        self.norm1, self.norm2 = eqx.nn.LayerNorm(d), eqx.nn.LayerNorm(d)
        self.attn = eqx.nn.MultiheadAttention(heads, d, key=k1)
        self.mlp = eqx.nn.MLP(d, d, 4 * d, 1, activation=jax.nn.gelu, key=k2)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        h = jax.vmap(self.norm1)(x)
        x = x + self.attn(h, h, h, mask=mask)
        return x + jax.vmap(self.mlp)(jax.vmap(self.norm2)(x))


class Transformer(eqx.Module):
    embed: eqx.nn.Embedding
    blocks: Block  # every array has a leading layer axis
    norm: eqx.nn.LayerNorm
    head: eqx.nn.Linear

    def __init__(self, vocab: int, d: int, heads: int, layers: int, key: jax.Array):
        k1, k2, k3 = jax.random.split(key, 3)
        self.embed = eqx.nn.Embedding(vocab, d, key=k1)
        make = lambda k: Block(d, heads, k)
        self.blocks = eqx.filter_vmap(make)(jax.random.split(k2, layers))
        self.norm = eqx.nn.LayerNorm(d)
        self.head = eqx.nn.Linear(d, vocab, use_bias=False, key=k3)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = jax.vmap(self.embed)(tokens)
        mask = jnp.tril(jnp.ones((tokens.shape[0],) * 2, bool))
        dynamic, static = eqx.partition(self.blocks, eqx.is_array)

        def step(x, params):
            return eqx.combine(params, static)(x, mask), None

        x, _ = jax.lax.scan(step, x, dynamic)
        return jax.vmap(self.head)(jax.vmap(self.norm)(x))


def layer(init: jinit.Initializer) -> jinit.Initializer:
    """A rule for the stacked blocks: layer i drawn as ``blocks/i/...`` of the unrolled model."""
    return jinit.stacked(init, unroll="blocks")


RULES = [
    (r"^embed/weight$", jinit.normal(0.02)),
    (r"^head/weight$", jinit.zeros),
    (r"norm\d?/weight$", jinit.ones),
    (r"norm\d?/bias$", jinit.zeros),
    (r"attn/(query|key|value)_proj/weight$", layer(jinit.lecun_normal())),
    (r"attn/output_proj/weight$", layer(jinit.normal(0.02))),
    (r"mlp/layers/0/weight$", layer(jinit.he_normal())),
    (r"mlp/layers/1/weight$", layer(jinit.normal(0.02))),
    (r"bias$", jinit.zeros),
]
# Megatron's split: column-parallel in, row-parallel out; equinox's weights are (out, in), and
# the blocks' have a leading layer axis.
SHARDINGS = [
    (r"^embed/weight$", P(None, "model")),
    (r"(query|key|value)_proj/weight$", P(None, "model", None)),
    (r"output_proj/weight$", P(None, None, "model")),
    (r"mlp/layers/0/weight$", P(None, "model", None)),
    (r"mlp/layers/0/bias$", P(None, "model")),
    (r"mlp/layers/1/weight$", P(None, None, "model")),
]


def batches(vocab: int, context: int, batch: int, seed: int):
    """Windows of a repeating random sequence of period 7: the next token is predictable."""
    rng = np.random.default_rng(seed)
    period = rng.integers(0, vocab, 7)
    while True:
        starts = rng.integers(0, 7, batch)
        idx = (starts[:, None] + np.arange(context + 1)[None]) % 7
        seq = period[idx]
        yield jnp.asarray(seq[:, :-1]), jnp.asarray(seq[:, 1:])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=128)
    p.add_argument("--context", type=int, default=16)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)

    key = jax.random.key(0)
    shape = (args.vocab, args.d_model, args.heads, args.layers)
    abstract = eqx.filter_eval_shape(Transformer, *shape, key)  # no weights are made
    # Auto axes: XLA places the training step's intermediates (jit's sharding propagation).
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    model = jinit.equinox.init_eqx(abstract, key, RULES, mesh=mesh, shardings=SHARDINGS)
    table = str(jinit.explain(abstract, RULES, mesh=mesh, shardings=SHARDINGS))
    print(table)

    unsharded = jinit.equinox.init_eqx(abstract, key, RULES)
    same = all(
        bool((np.asarray(a) == np.asarray(b)).all())
        for a, b in zip(
            jax.tree.leaves(eqx.filter(model, eqx.is_array)),
            jax.tree.leaves(eqx.filter(unsharded, eqx.is_array)),
            strict=True,
        )
    )
    qkv = model.blocks.attn.query_proj.weight
    print(
        f"\nquery_proj weights {qkv.shape} sharded as {qkv.sharding.spec}: each of the "
        f"{len(qkv.addressable_shards)} devices holds {qkv.addressable_shards[0].data.shape}; "
        f"same bits as the unsharded build: {same}"
    )

    sharded = model
    optimizer = optax.adam(3e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def train_step(model, opt_state, x, y):
        def loss_fn(model):
            logits = jax.vmap(model)(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    losses = []
    data = batches(args.vocab, args.context, 8, seed=1)
    for step in range(args.steps):
        x, y = next(data)
        model, opt_state, loss = train_step(model, opt_state, x, y)
        losses.append(float(loss))
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step:3d}  loss {losses[-1]:.3f}")
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f} (ln {args.vocab} = {np.log(args.vocab):.3f})")
    return {
        "table": table,
        "losses": losses,
        "same_as_unsharded": same,
        "model": model,
        "sharded": sharded,
        "initial": unsharded,
        "mesh": mesh,
    }


if __name__ == "__main__":
    main()

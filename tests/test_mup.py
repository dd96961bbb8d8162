"""jinit.mup: muP's per-parameter learning rates, against the `mup` package itself."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jinit
from jinit import mup

torch = pytest.importorskip("torch")
torch_mup = pytest.importorskip("mup")

D_IN, D_OUT, BASE = 16, 10, 64
SDS = jax.ShapeDtypeStruct


class TorchMLP(torch.nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.inp = torch.nn.Linear(D_IN, width)
        self.hidden = torch.nn.Linear(width, width)
        self.head = torch_mup.MuReadout(width, D_OUT)

    def forward(self, x):
        return self.head(torch.relu(self.hidden(torch.relu(self.inp(x)))))


def torch_model(width: int) -> TorchMLP:
    torch.manual_seed(0)
    model = TorchMLP(width)
    torch_mup.set_base_shapes(model, TorchMLP(BASE))
    return model


def shapes(width: int) -> dict:
    """The Flax-layout twin of TorchMLP: kernels are (in, out)."""
    return {
        "inp": {"kernel": SDS((D_IN, width), jnp.float32), "bias": SDS((width,), jnp.float32)},
        "hidden": {"kernel": SDS((width, width), jnp.float32), "bias": SDS((width,), jnp.float32)},
        "head": {"kernel": SDS((width, D_OUT), jnp.float32), "bias": SDS((D_OUT,), jnp.float32)},
    }


def torch_lrs(model: TorchMLP, opt: type) -> dict[str, float]:
    """Each parameter's learning rate in mup's optimizer (lr=1), by Flax path."""
    optimizer = opt(model.parameters(), lr=1.0)
    lr = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    names = {"weight": "kernel", "bias": "bias"}
    return {
        f"{layer}/{names[kind]}": lr[id(p)]
        for full, p in model.named_parameters()
        for layer, kind in [full.split(".")]
    }


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("width", [128, 512])
def test_factors_are_mups_except_the_plain_dense_readout(optimizer, width):
    opt = torch_mup.MuAdam if optimizer == "adam" else torch_mup.MuSGD
    expected = torch_lrs(torch_model(width), opt)
    got = mup.lr_factors(shapes(BASE), shapes(width), optimizer)
    flat = {f"{layer}/{k}": v for layer, d in got.items() for k, v in d.items()}
    assert {k: v for k, v in flat.items() if k != "head/kernel"} == pytest.approx(
        {k: v for k, v in expected.items() if k != "head/kernel"}
    )
    # MuReadout's weight is vector-like in mup (its 1/width sits in the forward pass);
    # written as a plain Dense initialised with jinit.mup.readout, it trains at lr / width_mult.
    assert expected["head/kernel"] == pytest.approx(1.0 if optimizer == "adam" else width / BASE)
    readout = mup.lr_factors(shapes(BASE), shapes(width), optimizer, readout="head/kernel")
    assert readout["head"]["kernel"] == pytest.approx(BASE / width)


def to_jax(model: TorchMLP) -> dict:
    """TorchMLP's weights as the plain-Dense Flax model: kernels transposed, the readout's
    divided by the width multiplier (MuReadout divides its input by it)."""
    w = model.head.width_mult()
    # A copy: on the CPU jax may use a NumPy array's memory as its own (zero-copy), and torch's
    # optimizers then update the jax arrays too, in place.
    t = lambda p: jnp.asarray(p.detach().numpy().astype(np.float32))
    return {
        "inp": {"kernel": t(model.inp.weight).T, "bias": t(model.inp.bias)},
        "hidden": {"kernel": t(model.hidden.weight).T, "bias": t(model.hidden.bias)},
        "head": {"kernel": t(model.head.weight).T / w, "bias": t(model.head.bias)},
    }


def forward(params: dict, x: jax.Array) -> jax.Array:
    h = jax.nn.relu(x @ params["inp"]["kernel"] + params["inp"]["bias"][None])
    h = jax.nn.relu(h @ params["hidden"]["kernel"] + params["hidden"]["bias"][None])
    return h @ params["head"]["kernel"] + params["head"]["bias"][None]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_trains_exactly_like_mup_with_mureadout(optimizer):
    """Three steps of mup.MuAdam / MuSGD on the torch model and of jinit.mup.adam / sgd on its
    plain-Dense twin give the same function (float32 rounding apart).

    The jax weights are copies (:func:`to_jax`): a CI run once failed the SGD case at 8e-3 because
    jax had taken the readout bias's NumPy memory zero-copy, so MuSGD's in-place steps moved the
    jax start too (starting jax from the torch-trained head bias gives that 8e-3 to the last
    digit). The reference trains in float64 and jax's matmuls run at full float32 precision.
    """
    width, lr, steps = 256, (1e-2 if optimizer == "adam" else 0.05), 3
    model = torch_model(width)
    params = to_jax(model)
    model = model.double()  # in place: the parameters keep mup's infshapes
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, D_IN)).astype(np.float32), rng.normal(size=(32, D_OUT))
    y = y.astype(np.float32)
    tx_, ty_ = torch.from_numpy(x).double(), torch.from_numpy(y).double()

    opt = (torch_mup.MuAdam if optimizer == "adam" else torch_mup.MuSGD)(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.mean((model(tx_) - ty_) ** 2).backward()
        opt.step()
    want = model(tx_).detach().numpy()
    # torch trained in place; the jax start is still the untrained model's weights.
    jax.tree.map(np.testing.assert_array_equal, params, to_jax(torch_model(width)))

    make = mup.adam if optimizer == "adam" else mup.sgd
    loss = lambda p: jnp.mean((forward(p, x) - y) ** 2)

    def train(tx, p):
        state = tx.init(p)
        for _ in range(steps):
            updates, state = tx.update(jax.grad(loss)(p), state, p)
            p = optax.apply_updates(p, updates)
        return np.asarray(forward(p, x), np.float64)

    with jax.default_matmul_precision("highest"):
        err = np.abs(
            train(make(lr, shapes(BASE), shapes(width), readout="head/kernel"), params) - want
        ).max()
        # ... and the match is not a tautology: without the readout rule the functions differ
        # far more.
        off = np.abs(train(make(lr, shapes(BASE), shapes(width)), params) - want).max()
    # Adam divides by sqrt(v): float32 gradients that differ in the last bit from float64 ones
    # move a few near-zero coordinates by ~1e-4 (the outputs are O(0.3)).
    assert err < (3e-4 if optimizer == "adam" else 1e-5), err
    assert off > 30 * max(err, 1e-6), (off, err)


def test_coord_check_is_flat_under_mup_and_grows_under_sp():
    """The muP paper's coordinate check (Figure 5) at widths 64-1024 with Adam: under muP
    (jinit.mup.hidden / readout init, jinit.mup.adam) every layer's activation change is
    width-independent (measured: widest/narrowest 0.75-0.96 over 16x the width); under the
    standard parametrization (LeCun init, plain Adam) the hidden and output changes grow with
    the width (3.7-3.9x)."""
    widths = (64, 256, 1024)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(64, D_IN)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(64, D_OUT)), jnp.float32)

    def init(width, key, parametrization):
        tree = shapes(width)
        standard = jinit.variance_scaling(1.0, "fan_in", "normal")  # LeCun, untruncated
        mu = parametrization == "mup"
        readout = jinit.mup.readout(width / BASE) if mu else standard
        hidden = jinit.mup.hidden() if mu else standard
        rules = [("head/kernel", readout), ("kernel", hidden), ("bias", jinit.zeros)]
        return jinit.init_tree(key, tree, rules)

    def activations(params, x):
        h1 = jax.nn.relu(x @ params["inp"]["kernel"] + params["inp"]["bias"][None])
        h2 = jax.nn.relu(h1 @ params["hidden"]["kernel"] + params["hidden"]["bias"][None])
        return {"inp": h1, "hidden": h2, "head": h2 @ params["head"]["kernel"]}

    def loss(params, x, y):
        return jnp.mean((activations(params, x)["head"] - y) ** 2)

    def run(parametrization, optimizer):
        check = mup.coord_check(
            lambda w, k: init(w, k, parametrization),
            activations,
            loss,
            optimizer,
            widths,
            (x, y),
            steps=3,
            seeds=2,
        )
        return {name: a[-1, -1] / a[0, -1] for name, a in check.items()}, check

    mu, check = run("mup", lambda w: mup.adam(3e-3, shapes(BASE), shapes(w), readout="head"))
    assert all(0.6 < r < 1.5 for r in mu.values()), mup.render(check, widths)
    sp, check = run("sp", lambda w: optax.adam(3e-3))
    assert sp["hidden"] > 2.5 and sp["head"] > 2.5, mup.render(check, widths)


def test_width_mults_and_errors():
    m = mup.width_mults(
        {"conv": SDS((3, 3, 32, 64), jnp.float32), "emb": SDS((1000, 64), jnp.float32)},
        {"conv": SDS((3, 3, 128, 256), jnp.float32), "emb": SDS((1000, 256), jnp.float32)},
    )
    assert (m["conv"].ninf, m["conv"].fan_in, m["conv"].fan_out) == (2, 4.0, 4.0)
    assert (m["emb"].ninf, m["emb"].width) == (1, 4.0)
    with pytest.raises(ValueError, match="same tree structure"):
        mup.width_mults({"a": SDS((2,), jnp.float32)}, {"b": SDS((2,), jnp.float32)})
    with pytest.raises(ValueError, match="another rank"):
        mup.width_mults({"a": SDS((2,), jnp.float32)}, {"a": SDS((2, 2), jnp.float32)})
    with pytest.raises(ValueError, match="3 width axes"):
        mup.width_mults({"a": SDS((2, 2, 2), jnp.float32)}, {"a": SDS((4, 4, 4), jnp.float32)})
    with pytest.raises(ValueError, match="not its fan-in and fan-out axes"):
        mup.width_mults({"a": SDS((2, 2, 3), jnp.float32)}, {"a": SDS((4, 4, 3), jnp.float32)})
    with pytest.raises(ValueError, match="matches no parameter"):
        mup.scale_by_mup(shapes(BASE), shapes(128), "adam", readout="lm_head")
    with pytest.raises(ValueError, match="'adam' or 'sgd'"):
        mup.scale_by_mup(shapes(BASE), shapes(128), "rmsprop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must have a `\.shape`"):
        mup.width_mults({"a": 3.0}, {"a": 3.0})

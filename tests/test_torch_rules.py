"""jinit.torch.defaults() gives a Flax model PyTorch's default init, layer by
layer, tested against torch's own modules by distribution (two-sample KS)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from scipy import stats

import jinit
import jinit.flax

SEEDS = range(6)


class Ported(nn.Module):
    @nn.compact
    def __call__(self, tokens, image):
        h = nn.LayerNorm()(nn.Dense(48, name="fc")(nn.Embed(100, 32, name="embed")(tokens)))
        c = nn.Conv(24, (3, 5), name="conv")(image)
        g = nn.Conv(24, (3, 5), feature_group_count=2, name="gconv")(image)
        return nn.BatchNorm(use_running_average=True)(c + g), h


def _torch_layers(seed):
    torch.manual_seed(seed)
    fc, conv = torch.nn.Linear(32, 48), torch.nn.Conv2d(6, 24, (3, 5))
    gconv, embed = torch.nn.Conv2d(6, 24, (3, 5), groups=2), torch.nn.Embedding(100, 32)
    ln, bn = torch.nn.LayerNorm(48), torch.nn.BatchNorm2d(24)
    out = {"fc": fc, "conv": conv, "gconv": gconv}
    flat = {f"params/{n}/kernel": m.weight for n, m in out.items()}
    flat |= {f"params/{n}/bias": m.bias for n, m in out.items()}
    flat |= {"params/embed/embedding": embed.weight, "params/LayerNorm_0/scale": ln.weight}
    flat |= {"params/LayerNorm_0/bias": ln.bias, "params/BatchNorm_0/scale": bn.weight}
    flat |= {"params/BatchNorm_0/bias": bn.bias, "batch_stats/BatchNorm_0/mean": bn.running_mean}
    flat |= {"batch_stats/BatchNorm_0/var": bn.running_var}
    return {k: v.detach().numpy().ravel() for k, v in flat.items()}


def _ours(seed):
    x = (jnp.zeros((1, 7), jnp.int32), jnp.ones((1, 8, 8, 6)))
    v = jinit.flax.init_linen(Ported(), seed, jinit.torch.defaults(), *x)
    return {
        jinit.path_str(p): np.asarray(a).ravel() for p, a in jax.tree_util.tree_leaves_with_path(v)
    }


@pytest.fixture(scope="module")
def samples():
    ours = [_ours(s) for s in SEEDS]
    theirs = [_torch_layers(s) for s in SEEDS]
    pool = lambda runs: {k: np.concatenate([r[k] for r in runs]) for k in runs[0]}
    return pool(ours), pool(theirs)


def test_every_layer_matches_torch_in_distribution(samples):
    ours, theirs = samples
    assert sorted(ours) == sorted(theirs)
    for path in ours:
        a, b = ours[path], theirs[path]
        assert a.size == b.size, path
        if np.ptp(b) == 0:  # a constant (norm weights/biases, running statistics)
            np.testing.assert_array_equal(a, b, err_msg=path)
        else:
            p = stats.ks_2samp(a, b).pvalue
            assert p > 1e-3, (path, p)
            assert abs(a).max() <= abs(b).max() * 1.05 + 1e-6 or path.endswith("embedding"), path


def test_the_ks_test_sees_a_wrong_fan_in(samples):
    # The comparison has power: the grouped conv's kernel (fan_in 45) against the ungrouped
    # one's (fan_in 90) is rejected, as is a kernel scaled by sqrt(2).
    ours, theirs = samples
    assert stats.ks_2samp(ours["params/gconv/kernel"], theirs["params/conv/kernel"]).pvalue < 1e-6
    k = "params/conv/kernel"
    assert stats.ks_2samp(ours[k] * 2**0.5, theirs[k]).pvalue < 1e-6


def test_rules_before_the_set_win_and_unknown_parameters_raise(key):
    x = jnp.ones((1, 16))
    model = nn.Sequential([nn.Dense(8), nn.Dense(4)])
    v = jinit.flax.init_linen(
        model, key, [(r"layers_1/kernel$", jinit.zeros), jinit.torch.defaults()], x
    )
    assert not np.asarray(v["params"]["layers_1"]["kernel"]).any()
    bound = 1 / 8**0.5  # layers_1's bias still takes its kernel's fan-in
    b = np.asarray(v["params"]["layers_1"]["bias"])
    assert abs(b).max() <= bound and abs(b).max() > bound / 2
    abstract = nnx.eval_shape(lambda: nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0)))
    with pytest.raises(
        ValueError,
        match=r"`init_nnx`: `jinit.torch.defaults\(\)` has no PyTorch default for the attention",
    ):
        jinit.flax.init_nnx(abstract, key, jinit.torch.defaults())
    tree = {"alpha": jax.ShapeDtypeStruct((3,), jnp.float32)}
    with pytest.raises(
        ValueError, match=r"`init_tree`: .* for the parameter 'alpha' of shape \(3,\)"
    ):
        jinit.init_tree(key, tree, jinit.torch.defaults())

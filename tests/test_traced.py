"""Traced hyperparameters: a scale swept under ``jax.vmap``/``jit`` gives the concrete scale's bits.

``jax.nn.initializers`` takes a traced ``stddev``/``scale``/``value`` in ``normal``,
``uniform``, ``truncated_normal``, ``variance_scaling``, ``constant``, ``orthogonal`` and
``delta_orthogonal`` (its named schemes, glorot/he/lecun, have no hyperparameter to trace); so
does jinit, and every slice of a vmapped sweep is bit-identical to the call with that number.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit import _tree

# float32 values, so each concrete call gets exactly the number its slice traced.
SCALES = jnp.array([0.5, 1.0, 1.7, 3.0], jnp.float32)

FACTORIES = {
    "normal": (jinit.normal, (24, 40)),
    "uniform": (jinit.uniform, (24, 40)),
    "truncated_normal": (jinit.truncated_normal, (24, 40)),
    "constant": (jinit.constant, (24, 40)),
    "orthogonal": (jinit.orthogonal, (24, 40)),
    "delta_orthogonal": (jinit.delta_orthogonal, (3, 3, 8, 16)),
    **{
        f"variance_scaling({mode}, {dist})": (
            lambda s, mode=mode, dist=dist: jinit.variance_scaling(s, mode, dist),
            (3, 3, 8, 16),
        )
        for mode in ("fan_in", "fan_out", "fan_avg")
        for dist in ("truncated_normal", "normal", "uniform")
    },
}


def _bits(x: jax.Array) -> np.ndarray:
    return np.asarray(x.astype(jnp.float32)).view(np.uint32)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("name", list(FACTORIES))
def test_a_vmapped_scale_gives_the_concrete_bits(name, dtype, key):
    make, shape = FACTORIES[name]
    sweep = lambda s: make(s)(key, shape, dtype)
    for got in (jax.vmap(sweep)(SCALES), jax.jit(jax.vmap(sweep))(SCALES)):
        assert (got.shape, got.dtype) == ((len(SCALES), *shape), dtype)
        for i, s in enumerate(SCALES.tolist()):
            np.testing.assert_array_equal(_bits(got[i]), _bits(make(s)(key, shape, dtype)))


def test_a_jitted_scale_gives_the_concrete_bits(key):
    for name, (make, shape) in FACTORIES.items():
        got = jax.jit(lambda s, make=make, shape=shape: make(s)(key, shape))(jnp.float32(1.7))
        np.testing.assert_array_equal(_bits(got), _bits(make(1.7)(key, shape)), err_msg=name)


def test_jax_takes_the_same_traced_hyperparameters(key):
    """The list above is jax's: each of these factories takes a tracer in jax too, and the named
    schemes take no hyperparameter at all, in jax as in jinit."""
    J = jax.nn.initializers
    for name in ("normal", "uniform", "truncated_normal", "constant", "orthogonal"):
        jax.vmap(lambda s, name=name: getattr(J, name)(s)(key, (4, 6)))(SCALES)
    jax.vmap(lambda s: J.variance_scaling(s, "fan_in", "normal")(key, (4, 6)))(SCALES)
    jax.vmap(lambda s: J.delta_orthogonal(s)(key, (3, 4, 6)))(SCALES)
    for name in ("glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal"):
        ours = list(inspect.signature(getattr(jinit, name)).parameters)
        theirs = list(inspect.signature(getattr(J, name)).parameters)
        assert ours[: len(theirs)] == theirs and "scale" not in ours, name


def test_init_tree_sweeps_scales_in_one_compiled_program(key):
    """``init_tree`` under ``jax.vmap`` over 4 scales: one jitted call of the whole sweep, each
    slice the concrete call's bits, and no builder cached around a dead tracer."""
    abstract = {
        "dense": {
            "kernel": jax.ShapeDtypeStruct((64, 32), jnp.float32),
            "bias": jax.ShapeDtypeStruct((32,), jnp.float32),
        },
        "conv": {"kernel": jax.ShapeDtypeStruct((3, 3, 8, 16), jnp.bfloat16)},
        "gate": jax.ShapeDtypeStruct((), jnp.float32),
        "head": jax.ShapeDtypeStruct((32, 10), jnp.float32),
        "embed": jax.ShapeDtypeStruct((32, 10), jnp.bfloat16),
        "logit_scale": jax.ShapeDtypeStruct((10,), jnp.float32),
    }

    def rules(s):
        return [
            ("dense/kernel", jinit.variance_scaling(s, "fan_in", "truncated_normal")),
            ("conv/kernel", jinit.orthogonal(s)),
            ("bias", jinit.normal(s)),
            ("gate", jinit.constant(s)),
            ("head", jinit.scaled(jinit.normal(s), 0.5)),  # a wrapper around a traced scale
            ("embed", jinit.truncated_normal(s)),
            ("logit_scale", jinit.uniform(s)),
        ]

    sweep = jax.jit(jax.vmap(lambda s: jinit.init_tree(key, abstract, rules(s))))
    # Counted in misses, not currsize: other tests may have filled the LRU cache to its bound.
    cached = _tree.compiled_builder.cache_info().misses
    with jax.checking_leaks():
        got = sweep(SCALES)
    assert _tree.compiled_builder.cache_info().misses == cached
    assert sweep._cache_size() == 1
    for i, s in enumerate(SCALES.tolist()):
        want = jinit.init_tree(key, abstract, rules(s))
        for path, w in jax.tree_util.tree_leaves_with_path(want):
            g = got
            for k in path:
                g = g[k.key]
            np.testing.assert_array_equal(_bits(g[i]), _bits(w), err_msg=str(path))
    # Eagerly vmapped too, and a concrete rule set is still cached (rules rebuilt with a scale
    # the loop above used are equal to its rules: the same builder).
    eager = jax.vmap(lambda s: jinit.init_tree(key, abstract, rules(s)))(SCALES)
    np.testing.assert_array_equal(_bits(eager["conv"]["kernel"]), _bits(got["conv"]["kernel"]))
    before = _tree.compiled_builder.cache_info()
    jinit.init_tree(key, abstract, rules(2.5))
    jinit.init_tree(key, abstract, rules(2.5))
    jinit.init_tree(key, abstract, rules(1.0))
    after = _tree.compiled_builder.cache_info()
    assert (after.misses, after.hits) == (before.misses + 1, before.hits + 2)


def test_a_traced_scale_has_no_target(key):
    """``explain`` (and ``describe``'s formula) report the fans but no target mean or std for a
    traced scale: it is not a number until it runs."""
    abstract = {"w": jax.ShapeDtypeStruct((64, 32), jnp.float32)}

    def f(s):
        init = jinit.variance_scaling(s, "fan_in", "normal")
        (row,) = jinit.explain(abstract, [("w", init)])
        from jinit import _describe

        assert _describe.intended(init, (64, 32)) == (64.0, 32.0, None, None)
        for traced in (jinit.normal(s), jinit.constant(s), jinit.orthogonal(s)):
            assert _describe.intended(traced, (64, 32))[2:] == (None, None)
        assert _describe.intended(jinit.scaled(init, 2.0), (64, 32)) == (64.0, 32.0, None, None)
        assert (row.fan_in, row.target_mean, row.target_std) == (64.0, None, None)
        return init(key, (64, 32))

    jax.vmap(f)(SCALES)
    (row,) = jinit.explain(abstract, [("w", jinit.variance_scaling(1.0, "fan_in", "normal"))])
    assert row.target_std == pytest.approx(64**-0.5)


def test_traced_values_are_not_range_checked_but_concrete_ones_are(key):
    """A traced scale is not known when the initializer runs: no overflow check (jax has none);
    the same scale given as a number is refused for a dtype it overflows."""
    big = jnp.float32(1e6)
    w = jax.jit(lambda s: jinit.normal(s)(key, (4,), jnp.float16))(big)
    assert w.dtype == jnp.float16
    with pytest.raises(ValueError, match=r"`normal`: values up to about 6e\+06 overflow float16"):
        jinit.normal(1e6)(key, (4,), jnp.float16)
    # A wrapper around a traced scale knows no bound either; around a number it checks its own.
    w = jax.jit(lambda s: jinit.scaled(jinit.normal(s), 0.5)(key, (4,), jnp.float16))(big)
    assert w.dtype == jnp.float16
    stack = lambda s: jinit.stacked(jinit.variance_scaling(s, "fan_in", "normal"), unroll="l")
    assert jax.jit(lambda s: stack(s)(key, (2, 4, 4), jnp.float16))(big).dtype == w.dtype
    with pytest.raises(ValueError, match=r"`scaled`: values up to about 3e\+06 overflow float16"):
        jinit.scaled(jinit.normal(1e6), 0.5)(key, (4,), jnp.float16)
    for make in (jinit.uniform, jinit.truncated_normal):
        assert jax.jit(lambda s, make=make: make(s)(key, (4,), jnp.float16))(big).dtype == w.dtype
        with pytest.raises(ValueError, match=rf"`{make.__name__}`: values up to about .* float16"):
            make(1e6)(key, (4,), jnp.float16)

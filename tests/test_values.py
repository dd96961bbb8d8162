"""Initializers are values (:class:`jinit.Init`): equal calls give equal (and identical) objects,
reprs read as the call, and rules rebuilt on every call hit every compile cache."""

from __future__ import annotations

import contextlib
import pickle

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit
import jinit.equinox
import jinit.flax

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch


@contextlib.contextmanager
def count_compiles():
    """Counts XLA backend compilations in the block (jax's public monitoring events)."""
    n = [0]

    def listen(event: str, duration: float, **_) -> None:
        if event == _COMPILE_EVENT:
            n[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield n
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def fresh_rules():
    """Rules written inline, as the README writes them: new objects on every call."""
    return [
        (r"kernel$", jinit.lecun_normal()),
        (r"bias$", jinit.zeros),
        (r"scale$", jinit.scaled(jinit.normal(0.02), 0.5)),
        (r"emb", jinit.portable(jinit.truncated_normal(0.02))),
        (r"layers/w", jinit.stacked(jinit.he_uniform(), unroll="layers")),
    ]


ABSTRACT = {
    "dense": {
        "kernel": jax.ShapeDtypeStruct((32, 16), jnp.float32),
        "bias": jax.ShapeDtypeStruct((16,), jnp.float32),
        "scale": jax.ShapeDtypeStruct((16,), jnp.float32),
    },
    "emb": jax.ShapeDtypeStruct((50, 16), jnp.bfloat16),
    "layers": {"w": jax.ShapeDtypeStruct((3, 16, 16), jnp.float32)},
}


def test_equal_calls_give_equal_identical_values():
    assert jinit.lecun_normal() == jinit.lecun_normal()
    assert jinit.lecun_normal() is jinit.lecun_normal()
    assert hash(jinit.normal(0.02)) == hash(jinit.normal(stddev=0.02))
    assert jinit.normal(0.02) == jinit.normal(stddev=0.02, dtype=None)  # defaults bound
    assert jinit.normal(0.02) != jinit.normal(0.03)
    assert jinit.normal() != jinit.uniform()
    # Type-strict: 1 and 1.0 may give different dtypes; 0.0 and -0.0 different values.
    assert jinit.constant(1) != jinit.constant(1.0)
    assert jinit.constant(0.0) != jinit.constant(-0.0)
    assert jinit.constant(np.float32(1.5)) == jinit.constant(np.float32(1.5))
    assert jinit.constant(jnp.array(1.5)) == jinit.constant(jnp.array(1.5))  # by value
    assert jinit.constant(jnp.array(1.5)) != jinit.constant(jnp.array(2.5))
    assert jinit.normal(dtype=jnp.bfloat16) == jinit.normal(dtype="bfloat16")
    # Wrappers compare by what they wrap.
    assert jinit.scaled(jinit.he_normal(), 2.0) == jinit.scaled(jinit.he_normal(), 2.0)
    assert jinit.scaled(jinit.he_normal(), 2.0) != jinit.scaled(jinit.he_uniform(), 2.0)
    assert jinit.portable(jinit.lecun_normal()) == jinit.portable(jinit.lecun_normal())
    assert jinit.stacked(jinit.zeros, "layers") == jinit.stacked(jinit.zeros, unroll="layers")
    assert jinit.stacked(jinit.zeros, "layers") != jinit.stacked(jinit.zeros, "layers", axes=2)
    layout = jinit.equinox.layout
    assert layout(jinit.he_normal()) == layout(jinit.he_normal(), -1, -2)
    assert layout(jinit.he_normal()) != layout(jinit.he_normal(), 1, 0)
    # A named alias is the same factory (as in jax).
    assert jinit.kaiming_normal() == jinit.he_normal()


def test_every_initializer_is_an_init():
    from tests.registry import CASES

    for case in CASES:
        init = case.make()
        if init.__module__.startswith("jax"):  # jax's own, in rows that compare against it
            continue
        assert isinstance(init, jinit.Init), case.name
        assert case.make() == init, case.name  # equal calls, equal values
        hash(init)


def test_repr_reads_as_the_call():
    assert repr(jinit.lecun_normal()) == "jinit.lecun_normal()"
    assert repr(jinit.normal(0.02)) == "jinit.normal(stddev=0.02)"
    assert repr(jinit.zeros) == "jinit.zeros"
    assert repr(jinit.variance_scaling(2.0, "fan_in", "normal")) == (
        "jinit.variance_scaling(2.0, 'fan_in', 'normal')"
    )
    assert repr(jinit.scaled(jinit.ones, 0.5)) == "jinit.scaled(jinit.ones, 0.5)"
    assert repr(jinit.stacked(jinit.he_normal(), "layers")) == (
        "jinit.stacked(jinit.he_normal(), 'layers')"
    )
    assert repr(jinit.equinox.layout(jinit.he_normal(), in_axis=1, out_axis=0)) == (
        "jinit.equinox.layout(jinit.he_normal(), in_axis=1, out_axis=0)"
    )
    assert repr(jinit.keras.variance_scaling()) == "jinit.keras.variance_scaling()"
    assert repr(jinit.torch.kaiming_uniform(a=5**0.5)) == (
        f"jinit.torch.kaiming_uniform(a={5**0.5!r})"
    )


def test_wrappers_are_plain_values_holding_their_initializer_once():
    """``stacked`` and ``layout`` are :class:`jinit.Init` values like every family's: what the
    tree builder needs is a field (``stack``, ``layout``), the initializer they wrap is
    ``wraps`` alone."""
    inner = jinit.he_normal()
    stack = jinit.stacked(inner, "layers", axes=2)
    layout = jinit.equinox.layout(inner, in_axis=1, out_axis=0)
    assert type(stack) is type(layout) is jinit.Init
    assert stack.wraps is inner and stack.stack == jinit._value.Stack(2, "layers")
    assert layout.wraps is inner and layout.layout == (1, 0) and layout.stack is None
    assert not hasattr(stack, "init") and not hasattr(layout, "init")
    assert (stack.short_name, layout.short_name) == ("stacked(he_normal)", "he_normal[in=1,out=0]")
    with pytest.warns(DeprecationWarning, match="jinit.equinox.Layout"):
        assert jinit.equinox.Layout is jinit.Init


def test_public_objects_are_named_where_they_are_defined():
    """Factories and other public objects report the name users import (``jinit.torch.defaults``,
    not ``jinit.torch._defaults.defaults``), set by the decorator at their definition."""
    import jinit.mup

    for obj, where in [
        (jinit.lecun_normal, "jinit.lecun_normal"),
        (jinit.torch.kaiming_uniform, "jinit.torch.kaiming_uniform"),
        (jinit.torch.defaults, "jinit.torch.defaults"),
        (jinit.equinox.layout, "jinit.equinox.layout"),
        (jinit.equinox.defaults, "jinit.equinox.defaults"),
        (jinit.equinox.EquinoxDefaults, "jinit.equinox.EquinoxDefaults"),
        (jinit.mup.hidden, "jinit.mup.hidden"),
        (jinit.init_tree, "jinit.init_tree"),
        (jinit.Init, "jinit.Init"),
        (jinit.Description, "jinit.Description"),
    ]:
        assert f"{obj.__module__}.{obj.__qualname__}" == where


def test_values_survive_pickling():
    for init in (jinit.zeros, jinit.lecun_normal(), jinit.normal(0.02)):
        assert pickle.loads(pickle.dumps(init)) == init


def test_a_traced_hyperparameter_gives_a_value_equal_only_to_itself(key):
    seen = []

    def f(s):
        a, b = jinit.normal(s), jinit.normal(s)
        seen.append((a == b, a == a, a.traced))
        return a(key, (4,))

    jax.vmap(f)(jnp.array([1.0, 2.0]))
    assert seen == [(False, True, True)]


def test_init_tree_with_rules_rebuilt_compiles_once(key):
    with count_compiles() as first:
        jinit.init_tree(key, ABSTRACT, fresh_rules())
    assert first[0] > 0  # (the counter sees this tree's compilation)
    want = jinit.init_tree(key, ABSTRACT, fresh_rules())
    with count_compiles() as n:
        for _ in range(3):
            got = jinit.init_tree(key, ABSTRACT, fresh_rules())
    assert n[0] == 0
    for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
        np.testing.assert_array_equal(np.asarray(w, np.float32), np.asarray(g, np.float32))


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(8)(nn.Dense(16)(x))


def test_init_linen_with_rules_rebuilt_compiles_once(key):
    x = jnp.ones((2, 4))
    rules = lambda: [(r"kernel$", jinit.he_normal()), (r"bias$", jinit.zeros)]
    jinit.flax.init_linen(_MLP(), key, rules(), x)
    with count_compiles() as n:
        for _ in range(3):
            jinit.flax.init_linen(_MLP(), key, rules(), x)
    assert n[0] == 0


class _Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.a = nnx.Linear(4, 16, rngs=rngs)
        self.b = nnx.Linear(16, 8, rngs=rngs)


def test_init_nnx_with_rules_rebuilt_compiles_once(key):
    rules = lambda: [(r"kernel$", jinit.glorot_uniform()), (r"bias$", jinit.zeros)]
    make = lambda: nnx.eval_shape(lambda: _Net(nnx.Rngs(0)))
    jinit.flax.init_nnx(make(), key, rules())
    with count_compiles() as n:
        for _ in range(3):
            jinit.flax.init_nnx(make(), key, rules())
    assert n[0] == 0


def test_a_users_function_in_a_wrapper_is_kept_by_identity(key):
    def mine(key, shape, dtype=None, out_sharding=None):
        return jnp.full(shape, 2.0, dtype or jnp.float32)

    assert jinit.scaled(mine, 3.0) == jinit.scaled(mine, 3.0)
    assert float(jinit.scaled(mine, 3.0)(key, (2,))[0]) == 6.0
    with pytest.raises(TypeError, match=r"portable\(init=...\)"):
        jinit.portable(mine)


def test_init_eqx_with_rules_rebuilt_compiles_once(key):
    import equinox as eqx

    model = eqx.nn.MLP(4, 2, 8, depth=2, key=jax.random.key(1))
    rules = lambda: [(r"weight$", jinit.he_normal()), (r"bias$", jinit.zeros)]
    jinit.equinox.init_eqx(model, key, rules())
    with count_compiles() as n:
        for _ in range(3):
            jinit.equinox.init_eqx(model, key, rules())
    assert n[0] == 0


def test_init_eqx_with_equinox_defaults_compiles_once(key):
    """`jinit.equinox.defaults()` binds equal initializers to equal layers (`equinox.uniform`
    is a value), so calls after the first reuse its compiled program."""
    import equinox as eqx

    assert jinit.equinox.uniform(0.25) is jinit.equinox.uniform(lim=0.25)
    assert repr(jinit.equinox.uniform(0.25)) == "jinit.equinox.uniform(0.25)"
    assert pickle.loads(pickle.dumps(jinit.equinox.uniform(0.25))) == jinit.equinox.uniform(0.25)
    conv = eqx.filter_eval_shape(eqx.nn.Conv2d, 3, 11, 5, key=jax.random.key(0))  # (a fresh plan)
    with count_compiles() as first:
        want = jinit.equinox.init_eqx(conv, 0, jinit.equinox.defaults())
    assert first[0] > 0
    with count_compiles() as n:
        for _ in range(3):
            got = jinit.equinox.init_eqx(conv, 0, jinit.equinox.defaults())
    assert n[0] == 0
    np.testing.assert_array_equal(np.asarray(want.weight), np.asarray(got.weight))


def test_the_repr_does_not_depend_on_which_equal_call_came_first():
    """``np.float64`` is a ``float``: an equal call returns the cached value, whose repr shows
    the plain float whichever came first."""
    import numpy as np

    first = jinit.torch.kaiming_uniform(a=np.sqrt(7.0))
    assert jinit.torch.kaiming_uniform(a=7**0.5) is first
    assert repr(first) == f"jinit.torch.kaiming_uniform(a={7**0.5!r})"

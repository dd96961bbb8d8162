"""Path-derived keys: the digest is fixed, the key depends only on the root key and the path."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey

import jinit

SDS = jax.ShapeDtypeStruct
PATH = "params/Block_3/attn/kernel"


def data(k):
    return np.asarray(jax.random.key_data(k))


def test_digest_matches_the_documented_spec():
    d = hashlib.sha256(PATH.encode("utf-8")).digest()
    hi, lo = int.from_bytes(d[:4], "big"), int.from_bytes(d[4:8], "big")
    root = jax.random.key(7)
    expected = jax.random.fold_in(jax.random.fold_in(root, np.uint32(hi)), np.uint32(lo))
    np.testing.assert_array_equal(data(jinit.key_for_path(root, PATH)), data(expected))


def test_golden_key_data():
    # Pinned once from this implementation; a change here changes every user's initial weights.
    k = jinit.key_for_path(jax.random.key(0), PATH)
    assert data(k).tolist() == [1737747789, 3882308889]


def test_path_str_entries():
    path = (
        DictKey("params"),
        GetAttrKey("blocks"),
        SequenceKey(3),
        FlattenedIndexKey(1),
        "attn",
        0,
    )
    assert jinit.path_str(path) == "params/blocks/3/1/attn/0"
    assert jinit.path_str("a/b") == "a/b"
    with pytest.raises(TypeError, match=r"`path_str\(keypath=...\)`: expected DictKey.*got 1.5"):
        jinit.path_str(("a", 1.5))


def test_string_and_keypath_forms_agree():
    tree = {"params": {"Block_3": {"attn": {"kernel": 0.0}}}}
    ((keypath, _),) = jax.tree_util.tree_flatten_with_path(tree)[0]
    np.testing.assert_array_equal(
        data(jinit.key_for_path(0, keypath)), data(jinit.key_for_path(0, PATH))
    )


def test_key_forms_give_the_same_typed_key():
    typed = jinit.key_for_path(jax.random.key(5), PATH)
    from_int = jinit.key_for_path(5, PATH)
    from_legacy = jinit.key_for_path(jax.random.PRNGKey(5), PATH)
    from_np_int = jinit.key_for_path(np.int64(5), PATH)
    for k in (from_int, from_legacy, from_np_int):
        assert jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key) and k.shape == ()
        np.testing.assert_array_equal(data(k), data(typed))


def test_distinct_paths_and_roots_give_distinct_keys():
    paths = [f"params/layer_{i}/kernel" for i in range(200)] + ["", "a", "a/"]
    keys = {tuple(data(jinit.key_for_path(0, p))) for p in paths}
    assert len(keys) == len(paths)
    assert not np.array_equal(data(jinit.key_for_path(0, PATH)), data(jinit.key_for_path(1, PATH)))


def test_jit_equals_eager_and_vmap_over_roots():
    eager = data(jinit.key_for_path(3, PATH))
    jitted = data(jax.jit(lambda k: jinit.key_for_path(k, PATH))(jax.random.key(3)))
    np.testing.assert_array_equal(jitted, eager)
    batched = jax.vmap(lambda s: jax.random.key_data(jinit.key_for_path(s, PATH)))(jnp.arange(4))
    for i in range(4):
        np.testing.assert_array_equal(np.asarray(batched[i]), data(jinit.key_for_path(i, PATH)))


def test_keys_like_is_independent_of_the_other_leaves():
    small = {"a": 0.0, "b": {"c": 0.0}}
    big = {"z": 0.0, "b": {"c": 0.0, "x": [0.0, 0.0]}, "a": 0.0}
    ks, kb = jinit.keys_like(0, small), jinit.keys_like(0, big)
    np.testing.assert_array_equal(data(ks["a"]), data(kb["a"]))
    np.testing.assert_array_equal(data(ks["b"]["c"]), data(kb["b"]["c"]))
    np.testing.assert_array_equal(data(kb["b"]["x"][1]), data(jinit.key_for_path(0, "b/x/1")))


@pytest.mark.parametrize(
    "bad, received",
    [
        (True, "True"),
        (1.5, "1.5"),
        (jnp.zeros((3,), jnp.uint32), r"an array of shape \(3,\) and dtype uint32"),
        (jnp.zeros((2,), jnp.float32), r"an array of shape \(2,\) and dtype float32"),
    ],
)
def test_bad_keys_are_rejected(bad, received):
    with pytest.raises(
        TypeError,
        match=r"`key_for_path\(key=...\)` must be a typed key, a "
        r"uint32\[2\] key or an int seed; got " + received,
    ):
        jinit.key_for_path(bad, PATH)


def test_key_arrays_are_rejected():
    with pytest.raises(ValueError, match=r"must be a single key; got a key array of shape \(2,\)"):
        jinit.key_for_path(jax.random.split(jax.random.key(0)), PATH)


def test_int_seeds_and_legacy_keys_agree_with_init_tree():
    init = jinit.normal(1.0)
    want = init(jax.random.key(7), (4, 6))
    for key in (7, np.int64(7), jnp.array(7), np.array(7, np.uint32)):
        np.testing.assert_array_equal(init(key, (4, 6)), want)
    legacy = jax.random.PRNGKey(7)
    np.testing.assert_array_equal(init(legacy, (4, 6)), want)
    # init_tree takes the same forms to mean the same root key.
    tree = {"w": SDS((4, 6), jnp.float32)}
    a = jinit.init_tree(7, tree, [(".*", init)])["w"]
    b = init(jinit.key_for_path(jax.random.key(7), "w"), (4, 6))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"an int seed must fit in int64"):
        init(2**70, (4, 6))


def test_host_key_table_equals_fold_in_and_the_in_program_table():
    """A concrete threefry root's key table is made on the host (numpy's threefry): the same
    words as jax's ``fold_in`` twice, and as the table the program derives for a traced root."""
    from jinit._tree.keys import KeyTable

    paths = [f"params/block_{i}/attn/kernel" for i in range(7)] + ["params/head", "params/head"]
    for seed in (0, 1, 2**31 + 5):
        root = jax.random.key(seed)
        data = np.asarray(jax.random.key_data(root))
        host = KeyTable.host_table(data, "threefry2x32", paths)
        assert host.dtype == np.uint32 and host.shape == (8, 2)  # (a repeated path once)
        expected = [jax.random.key_data(jinit.key_for_path(root, p)) for p in paths[:8]]
        np.testing.assert_array_equal(host, np.stack(expected))
        in_program = jax.jit(lambda d: KeyTable(jax.random.wrap_key_data(d), paths).data)(data)
        np.testing.assert_array_equal(host, np.asarray(in_program))
    rbg = np.asarray(jax.random.key_data(jax.random.key(0, impl="rbg")))
    assert KeyTable.host_table(rbg, "rbg", paths) is None  # derived in the program instead


def test_init_tree_with_a_traced_key_equals_the_host_table_path():
    """``init_tree`` under ``jit`` (the root traced: the table derived in the program) gives the
    bits of the concrete call (the table made on the host)."""
    target = {"a": jax.ShapeDtypeStruct((64, 32), jnp.float32), "b": {"c": jnp.zeros((5, 3))}}
    rules = [(".*", jinit.glorot_uniform())]
    eager = jinit.init_tree(jax.random.key(3), target, rules)
    traced = jax.jit(lambda k: jinit.init_tree(k, target, rules))(jax.random.key(3))
    jax.tree.map(np.testing.assert_array_equal, eager, traced)

"""Two real processes on JAX's multi-controller runtime build the same tree, bit for bit."""

import hashlib
import importlib.util
import json
import pathlib
import time

import jax
import numpy as np
import pytest

import jinit

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "multihost_init.py"


def load_example():
    spec = importlib.util.spec_from_file_location("multihost_init", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_processes_match_single_process(tmp_path):
    ex = load_example()
    start = time.perf_counter()
    ex.launch(num_processes=2, out=str(tmp_path), timeout=150)
    elapsed = time.perf_counter() - start
    held = [json.loads((tmp_path / f"process_{i}.json").read_text()) for i in range(2)]

    ref = jinit.init_tree(jax.random.key(0), ex.abstract_tree(), ex.rules())
    flat = {
        jinit.path_str(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(ref)[0]
    }
    for sums in held:
        assert sums  # each process holds some shards, not the whole tree
        for name, digest in sums.items():
            path, index = name.split("@")
            slices = tuple(slice(*map(int, part.split(":"))) for part in index.split(","))
            assert hashlib.sha256(flat[path][slices].tobytes()).hexdigest() == digest, name
    # Together the two processes hold every tile of every leaf, each only its own half.
    for path, x in flat.items():
        tiles = {n.split("@")[1] for sums in held for n in sums if n.startswith(path + "@")}
        expected = 8 if x.ndim == 2 else 4
        assert len(tiles) == expected, (path, tiles)
    assert set(held[0]) != set(held[1])
    print(f"two-process init: {elapsed:.1f}s")

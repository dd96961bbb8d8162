"""Initialise a sharded parameter tree across two processes (JAX's multi-controller runtime).

Run it as is: it launches itself twice on this machine (loopback coordinator, gloo CPU
collectives, 4 simulated CPU devices per process, one 2x4 global mesh)::

    python examples/multihost_init.py

Or launch each process yourself (e.g. one per host, with the first host's address)::

    python examples/multihost_init.py --process-id 0 --num-processes 2 --coordinator host0:12345
    python examples/multihost_init.py --process-id 1 --num-processes 2 --coordinator host0:12345

Each process holds only its addressable shards; with ``--out DIR`` each writes the sha256 of
every shard it holds to ``DIR/process_<id>.json``, which the test suite compares bit for bit with
a single-process run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys

DEVICES_PER_PROCESS = 4


def abstract_tree():
    import jax
    import jax.numpy as jnp

    sds = jax.ShapeDtypeStruct
    layers = {
        f"layer_{i}": {"kernel": sds((256, 512), jnp.float32), "bias": sds((512,), jnp.float32)}
        for i in range(3)
    }
    return {"params": {"embed": sds((1024, 256), jnp.bfloat16), **layers}}


def rules():
    import jinit

    return [
        (r"embed$", jinit.normal(0.02)),
        (r"kernel$", jinit.glorot_normal()),
        (r"bias$", jinit.zeros),
    ]


def specs():
    import jax
    from jax.sharding import PartitionSpec as P

    return jax.tree.map(
        lambda s: P("data", "model") if s.ndim == 2 else P("model"), abstract_tree()
    )


def shard_checksums(tree) -> dict[str, str]:
    """sha256 of each addressable shard, keyed by '<path>@<index>' (index: the global slices)."""
    import jax

    import jinit

    out = {}
    for keypath, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        for shard in x.addressable_shards:
            index = ",".join(
                f"{s.start or 0}:{s.stop if s.stop is not None else n}"
                for s, n in zip(shard.index, x.shape, strict=True)
            )
            data = jax.device_get(shard.data)
            out[f"{jinit.path_str(keypath)}@{index}"] = hashlib.sha256(data.tobytes()).hexdigest()
    return out


def worker(process_id: int, num_processes: int, coordinator: str, out: str | None) -> None:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
    import jinit

    mesh = jax.make_mesh(
        (num_processes, DEVICES_PER_PROCESS),
        ("data", "model"),
        axis_types=(jax.sharding.AxisType.Auto,) * 2,
    )
    params = jinit.init_tree(
        jax.random.key(0), abstract_tree(), rules(), shardings=specs(), mesh=mesh
    )
    sums = shard_checksums(params)
    total = sum(x.size for x in jax.tree.leaves(params))
    local = sum(s.data.size for x in jax.tree.leaves(params) for s in x.addressable_shards)
    print(f"process {process_id}: {len(sums)} shards, {local} of {total} values held locally")
    if out is not None:
        with open(os.path.join(out, f"process_{process_id}.json"), "w") as f:
            json.dump(sums, f)
    jax.distributed.shutdown()


def launch(num_processes: int = 2, out: str | None = None, timeout: float = 120) -> None:
    """Starts `num_processes` copies of this script on this machine and waits for them."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES_PER_PROCESS}",
    )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--process-id",
                str(i),
                "--num-processes",
                str(num_processes),
                "--coordinator",
                f"127.0.0.1:{port}",
                *(["--out", out] if out else []),
            ],
            env=env,
        )
        for i in range(num_processes)
    ]
    try:
        codes = [p.wait(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if any(codes):
        raise RuntimeError(f"multihost_init workers exited with codes {codes}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process-id", type=int)
    parser.add_argument("--num-processes", type=int, default=2)
    parser.add_argument("--coordinator", default=None)
    parser.add_argument("--out", default=None)
    a = parser.parse_args()
    if a.process_id is None:
        launch(a.num_processes, a.out)
    else:
        worker(a.process_id, a.num_processes, a.coordinator, a.out)

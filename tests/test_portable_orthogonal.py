"""Portable orthogonal: exact matmuls, the same bits as the NumPy reference, and the same bits
whichever BLAS kernel the CPU makes SciPy's OpenBLAS pick (the run-time choice that made an AVX2
machine and an AVX-512 machine disagree on jax's QR)."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import portable_reference as ref
import pytest

import jinit
from jinit._rng import exact

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _words(key):
    return tuple(int(w) for w in jax.random.key_data(key))


@pytest.mark.parametrize(
    "shape", [(5, 7, 3), (64, 64, 64), (3, 5000, 4), (1, 1, 1), (17, 9000, 2)], ids=str
)
def test_exact_matmul_equals_the_numpy_reference_and_is_accurate(shape):
    m, k, n = shape
    rng = np.random.default_rng(k)
    a = (rng.standard_normal((m, k)) * rng.uniform(0.01, 100, (m, 1))).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    got = np.asarray(jax.jit(exact.matmul)(a, b))
    np.testing.assert_array_equal(got, ref.exact_matmul(a, b))
    true = a.astype(np.float64) @ b.astype(np.float64)
    # within float32 rounding of |a| |b| (what any float32 matmul promises)
    bound = 4 * np.finfo(np.float32).eps * (np.abs(a).astype(np.float64) @ np.abs(b))
    assert np.all(np.abs(got - true) <= bound + 1e-30)


def test_exact_matmul_is_order_free():
    """Permuting the contraction permutes the summation order of any kernel: no bit changes."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((32, 300)).astype(np.float32)
    b = rng.standard_normal((300, 16)).astype(np.float32)
    perm = rng.permutation(300)
    f = jax.jit(exact.matmul)
    np.testing.assert_array_equal(f(a, b), f(a[:, perm], b[perm]))
    # a plain float32 matmul changes under the same permutation (so the check can fail)
    assert not np.array_equal(a @ b, a[:, perm] @ b[perm])


def test_exact_matmul_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"`exact.matmul` needs \(m, k\) @ \(k, n\); got"):
        exact.matmul(jnp.ones((2, 3)), jnp.ones((4, 2)))


@pytest.mark.parametrize("shape", [(64, 64), (300, 200), (200, 300), (5, 3), (257, 256)], ids=str)
@pytest.mark.parametrize("method", ["qr", "householder"])
def test_portable_orthogonal_equals_the_numpy_reference(shape, method, key):
    got = np.asarray(jinit.portable(jinit.orthogonal(method=method))(key, shape))
    m, k = max(shape), min(shape)
    want = ref.orthogonal(_words(key), m, k)
    np.testing.assert_array_equal(got, want if shape[0] >= shape[1] else want.T)
    q = got.astype(np.float64)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
    assert np.abs(gram - np.eye(k)).max() < 1e-6


def test_portable_orthogonal_over_a_long_contraction(key):
    """More than 4096 rows: the exact sums are chunked, the chunks added in a fixed order."""
    got = np.asarray(jinit.portable(jinit.orthogonal())(key, (4200, 130)))
    np.testing.assert_array_equal(got, ref.orthogonal(_words(key), 4200, 130))


def test_portable_orthogonal_is_haar(key):
    """For Haar O(n), n >= 2j: E tr(Q^j) = [j even], Var tr(Q^j) = j (Diaconis and
    Shahshahani, exact); entries have variance 1/n."""
    n, count = 16, 2000
    init = jinit.portable(jinit.orthogonal())
    qs = np.asarray(jax.jit(jax.vmap(lambda k: init(k, (n, n))))(jax.random.split(key, count)))
    qs = qs.astype(np.float64)
    assert abs(qs.var() * n - 1) < 0.02
    power = np.eye(n)[None]
    for j in (1, 2, 3):
        power = power @ qs
        tr = np.trace(power, axis1=1, axis2=2)
        assert abs(tr.mean() - (j % 2 == 0)) < 4 * np.sqrt(j / count), (j, tr.mean())
        assert abs(tr.var() / j - 1) < 4 * np.sqrt(2 / count) + 0.02, (j, tr.var())


def _openblas_cores() -> list[str]:
    """The OpenBLAS kernels this CPU can run (forcing one it cannot would be an illegal
    instruction): x86-64 only, where SciPy's wheels build OpenBLAS with DYNAMIC_ARCH."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    flags = pathlib.Path("/proc/cpuinfo").read_text() if os.path.exists("/proc/cpuinfo") else ""
    cores = ["Sandybridge"]
    if " avx2" in flags:
        cores.append("Haswell")
    if " avx512f" in flags and " avx512vl" in flags:
        cores.append("SkylakeX")
    return cores


def _digest_under(core: str, tmp_path: pathlib.Path) -> dict[str, str]:
    out = tmp_path / f"digest-{core}.json"
    env = {**os.environ, "OPENBLAS_CORETYPE": core, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "digest", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())["digests"]


def test_portable_rows_do_not_depend_on_the_blas_kernel(tmp_path):
    """The guard against CPU-dependent pins: every portable row of ``python -m bench digest``
    is the same whichever OpenBLAS kernel is forced, and equal to the recorded run (made on
    another CPU), while jax mode's orthogonal (LAPACK's QR) changes with the kernel, which shows
    that forcing one reaches the arithmetic."""
    cores = _openblas_cores()
    if len(cores) < 2:
        pytest.skip(f"needs two OpenBLAS kernels this CPU can run; got {cores}")
    runs = {core: _digest_under(core, tmp_path) for core in cores}
    recorded = json.loads((ROOT / "bench" / "results" / "digest-cpu.json").read_text())["digests"]
    portable = sorted(k for k in recorded if k.startswith("portable"))
    assert any("gate" in k for k in portable)
    for core, digests in runs.items():
        assert {k: digests[k] for k in portable} == {k: recorded[k] for k in portable}, core
    gates = {core: digests["jax ['h'][0]['gate']"] for core, digests in runs.items()}
    assert len(set(gates.values())) > 1, gates

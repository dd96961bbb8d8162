"""The private jax APIs jinit uses (jinit/_jax_compat.py) are where it reads them, and do what it
needs; when a jax release moves one, this fails with the message a user would get."""

import pathlib

import jax
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jinit import _jax_compat


def test_canonicalize_sharding_is_jax_randoms_check():
    mesh = jax.make_mesh((2,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,))
    assert _jax_compat.canonicalize_sharding(None, "normal") is None
    s = _jax_compat.canonicalize_sharding(NamedSharding(mesh, PartitionSpec("x")), "normal")
    assert s.spec == PartitionSpec("x") and s.mesh.axis_names == ("x",)
    with jax.set_mesh(mesh):
        got = _jax_compat.canonicalize_sharding(PartitionSpec("x"), "normal")
    assert isinstance(got, NamedSharding) and got.spec == PartitionSpec("x")


def test_concrete_mesh_inside_jit():
    mesh = jax.make_mesh((2,), ("x",))
    seen = []

    @jax.jit
    def f(x):
        seen.append(_jax_compat.concrete_mesh())
        return x

    with jax.set_mesh(mesh):
        f(1.0)
    assert seen[0] == mesh
    assert _jax_compat.concrete_mesh().empty  # outside jax.set_mesh


def test_a_moved_api_names_itself(monkeypatch):
    import jax._src.sharding_impls as impls

    monkeypatch.delattr(impls, "canonicalize_sharding")
    with pytest.raises(RuntimeError, match=r"jax\._src\.sharding_impls\.canonicalize_sharding"):
        _jax_compat.canonicalize_sharding(None, "normal")


def test_no_other_module_imports_private_jax():
    root = pathlib.Path(_jax_compat.__file__).parent
    offenders = [
        p.name
        for p in root.glob("*.py")
        if p.name != "_jax_compat.py" and "import" in p.read_text() and "jax._src" in _imports(p)
    ]
    assert offenders == []


def _imports(path: pathlib.Path) -> str:
    return "\n".join(
        line
        for line in path.read_text().splitlines()
        if line.lstrip().startswith(("import", "from"))
    )

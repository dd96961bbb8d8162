"""The family namespaces (`jinit.torch`, `jinit.keras`, `jinit.haiku`, `jinit.mup`) and the flat
names they replace, which still work once with a `DeprecationWarning` naming the new one."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings

import pytest
from registry import NAMESPACES, lookup

import jinit
from jinit import _deprecations

RENAMED = sorted(_deprecations.RENAMED.items())
ROWS = [pytest.param(old, new, id=old) for old, new in RENAMED]


@pytest.fixture
def fresh(monkeypatch):
    """A process in which no old name has warned yet."""
    monkeypatch.setattr(_deprecations, "_warned", set())


@pytest.mark.parametrize(("old", "new"), ROWS)
def test_a_flat_name_warns_once_naming_its_replacement_and_is_the_same_object(old, new, fresh):
    with pytest.warns(DeprecationWarning) as caught:
        obj = getattr(jinit, old)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"`jinit.{old}` is deprecated: use `jinit.{new}` (the same object)."
    )
    assert caught[0].filename == __file__  # attributed to the caller, not to jinit
    assert obj is lookup(new)
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert getattr(jinit, old) is obj
    assert again == []


def test_an_attribute_access_warns_too(fresh):
    with pytest.warns(DeprecationWarning, match=r"use `jinit\.keras\.dense_default`"):
        assert jinit.keras_dense_default is jinit.keras.dense_default


@pytest.mark.parametrize(("old", "new"), ROWS)
def test_every_row_names_an_object_its_namespace_writes_under_that_name(old, new):
    """Each new name is exported by its namespace and written under that name in one of the
    namespace package's own modules (no prefix renaming; no row points at a look-alike, e.g.
    `jinit.identity`)."""
    space, _, leaf = new.partition(".")
    assert space in NAMESPACES and leaf in lookup(space).__all__
    obj = lookup(new)
    written = [
        name
        for name, m in sorted(sys.modules.items())
        if name.startswith(f"jinit.{space}._") and vars(m).get(leaf) is obj
    ]
    assert written, f"jinit.{new} is not written as `{leaf}` in a module of jinit.{space}"
    assert not any(hasattr(m, old) for n, m in sys.modules.items() if n.startswith("jinit.")), old


@pytest.mark.parametrize("space", NAMESPACES)
def test_a_namespace_is_a_package(space):
    """`jinit.torch` and its siblings are packages whose private modules hold their code."""
    module = lookup(space)
    assert module.__name__ == f"jinit.{space}" and hasattr(module, "__path__")


def test_flat_names_are_neither_in_all_nor_in_dir():
    assert not set(_deprecations.RENAMED) & set(jinit.__all__)
    assert not set(_deprecations.RENAMED) & set(dir(jinit))
    assert set(NAMESPACES) <= set(dir(jinit))
    assert not set(NAMESPACES) & set(jinit.__all__)  # `from jinit import *` keeps your `torch`
    star: dict = {}
    exec("from jinit import *", star)
    assert "torch" not in star and "lecun_normal" in star


@pytest.mark.parametrize("space", NAMESPACES)
def test_a_namespace_all_lists_exactly_what_it_exports(space):
    module = lookup(space)
    exported = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    }
    assert sorted(module.__all__) == sorted(exported)
    assert all(hasattr(module, n) for n in module.__all__)


@pytest.mark.parametrize("space", ["torch", "keras", "haiku"])
def test_a_porting_namespace_exports_only_its_family(space):
    renamed = {new.partition(".")[2] for new in _deprecations.RENAMED.values()}
    assert set(lookup(space).__all__) <= renamed


def test_namespaced_objects_report_where_users_find_them():
    assert jinit.torch.kaiming_uniform.__module__ == "jinit.torch"
    assert jinit.torch.kaiming_uniform.__qualname__ == "kaiming_uniform"
    assert jinit.torch.defaults.__name__ == "defaults"
    assert jinit.keras.variance_scaling.__module__ == "jinit.keras"
    assert jinit.mup.readout.__module__ == "jinit.mup"
    assert jinit.mup.readout.__name__ == "readout"
    # An alias keeps the name of what it stands for.
    assert jinit.haiku.conv_default is jinit.haiku.linear_default
    assert jinit.haiku.conv_default.__name__ == "linear_default"
    # Pickling finds them by their new names (no deprecated access: warnings are errors here).
    for new in _deprecations.RENAMED.values():
        assert pickle.loads(pickle.dumps(lookup(new))) is lookup(new)


def test_an_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match=r"^module 'jinit' has no attribute 'torch_foo'$"):
        jinit.torch_foo
    assert not hasattr(jinit, "keras_variance")
    with pytest.raises(AttributeError, match=r"has no attribute 'kaiming_uniform_'"):
        jinit.torch.kaiming_uniform_


def test_import_jinit_gives_the_namespaces_without_optax_or_torch():
    """`jinit.torch` is jinit's module, not PyTorch (nor does it import PyTorch), and muP's
    initializers need no optax: only its optimizers import it."""
    code = """
import sys
sys.modules["optax"] = None  # an environment without optax
import jinit, jax
assert "torch" not in sys.modules and "keras" not in sys.modules and "haiku" not in sys.modules
w = jinit.mup.hidden()(jax.random.key(0), (4, 4))
assert jinit.torch.kaiming_uniform()(jax.random.key(0), (4, 4)).shape == (4, 4)
try:
    jinit.mup.adam(1e-3, {}, {})
except ImportError:
    print("ok")
"""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0 and result.stdout == "ok\n", result.stdout + result.stderr


def test_pytorch_imports_beside_jinit_torch():
    torch = pytest.importorskip("torch")
    assert torch is not jinit.torch and hasattr(torch, "nn")
    assert jinit.torch.__name__ == "jinit.torch"

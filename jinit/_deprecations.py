"""The flat names that moved into a family namespace, and the ``jinit.__getattr__`` serving them.

``jinit.torch_kaiming_uniform`` is now ``jinit.torch.kaiming_uniform``: one row per old name
below. The old name still gives the same object, with a ``DeprecationWarning`` naming the new one
the first time each old name is used in a process (jax's ``jax._src.deprecations`` pattern, less
its repeats). The old names are not in ``jinit.__all__`` or ``dir(jinit)``, and type checkers do
not see them (``jinit/__init__.py`` defines ``__getattr__`` only at run time, as jax does).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any

# Deprecated after 0.1.0 (CHANGELOG.md): {old flat name: new name, relative to `jinit`}.
RENAMED: dict[str, str] = {
    "torch_bias_default": "torch.bias_default",
    "torch_defaults": "torch.defaults",
    "torch_embedding_default": "torch.embedding_default",
    "torch_kaiming_normal": "torch.kaiming_normal",
    "torch_kaiming_uniform": "torch.kaiming_uniform",
    "torch_linear_default": "torch.linear_default",
    "torch_trunc_normal": "torch.trunc_normal",
    "torch_xavier_normal": "torch.xavier_normal",
    "torch_xavier_uniform": "torch.xavier_uniform",
    "keras_conv_default": "keras.conv_default",
    "keras_dense_default": "keras.dense_default",
    "keras_embedding_default": "keras.embedding_default",
    "keras_identity": "keras.identity",
    "keras_orthogonal": "keras.orthogonal",
    "keras_random_normal": "keras.random_normal",
    "keras_random_uniform": "keras.random_uniform",
    "keras_truncated_normal": "keras.truncated_normal",
    "keras_variance_scaling": "keras.variance_scaling",
    "haiku_conv_default": "haiku.conv_default",
    "haiku_embed_default": "haiku.embed_default",
    "haiku_linear_default": "haiku.linear_default",
    "haiku_orthogonal": "haiku.orthogonal",
    "haiku_variance_scaling": "haiku.variance_scaling",
    "mup_hidden": "mup.hidden",
    "mup_readout": "mup.readout",
}

# The old names already warned about in this process.
_warned: set[str] = set()


def resolve(new: str) -> Any:
    """The object at ``jinit.<new>`` (``"torch.kaiming_uniform"``)."""
    namespace, name = new.split(".")
    return getattr(importlib.import_module(f"jinit.{namespace}"), name)


def module_getattr(module: str, renamed: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``module`` that serves each old name of ``renamed`` as its new
    object, warning the first time, and raises ``AttributeError`` for any other name."""

    def __getattr__(name: str) -> Any:
        new = renamed.get(name)
        if new is None:
            raise AttributeError(
                f"module {module!r} has no attribute {name!r}", name=name, obj=sys.modules[module]
            )
        obj = resolve(new)
        if name not in _warned:
            _warned.add(name)
            warnings.warn(
                f"`{module}.{name}` is deprecated: use `{module}.{new}` (the same object).",
                DeprecationWarning,
                stacklevel=2,
            )
        return obj

    return __getattr__

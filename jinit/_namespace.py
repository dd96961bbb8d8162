"""Naming for the family namespaces (:mod:`jinit.torch`, :mod:`jinit.keras`, :mod:`jinit.haiku`,
:mod:`jinit.mup`): their objects are written in private modules under prefixed names
(``_torch.torch_kaiming_uniform``) and report the public name instead
(``jinit.torch.kaiming_uniform``), so reprs, pickling and the docs show where users find them."""

from __future__ import annotations

from typing import Any


def publish(namespace: dict[str, Any], prefix: str, names: list[str]) -> None:
    """Sets ``__module__``, ``__name__`` and ``__qualname__`` of ``namespace[name]`` for each name
    whose object is written as ``prefix + name``; an alias (another name for an object written
    under a different one) keeps the name of the object it stands for."""
    module = namespace["__name__"]
    for name in names:
        obj = namespace[name]
        if obj.__name__ not in (prefix + name, name):  # an alias: named by its original
            continue
        obj.__module__ = module
        obj.__name__ = obj.__qualname__ = name

"""A check for the family namespaces (:mod:`jinit.mup`): their objects are written in private
modules under prefixed names (``_mup.mup_hidden``) and named ``jinit.mup.hidden`` where they are
defined (:func:`jinit._value.factory`, :func:`jinit._typing.public`), so reprs, pickling and the
docs show where users find them. Nothing is renamed here."""

from __future__ import annotations

from typing import Any


def publish(namespace: dict[str, Any], prefix: str, names: list[str]) -> None:
    """Checks that each ``namespace[name]`` written as ``prefix + name`` reports ``name`` in
    ``namespace``'s module; an alias (another name for an object written under a different
    one) keeps the name of the object it stands for."""
    module = namespace["__name__"]
    for name in names:
        obj = namespace[name]
        if obj.__name__ not in (prefix + name, name):  # an alias: named by its original
            continue
        if (obj.__module__, obj.__name__) != (module, name):
            raise TypeError(
                f"`{module}.{name}` reports itself as `{obj.__module__}.{obj.__name__}`: name it "
                f'where it is defined (`@factory("{module.removeprefix("jinit.")}.{name}")` '
                "or `@public(...)`)."
            )

"""Name -> memory class registry shared by every cell family and attention."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, TypeVar

from memjax.cells.base import Memory

M = TypeVar("M", bound=type[Memory])

_REGISTRY: dict[str, type[Memory]] = {}


def register(cls: M) -> M:
    """Class decorator: make ``cls`` available as ``memjax.cells.get(cls.name, ...)``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute `name` to register")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a memory named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Registered memory names, sorted."""
    return sorted(_REGISTRY)


def lookup(name: str) -> type[Memory]:
    """The class registered as ``name``; ValueError listing close matches otherwise."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, names(), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown memory name {name!r}; expected one of {names()}.{hint}")
    return _REGISTRY[name]


def get(name: str, **hyperparameters: Any) -> Memory:
    """Build the memory registered as ``name``, e.g. ``get("lstm", hidden=256)``."""
    cls = lookup(name)
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(hyperparameters) - set(fields))
    if unknown:
        raise ValueError(f"{name!r} has no hyperparameter(s) {unknown}; expected some of {fields}")
    return cls(**hyperparameters)

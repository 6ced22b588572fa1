"""Tasks by name: ``get(name, **options)``, ``names()`` and ``options(name)``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from memjax.tasks import (
    adding,
    associative_recall,
    copying,
    image,
    induction,
    listops,
    mnist,
    mnist1d,
    mqar,
    pathfinder,
    retrieval,
    scan_task,
    selective_copy,
    text,
)
from memjax.tasks.spec import Task

_FACTORIES: dict[str, Callable[..., Task]] = {
    "listops": listops.make,
    "text": text.make,
    "retrieval": retrieval.make,
    "image": image.make,
    "mnist": mnist.make,
    "permuted_mnist": mnist.make_permuted,
    "mnist1d": mnist1d.make,
    "pathfinder": pathfinder.make,
    "pathx": functools.partial(pathfinder.make, resolution=128),  # Path-X
    "copy": copying.make,
    "adding": adding.make,
    "selective_copy": selective_copy.make,
    "mqar": mqar.make,
    "induction": induction.make,
    "associative_recall": associative_recall.make,
    "scan": scan_task.make,
}


def names() -> list[str]:
    """All registered task names."""
    return list(_FACTORIES)


def options(name: str) -> dict[str, Any]:
    """The options of task ``name`` with their defaults."""
    _check_name(name)
    params = inspect.signature(_FACTORIES[name]).parameters
    return {key: p.default for key, p in params.items()}


def get(name: str, **kwargs: Any) -> Task:
    """Builds task ``name`` with ``kwargs`` overriding its default options.

    Raises ValueError for an unknown name or option, naming the valid ones.
    """
    valid = options(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for task {name!r}; "
            f"valid options: {', '.join(valid)}"
        )
    return _FACTORIES[name](**kwargs)


def _check_name(name: str) -> None:
    if name not in _FACTORIES:
        raise ValueError(f"task={name!r}; expected one of {', '.join(map(repr, _FACTORIES))}")

"""Argument checks whose ValueErrors name the argument, the value and what was expected."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raises ValueError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r}; expected one of {', '.join(map(repr, choices))}")


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    """Raises ValueError unless ``value`` is an int in [minimum, maximum]."""
    upper = "" if maximum is None else f" and <= {maximum}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}={value!r}; expected an int >= {minimum}{upper}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name}={value!r}; expected an int >= {minimum}{upper}")


def check_float(name: str, value: Any, low: float, high: float) -> None:
    """Raises ValueError unless ``value`` is a real number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name}={value!r}; expected a number in [{low}, {high}]")

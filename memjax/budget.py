"""Parameter counting and equal-budget sizing, so every memory is compared at the same size.

LRA's rule: models compared on a task have parameter counts within 10% of each other.
:func:`width_for_budget` picks the model width whose count is closest to a target, measuring
candidate models abstractly (``nnx.eval_shape``: no parameters are allocated).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from flax import nnx


def param_count(model: nnx.Module) -> int:
    """Number of scalar parameters (``nnx.Param`` leaves) in ``model``."""
    return int(sum(np.prod(p.shape) for p in jax.tree.leaves(nnx.state(model, nnx.Param))))


def param_count_of(build: Callable[[int], nnx.Module], width: int) -> int:
    """Parameters of ``build(width)`` without allocating them."""
    return param_count(nnx.eval_shape(lambda: build(width)))


def width_for_budget(
    build: Callable[[int], nnx.Module],
    target: int,
    *,
    multiple: int = 8,
    max_width: int = 8192,
) -> int:
    """The width (a multiple of ``multiple``) whose ``build(width)`` is closest to ``target``.

    A model's parameter count is a quadratic ``n(d) = a d^2 + b d + c`` in its width ``d``
    (matrices ``d x d``, vectors ``d``, fixed extras), so three abstract builds give ``a, b, c``
    and the root of ``n(d) = target`` a first guess. Counts grow monotonically with width, so
    a short walk from the guess then brackets the target between two measured widths and the
    nearer one is returned: the answer always rests on measured counts, never on the fit.
    """
    if target < 1:
        raise ValueError(f"target must be a positive parameter count, got {target!r}")
    if multiple < 1:
        raise ValueError(f"multiple must be a positive int, got {multiple!r}")
    counts: dict[int, int] = {}

    def count(units: int) -> int:
        if units not in counts:
            counts[units] = param_count_of(build, units * multiple)
        return counts[units]

    top = max_width // multiple
    if count(top) < target:
        raise ValueError(f"target={target} parameters needs a width above max_width={max_width}")
    xs = np.array([1.0, 2.0, 3.0])
    a, b, c = np.polyfit(xs, [count(1), count(2), count(3)], 2)
    roots = [r.real for r in np.roots([a, b, c - target]) if abs(r.imag) < 1e-9 and r.real > 0]
    units = int(np.clip(round(max(roots, default=1.0)), 1, top))
    while units > 1 and count(units) > target:
        units -= 1
    while units < top and count(units + 1) <= target:
        units += 1
    candidates = [u for u in (units, units + 1) if u <= top]
    return multiple * min(candidates, key=lambda u: abs(count(u) - target))

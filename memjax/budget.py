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

    Parameter counts grow monotonically with width, so a bisection over multiples finds the two
    widths that bracket the target and the nearer one is returned.
    """
    if target < 1:
        raise ValueError(f"target must be a positive parameter count, got {target!r}")
    if multiple < 1:
        raise ValueError(f"multiple must be a positive int, got {multiple!r}")
    lo, hi = 1, max_width // multiple
    if param_count_of(build, hi * multiple) < target:
        raise ValueError(f"target={target} parameters needs a width above max_width={max_width}")
    while lo < hi:
        mid = (lo + hi) // 2
        if param_count_of(build, mid * multiple) < target:
            lo = mid + 1
        else:
            hi = mid
    candidates = [w * multiple for w in (lo - 1, lo) if w >= 1]
    return min(candidates, key=lambda w: abs(param_count_of(build, w) - target))

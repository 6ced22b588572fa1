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
    (matrices ``d x d``, vectors ``d``, fixed extras; ``a = 0`` for a model of per-channel
    parameters only), so three abstract builds give ``a, b, c`` and the root of
    ``n(d) = target`` a first guess. Counts grow monotonically with width, so a search from the
    guess (steps doubling until the target is bracketed, then bisection) finds the two measured
    widths around the target and the nearer one is returned: the answer always rests on
    measured counts, never on the fit.
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
    low = _largest_within(count, target, _fitted_guess(count, target, top), top)
    candidates = [u for u in (low, low + 1) if u <= top]
    return multiple * min(candidates, key=lambda u: abs(count(u) - target))


def _fitted_guess(count: Callable[[int], int], target: int, top: int) -> int:
    """The width (in units) where the quadratic through the counts at 1, 2, 3 units meets
    ``target``; a leading term that is float noise beside the linear one is taken as 0."""
    a, b, c = np.polyfit(np.array([1.0, 2.0, 3.0]), [count(1), count(2), count(3)], 2)
    if abs(a) <= 1e-9 * max(abs(b), 1.0):
        root = (target - c) / b if b > 0 else 1.0
    else:
        roots = [r.real for r in np.roots([a, b, c - target]) if abs(r.imag) < 1e-9]
        root = max((r for r in roots if r > 0), default=1.0)
    return int(np.clip(round(root), 1, top))


def _largest_within(count: Callable[[int], int], target: int, guess: int, top: int) -> int:
    """The largest ``u`` in ``[1, top]`` with ``count(u) <= target`` (1 if none), for a
    ``count`` that never decreases, searched from ``guess``."""
    if count(guess) <= target:
        low, step = guess, 1
        while low + step <= top and count(low + step) <= target:
            low, step = low + step, 2 * step
        high = min(low + step, top + 1)  # count(high) > target, or past the top
    else:
        high, step = guess, 1
        while high - step >= 1 and count(high - step) > target:
            high, step = high - step, 2 * step
        low = max(high - step, 0)  # count(low) <= target, or below the bottom
    while high - low > 1:
        middle = (low + high) // 2
        if count(middle) <= target:
            low = middle
        else:
            high = middle
    return max(low, 1)

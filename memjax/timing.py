"""Timing calls fairly: compiled ahead of time, with XLA's planned memory, in interleaved rounds.

Used by ``memjax bench`` and the memory notebook. A time means something only beside the device
it was measured on; compare the ratios of calls timed in one :func:`time_interleaved`.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax


def _block(x: Any) -> Any:
    return jax.tree.map(
        lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x
    )


@dataclasses.dataclass(frozen=True)
class Timed:
    """A call to time, the device memory it needs and its compile seconds (None where
    unknown: then the first call's seconds are reported as the compile time)."""

    call: Callable[[], Any]
    peak_bytes: int | None
    compile_s: float | None = None


def seconds(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call of ``fn``, waiting for its results."""
    start = time.perf_counter()
    _block(fn())
    return time.perf_counter() - start


def time_interleaved(fns: Sequence[Callable[[], Any]], repeats: int) -> list[tuple[float, float]]:
    """``(first-call seconds, median seconds of repeats)`` for each of ``fns``.

    After every function's first (compiling) call, the repeats run in rounds that call each
    function once, so a change in the machine's load during the run falls on all of them alike
    and their ratios stay fair.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    first = [seconds(fn) for fn in fns]
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times, strict=True):
            record.append(seconds(fn))
    return [(f, statistics.median(t)) for f, t in zip(first, times, strict=True)]


def compiled(jitted: Any, *args: Any) -> Timed:
    """``jitted(*args)`` compiled ahead of time, with its compile seconds and the device bytes
    XLA plans for one call: arguments, outputs and temporaries (None where the backend gives no
    memory analysis)."""
    start = time.perf_counter()
    executable = jitted.lower(*args).compile()
    compile_s = time.perf_counter() - start
    analysis = executable.memory_analysis()
    planned = None
    if analysis is not None:
        planned = (
            analysis.argument_size_in_bytes
            + analysis.output_size_in_bytes
            + analysis.temp_size_in_bytes
            - analysis.alias_size_in_bytes
        )
    return Timed(lambda: executable(*args), planned, compile_s)


def jax_pair(forward: Any, backward: Any, *args: Any) -> tuple[Timed, Timed]:
    """The forward and forward+backward calls of two jitted functions on ``args``."""
    return compiled(forward, *args), compiled(backward, *args)

"""Spectra of linear recurrences: the distribution of ``|a|``, the per-step decay of the state.

A :class:`~memjax.cells.base.LinearCell` updates its state as ``s_t = a_t * s_{t-1} + b_t``;
``|a|`` is the fraction of each state element that survives one step, and an element with
``|a| < 1`` keeps half of its content for ``ln(1/2) / ln|a|`` steps (its half-life).

* LRU and S5: ``a = lambda``, the same at every step: the ``|lambda|`` of the modes (the pooled
  distribution repeats each mode once per step and example, which leaves it unchanged);
* minGRU / minLSTM: ``a_t = sigmoid(l_t)`` depends on the input: its distribution over units,
  steps and a batch of inputs;
* linear attention: 1 (no decay), RetNet's per-head ``gamma`` ("fixed") or the gate
  ``alpha_t`` ("gated"), per key dimension.

Every value comes from ``cell.elements(params, cell.prepare(params, u))``, with ``u`` the inputs
the layer sees inside the subject, pooled over the subject's linear layers. The record holds
quantiles, the mean, the half-life of the median and a histogram (the fraction of values per
bin) whose bins are uniform in ``logit |a|``, so that ``0.99`` and ``0.999`` fall apart.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memjax.cells.base import Array, LinearCell
from memjax.probes.subjects import Subject

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
BINS = 48
LOGIT_RANGE = (1e-3, 1.0 - 1e-4)


def bin_edges(bins: int = BINS) -> np.ndarray:
    """Edges of ``|a|``: 0, then ``bins - 1`` edges uniform in ``logit |a|`` over
    ``LOGIT_RANGE`` (fine near 1, where long memories live), then 1; the last bin,
    ``[1 - 1e-4, 1]``, holds the elements that do not decay."""
    low, high = (math.log(p / (1.0 - p)) for p in LOGIT_RANGE)
    inner = 1.0 / (1.0 + np.exp(-np.linspace(low, high, bins - 1)))
    return np.concatenate([[0.0], inner, [1.0]])


def decays(subject: Subject, tokens: np.ndarray) -> np.ndarray | None:
    """``|a|`` of every state element, step and example of every linear layer; None if none."""

    def magnitudes(params: Any, ids: Array) -> list[Array]:
        found = []
        for memory, p, u in subject.layers(params, subject.embed(params, ids)):
            if isinstance(memory, LinearCell):
                a, _ = memory.elements(p, memory.prepare(p, u))
                found += [jnp.abs(leaf).ravel() for leaf in jax.tree.leaves(a)]
        return found

    values = jax.jit(magnitudes)(subject.params, jnp.asarray(tokens))
    return np.concatenate(values).astype(np.float64) if values else None


def half_life(decay: float) -> float | None:
    """``ln(1/2) / ln(decay)`` steps; 0 for no memory, None for no decay (``decay >= 1``)."""
    if decay >= 1.0:
        return None
    if decay <= 0.0:
        return 0.0
    return math.log(0.5) / math.log(decay)


def spectrum(subject: Subject, tokens: np.ndarray) -> dict[str, Any] | None:
    """Distribution of ``|a|`` (module docstring); None when no layer is a linear recurrence."""
    values = decays(subject, tokens)
    if values is None:
        return None
    counts, edges = np.histogram(values, bins=bin_edges())
    median = float(np.median(values))
    return {
        "quantiles": {f"{q:g}": float(np.quantile(values, q)) for q in QUANTILES},
        "mean": float(values.mean()),
        "count": int(values.size),
        "histogram": {"edges": edges.tolist(), "fraction": (counts / values.size).tolist()},
        "half_life_median": half_life(median),
    }

"""Recall against lag with a linear read-out: how far back a memory's output still names a token.

An untrained memory cannot answer a recall task, but its output may still hold the past. This
probe measures how much, in the manner of Jaeger's memory capacity (Jaeger 2001, "Short term
memory in echo state networks"), with tokens in place of a scalar input:

1. sequences of ``T`` tokens drawn i.i.d. uniformly from ``V`` ids (``1 .. V``; ``V = 2`` by
   default, one bit per step as in Jaeger's binary inputs) are embedded and run through the
   subject: ``y = apply(embed(tokens)) [B, T, F]``;
2. at the read times ``r = max_lag .. T - 1`` (the same reads for every lag), a ridge decoder
   (:mod:`memjax.probes.ridge`) is fitted for every lag ``k = 0 .. max_lag`` from ``y_r`` to
   the token ``x_{r-k}`` on ``train`` sequences;
3. ``accuracy(k)`` is its accuracy on ``test`` held-out sequences; chance is ``1 / V``.

From the normalised accuracy ``a(k) = (accuracy(k) - 1/V) / (1 - 1/V)`` (1: perfect, 0: chance):

* the **horizon** is the lag at which ``a`` first falls below 1/2, i.e. accuracy halfway from
  perfect recall to chance, linearly interpolated between the two lags around the crossing;
  0 when the shortest lag measured is already below, and ``censored`` (the longest lag
  measured, a lower bound) when it never falls;
* the **capacity** is ``sum_k a(k)``, tokens' worth of recall, the discrete counterpart of
  Jaeger's ``MC = sum_k r_k^2``; a linear read-out of ``F`` features bounds it.

The decoder reads the subject's output ``y`` (width ``F = hidden`` for every memory), not its
internal state, so every mixer is read through the same width.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memjax.probes import ridge
from memjax.probes.subjects import Subject

HALF = 0.5


def horizon(lags: np.ndarray, normalised: np.ndarray) -> tuple[float, bool]:
    """``(lag where normalised accuracy first falls below 1/2, censored)`` (module docstring)."""
    below = np.flatnonzero(normalised < HALF)
    if not below.size:
        return float(lags[-1]), True
    i = int(below[0])
    if i == 0:
        return 0.0, False
    a0, a1 = normalised[i - 1], normalised[i]
    fraction = (a0 - HALF) / (a0 - a1)
    return float(lags[i - 1] + fraction * (lags[i] - lags[i - 1])), False


def normalise(accuracy: np.ndarray, chance: float) -> np.ndarray:
    """``(accuracy - chance) / (1 - chance)``: 1 for perfect recall, 0 at chance."""
    return (np.asarray(accuracy) - chance) / (1.0 - chance)


def curve(lags: np.ndarray, accuracy: np.ndarray, chance: float) -> dict[str, Any]:
    """JSON record of accuracy against lag with its horizon and capacity."""
    normalised = normalise(accuracy, chance)
    reach, censored = horizon(lags, normalised)
    return {
        "lags": np.asarray(lags).tolist(),
        "accuracy": np.asarray(accuracy).tolist(),
        "chance": chance,
        "horizon": reach,
        "censored": censored,
        "capacity": float(normalised.sum()),
    }


def features(subject: Subject, tokens: np.ndarray) -> np.ndarray:
    """``apply(embed(tokens))`` as float64 numpy ``[B, T, F]``."""
    fn = jax.jit(lambda p, t: subject.apply(p, subject.embed(p, t)))
    return np.asarray(fn(subject.params, jnp.asarray(tokens)), np.float64)


def lagged(ys: np.ndarray, tokens: np.ndarray, lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Read-time features ``[B R, F]`` and the token at every lag before them ``[B R, K]``."""
    reads = np.arange(lags[-1], tokens.shape[1])
    x = ys[:, reads].reshape(-1, ys.shape[-1])
    z = np.stack([tokens[:, reads - k] for k in lags], axis=-1).reshape(-1, len(lags))
    return x, z


def ridge_recall(
    subject: Subject,
    *,
    length: int,
    vocab: int = 2,
    max_lag: int | None = None,
    train: int = 32,
    test: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy of a linear read-out against lag, horizon and capacity (module docstring).

    ``max_lag`` defaults to ``length // 2``; ids ``1 .. vocab`` must be valid for the subject.
    """
    max_lag = length // 2 if max_lag is None else max_lag
    if not 0 <= max_lag < length:
        raise ValueError(f"max_lag={max_lag} must lie in [0, length={length})")
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, vocab + 1, size=(train + test, length))
    ys = features(subject, tokens)
    lags = np.arange(max_lag + 1)
    x_train, z_train = lagged(ys[:train], tokens[:train] - 1, lags)
    x_test, z_test = lagged(ys[train:], tokens[train:] - 1, lags)
    decoder = ridge.fit(x_train, z_train, vocab)
    accuracy = (decoder.predict(x_test) == z_test).mean(axis=0)
    return {"probe": "ridge", "vocab": vocab, **curve(lags, accuracy, 1.0 / vocab)}

"""Capacity and cost: key-value pairs recalled against state size, state bytes against length.

**Associative capacity with a linear read-out** (untrained memories). A multi-query associative
recall (MQAR, Arora et al. 2023) probe of ``K`` pairs, laid out in ``L = 3 K_max`` steps::

    . . . . . .  k_1 v_1 k_2 v_2 ... k_K v_K  q_1 q_2 ... q_K
    filler (3 (K_max - K) steps)               queries: the K keys in random order

with distinct keys from ``n_keys = 2 K_max`` ids and distinct values from ``n_values = 2 K_max``
ids. A ridge decoder (:mod:`memjax.probes.ridge`) per ``K`` maps the subject's output at each
query to the value bound to the queried key, fitted on ``train`` sequences and scored on
``test`` ones. Pairs recalled ``= K (accuracy - c) / (1 - c)`` with ``c = 1 / n_values``; the
capacity is its maximum over ``K = 1, 2, 4, .., K_max``. A read-out that is linear in the output
cannot bind a key to its value by itself, so what it recalls is what the memory computed.

**State bytes against length**: ``memory.state_bytes(params, L)`` summed over layers: constant
for a recurrent state, ``2 L heads head_dim 4`` bytes per layer for attention's KV cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memjax.probes import ridge
from memjax.probes.recall import features, normalise
from memjax.probes.subjects import Subject

FILLER = 1


def pair_counts(k_max: int) -> list[int]:
    """``1, 2, 4, ..`` up to and including ``k_max``."""
    counts = [2**i for i in range(k_max.bit_length()) if 2**i < k_max]
    return [*counts, k_max]


def associative_sequences(
    rng: np.random.Generator, pairs: int, k_max: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` probe sequences ``int [count, 3 k_max]`` and their answers ``[count, pairs]``.

    Ids: ``FILLER``, keys ``2 .. 2 + 2 k_max``, values after them; answers are value indices.
    """
    n = 2 * k_max
    first_key, first_value = FILLER + 1, FILLER + 1 + n
    tokens = np.full((count, 3 * k_max), FILLER, dtype=np.int32)
    answers = np.zeros((count, pairs), dtype=np.int32)
    start = 3 * (k_max - pairs)
    for row in range(count):
        keys = rng.choice(n, size=pairs, replace=False)
        values = rng.choice(n, size=pairs, replace=False)
        order = rng.permutation(pairs)
        tokens[row, start : start + 2 * pairs : 2] = first_key + keys
        tokens[row, start + 1 : start + 2 * pairs : 2] = first_value + values
        tokens[row, start + 2 * pairs :] = first_key + keys[order]
        answers[row] = values[order]
    return tokens, answers


def query_accuracy(ys: np.ndarray, answers: np.ndarray, train: int, classes: int) -> float:
    """Held-out accuracy of a ridge read-out from the outputs at the last ``K`` steps (the
    queries) of ``ys [n, L, F]`` to their ``answers [n, K]``, fitted on the first ``train``."""
    k = answers.shape[1]
    x = ys[:, -k:].reshape(len(ys), k, -1)
    decoder = ridge.fit(x[:train].reshape(train * k, -1), answers[:train].reshape(-1, 1), classes)
    predicted = decoder.predict(x[train:].reshape(-1, x.shape[-1]))[:, 0]
    return float((predicted == answers[train:].reshape(-1)).mean())


def associative_capacity(
    subject: Subject, *, k_max: int = 8, train: int = 128, test: int = 64, seed: int = 0
) -> dict[str, Any]:
    """Pairs recalled against ``K`` by a ridge read-out of ``subject`` (module docstring)."""
    rng = np.random.default_rng(seed)
    ks = pair_counts(k_max)
    batches = [associative_sequences(rng, k, k_max, train + test) for k in ks]
    outputs = np.split(features(subject, np.concatenate([t for t, _ in batches])), len(ks))
    accuracy = [
        query_accuracy(ys, answers, train, 2 * k_max)
        for ys, (_, answers) in zip(outputs, batches, strict=True)
    ]
    chance = 1.0 / (2 * k_max)
    pairs = [k * float(a) for k, a in zip(ks, normalise(accuracy, chance), strict=True)]
    length = 3 * k_max
    return {
        "probe": "ridge",
        "length": length,
        "state_bytes": subject.state_bytes(length),
        "pairs_per_sequence": ks,
        "accuracy": accuracy,
        "chance": chance,
        "pairs_recalled": pairs,
        "capacity": max(pairs),
    }


def lengths_grid(length: int) -> list[int]:
    """Powers of two from 16 to 16 times ``length`` (rounded up to a power of two)."""
    top = max(16, 16 * 2 ** int(np.ceil(np.log2(length))))
    return [2**i for i in range(4, top.bit_length())]


def memory_bytes(subject: Subject, lengths: list[int]) -> list[int]:
    """State bytes one sequence holds after each of ``lengths`` steps."""
    return [int(subject.state_bytes(n)) for n in lengths]

"""Recall of a run's model on its own task, against the distance between writing and reading.

Runs of the copy and MQAR tasks are probed on fresh examples of their task (the generator the
run trained on, with the run's options and a probe seed), read through the model's own head:

* **copy**: for lags ``l`` on a grid up to the run's lag, copy examples of that lag (padded to
  the run's length). Symbol ``i`` is written at step ``i`` and read at ``l + c + i``, so every
  symbol of an example travels the distance ``d = l + c`` (``c`` = copy_length); accuracy at
  ``d`` is over all ``c`` read positions; chance is ``1 / num_symbols``.
* **mqar**: the value of pair ``i`` is written at step ``2 i + 1`` and read when key ``i`` is
  queried at step ``q_i``: ``d = q_i - (2 i + 1)``. Queries are pooled into distance bins
  ``[1, 2), [2, 4), [4, 8), ..``; each bin's accuracy sits at its mean distance. Chance is
  ``1 / n_values`` (``n_values = vocab_size - vocab_size // 2``).

Horizon and capacity follow :func:`memjax.probes.recall.curve`, with distances as lags.

**MQAR capacity** (trained): accuracy at every query of examples with ``K = 1, 2, 4, ..`` pairs
at the run's length (``K <= length / 4`` and ``K <= vocab_size / 2 - 2``, the generator's
limits); pairs recalled ``= K (accuracy - c) / (1 - c)``, capacity its maximum over ``K``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from memjax.probes.capacity import pair_counts
from memjax.probes.recall import curve, normalise
from memjax.probes.subjects import Subject
from memjax.tasks import copying, mqar

CHUNK = 32


def generator_options(generate: Callable[..., dict], options: dict[str, Any]) -> dict[str, Any]:
    """The task options ``generate`` takes (the generator's keyword arguments)."""
    names = set(inspect.signature(generate).parameters) - {"rng"}
    return {k: v for k, v in options.items() if k in names}


def examples(
    generate: Callable[..., dict], options: dict[str, Any], count: int, length: int, seed: int
) -> dict[str, np.ndarray]:
    """``count`` generated examples, each array right-padded with zeros to ``length``."""
    rng = np.random.default_rng(seed)
    rows = [generate(rng, **options) for _ in range(count)]
    pad = lambda a: np.pad(a, (0, length - len(a)))
    return {key: np.stack([pad(row[key]) for row in rows]) for key in rows[0]}


def predictions(subject: Subject, inputs: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """The model's argmax class at every position, ``int [B, T]``, ``chunk`` rows per call
    (one compiled shape; the logits of a large vocabulary never exist for the whole batch)."""
    rows = len(inputs)
    padded = np.pad(inputs, ((0, -rows % chunk), (0, 0))).astype(np.int32)
    parts = np.split(padded, len(padded) // chunk)
    return np.concatenate([np.asarray(subject.predict(subject.params, p)) for p in parts])[:rows]


def copy_recall(subject: Subject, count: int, seed: int) -> dict[str, Any]:
    """Copy accuracy against distance ``l + copy_length`` (module docstring)."""
    options = generator_options(copying.generate, subject.task_options)
    lags = np.unique(np.linspace(1, options["lag"], 8).round().astype(int))
    batches = [
        examples(copying.generate, {**options, "lag": int(lag)}, count, subject.max_length, seed)
        for lag in lags
    ]
    inputs = np.concatenate([b["inputs"] for b in batches])
    correct = predictions(subject, inputs) == np.concatenate([b["targets"] for b in batches])
    mask = np.concatenate([b["loss_mask"] for b in batches])
    per_lag = np.split(np.where(mask, correct, False).sum(axis=1) / mask.sum(axis=1), len(lags))
    accuracy = np.array([part.mean() for part in per_lag])
    distances = lags + options["copy_length"]
    return {"probe": "copy", **curve(distances, accuracy, 1.0 / options["num_symbols"])}


def query_distances(inputs: np.ndarray, mask: np.ndarray, pairs: int) -> np.ndarray:
    """Distance from each query (row-major over ``mask``) back to its pair's value."""
    rows, steps = np.nonzero(mask)
    keys = inputs[:, 0 : 2 * pairs : 2]
    index = np.argmax(keys[rows] == inputs[rows, steps][:, None], axis=1)
    return steps - (2 * index + 1)


def mqar_examples(subject: Subject, pairs: int, count: int, seed: int) -> dict[str, np.ndarray]:
    """``count`` examples of the run's MQAR with ``pairs`` key-value pairs."""
    options = {**generator_options(mqar.generate, subject.task_options), "num_kv_pairs": pairs}
    return examples(mqar.generate, options, count, subject.max_length, seed)


def mqar_chance(subject: Subject) -> float:
    """``1 / n_values`` of the run's MQAR vocabulary."""
    vocab = subject.task_options["vocab_size"]
    return 1.0 / (vocab - vocab // 2)


def mqar_recall(subject: Subject, count: int, seed: int) -> dict[str, Any]:
    """MQAR accuracy against write-read distance, in power-of-two bins (module docstring)."""
    pairs = subject.task_options["num_kv_pairs"]
    batch = mqar_examples(subject, pairs, count, seed)
    mask = batch["loss_mask"]
    hits = (predictions(subject, batch["inputs"]) == batch["targets"])[mask]
    distances = query_distances(batch["inputs"], mask, pairs)
    bins = np.floor(np.log2(np.maximum(distances, 1))).astype(int)
    centres, accuracy = [], []
    for b in np.unique(bins):
        centres.append(float(distances[bins == b].mean()))
        accuracy.append(float(hits[bins == b].mean()))
    return {"probe": "mqar", **curve(np.array(centres), np.array(accuracy), mqar_chance(subject))}


def task_recall(subject: Subject, count: int = 64, seed: int = 0) -> dict[str, Any] | None:
    """Recall against distance on the run's own task; None unless it is a copy or MQAR run."""
    if subject.task == "copy":
        return copy_recall(subject, count, seed)
    if subject.task == "mqar":
        return mqar_recall(subject, 4 * count, seed)
    return None


def mqar_capacity(subject: Subject, count: int = 128, seed: int = 0) -> dict[str, Any] | None:
    """Pairs recalled against ``K`` by a trained MQAR model (module docstring); None otherwise."""
    if subject.task != "mqar":
        return None
    length, vocab = subject.max_length, subject.task_options["vocab_size"]
    ks = pair_counts(min(length // 4, vocab // 2 - 2))
    batches = [mqar_examples(subject, k, count, seed) for k in ks]
    inputs = np.concatenate([b["inputs"] for b in batches])
    correct = np.split(predictions(subject, inputs), len(ks))
    accuracy = [
        float((c == b["targets"])[b["loss_mask"]].mean())
        for c, b in zip(correct, batches, strict=True)
    ]
    chance = mqar_chance(subject)
    pairs = [k * float(a) for k, a in zip(ks, normalise(accuracy, chance), strict=True)]
    return {
        "probe": "mqar",
        "length": length,
        "state_bytes": subject.state_bytes(length),
        "pairs_per_sequence": ks,
        "accuracy": accuracy,
        "chance": chance,
        "pairs_recalled": pairs,
        "capacity": max(pairs),
    }

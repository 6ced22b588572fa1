"""Multi-query associative recall, MQAR (Arora et al. 2023, Zoology).

A sequence starts with ``num_kv_pairs`` key-value pairs ``k1 v1 k2 v2 ...`` (distinct keys from
the lower half of the vocabulary, distinct values from the upper half). Every key is then queried
once, at a position drawn from a power law over the gaps (``power_a``, 0.01 as in Zoology, favours
short gaps); at a query position the target is the value bound to that key. Other positions
hold random tokens (Zoology's ``random_non_queries``) or, with ``random_non_queries=False``,
the filler id. Zoology varies length 64..512 and pairs 4..64 with vocabulary 8192.

Ids: 0 padding, 1 filler ``.``, keys ``k2 .. k{vocab_size//2 - 1}``, values
``v{vocab_size//2} .. v{vocab_size - 1}``.
"""

from __future__ import annotations

import functools

import numpy as np

from memjax.tasks.checks import check_float, check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder

FILLER, FIRST_KEY = 1, 2


def generate(
    rng: np.random.Generator,
    *,
    vocab_size: int,
    length: int,
    num_kv_pairs: int,
    power_a: float,
    random_non_queries: bool,
) -> dict:
    """One example: inputs, targets int32 [length], loss_mask bool [length] (query positions)."""
    first_value = vocab_size // 2
    keys = rng.choice(np.arange(FIRST_KEY, first_value), size=num_kv_pairs, replace=False)
    values = rng.choice(np.arange(first_value, vocab_size), size=num_kv_pairs, replace=False)
    context = 2 * num_kv_pairs
    space = (length - context) // 2
    p = power_a * np.arange(1, space + 1) ** (power_a - 1)
    gaps = rng.choice(space, size=num_kv_pairs, replace=False, p=p / p.sum())
    if random_non_queries:
        inputs = rng.integers(FIRST_KEY, vocab_size, size=length).astype(np.int32)
    else:
        inputs = np.full(length, FILLER, dtype=np.int32)
    inputs[0:context:2] = keys
    inputs[1:context:2] = values
    queries = context + 2 * gaps
    inputs[queries] = keys
    targets = np.zeros(length, dtype=np.int32)
    targets[queries] = values
    loss_mask = np.zeros(length, dtype=bool)
    loss_mask[queries] = True
    return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}


def make(
    *,
    vocab_size: int = 8192,
    length: int = 256,
    num_kv_pairs: int = 16,
    power_a: float = 0.01,
    random_non_queries: bool = True,
    seed: int = 0,
    num_train: int = 100_000,
    num_validation: int = 3_000,
    num_test: int = 3_000,
) -> Task:
    """MQAR with Zoology's generator; requires ``4 * num_kv_pairs <= length``."""
    check_int("num_kv_pairs", num_kv_pairs, 1)
    check_int("length", length, 4 * num_kv_pairs)
    check_int("vocab_size", vocab_size, 2 * (num_kv_pairs + FIRST_KEY))
    check_float("power_a", power_a, 1e-6, 1.0)
    if not isinstance(random_non_queries, bool):
        raise ValueError(f"random_non_queries={random_non_queries!r}; expected True or False")
    check_int("seed", seed, 0)
    sizes = split_sizes(num_train, num_validation, num_test)
    params = {
        "vocab_size": vocab_size,
        "length": length,
        "num_kv_pairs": num_kv_pairs,
        "power_a": power_a,
        "random_non_queries": random_non_queries,
    }
    first_value = vocab_size // 2
    names = ["<pad>", "."] + [
        f"k{i}" if i < first_value else f"v{i}" for i in range(FIRST_KEY, vocab_size)
    ]
    spec = TaskSpec(
        name="mqar",
        input_kind="tokens",
        vocab_size=vocab_size,
        max_length=length,
        num_classes=vocab_size,
        target="per_position",
        metric="accuracy",
        decode=TokenDecoder(names, compress=[FILLER]),
    )
    gen = functools.partial(generate, **params)
    return Task(spec, lambda split: GeneratedSource("mqar", split, sizes[split], seed, gen, params))

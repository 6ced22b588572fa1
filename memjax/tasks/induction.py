"""Induction heads (Fu et al. 2023, H3, Table 2): recall the token that followed a trigger.

``length`` random symbols contain one trigger token at a random position p < length - 1; the
sequence then ends with the trigger again, and the target at that last position is the symbol
at p + 1. Loss mask: the last position only. H3's setting: 20 symbols, length 30 (chance 5%).

Ids: 0 padding, 1 trigger ``>``, 2.. the symbols ``s0, s1, ...``.
"""

from __future__ import annotations

import functools

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder

TRIGGER, FIRST_SYMBOL = 1, 2


def generate(rng: np.random.Generator, *, length: int, num_symbols: int) -> dict:
    """One example: inputs, targets int32 [length + 1], loss_mask bool [length + 1]."""
    inputs = np.empty(length + 1, dtype=np.int32)
    inputs[:length] = rng.integers(FIRST_SYMBOL, FIRST_SYMBOL + num_symbols, size=length)
    trigger_at = rng.integers(0, length - 1)
    inputs[trigger_at] = TRIGGER
    inputs[length] = TRIGGER
    targets = np.zeros_like(inputs)
    targets[length] = inputs[trigger_at + 1]
    loss_mask = np.zeros(inputs.shape, dtype=bool)
    loss_mask[length] = True
    return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}


def make(
    *,
    length: int = 30,
    num_symbols: int = 20,
    seed: int = 0,
    num_train: int = 100_000,
    num_validation: int = 2_000,
    num_test: int = 2_000,
) -> Task:
    """Induction heads; sequences are ``length + 1`` long (the final trigger is the query)."""
    check_int("length", length, 2)
    check_int("num_symbols", num_symbols, 1)
    check_int("seed", seed, 0)
    sizes = split_sizes(num_train, num_validation, num_test)
    params = {"length": length, "num_symbols": num_symbols}
    names = ["<pad>", ">"] + [f"s{i}" for i in range(num_symbols)]
    spec = TaskSpec(
        name="induction",
        input_kind="tokens",
        vocab_size=len(names),
        max_length=length + 1,
        num_classes=len(names),
        target="per_position",
        metric="accuracy",
        decode=TokenDecoder(names),
    )
    gen = functools.partial(generate, **params)
    return Task(
        spec, lambda split: GeneratedSource("induction", split, sizes[split], seed, gen, params)
    )

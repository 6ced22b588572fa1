"""Selective copying (Gu & Dao 2023, Mamba; the variable-spacing copy task of the S4 code).

``num_memorize`` random symbols sit at random sorted positions among ``length`` positions that
are otherwise noise (blank); then ``num_memorize`` markers follow, at which the model must output
the symbols in their order of appearance. Targets and loss mask are set on the marker positions.
Mamba's setting: length 4096, 16 symbols to memorize, vocabulary 16.

Ids: 0 padding, 1 noise ``_``, 2 marker ``?``, 3.. the symbols ``s0, s1, ...``.
"""

from __future__ import annotations

import functools

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder

NOISE, MARKER, FIRST_SYMBOL = 1, 2, 3


def generate(rng: np.random.Generator, *, length: int, num_memorize: int, num_symbols: int) -> dict:
    """One example: inputs, targets int32 [length + num_memorize], loss_mask bool [same]."""
    symbols = rng.integers(FIRST_SYMBOL, FIRST_SYMBOL + num_symbols, size=num_memorize)
    positions = np.sort(rng.choice(length, size=num_memorize, replace=False))
    inputs = np.full(length + num_memorize, NOISE, dtype=np.int32)
    inputs[positions] = symbols
    inputs[length:] = MARKER
    targets = np.zeros_like(inputs)
    targets[length:] = symbols
    loss_mask = np.zeros(inputs.shape, dtype=bool)
    loss_mask[length:] = True
    return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}


def make(
    *,
    length: int = 4096,
    num_memorize: int = 16,
    num_symbols: int = 16,
    seed: int = 0,
    num_train: int = 100_000,
    num_validation: int = 2_000,
    num_test: int = 2_000,
) -> Task:
    """Selective copying; sequences are ``length + num_memorize`` long."""
    check_int("num_memorize", num_memorize, 1)
    check_int("length", length, num_memorize)
    check_int("num_symbols", num_symbols, 1)
    check_int("seed", seed, 0)
    sizes = split_sizes(num_train, num_validation, num_test)
    params = {"length": length, "num_memorize": num_memorize, "num_symbols": num_symbols}
    names = ["<pad>", "_", "?"] + [f"s{i}" for i in range(num_symbols)]
    spec = TaskSpec(
        name="selective_copy",
        input_kind="tokens",
        vocab_size=len(names),
        max_length=length + num_memorize,
        num_classes=len(names),
        target="per_position",
        metric="accuracy",
        decode=TokenDecoder(names, compress=[NOISE]),
    )
    gen = functools.partial(generate, **params)
    return Task(
        spec,
        lambda split: GeneratedSource("selective_copy", split, sizes[split], seed, gen, params),
    )

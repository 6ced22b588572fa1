"""Copy task (Arjovsky, Shah & Bengio 2016): reproduce a short sequence after a long blank lag.

Input (length ``lag + 2 * copy_length``): ``copy_length`` random symbols, ``lag - 1`` blanks, a
delimiter, then ``copy_length`` blanks during which the model must output the symbols in order.
Targets and the loss mask are set on those last ``copy_length`` positions only.

Ids: 0 padding, 1 blank ``_``, 2 delimiter ``|``, 3.. the symbols ``s0, s1, ...``.
"""

from __future__ import annotations

import functools

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder

BLANK, DELIMITER, FIRST_SYMBOL = 1, 2, 3


def generate(rng: np.random.Generator, *, lag: int, copy_length: int, num_symbols: int) -> dict:
    """One example: inputs, targets int32 [lag + 2 * copy_length], loss_mask bool [same]."""
    symbols = rng.integers(FIRST_SYMBOL, FIRST_SYMBOL + num_symbols, size=copy_length)
    length = lag + 2 * copy_length
    inputs = np.full(length, BLANK, dtype=np.int32)
    inputs[:copy_length] = symbols
    inputs[lag + copy_length - 1] = DELIMITER
    targets = np.zeros(length, dtype=np.int32)
    targets[-copy_length:] = symbols
    loss_mask = np.zeros(length, dtype=bool)
    loss_mask[-copy_length:] = True
    return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}


def make(
    *,
    lag: int = 100,
    copy_length: int = 10,
    num_symbols: int = 8,
    seed: int = 0,
    num_train: int = 100_000,
    num_validation: int = 2_000,
    num_test: int = 2_000,
) -> Task:
    """The copy task; ``lag`` is T in Arjovsky et al. (they report T = 100, 200, 500, 1000)."""
    check_int("lag", lag, 1)
    check_int("copy_length", copy_length, 1)
    check_int("num_symbols", num_symbols, 1)
    check_int("seed", seed, 0)
    sizes = split_sizes(num_train, num_validation, num_test)
    params = {"lag": lag, "copy_length": copy_length, "num_symbols": num_symbols}
    names = ["<pad>", "_", "|"] + [f"s{i}" for i in range(num_symbols)]
    spec = TaskSpec(
        name="copy",
        input_kind="tokens",
        vocab_size=len(names),
        max_length=lag + 2 * copy_length,
        num_classes=len(names),
        target="per_position",
        metric="accuracy",
        decode=TokenDecoder(names, compress=[BLANK]),
    )
    gen = functools.partial(generate, **params)
    return Task(spec, lambda split: GeneratedSource("copy", split, sizes[split], seed, gen, params))

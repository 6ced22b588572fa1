"""Multi-query associative recall, MQAR (Arora et al. 2023, Zoology).

Source: HazyResearch/zoology ``zoology/data/multiquery_ar.py`` (``multiquery_ar``), the
generator behind the paper's Figure 2. Layout of one example of ``length`` tokens:

* positions ``0 .. 2K-1`` (``K = num_kv_pairs``): ``k1 v1 k2 v2 ...``, K distinct keys drawn
  without replacement from the key half of the vocabulary, K distinct values from the value half;
* every key is then queried exactly once: with ``space = (length - 2K) // 2``, K distinct gaps
  ``g`` are drawn from ``0 .. space-1`` with ``P(g) ~ power_a * (g + 1) ** (power_a - 1)``
  (``power_a`` 0.01 favours short gaps), and key i is written at position ``2K + 2 g_i``;
* the target at a query position is the value bound to its key (Zoology's labels, shifted one
  step as in its ``labels[:, 1:]``); the loss mask is the K query positions;
* every other position holds the filler ``.`` (Zoology's token 0) or, with
  ``random_non_queries=True``, a token drawn uniformly from filler, keys and values (Zoology's
  ``torch.randint(vocab_size)`` over its ids ``0 .. vocab_size-1``), so a key may then also
  appear at a non-query position as a decoy.

Ids: 0 padding, 1 filler ``.``, keys ``k2 .. k{vocab_size//2 - 1}``, values
``v{vocab_size//2} .. v{vocab_size - 1}``. Zoology's ids are filler 0, keys
``1 .. vocab_size//2 - 1``, values ``vocab_size//2 .. vocab_size - 1``: memjax keeps id 0 for
padding, so it has one key fewer (4094 instead of 4095 at vocabulary 8192) and random tokens are
drawn from ``vocab_size - 1`` ids instead of ``vocab_size``; everything else has Zoology's law.

``random_non_queries`` defaults to True, Zoology's own default (``MQARConfig`` and
``multiquery_ar`` in that file), so the option means what it means there; Figure 2 sets it to
False (``FIGURE2`` below), and ``configs/mqar.py`` and ``memjax table synthetic`` use that.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from memjax.tasks.checks import check_float, check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder

FILLER, FIRST_KEY = 1, 2

FIGURE2 = ((64, 4, 512), (128, 8, 512), (256, 16, 256), (512, 64, 128))
"""Zoology's Figure 2, as ``(input_seq_len, num_kv_pairs, batch_size)``: HazyResearch/zoology
``zoology/experiments/paper/figure2.py`` (commit 66f4918, "Add instructions for reproducing"),
later moved to ``zoology/experiments/paper_configs/iclr24_zoology_figure2/configs.py``, where
``(512, 64)`` is now commented out. Both versions: vocabulary 8192, 100,000 training and 3,000
test examples, ``power_a`` 0.01, ``random_non_queries=False``, 64 epochs, widths 64..512,
learning rates ``np.logspace(-4, -2, 4)``; the figure plots each model's best learning rate."""
FIGURE2_VOCAB = 8192
FIGURE2_NUM_TRAIN, FIGURE2_NUM_TEST = 100_000, 3_000
FIGURE2_EPOCHS = 64
FIGURE2_WIDTHS = (64, 128, 256, 512)
FIGURE2_LRS = tuple(float(lr) for lr in np.logspace(-4, -2, 4))


def figure2_steps(batch_size: int) -> int:
    """Optimizer steps of Figure 2's 64 epochs over 100,000 examples at ``batch_size``
    (Zoology's loader keeps the last, partial batch)."""
    return FIGURE2_EPOCHS * math.ceil(FIGURE2_NUM_TRAIN / batch_size)


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
        inputs = rng.integers(FILLER, vocab_size, size=length).astype(np.int32)
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
        scored_positions=num_kv_pairs,  # every key is queried once
    )
    gen = functools.partial(generate, **params)
    return Task(spec, lambda split: GeneratedSource("mqar", split, sizes[split], seed, gen, params))

"""Associative recall (Fu et al. 2023, H3, Table 2): the value bound to the queried key.

Not MQAR (``memjax.tasks.mqar``): one query per sequence, keys repeat, and a small vocabulary.
Source: HazyResearch/safari ``src/dataloaders/synthetics.py`` (``generate_assoc_recall``,
``ICLDataModule`` with ``copy_method="assoc_recall"``, ``num_keys=1``, ``allow_dot=False``) under
``configs/experiment/synthetics/associative_recall/vocab_size_10.yaml`` (``vocab_size: 10``,
``input_seq_len: 20``). With ``n = vocab_size - 2`` content symbols (safari's ``vocab_size``
counts its special tokens ``=>`` and ``.``), the first ``n // 2`` are keys, the others values
(H3: 4 keys, 4 values). One example:

* a fresh map key -> value: each key gets a value drawn uniformly from the values, with
  replacement (two keys may share a value);
* ``length // 2`` pairs ``key value``, each key drawn uniformly from all keys, with replacement
  (H3: 10 pairs over 4 keys), each followed by its mapped value;
* the trigger ``=>`` and a query key: drawn uniformly from all keys; if that key is absent from
  the pairs (and ``allow_dot`` is False), redrawn once uniformly from the keys present;
* the target at the query key, the last input, is its value (``.`` for an absent key, only with
  ``allow_dot=True``).

Inputs are ``2 * (length // 2) + 2`` tokens (22 in H3). Safari trains a language model on
``example[:-1] -> example[1:]``: on the training split (``lm_loss=True``, the default) every
position is scored with the next token as its target; its test split (``test_tensor[:, 1, :-1] =
-100``, also its validation split) scores the last position only, as do memjax's validation and
test splits.

Chance (H3's "Random 25.0"): the answer is uniform over the values and independent of the query
key, so without reading the pairs no guess beats ``1 / (n - n // 2)``, one in 4.

Ids: 0 padding, 1 ``.``, 2 ``=>``, then keys ``k0 ..``, then values ``v0 ..``: safari's
``vocab_size`` tokens plus memjax's padding. Safari names its symbols by the strings
``"0" .. str(n - 1)`` and splits them in string order (the same as numeric order for n <= 10);
it also regenerates duplicates until its 5,000 training sequences are distinct, which memjax
does not (each example is drawn independently).
"""

from __future__ import annotations

import functools

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder

NOOP, TRIGGER, FIRST_KEY = 1, 2, 3


def key_value_ids(vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The key ids and the value ids of a vocabulary of ``vocab_size`` (safari's count)."""
    content = vocab_size - 2
    first_value = FIRST_KEY + content // 2
    return np.arange(FIRST_KEY, first_value), np.arange(first_value, FIRST_KEY + content)


def generate(
    rng: np.random.Generator,
    *,
    vocab_size: int,
    length: int,
    allow_dot: bool,
    lm_targets: bool,
) -> dict:
    """One example: inputs, targets int32 [2 * (length // 2) + 2], loss_mask bool [same].

    ``lm_targets``: next-token targets at every position (safari's training split); else the
    answer at the last position only (its test split)."""
    keys, values = key_value_ids(vocab_size)
    mapping = rng.choice(values, size=len(keys))  # value of keys[i], with replacement
    drawn = rng.integers(0, len(keys), size=length // 2)
    query = rng.integers(0, len(keys))
    present = np.zeros(len(keys), dtype=bool)
    present[drawn] = True
    if not allow_dot and not present[query]:
        query = rng.choice(np.flatnonzero(present))
    answer = mapping[query] if present[query] else NOOP
    sequence = np.empty(2 * len(drawn) + 3, dtype=np.int32)
    sequence[0 : 2 * len(drawn) : 2] = keys[drawn]
    sequence[1 : 2 * len(drawn) : 2] = mapping[drawn]
    sequence[-3:] = (TRIGGER, keys[query], answer)
    inputs = sequence[:-1].copy()
    last = len(inputs) - 1
    if lm_targets:
        targets = sequence[1:].copy()
        loss_mask = np.ones(inputs.shape, dtype=bool)
    else:
        targets = np.zeros_like(inputs)
        targets[last] = answer
        loss_mask = np.zeros(inputs.shape, dtype=bool)
        loss_mask[last] = True
    return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}


def make(
    *,
    vocab_size: int = 10,
    length: int = 20,
    allow_dot: bool = False,
    lm_loss: bool = True,
    seed: int = 0,
    num_train: int = 5_000,
    num_validation: int = 500,
    num_test: int = 500,
) -> Task:
    """H3's associative recall; inputs are ``2 * (length // 2) + 2`` tokens long."""
    check_int("vocab_size", vocab_size, 4)
    check_int("length", length, 2)
    for name, value in (("allow_dot", allow_dot), ("lm_loss", lm_loss)):
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r}; expected True or False")
    check_int("seed", seed, 0)
    sizes = split_sizes(num_train, num_validation, num_test)
    params = {"vocab_size": vocab_size, "length": length, "allow_dot": allow_dot}
    keys, values = key_value_ids(vocab_size)
    names = ["<pad>", ".", "=>"] + [f"k{i}" for i in range(len(keys))]
    names += [f"v{i}" for i in range(len(values))]
    spec = TaskSpec(
        name="associative_recall",
        input_kind="tokens",
        vocab_size=len(names),
        max_length=2 * (length // 2) + 2,
        num_classes=len(names),
        target="per_position",
        metric="accuracy",
        decode=TokenDecoder(names),
    )

    def source(split: str) -> GeneratedSource:
        split_params = {**params, "lm_targets": lm_loss and split == "train"}
        gen = functools.partial(generate, **split_params)
        return GeneratedSource("associative_recall", split, sizes[split], seed, gen, split_params)

    return Task(spec, source)

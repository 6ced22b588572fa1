"""Induction heads (Fu et al. 2023, H3, Table 2): recall the token that followed a trigger.

Source: HazyResearch/safari ``src/dataloaders/synthetics.py`` (``generate_induction_head``,
``ICLDataModule`` with ``copy_method="induction_head"``, ``induction_len=1``,
``induction_num_triggers=1``) under ``configs/pipeline/induction_head.yaml`` (``vocab_size: 20``,
``input_seq_len: 30``). Layout of one example, ``length + 1`` inputs (31 in H3):

* ``length`` body symbols drawn uniformly, with replacement, from ``num_symbols`` content
  symbols (safari's ``vocab_size`` 20 counts its two special tokens ``=>`` and ``.``: 18);
* the body position ``p`` drawn uniformly from ``0 .. length - 3`` (safari's
  ``rng.integers(input_seq_len - 2)``: 0..27 in H3) is overwritten with the trigger ``=>``; the
  symbol after it, at ``p + 1`` (``1 .. length - 2``), is the answer;
* the last input, at position ``length``, is the trigger again; its target is the answer.

Targets: safari trains a language model on ``example[:-1] -> example[1:]`` of the sequence
``body, =>, answer``, so on the training split (``lm_loss=True``, the default) every position is
scored with the next token as its target (``targets[t] = inputs[t + 1]``, the answer at the last
position). Its test split (``test_tensor[:, 1, :-1] = -100``; safari validates on the same
split) scores the last position only, as do memjax's validation and test splits. With
``lm_loss=False`` the training split also scores the last position only.

Chance: the answer is uniform over the ``num_symbols`` symbols (1/18 = 5.6%); H3's Table 2
prints "Random 5.0", one in its vocabulary of 20.

Ids: 0 padding, 1 ``.`` (safari's no-op token, never drawn here), 2 trigger ``=>``, 3.. the
symbols ``s0, s1, ...``: safari's vocabulary of ``num_symbols + 2`` tokens plus memjax's
padding. Safari also regenerates duplicate sequences until its 5,000 are distinct; memjax draws
each example independently (a duplicate among 18**29 bodies is vanishingly rare).
"""

from __future__ import annotations

import functools

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder

NOOP, TRIGGER, FIRST_SYMBOL = 1, 2, 3


def generate(rng: np.random.Generator, *, length: int, num_symbols: int, lm_targets: bool) -> dict:
    """One example: inputs, targets int32 [length + 1], loss_mask bool [length + 1].

    ``lm_targets``: next-token targets at every position (safari's training split); else the
    answer at the last position only (its test split)."""
    sequence = np.empty(length + 2, dtype=np.int32)  # body, trigger, answer
    sequence[:length] = rng.integers(FIRST_SYMBOL, FIRST_SYMBOL + num_symbols, size=length)
    trigger_at = rng.integers(0, length - 2)
    sequence[trigger_at] = TRIGGER
    sequence[length] = TRIGGER
    sequence[length + 1] = sequence[trigger_at + 1]
    inputs = sequence[:-1].copy()
    if lm_targets:
        targets = sequence[1:].copy()
        loss_mask = np.ones(inputs.shape, dtype=bool)
    else:
        targets = np.zeros_like(inputs)
        targets[length] = sequence[length + 1]
        loss_mask = np.zeros(inputs.shape, dtype=bool)
        loss_mask[length] = True
    return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}


def make(
    *,
    length: int = 30,
    num_symbols: int = 18,
    lm_loss: bool = True,
    seed: int = 0,
    num_train: int = 5_000,
    num_validation: int = 500,
    num_test: int = 500,
) -> Task:
    """Induction heads; sequences are ``length + 1`` long (the final trigger is the query)."""
    check_int("length", length, 3)
    check_int("num_symbols", num_symbols, 1)
    if not isinstance(lm_loss, bool):
        raise ValueError(f"lm_loss={lm_loss!r}; expected True or False")
    check_int("seed", seed, 0)
    sizes = split_sizes(num_train, num_validation, num_test)
    params = {"length": length, "num_symbols": num_symbols}
    names = ["<pad>", ".", "=>"] + [f"s{i}" for i in range(num_symbols)]
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

    def source(split: str) -> GeneratedSource:
        split_params = {**params, "lm_targets": lm_loss and split == "train"}
        gen = functools.partial(generate, **split_params)
        return GeneratedSource("induction", split, sizes[split], seed, gen, split_params)

    return Task(spec, source)

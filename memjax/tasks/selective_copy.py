"""Selective copying (Gu & Dao 2023, Mamba, Table 1): copy the scattered data tokens in order.

Source: state-spaces/s4 ``src/dataloaders/datasets/copying.py`` (``torch_copying_data`` with
``variable=True``, the selective mode), whose alphabet of ``A`` tokens holds the noise token 0,
the data tokens ``1 .. A-2`` and the marker ``A-1``; Mamba's appendix E.1 gives the setting:
"sequences of length 4096, with a vocab size of 16 possible tokens (including the white 'noise'
token from Figure 2) and requiring models to memorize 16 'data' tokens". One example:

* ``num_memorize`` data tokens drawn uniformly, with replacement, from the ``vocab_size - 2``
  data symbols (14 at vocabulary 16: the vocabulary counts the noise token and the marker);
* their positions: a uniformly random ``num_memorize``-subset of the first ``length``
  positions, in sorted order (s4's ``randperm(L + M)[:M]`` sorted, with ``length = L + M``);
  every other of those positions is noise;
* then ``num_memorize`` markers, at which the targets are the data tokens in their order of
  appearance (s4's ``y``); the loss mask is the marker positions.

Ids: s4's plus one, for memjax's padding 0: 1 noise ``_``, ``2 .. vocab_size - 1`` the data
symbols ``s0, s1, ...``, ``vocab_size`` the marker ``?``.

Not verifiable from the sources: whether Mamba's "length 4096" is s4's ``l_noise`` (L), the
region ``L + M`` before the markers (memjax's ``length``, the default here), or the whole input
``L + 2M``; the selective copying code of the Mamba paper was never released (state-spaces/mamba
issue 343).
"""

from __future__ import annotations

import functools

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder

NOISE, FIRST_SYMBOL = 1, 2


def marker_id(vocab_size: int) -> int:
    """The marker's id: s4's ``A - 1``, plus one."""
    return vocab_size


def generate(rng: np.random.Generator, *, length: int, num_memorize: int, vocab_size: int) -> dict:
    """One example: inputs, targets int32 [length + num_memorize], loss_mask bool [same]."""
    symbols = rng.integers(FIRST_SYMBOL, marker_id(vocab_size), size=num_memorize)
    positions = np.sort(rng.choice(length, size=num_memorize, replace=False))
    inputs = np.full(length + num_memorize, NOISE, dtype=np.int32)
    inputs[positions] = symbols
    inputs[length:] = marker_id(vocab_size)
    targets = np.zeros_like(inputs)
    targets[length:] = symbols
    loss_mask = np.zeros(inputs.shape, dtype=bool)
    loss_mask[length:] = True
    return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}


def make(
    *,
    length: int = 4096,
    num_memorize: int = 16,
    vocab_size: int = 16,
    seed: int = 0,
    num_train: int = 100_000,
    num_validation: int = 2_000,
    num_test: int = 2_000,
) -> Task:
    """Selective copying; sequences are ``length + num_memorize`` long.

    ``vocab_size`` counts the noise token and the marker (s4's ``A``), so there are
    ``vocab_size - 2`` data symbols; the spec's vocabulary adds memjax's padding."""
    check_int("num_memorize", num_memorize, 1)
    check_int("length", length, num_memorize)
    check_int("vocab_size", vocab_size, 3)
    check_int("seed", seed, 0)
    sizes = split_sizes(num_train, num_validation, num_test)
    params = {"length": length, "num_memorize": num_memorize, "vocab_size": vocab_size}
    names = ["<pad>", "_"] + [f"s{i}" for i in range(vocab_size - 2)] + ["?"]
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

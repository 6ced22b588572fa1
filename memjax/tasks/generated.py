"""Sources whose example i of a split is a pure function of (seed, split, i)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from memjax.tasks.checks import check_int

SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The independent random stream of one example (PCG64 seeded by (seed, split, index))."""
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


def split_sizes(num_train: int, num_validation: int, num_test: int) -> dict[str, int]:
    """Checks and names the three split sizes."""
    sizes = {"train": num_train, "validation": num_validation, "test": num_test}
    for split, size in sizes.items():
        check_int(f"num_{split}", size, 1)
    return sizes


class GeneratedSource:
    """``len`` examples, example i drawn by ``generate(rng_i)`` with ``rng_i = example_rng(...)``.

    Args:
      name: task name, used in the example ids and the repr.
      split: split name.
      size: number of examples.
      seed: dataset seed.
      generate: maps an example's Generator to its dict of numpy arrays.
      params: the generation parameters, part of the repr (grain checks it on restore).
    """

    def __init__(
        self,
        name: str,
        split: str,
        size: int,
        seed: int,
        generate: Callable[[np.random.Generator], dict[str, Any]],
        params: dict[str, Any],
    ):
        self.name, self.split, self.size, self.seed = name, split, size, seed
        self.generate = generate
        self.params = params

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self!r}")
        example = self.generate(example_rng(self.seed, self.split, index))
        example["id"] = f"{self.name}/{self.split}/{index}"
        return example

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return (
            f"GeneratedSource({self.name}, split={self.split}, size={self.size}, "
            f"seed={self.seed}, {params})"
        )

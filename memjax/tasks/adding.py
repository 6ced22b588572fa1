"""Adding problem (Hochreiter & Schmidhuber 1997), in the form of Le et al. 2015 / Arjovsky 2016.

Each step carries two channels: a value drawn uniformly from [0, 1] and a marker. Exactly two
steps are marked, one in the first half and one in the second; the target is the sum of their
values (a regression scored by mean squared error; predicting 1 always gives MSE ~0.167).
"""

from __future__ import annotations

import functools

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.generated import GeneratedSource, split_sizes
from memjax.tasks.spec import Task, TaskSpec


def generate(rng: np.random.Generator, *, length: int) -> dict:
    """One example: inputs float32 [length, 2] (value, marker), label float32 (sum of marked)."""
    values = rng.uniform(0.0, 1.0, size=length)
    half = length // 2
    first, second = rng.integers(0, half), rng.integers(half, length)
    markers = np.zeros(length)
    markers[[first, second]] = 1.0
    inputs = np.stack([values, markers], axis=-1).astype(np.float32)
    return {"inputs": inputs, "label": np.float32(inputs[first, 0] + inputs[second, 0])}


def decode(inputs: np.ndarray) -> str:
    """The marked steps and their values, e.g. ``"len 200: x[17]=0.412 + x[150]=0.090"``."""
    inputs = np.asarray(inputs)
    marked = np.flatnonzero(inputs[:, 1] > 0.5)
    terms = " + ".join(f"x[{t}]={inputs[t, 0]:.3f}" for t in marked)
    return f"len {len(inputs)}: {terms}"


def make(
    *,
    length: int = 200,
    seed: int = 0,
    num_train: int = 100_000,
    num_validation: int = 2_000,
    num_test: int = 2_000,
) -> Task:
    """The adding problem over ``length`` steps (Arjovsky et al. use 100 to 750)."""
    check_int("length", length, 2)
    check_int("seed", seed, 0)
    sizes = split_sizes(num_train, num_validation, num_test)
    spec = TaskSpec(
        name="adding",
        input_kind="continuous",
        channels=2,
        max_length=length,
        num_classes=1,
        target="class",
        metric="mse",
        decode=decode,
    )
    gen = functools.partial(generate, length=length)
    params = {"length": length}
    return Task(
        spec, lambda split: GeneratedSource("adding", split, sizes[split], seed, gen, params)
    )

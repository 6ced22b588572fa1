"""MNIST-1D (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024).

Ten 1-D digit templates are padded, scaled, translated, sheared and noised into sequences of
40 real values; the label is the template's digit (10 classes). The data is the ``mnist1d``
package's own ``mnist1d.data.make_dataset`` with its default arguments
(``get_dataset_args()``: 5,000 examples, seed 42, the first 80% train): ``x`` [4000, 40] and
``y`` [4000] for training, ``x_test`` [1000, 40] and ``y_test`` [1000] for testing. The
repository's released ``mnist1d_data.pkl`` (greydanus/mnist1d at 7878d96), which its
benchmark notebook trains on, holds the same labels and inputs within 1e-15 of these.

Each step is one float channel (``inputs`` float32 [40, 1], as ``mnist``'s ``pixels=
"normalized"``). Validation is ``val_percent`` of the package's train rows, drawn from ``seed``;
the test split is the package's test set, untouched. ``shuffle_seq=True`` is the package's
own argument: one fixed permutation of the 40 positions applied to every example (the README's
"shuffle" rows). Generation takes about a second and is done once per process and setting;
nothing is downloaded (the package's ``get_dataset`` would fetch the pickle: it is not used).
"""

from __future__ import annotations

import functools
import random
from typing import Any

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.spec import Task, TaskSpec

LENGTH = 40  # get_dataset_args().final_seq_length
NUM_CLASSES = 10
ROWS = 9  # height of the decoder's plot


@functools.cache
def generate(shuffle_seq: bool) -> dict[str, np.ndarray]:
    """The package's default dataset, read-only: ``x`` float64 [4000, 40], ``y`` int64 [4000],
    ``x_test`` [1000, 40], ``y_test`` [1000].

    ``make_dataset`` seeds NumPy's and Python's global generators; their states are restored.
    """
    import mnist1d.data  # here, not at the top: it imports matplotlib.pyplot, scipy, requests

    args = mnist1d.data.get_dataset_args()  # a fresh ObjectView on every call
    args.shuffle_seq = shuffle_seq
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        dataset = mnist1d.data.make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    arrays = {key: np.array(dataset[key]) for key in ("x", "y", "x_test", "y_test")}
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def split_rows(num_train: int, num_test: int, val_percent: int, seed: int) -> dict[str, np.ndarray]:
    """Each split's rows of the package's arrays: ``val_percent`` of the ``num_train`` train rows
    (drawn from ``seed``) are validation, the rest train (both in the package's order); test is
    every row of the test set."""
    order = np.random.default_rng(seed).permutation(num_train)
    held = num_train * val_percent // 100
    return {
        "train": np.sort(order[held:]),
        "validation": np.sort(order[:held]),
        "test": np.arange(num_test),
    }


class Mnist1dSource:
    """One split: ``src[i] = {"inputs": float32 [40, 1], "label": int, "id"}``.

    ``rows[i]`` is example i's row in the package's ``x`` (train, validation) or ``x_test``.
    """

    def __init__(
        self, inputs: np.ndarray, labels: np.ndarray, rows: np.ndarray, split: str, settings: str
    ):
        self.inputs = inputs[rows].astype(np.float32)[..., None]
        self.labels = labels[rows].astype(np.int64)
        self.rows, self.split, self.settings = rows, split, settings

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self!r}")
        return {
            "inputs": self.inputs[index],
            "label": int(self.labels[index]),
            "id": f"mnist1d/{self.split}/{index}",
        }

    def __repr__(self) -> str:
        return f"Mnist1dSource({self.split}, size={len(self)}, {self.settings})"


def decode(inputs: np.ndarray) -> str:
    """A sequence as an ASCII plot: one column per step, the top row its largest value."""
    values = np.asarray(inputs, dtype=np.float64).reshape(-1)
    low, high = float(values.min()), float(values.max())
    levels = np.round((values - low) / max(high - low, 1e-12) * (ROWS - 1)).astype(int)
    rows = ["".join("*" if v == row else " " for v in levels) for row in range(ROWS - 1, -1, -1)]
    return f"len {len(values)}, values {low:.2f} .. {high:.2f}:\n" + "\n".join(rows)


def make(*, shuffle_seq: bool = False, val_percent: int = 10, seed: int = 0) -> Task:
    """MNIST-1D with ``val_percent`` of the training rows held out (drawn from ``seed``) and,
    with ``shuffle_seq``, the package's fixed shuffle of the 40 positions."""
    if not isinstance(shuffle_seq, bool):
        raise ValueError(f"shuffle_seq={shuffle_seq!r}; expected True or False")
    check_int("val_percent", val_percent, 1, 50)
    check_int("seed", seed, 0)
    spec = TaskSpec(
        name="mnist1d",
        input_kind="continuous",
        channels=1,
        max_length=LENGTH,
        num_classes=NUM_CLASSES,
        target="class",
        metric="accuracy",
        decode=decode,
    )
    settings = f"shuffle_seq={shuffle_seq}, val_percent={val_percent}, seed={seed}"

    def make_source(split: str) -> Mnist1dSource:
        arrays = generate(shuffle_seq)
        rows = split_rows(len(arrays["y"]), len(arrays["y_test"]), val_percent, seed)[split]
        if split == "test":
            return Mnist1dSource(arrays["x_test"], arrays["y_test"], rows, split, settings)
        return Mnist1dSource(arrays["x"], arrays["y"], rows, split, settings)

    return Task(spec, make_source)

"""Sequential MNIST and permuted MNIST (Le et al. 2015), from tfds ``mnist``.

The 28x28 image is read pixel by pixel (784 steps) in raster order, or in a fixed random order
drawn from ``permutation_seed`` (permuted MNIST). Pixels as tokens (pixel + 1) or floats
pixel / 255. Validation is the last 10% of train.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from memjax.tasks.checks import check_int
from memjax.tasks.pixels import encode_pixels, pixel_spec_fields
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.tfds_source import TfdsSource, split_expressions
from memjax.tasks.vocab import PixelDecoder

SIDE = 28


def permutation(seed: int) -> np.ndarray:
    """The fixed pixel order of permuted MNIST: int64 [784]."""
    return np.random.default_rng(seed).permutation(SIDE * SIDE)


@dataclasses.dataclass(frozen=True)
class MnistPixels:
    """tfds ``{"image": uint8 [28, 28, 1], "label"}`` -> ``{"inputs": [784] or [784, 1], "label"}``.

    ``permutation_seed`` None keeps raster order.
    """

    pixels: str
    permutation_seed: int | None = None
    order: np.ndarray | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seed = self.permutation_seed
        object.__setattr__(self, "order", None if seed is None else permutation(seed))

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        flat = np.asarray(record["image"]).reshape(-1)
        if self.order is not None:
            flat = flat[self.order]
        return {"inputs": encode_pixels(flat, self.pixels), "label": int(record["label"])}


class UnpermutedDecoder:
    """Draws a permuted-MNIST input in its original raster order."""

    def __init__(self, order: np.ndarray):
        self.order = order
        self.draw = PixelDecoder(SIDE)

    def __call__(self, inputs: np.ndarray) -> str:
        inputs = np.asarray(inputs)
        raster = np.empty_like(inputs)
        raster[self.order] = inputs
        return self.draw(raster)


def _make(
    name: str, pixels: str, val_percent: int, tfds_data_dir: str | None, seed: int | None
) -> Task:
    fields = pixel_spec_fields(pixels)
    check_int("val_percent", val_percent, 1, 99)
    convert = MnistPixels(pixels, seed)
    spec = TaskSpec(
        name=name,
        max_length=SIDE * SIDE,
        num_classes=10,
        target="class",
        metric="accuracy",
        decode=PixelDecoder(SIDE) if seed is None else UnpermutedDecoder(convert.order),
        **fields,
    )
    expressions = split_expressions(val_percent)
    return Task(spec, lambda split: TfdsSource("mnist", expressions[split], tfds_data_dir, convert))


def make(
    *, pixels: str = "tokens", val_percent: int = 10, tfds_data_dir: str | None = None
) -> Task:
    """Sequential MNIST; ``tfds_data_dir`` is the tfds data directory."""
    return _make("mnist", pixels, val_percent, tfds_data_dir, None)


def make_permuted(
    *,
    permutation_seed: int = 0,
    pixels: str = "tokens",
    val_percent: int = 10,
    tfds_data_dir: str | None = None,
) -> Task:
    """Permuted MNIST with the pixel order drawn from ``permutation_seed``."""
    check_int("permutation_seed", permutation_seed, 0)
    return _make("permuted_mnist", pixels, val_percent, tfds_data_dir, permutation_seed)

"""Image (LRA): CIFAR-10 in grayscale as a sequence of 1024 pixels, from tfds ``cifar10``.

Grayscale as ``tf.image.rgb_to_grayscale`` (what LRA used); pixels as tokens (pixel + 1) or as
floats pixel / 255 (``pixels="normalized"``). Validation is the last 10% of train, as in LRA.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from memjax.tasks.checks import check_int
from memjax.tasks.pixels import encode_pixels, pixel_spec_fields, rgb_to_gray
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.tfds_source import TfdsSource, split_expressions
from memjax.tasks.vocab import PixelDecoder


@dataclasses.dataclass(frozen=True)
class GrayPixels:
    """tfds ``{"image": uint8 [32, 32, 3], "label"}`` -> ``{"inputs", "label"}``.

    ``inputs`` is int32 [1024] (tokens) or float32 [1024, 1] (normalized).
    """

    pixels: str

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        gray = rgb_to_gray(record["image"])
        return {"inputs": encode_pixels(gray, self.pixels), "label": int(record["label"])}


def make(
    *, pixels: str = "tokens", val_percent: int = 10, tfds_data_dir: str | None = None
) -> Task:
    """CIFAR-10 grayscale sequences; ``tfds_data_dir`` is the tfds data directory."""
    fields = pixel_spec_fields(pixels)
    check_int("val_percent", val_percent, 1, 99)
    spec = TaskSpec(
        name="image",
        max_length=1024,
        num_classes=10,
        target="class",
        metric="accuracy",
        decode=PixelDecoder(32),
        **fields,
    )
    expressions = split_expressions(val_percent)
    return Task(
        spec,
        lambda split: TfdsSource("cifar10", expressions[split], tfds_data_dir, GrayPixels(pixels)),
    )

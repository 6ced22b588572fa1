"""Text (LRA): byte-level IMDb sentiment from tfds ``imdb_reviews``.

Inputs are UTF-8 bytes + 1 (0 is padding, vocabulary 257), labels 0 (negative) / 1 (positive).
LRA uses length 4096 (1000 also common) and truncates longer reviews, so pipelines for this
task pass ``truncate=True``; LRA also validates on the test split (``val_percent=0``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from memjax.tasks.checks import check_int
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.tfds_source import TfdsSource, split_expressions
from memjax.tasks.vocab import decode_bytes, encode_bytes


@dataclasses.dataclass(frozen=True)
class ReviewToBytes:
    """tfds ``{"text", "label"}`` -> ``{"inputs": int32 [n_bytes], "label": int}``."""

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"inputs": encode_bytes(record["text"]), "label": int(record["label"])}


def make(*, max_length: int = 4096, val_percent: int = 0, tfds_data_dir: str | None = None) -> Task:
    """IMDb at byte level; ``tfds_data_dir`` is the tfds data directory."""
    check_int("max_length", max_length, 1)
    check_int("val_percent", val_percent, 0, 99)
    spec = TaskSpec(
        name="text",
        input_kind="tokens",
        vocab_size=257,
        max_length=max_length,
        num_classes=2,
        target="class",
        metric="accuracy",
        decode=decode_bytes,
    )
    expressions = split_expressions(val_percent)
    return Task(
        spec,
        lambda split: TfdsSource(
            "imdb_reviews", expressions[split], tfds_data_dir, ReviewToBytes()
        ),
    )

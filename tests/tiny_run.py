"""The tiny MQAR run the trainer tests share: seconds on a CPU, six steps, two evaluations."""

from __future__ import annotations

from pathlib import Path

from memjax import config as config_lib

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    ("task.options.vocab_size", 16),
    ("task.options.length", 16),
    ("task.options.num_kv_pairs", 2),
    ("task.options.num_train", 256),
    ("task.options.num_validation", 32),
    ("task.options.num_test", 32),
    ("model.d_model", 16),
    ("train.batch_size", 8),
    ("train.steps", 6),
    ("train.eval_every", 3),
    ("train.checkpoint_every", 3),
    ("train.log_every", 2),
    ("parallel", "none"),
]
"""``(key, value)`` overrides of ``configs/mqar.py:VARIANT,smoke``."""

TINY_ARGS = [f"--config.{key}={value!r}" for key, value in TINY]
"""The same overrides as ``memjax train`` arguments."""


def tiny_config(variant: str = "lstm", extra=()):
    """The tiny run's config for ``variant``, with ``extra`` overrides after the tiny ones."""
    return config_lib.load(f"{ROOT}/configs/mqar.py:{variant},smoke", [*TINY, *extra])

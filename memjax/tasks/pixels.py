"""Grayscale images as sequences: pixel tokens (pixel + 1, vocabulary 257) or normalised floats."""

from __future__ import annotations

from typing import Any

import numpy as np

from memjax.tasks.checks import check_choice

PIXEL_KINDS = ("tokens", "normalized")
GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140])  # tf.image.rgb_to_grayscale, as LRA used


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [H, W], bit-exact with ``tf.image.rgb_to_grayscale`` on uint8."""
    gray = (image.astype(np.float32) / np.float32(255)) @ GRAY_WEIGHTS.astype(np.float32)
    return np.clip(gray * np.float32(255.5), 0, 255).astype(np.uint8)


def encode_pixels(gray: np.ndarray, kind: str) -> np.ndarray:
    """uint8 image [H, W] (or [H, W, 1]) in raster order -> int32 [H*W] or float32 [H*W, 1]."""
    flat = np.asarray(gray, dtype=np.uint8).reshape(-1)
    if kind == "tokens":
        return flat.astype(np.int32) + 1
    return (flat.astype(np.float32) / 255.0)[:, None]


def pixel_spec_fields(kind: str) -> dict[str, Any]:
    """The TaskSpec fields that depend on the pixel encoding."""
    check_choice("pixels", kind, PIXEL_KINDS)
    if kind == "tokens":
        return {"input_kind": "tokens", "vocab_size": 257}
    return {"input_kind": "continuous", "channels": 1}

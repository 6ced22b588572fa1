"""Closed-form ridge-regression decoders: the linear read-out probe of every recall measurement.

Features ``X [N, F]`` are standardised with the training set's mean and standard deviation
and a constant column is appended; one-hot targets ``Z [N, C]`` are fitted by

    W = (X^T X + lambda N I)^{-1} X^T Z,          prediction = argmax_c (X W)_c,

in float64. One solve serves many targets at once (every lag of a recall probe shares the
features and differs only in ``Z``). ``lambda`` (``RIDGE``) is relative to the mean squared
feature, which is 1 after standardising.
"""

from __future__ import annotations

import dataclasses

import numpy as np

RIDGE = 1e-3


@dataclasses.dataclass(frozen=True)
class Decoder:
    """A fitted read-out: ``predict(features) -> classes [N, ...]``."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    classes: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``[N, targets]`` argmax classes of ``features [N, F]``."""
        scores = standardise(features, self.mean, self.scale) @ self.weights
        return scores.reshape(len(features), -1, self.classes).argmax(axis=-1)


def standardise(features: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``[(x - mean) / scale, 1]`` in float64."""
    design = (np.asarray(features, np.float64) - mean) / scale
    return np.concatenate([design, np.ones((len(design), 1))], axis=1)


def fit(features: np.ndarray, targets: np.ndarray, classes: int, ridge: float = RIDGE) -> Decoder:
    """Fit one decoder per column of ``targets int [N, K]`` (classes ``0 .. classes-1``)."""
    features = np.asarray(features, np.float64)
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-8
    design = standardise(features, mean, scale)
    onehot = np.eye(classes)[targets].reshape(len(targets), -1)
    gram = design.T @ design + ridge * len(design) * np.eye(design.shape[1])
    weights = np.linalg.solve(gram, design.T @ onehot)
    return Decoder(mean, scale, weights, classes)

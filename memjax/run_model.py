"""The model a task needs and its loss: classifier, dual encoder or per-position head.

``build_model(model_config, spec, seed)`` sizes the model to ``param_budget`` when asked (only
at widths the memory accepts); ``loss_sums`` gives the summed loss, correct count and count of a
batch, so that any split over devices and micro-batches computes the same update.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from memjax import budget, cells, models
from memjax.tasks.spec import TaskSpec

Batch = dict[str, Any]
"""A batch of numpy or jax arrays by name (``inputs``, ``mask``, ``label`` ...)."""


def build_model(model_config: ml_collections.ConfigDict, spec: TaskSpec, seed: int) -> nnx.Module:
    """The model a task needs: classifier, dual encoder (paired) or per-position head."""
    mixer_options = dict(model_config.mixer_options)
    if model_config.mixer == "attention":
        mixer_options.setdefault("max_length", spec.max_length + 1)
        if spec.target == "per_position":
            mixer_options["causal"] = True  # a per-step prediction must not see later inputs
    encoder = dict(
        depth=model_config.depth,
        input_kind=spec.input_kind,
        vocab_size=spec.vocab_size or None,
        channels=spec.channels or None,
        dtype=jnp.dtype(model_config.dtype),
        mixer_options=mixer_options,
        norm=model_config.norm,
        mlp=model_config.mlp,
        mlp_expand=model_config.mlp_expand,
        dropout=model_config.dropout,
        mode=model_config.mode,
        remat=model_config.remat,
        unroll=model_config.unroll or "auto",
        bidirectional=_bidirectional(model_config),
        norm_position=model_config.get("norm_position", "pre"),
        final_norm=bool(model_config.get("final_norm", True)),
        activation=model_config.get("activation", "none"),
        bn_momentum=float(model_config.get("bn_momentum", 0.95)),
        dropout_time_shared=bool(model_config.get("dropout_time_shared", False)),
        positional=model_config.get("positional", "none"),
        max_length=spec.max_length + 1,  # a CLS token takes one position more
    )
    if model_config.bidirectional and spec.target == "per_position":
        raise ValueError(
            f"config.model.bidirectional=True reads later inputs, but task {spec.name!r} predicts "
            "at every position; use a causal model (bidirectional=False)"
        )
    num_classes = 1 if spec.metric == "mse" else spec.num_classes

    def build(d_model: int) -> nnx.Module:
        rngs = nnx.Rngs(params=seed, dropout=seed)
        if spec.target == "per_position":
            return models.PerPositionHead(
                model_config.mixer, num_classes=num_classes, d_model=d_model, rngs=rngs, **encoder
            )
        cls = models.DualEncoder if spec.paired else models.SequenceClassifier
        return cls(
            model_config.mixer,
            num_classes=num_classes,
            pooling=model_config.pooling,
            d_model=d_model,
            rngs=rngs,
            **encoder,
        )

    d_model = model_config.d_model
    if model_config.param_budget:
        multiple = width_multiple(model_config.mixer, mixer_options)
        d_model = budget.width_for_budget(build, int(model_config.param_budget), multiple=multiple)
    return build(d_model)


def _bidirectional(model_config: ml_collections.ConfigDict) -> bool | str:
    """``models.Mixer``'s ``bidirectional``: False, True (independent) or "shared" (S5's)."""
    form = model_config.get("bidirectional_form", "independent")
    if form not in ("independent", "shared"):
        raise ValueError(
            f"config.model.bidirectional_form must be 'independent' or 'shared', got {form!r}"
        )
    if not model_config.bidirectional:
        return False
    return "shared" if form == "shared" else True


def width_multiple(mixer: str, mixer_options: dict[str, Any]) -> int:
    """Widths a budget search may try: even, and a multiple of what the memory needs (heads)."""
    return math.lcm(2, cells.lookup(mixer).width_multiple(**mixer_options))


def loss_sums(logits: jax.Array, batch: Batch, spec: TaskSpec) -> dict[str, jax.Array]:
    """Per-batch sums: ``loss`` (cross-entropy or squared error), ``correct``, ``count``.

    Examples with ``batch["weight"] == 0`` (padding of the last evaluation batch) count nothing.
    """
    weight = batch.get("weight", jnp.ones(logits.shape[0], jnp.float32)).astype(jnp.float32)
    if spec.target == "per_position":
        w = batch["loss_mask"].astype(jnp.float32) * weight[:, None]
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
        correct = (logits.argmax(-1) == batch["targets"]).astype(jnp.float32)
        return {"loss": (ce * w).sum(), "correct": (correct * w).sum(), "count": w.sum()}
    if spec.metric == "mse":
        err = (logits[:, 0] - batch["label"].astype(jnp.float32)) ** 2
        return {"loss": (err * weight).sum(), "correct": jnp.zeros(()), "count": weight.sum()}
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    correct = (logits.argmax(-1) == batch["label"]).astype(jnp.float32)
    return {"loss": (ce * weight).sum(), "correct": (correct * weight).sum(), "count": weight.sum()}


def score(sums: dict[str, float], spec: TaskSpec) -> float:
    """The task's metric from summed counts: accuracy, or mean squared error."""
    count = max(float(sums["count"]), 1.0)
    return float(sums["loss"]) / count if spec.metric == "mse" else float(sums["correct"]) / count

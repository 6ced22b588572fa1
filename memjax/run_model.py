"""The model a task needs and its loss: classifier, dual encoder, per-position head or seq2seq.

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

from memjax import budget, cells, decoding, models
from memjax.seq2seq import TRANSFORMER, Seq2Seq
from memjax.tasks.spec import BOS, TaskSpec

BIDIRECTIONAL_FORMS = ("independent", "shared", "concat")

Batch = dict[str, Any]
"""A batch of numpy or jax arrays by name (``inputs``, ``mask``, ``label`` ...)."""


def build_model(model_config: ml_collections.ConfigDict, spec: TaskSpec, seed: int) -> nnx.Module:
    """The model a task needs: classifier, dual encoder (paired), per-position head, or an
    encoder-decoder (sequence targets)."""
    if spec.target != "sequence" and model_config.seq2seq.attention:
        raise ValueError(
            f"config.model.seq2seq.attention={model_config.seq2seq.attention!r} is the attention "
            f"of an encoder-decoder's decoder, but task {spec.name!r} is not a sequence-to-"
            "sequence task; expected a variant without decoder attention (e.g. lstm, not "
            "lstm_attention)"
        )
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
        input_projection=bool(model_config.get("input_projection", True)),
        residual=bool(model_config.get("residual", True)),
        activation=model_config.get("activation", "none"),
        bn_momentum=float(model_config.get("bn_momentum", 0.95)),
        dropout_time_shared=bool(model_config.get("dropout_time_shared", False)),
        positional=model_config.get("positional", "none"),
        max_length=spec.max_length + 1,  # a CLS token takes one position more
    )
    bare = {"input_projection": encoder["input_projection"], "residual": encoder["residual"]}
    if spec.target == "sequence" and not all(bare.values()):
        raise ValueError(
            f"config.model {bare} is an encoder-only form; the encoder-decoder of task "
            f"{spec.name!r} builds its own blocks: expected input_projection=True, residual=True"
        )
    if model_config.bidirectional and spec.target == "per_position":
        raise ValueError(
            f"config.model.bidirectional=True reads later inputs, but task {spec.name!r} predicts "
            "at every position; use a causal model (bidirectional=False)"
        )
    num_classes = 1 if spec.metric == "mse" else spec.num_classes

    def build(d_model: int) -> nnx.Module:
        rngs = nnx.Rngs(params=seed, dropout=seed)
        if spec.target == "sequence":
            return sequence_model(model_config, spec, d_model, mixer_options, rngs)
        if spec.target == "per_position":
            return models.PerPositionHead(
                model_config.mixer, num_classes=num_classes, d_model=d_model, rngs=rngs, **encoder
            )
        if spec.paired:
            return models.DualEncoder(
                model_config.mixer,
                num_classes=num_classes,
                pooling=model_config.pooling,
                d_model=d_model,
                rngs=rngs,
                **encoder,
            )
        return models.SequenceClassifier(
            model_config.mixer,
            num_classes=num_classes,
            pooling=model_config.pooling,
            length=spec.max_length if model_config.pooling == "flatten" else None,
            d_model=d_model,
            rngs=rngs,
            **encoder,
        )

    d_model = model_config.d_model
    if model_config.param_budget:
        halves = encoder["bidirectional"] == "concat"
        multiple = width_multiple(model_config.mixer, mixer_options, halves=halves)
        d_model = budget.width_for_budget(build, int(model_config.param_budget), multiple=multiple)
    return build(d_model)


def sequence_model(
    model_config: ml_collections.ConfigDict,
    spec: TaskSpec,
    d_model: int,
    mixer_options: dict[str, Any],
    rngs: nnx.Rngs,
) -> Seq2Seq:
    """The encoder-decoder of a sequence task (:class:`memjax.seq2seq.Seq2Seq`).

    The variant's memory is both encoder and decoder (attention: the Transformer, its encoder
    non-causal, its decoder causal with cross-attention); ``config.model.seq2seq`` chooses the
    attention over the encoder states, the decoder's initial state and the layer style (empty:
    the model's defaults) and the training's teacher-forcing probability.
    """
    seq = model_config.seq2seq
    options = {k: v for k, v in mixer_options.items() if k not in ("causal", "max_length")}
    transformer = model_config.mixer == "attention"
    heads = int(options.pop("heads", 4)) if transformer else 4
    block_options = dict(norm=model_config.norm, mlp=model_config.mlp)
    block_options["mlp_expand"] = model_config.mlp_expand
    return Seq2Seq(
        TRANSFORMER if transformer else model_config.mixer,
        source_vocab_size=spec.vocab_size,
        target_vocab_size=spec.target_vocab_size,
        rngs=rngs,
        d_model=d_model,
        depth=model_config.depth,
        style=seq.style or None,
        attention=seq.attention or None,
        init_state=seq.init_state or None,
        bidirectional=_bidirectional(model_config),
        encoder_options=options,
        decoder_options=options,
        dropout=model_config.dropout,
        heads=heads,
        max_source_length=spec.max_length,
        max_target_length=spec.max_target_length,
        positional=model_config.get("positional", "none"),
        block_options=block_options,
        mode=model_config.mode,
        unroll=model_config.unroll or "auto",
        remat=model_config.remat,
    )


def decoder_inputs(targets: jax.Array) -> jax.Array:
    """``[BOS, targets[:, :-1]]``: what a teacher-forced decoder reads, int ``[B, M]``."""
    bos = jnp.full((targets.shape[0], 1), BOS, targets.dtype)
    return jnp.concatenate([bos, targets[:, :-1]], axis=1)


def sequence_sums(
    model: Seq2Seq, batch: Batch, *, train: bool, teacher_forcing: float, key: jax.Array | None
) -> dict[str, jax.Array]:
    """A sequence task's sums: ``loss`` the summed cross-entropy of every target token (EOS
    included) under teacher forcing, ``correct`` the exactly right sequences, ``count`` the
    sequences (so ``loss / count`` is the loss per sequence and the metric is exact match).

    Training scores the teacher-forced argmax (with ``teacher_forcing < 1`` a sequence may read
    its own predictions, Lake & Baroni's scheme); evaluation decodes greedily through the
    streaming face, the task's metric.
    """
    weight = batch.get("weight", jnp.ones(batch["inputs"].shape[0], jnp.float32))
    weight = weight.astype(jnp.float32)
    targets, target_mask = batch["targets"], batch["target_mask"].astype(bool)
    forcing = teacher_forcing if train else 1.0
    logits = model(
        batch["inputs"],
        batch["mask"],
        decoder_inputs(targets),
        teacher_forcing=forcing,
        rng=key if forcing != 1.0 else None,
        target_mask=target_mask,
    )
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    loss = (ce * target_mask * weight[:, None]).sum()
    if train:
        predicted = logits.argmax(-1)
    else:
        predicted = decoding.greedy(model, batch["inputs"], batch["mask"], targets.shape[1])
    exact = jnp.all((predicted == targets) | ~target_mask, axis=-1)
    if not train:  # a decoded sequence must also stop where the target does
        exact &= jnp.all(jnp.where(target_mask, True, predicted == 0), axis=-1)
    return {
        "loss": loss,
        "correct": (exact.astype(jnp.float32) * weight).sum(),
        "count": weight.sum(),
    }


def _bidirectional(model_config: ml_collections.ConfigDict) -> bool | str:
    """``models.Mixer``'s ``bidirectional``: False, True (independent), "shared" (S5's) or
    "concat" (two half-width memories side by side, torch's)."""
    form = model_config.get("bidirectional_form", "independent")
    if form not in BIDIRECTIONAL_FORMS:
        raise ValueError(
            f"config.model.bidirectional_form must be one of {BIDIRECTIONAL_FORMS}, got {form!r}"
        )
    if not model_config.bidirectional:
        return False
    return True if form == "independent" else form


def width_multiple(mixer: str, mixer_options: dict[str, Any], *, halves: bool = False) -> int:
    """Widths a budget search may try: even, and a multiple of what the memory needs (heads);
    with ``halves`` (``bidirectional_form="concat"``), twice that, as each memory has half."""
    needed = cells.lookup(mixer).width_multiple(**mixer_options)
    return math.lcm(2, 2 * needed if halves else needed)


def task_sums(model: nnx.Module, batch: Batch, spec: TaskSpec) -> dict[str, jax.Array]:
    """``loss_sums`` of a classifier, dual encoder or per-position model on ``batch``.

    A per-position task with ``spec.scored_positions = K`` computes the head at K steps per
    sequence only: ``positions = argsort(~loss_mask)[:, :K]`` (stable, so the scored steps in
    order, then unscored ones whose ``loss_mask`` stays False), and targets and ``loss_mask``
    gathered there. The sums equal those of the full [B, L, C] logits.
    """
    if spec.target == "per_position" and spec.scored_positions:
        order = jnp.argsort(~batch["loss_mask"], axis=1, stable=True)
        positions = order[:, : spec.scored_positions]
        scored = {
            **batch,
            "targets": jnp.take_along_axis(batch["targets"], positions, axis=1),
            "loss_mask": jnp.take_along_axis(batch["loss_mask"], positions, axis=1),
        }
        return loss_sums(model(batch["inputs"], batch["mask"], positions=positions), scored, spec)
    return loss_sums(model(batch["inputs"], batch["mask"]), batch, spec)


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

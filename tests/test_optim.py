"""Optimiser groups: weight decay by what a parameter is, checked through a real update."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from memjax import models, optim


def _optim(**changes) -> ml_collections.ConfigDict:
    base = dict(
        lr=0.1,
        recurrence_lr=None,
        weight_decay=0.5,
        b1=0.9,
        b2=0.98,
        schedule="constant",
        warmup_steps=0,
        clip_norm=0.0,
        accumulate=1,
    )
    return ml_collections.ConfigDict({**base, **changes})


def _labels(model) -> dict[str, str]:
    flat = jax.tree_util.tree_flatten_with_path(optim.param_labels(model))[0]
    return {jax.tree_util.keystr(path): label for path, label in flat}


def _decayed(model) -> dict[str, bool]:
    """Which parameters one AdamW step with zero gradients moves: exactly the decayed ones."""
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    tx, _ = optim.build(_optim(), 10, model)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    flat_old = jax.tree_util.tree_flatten_with_path(params)[0]
    flat_new = jax.tree.leaves(new)
    return {
        jax.tree_util.keystr(path): bool(jnp.any(a != b))
        for (path, a), b in zip(flat_old, flat_new, strict=True)
    }


def test_continuous_input_projection_is_decayed_and_token_embedding_is_not():
    continuous = models.SequenceClassifier(
        "gru", num_classes=3, d_model=8, depth=1, input_kind="continuous", channels=2,
        rngs=nnx.Rngs(0),
    )  # fmt: skip
    moved = _decayed(continuous)
    assert moved["['encoder']['embed']['kernel']"] is True
    assert moved["['encoder']['embed']['bias']"] is False
    tokens = models.SequenceClassifier(
        "gru", num_classes=3, d_model=8, depth=1, vocab_size=5, rngs=nnx.Rngs(0)
    )
    assert _decayed(tokens)["['encoder']['embed']['embedding']"] is False


def test_learned_positions_are_not_decayed_and_projections_are():
    model = models.SequenceClassifier(
        "attention", num_classes=3, d_model=8, depth=1, vocab_size=5, rngs=nnx.Rngs(0),
        mixer_options={"positional": "learned", "max_length": 16, "heads": 2},
    )  # fmt: skip
    moved = _decayed(model)
    mixer = "['encoder']['blocks'][0]['mixer']['params']"
    assert moved[f"{mixer}['positions']"] is False
    assert moved[f"{mixer}['w_q']"] is True
    assert moved["['head']['kernel']"] is True
    assert moved["['encoder']['norm']['scale']"] is False


def test_recurrence_parameters_form_their_own_group():
    model = models.SequenceClassifier(
        "lru", num_classes=3, d_model=8, depth=1, vocab_size=5, rngs=nnx.Rngs(0),
        bidirectional=True,
    )  # fmt: skip
    labels = _labels(model)
    for owner in ("params", "backward_params"):
        mixer = f"['encoder']['blocks'][0]['mixer']['{owner}']"
        assert labels[f"{mixer}['nu_log']"] == "recurrence"
        assert labels[f"{mixer}['theta_log']"] == "recurrence"
    assert _decayed(model)["['encoder']['blocks'][0]['mixer']['params']['nu_log']"] is False

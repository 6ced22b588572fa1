"""Per-position losses over only the scored steps (``TaskSpec.scored_positions``) equal the
loss over full [B, L, C] logits, in value and in gradient."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import memjax.tasks as tasks
from memjax import data, models
from memjax.run_model import task_sums

PAIRS = 4


def mqar_batch(n=6):
    task = tasks.get(
        "mqar",
        vocab_size=64,
        length=32,
        num_kv_pairs=PAIRS,
        num_train=n,
        num_validation=2,
        num_test=2,
    )
    source = task.source("train")
    examples = [data.encode(task.spec, source[i]) for i in range(n)]
    batch = {k: jnp.asarray(np.stack([e[k] for e in examples])) for k in examples[0]}
    return task.spec, batch


def model_for(spec, mixer):
    return models.PerPositionHead(
        mixer,
        num_classes=spec.num_classes,
        d_model=8,
        depth=2,
        vocab_size=spec.vocab_size,
        max_length=spec.max_length + 1,
        rngs=nnx.Rngs(0),
    )


@pytest.mark.parametrize("mixer", ["lstm", "attention"])
def test_sums_and_gradients_equal_the_full_logits(mixer):
    spec, batch = mqar_batch()
    assert spec.scored_positions == PAIRS
    loss_mask = np.array(batch["loss_mask"])
    loss_mask[0, np.flatnonzero(loss_mask[0])[:2]] = False  # a row scoring fewer than K
    batch = {**batch, "loss_mask": jnp.asarray(loss_mask), "weight": jnp.arange(6.0) % 3}
    full_spec = dataclasses.replace(spec, scored_positions=0)
    model = model_for(spec, mixer)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(p, s):
        sums = task_sums(nnx.merge(graphdef, p, rest), batch, s)
        return sums["loss"], sums

    (_, scored), g_scored = jax.value_and_grad(loss, has_aux=True)(params, spec)
    (_, full), g_full = jax.value_and_grad(loss, has_aux=True)(params, full_spec)
    assert float(full["count"]) == float((loss_mask * (np.arange(6.0) % 3)[:, None]).sum())
    for key in ("loss", "correct", "count"):
        np.testing.assert_allclose(scored[key], full[key], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_scored), jax.tree.leaves(g_full), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=5e-6)


def test_head_at_positions_is_the_full_head_gathered():
    spec, batch = mqar_batch()
    model = model_for(spec, "mingru")
    positions = jnp.array([[3, 0, 31]] * 6)
    full = model(batch["inputs"], batch["mask"])
    np.testing.assert_allclose(
        model(batch["inputs"], batch["mask"], positions=positions),
        full[:, [3, 0, 31]],
        rtol=1e-6,
    )


def test_an_example_scoring_more_than_the_bound_is_refused():
    spec, _ = mqar_batch()
    example = {
        "inputs": np.ones(32, np.int32),
        "targets": np.ones(32, np.int32),
        "loss_mask": np.arange(32) < PAIRS + 1,
        "id": "mqar/train/7",
    }
    with pytest.raises(ValueError, match=r"mqar/train/7 .* scores 5 positions; expected at most"):
        data.encode(spec, example)


@pytest.mark.parametrize(
    "changes", [dict(scored_positions=33), dict(scored_positions=-1), dict(target="class")]
)
def test_spec_refuses_a_bound_outside_one_to_length(changes):
    spec, _ = mqar_batch()
    with pytest.raises(ValueError, match="scored_positions="):
        dataclasses.replace(spec, **changes)

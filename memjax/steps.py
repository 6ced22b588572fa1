"""The jitted, data-parallel train and eval steps of a run, and evaluation over a split.

Steps are written per device over plain parameter dicts (see :mod:`memjax.parallel`); the train
step accumulates ``optim.accumulate`` micro-batches and donates parameters and optimiser state.

Besides the parameters, a model may hold running statistics (``nnx.BatchStat``: BatchNorm's mean
and variance). They are not trained by the optimiser: the train step returns them updated, one
micro-batch after another and then averaged over the devices, and every step takes them as an
argument, so they are checkpointed and evaluated with like the parameters. A model without any
has ``stats == {}``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from memjax import data, parallel
from memjax.preemption import Preempted
from memjax.run_model import Batch, sequence_sums, task_sums
from memjax.tasks.spec import TaskSpec


@dataclasses.dataclass(frozen=True)
class Steps:
    """The jitted, data-parallel train and eval steps of one run."""

    train: Any
    evaluate: Any


def make_steps(
    graphdef: Any,
    rest: Any,
    tx: optax.GradientTransformation,
    spec: TaskSpec,
    config: ml_collections.ConfigDict,
) -> Steps:
    """Train and eval steps over plain parameter dicts, written per device (see parallel.py)."""
    axis = None if config.parallel == "none" else parallel.AXIS
    accumulate = int(config.optim.accumulate)
    seed_key = jax.random.key(int(config.train.seed))
    teacher_forcing = float(config.model.seq2seq.teacher_forcing)

    def forward(params, stats, batch, key, train: bool):
        """``(metric sums, running statistics after this batch)``."""
        model = nnx.merge(graphdef, params, stats, rest)
        if train:
            nnx.reseed(model, dropout=key)
            model.train()
        else:
            model.eval()
        if spec.target == "sequence":
            forcing_key = None if key is None else jax.random.fold_in(key, 1)
            sums = sequence_sums(
                model, batch, train=train, teacher_forcing=teacher_forcing, key=forcing_key
            )
        else:
            sums = task_sums(model, batch, spec)
        return sums, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))

    def total(tree):
        return tree if axis is None else jax.lax.psum(tree, axis)

    def mean(tree):
        return tree if axis is None else jax.lax.pmean(tree, axis)

    def train_step(params, opt_state, stats, step, batch):
        key = jax.random.fold_in(seed_key, step)
        if axis is not None:
            key = jax.random.fold_in(key, jax.lax.axis_index(axis))
        micro = jax.tree.map(lambda x: x.reshape(accumulate, -1, *x.shape[1:]), batch)

        def one(carry, inputs):
            (grads_sum, sums_sum), stats_now = carry
            index, mb = inputs

            def objective(p):
                sums, new_stats = forward(p, stats_now, mb, jax.random.fold_in(key, index), True)
                return sums["loss"], (sums, new_stats)

            grads, (sums, new_stats) = jax.grad(objective, has_aux=True)(params)
            added = jax.tree.map(jnp.add, (grads_sum, sums_sum), (grads, sums))
            return (added, new_stats), None

        zeros = (
            jax.tree.map(jnp.zeros_like, params),
            {k: jnp.zeros(()) for k in ("loss", "correct", "count")},
        )
        ((grads, sums), stats), _ = jax.lax.scan(
            one, (zeros, stats), (jnp.arange(accumulate), micro)
        )
        grads, sums = total((grads, sums))
        grads = jax.tree.map(lambda g: g / jnp.maximum(sums["count"], 1.0), grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {**sums, "grad_norm": optax.global_norm(grads)}
        return params, opt_state, mean(stats), metrics

    def eval_step(params, stats, batch):
        return total(forward(params, stats, batch, None, False)[0])

    how = config.parallel
    return Steps(
        # The train step donates params, opt_state and stats: XLA writes the new ones in place.
        train=parallel.data_parallel(train_step, how, n_replicated=4, donate_argnums=(0, 1, 2)),
        evaluate=parallel.data_parallel(eval_step, how, n_replicated=2),
    )


def device_batch(batch: Batch, how: str, mesh: Any) -> Batch:
    arrays = {k: v for k, v in batch.items() if isinstance(v, np.ndarray)}
    return parallel.global_batch(arrays, mesh) if how == "shard_map" else arrays


def pad_batch(batch: Batch, size: int) -> Batch:
    """Pad a short final evaluation batch to ``size`` examples of weight 0."""
    n = len(next(iter(batch.values())))
    out = {k: v for k, v in batch.items() if isinstance(v, np.ndarray)}
    out["weight"] = np.ones(n, np.float32)
    if n == size:
        return out
    return {
        k: np.concatenate([v, np.zeros((size - n, *v.shape[1:]), v.dtype)]) for k, v in out.items()
    }


def evaluate(
    steps: Steps,
    params: Any,
    stats: Any,
    task: Any,
    split: str,
    config,
    mesh,
    max_batches: int = 0,
    interrupted: Any = None,
):
    """Metric sums over every example of ``split`` (``max_batches`` > 0 caps the batches).

    Every host runs the same number of batches, ``ceil(examples / global batch)``: a host whose
    shard runs out first feeds batches of weight 0, so the collectives in the step never wait
    on a host that has stopped. ``interrupted()``, asked before every batch, stops the
    evaluation with :class:`~memjax.preemption.Preempted`.
    """
    global_size = int(config.train.batch_size)
    loader = data.make_loader(
        task,
        split,
        global_batch_size=global_size,
        seed=int(config.train.seed),
        shuffle=False,
        num_epochs=1,
        drop_remainder=False,
        truncate=bool(config.train.truncate),
    )
    local_size = global_size // jax.process_count()
    num_batches = -(-len(task.source(split)) // global_size)
    if max_batches:
        num_batches = min(num_batches, max_batches)
    iterator = iter(loader)
    template = None
    sums = {"loss": 0.0, "correct": 0.0, "count": 0.0}
    for _ in range(num_batches):
        if interrupted is not None and interrupted():
            raise Preempted(f"SIGTERM during the evaluation of split {split!r}")
        batch = next(iterator, None)
        if batch is None and template is None:
            raise ValueError(
                f"split {split!r} has fewer examples than the {jax.process_count()} hosts"
            )
        if batch is None:
            batch = {k: v[:0] for k, v in template.items() if k != "weight"}
        padded = pad_batch(batch, local_size)
        template = padded
        result = steps.evaluate(params, stats, device_batch(padded, config.parallel, mesh))
        sums = {k: sums[k] + float(result[k]) for k in sums}
    return sums

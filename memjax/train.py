"""Train any memory on any task: ``train_and_evaluate(config, workdir)``, flat top to bottom.

task -> pipeline -> model -> loss -> optax update -> metrics.jsonl and checkpoints -> at the end,
the test split evaluated at the best validation checkpoint -> summary.json.

Exact resume: a checkpoint holds parameters, optimiser state, the step, the data iterator's
position and the wall time so far; dropout keys are ``fold_in(seed_key, step)``; so a run killed
at any moment and started again with the same command ends with the same parameters as one never
interrupted, its metrics.jsonl holds every step once, and its ``wall_s`` counts every process.

:func:`setup` builds a run (task, model, optimiser, jitted steps) from its config and
:func:`load_run` reads a finished one back; the trainer, ``memjax eval``, the speed table and
the probes all go through them.

Losses are sums over examples (or target positions) divided by the global count, so one
device, ``shard_map`` over N devices and ``pmap`` compute the same update.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from etils import epath
from flax import nnx
from jax.sharding import Mesh

from memjax import budget, data, models, optim, parallel, paths, provenance, seq2seq_report, tasks
from memjax import config as config_lib
from memjax.checkpoint import CheckpointRestoreError
from memjax.metrics_log import MetricsLog
from memjax.preemption import Preempted, install_preemption_handler
from memjax.run_failures import (
    DiskFull,
    check_batch,
    check_finite,
    check_multihost,
    devices_per_step,
    disk_full_message,
    is_disk_full,
    oom_message,
)
from memjax.run_model import Batch, build_model, score
from memjax.run_state import check_identity, make_checkpointer, progress_record, restored_progress
from memjax.steps import Steps, device_batch, evaluate, make_steps
from memjax.tasks.spec import TaskSpec
from memjax.workdir_lock import WorkdirLock

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- construction


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything a run builds from its config before it reads any data; see :func:`setup`.

    Attributes:
      config: the run's config.
      task: ``tasks.get(config.task.name, **config.task.options)``.
      spec: ``task.spec``.
      model: the model at initialisation (seed ``config.train.seed``).
      graphdef: the model's structure, ``nnx.split(model, nnx.Param, ...)[0]``.
      params: its ``nnx.Param`` values as a pure dict of arrays.
      rest: its other state (dropout RNG counters ...) as a pure dict.
      tx: the optax transformation over ``params``.
      schedules: each parameter group's learning rate as a function of the step.
      opt_state: ``tx.init(params)``.
      steps: the jitted train and eval steps.
      mesh: the 1-D device mesh under ``config.parallel == "shard_map"`` (``params`` and
        ``opt_state`` are then replicated over it), else None.

    ``steps.train`` donates its params and opt_state: once ``setup.params`` went through a
    train step those arrays are deleted (and so are the model's, which are the same arrays
    outside ``shard_map``); their shapes stay readable (:meth:`abstract_state`).
    """

    config: ml_collections.ConfigDict
    task: Any
    spec: TaskSpec
    model: nnx.Module
    graphdef: Any
    params: Any
    stats: Any
    rest: Any
    tx: optax.GradientTransformation
    schedules: dict[str, Callable[[Any], Any]]
    opt_state: Any
    steps: Steps
    mesh: Mesh | None

    def abstract_state(self) -> dict[str, Any]:
        """What a checkpoint's ``state`` restores into: ``params``, ``opt_state`` and (for a
        model with running statistics) ``stats`` as ``jax.ShapeDtypeStruct`` leaves (shape,
        dtype, sharding), and ``step`` int64 []."""
        shape_of = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
        return train_state(
            jax.tree.map(shape_of, self.params),
            jax.tree.map(shape_of, self.opt_state),
            jax.tree.map(shape_of, self.stats),
            0,
        )


def train_state(params: Any, opt_state: Any, stats: Any, step: int) -> dict[str, Any]:
    """A checkpoint's ``state``: ``stats`` only when the model has running statistics (a
    checkpoint of a model without any keeps the layout it always had)."""
    state = {"params": params, "opt_state": opt_state, "step": np.asarray(step, np.int64)}
    if jax.tree.leaves(stats):
        state["stats"] = stats
    return state


def setup(config: ml_collections.ConfigDict) -> Setup:
    """Task, model at initialisation, optimiser and jitted steps of ``config``'s run."""
    mesh = parallel.mesh() if config.parallel == "shard_map" else None
    task = tasks.get(config.task.name, **dict(config.task.options))
    model = build_model(config.model, task.spec, int(config.train.seed))
    graphdef, param_state, stat_state, rest_state = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    params = nnx.to_pure_dict(param_state)
    stats = nnx.to_pure_dict(stat_state)
    rest = nnx.to_pure_dict(rest_state)
    tx, schedules = optim.build(config.optim, int(config.train.steps), model)
    opt_state = tx.init(params)
    if mesh is not None:
        params, opt_state, stats = parallel.replicate((params, opt_state, stats), mesh)
    return Setup(
        config=config,
        task=task,
        spec=task.spec,
        model=model,
        graphdef=graphdef,
        params=params,
        stats=stats,
        rest=rest,
        tx=tx,
        schedules=schedules,
        opt_state=opt_state,
        steps=make_steps(graphdef, rest, tx, task.spec, config),
        mesh=mesh,
    )


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A run read back from its workdir: :func:`load_run`.

    Attributes:
      setup: the run's :class:`Setup`, rebuilt from its ``config.json``.
      step: the checkpoint step restored.
      params: that step's parameters, a pure dict shaped like ``setup.params``.
      stats: that step's running statistics (BatchNorm's), shaped like ``setup.stats``.
    """

    setup: Setup
    step: int
    params: Any
    stats: Any

    def model(self) -> nnx.Module:
        """The run's model with this step's parameters and statistics."""
        built = self.setup
        return nnx.merge(built.graphdef, self.params, self.stats, built.rest)


def load_config(workdir: str | Path | epath.Path) -> ml_collections.ConfigDict:
    """A run's ``workdir/config.json``; FileNotFoundError if ``workdir`` is not a run directory."""
    workdir = epath.Path(paths.resolve(workdir))
    path = workdir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {workdir} a memjax run directory?")
    return ml_collections.ConfigDict(json.loads(path.read_text()))


def load_run(workdir: str | Path | epath.Path, step: int | None = None) -> LoadedRun:
    """The run in ``workdir`` at its best validation checkpoint, or at ``step``.

    Reads only: the checkpoints are opened read-only, so a run training in ``workdir`` at the
    same time is left alone. A best step that is damaged, or that differs from the
    ``best_step`` the run's ``summary.json`` recorded, raises CheckpointRestoreError, never a
    silent substitute.
    """
    workdir = epath.Path(paths.resolve(workdir))
    built = setup(load_config(workdir))
    with make_checkpointer(workdir, built.config, built.spec, read_only=True) as checkpointer:
        if step is None:
            at_step, state, _ = checkpointer.restore_best(built.abstract_state())
            _check_recorded_best(workdir, at_step)
        else:
            at_step, state, _ = checkpointer.restore(built.abstract_state(), step=step)
    return LoadedRun(
        setup=built, step=at_step, params=state["params"], stats=state.get("stats", built.stats)
    )


def _check_recorded_best(workdir: epath.Path, ranked_best: int) -> None:
    """CheckpointRestoreError unless ``ranked_best`` is the ``best_step`` of ``summary.json``."""
    summary_path = workdir / "summary.json"
    if not summary_path.exists():
        return
    recorded = json.loads(summary_path.read_text()).get("best_step")
    if recorded is not None and recorded != ranked_best:
        raise CheckpointRestoreError(
            f"the best checkpoint of {workdir} was step {recorded} ({summary_path}), but "
            f"the checkpoints now rank step {ranked_best} best: step {recorded} is missing or "
            f"damaged. Pass --step {ranked_best} to evaluate that step instead."
        )


# ----------------------------------------------------------------------------- helpers


def param_checksum(params: Any) -> float:
    """float64 sum of |p| over every parameter: a cheap fingerprint of a model's weights."""
    return float(sum(np.abs(np.asarray(p, np.float64)).sum() for p in jax.tree.leaves(params)))


def _memory_stats() -> dict[str, float]:
    """The device's peak memory in GiB (2^30 bytes), where the backend reports it."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return {"device_peak_gib": stats["peak_bytes_in_use"] / 2**30}
    return {}


# ----------------------------------------------------------------------------- the loop


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, evaluate every ``eval_every`` steps, test at the best checkpoint; returns summary.

    ``workdir`` (a local path, made absolute here, or ``gs://...``) is held by this process
    alone for the whole run (:class:`~memjax.workdir_lock.WorkdirLock`); a SIGTERM at any
    moment saves or stops cleanly (:mod:`memjax.preemption`); a full disk raises
    :class:`DiskFull` naming the workdir and the last good checkpoint.
    """
    start_time = time.time()
    with install_preemption_handler() as preemption:
        workdir = epath.Path(paths.resolve(workdir))
        check_multihost(config)
        check_batch(config, devices_per_step(config.parallel))
        with WorkdirLock(workdir, take=jax.process_index() == 0):
            try:
                return _train_in(config, workdir, preemption, force, progress, start_time)
            except Exception as error:
                if is_disk_full(error):
                    raise DiskFull(disk_full_message(error, workdir)) from error
                late_oom = "RESOURCE_EXHAUSTED" in str(error) and not isinstance(error, MemoryError)
                if late_oom:  # asynchronous dispatch: surfaced when a value was read
                    raise MemoryError(oom_message(error, config)) from error
                raise


def log_provenance(config: ml_collections.ConfigDict) -> None:
    """Logs where the run's setup comes from and each way it still differs from that source."""
    found = provenance.from_config(config)
    logger.info("setup: %s", found.source)
    for difference in found.differences:
        logger.info("differs from that source: %s", difference)


def _train_in(
    config: ml_collections.ConfigDict,
    workdir: epath.Path,
    preemption: Any,
    force: bool,
    progress: bool,
    start_time: float,
) -> dict[str, Any]:
    """The run itself, in a held ``workdir`` under an installed preemption watch."""
    workdir.mkdir(parents=True, exist_ok=True)
    built = setup(config)
    spec, steps, mesh = built.spec, built.steps, built.mesh
    params, opt_state, stats = built.params, built.opt_state, built.stats
    abstract = built.abstract_state()
    # Read now: the first train step donates the arrays the model holds.
    num_params = budget.param_count(built.model)
    state_bytes = models.state_bytes(built.model, spec.max_length)

    loader = data.make_loader(
        built.task,
        "train",
        global_batch_size=int(config.train.batch_size),
        seed=int(config.train.seed),
        shuffle=True,
        num_epochs=None,
        truncate=bool(config.train.truncate),
    )
    iterator: Iterator[Batch] = iter(loader)

    # Checkpoints: resume when the workdir holds one.
    checkpointer = make_checkpointer(workdir, config, spec)
    check_identity(checkpointer, config, workdir, force)
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config.to_json(indent=1))
    log_provenance(config)
    step, earlier_wall_s = 0, 0.0
    if checkpointer.latest_step() is not None:
        step, state, data_state = checkpointer.restore(abstract)
        params, opt_state = state["params"], state["opt_state"]
        stats = state.get("stats", stats)
        iterator_state, earlier_wall_s = restored_progress(data_state, workdir)
        iterator.set_state(iterator_state.encode())
        logger.info("resumed from step %d in %s", step, workdir)

    def wall_s() -> float:
        """Seconds this run has trained: earlier processes up to the restored step, and this."""
        return earlier_wall_s + time.time() - start_time

    with MetricsLog(workdir, after_step=step) as log:

        def save(at_step: int, metrics: dict[str, float] | None = None, force_save: bool = False):
            # Every line up to at_step is in metrics.jsonl before its checkpoint can exist. The
            # save copies the arrays to host before it returns, so the next train step may
            # donate them.
            log.flush()
            state = train_state(params, opt_state, stats, at_step)
            iterator_states = parallel.gather_texts(iterator.get_state().decode())
            checkpointer.save(
                at_step,
                state,
                data_state=progress_record(iterator_states, wall_s()),
                metrics=metrics,
                force=force_save,
            )

        steps_total = int(config.train.steps)
        tokens_per_batch = (
            int(config.train.batch_size) * spec.max_length * (2 if spec.paired else 1)
        )
        window: list[tuple[int, dict[str, jax.Array]]] = []
        window_start = time.time()
        bar = _progress(steps_total, step, progress)

        while step < steps_total:
            batch = device_batch(next(iterator), config.parallel, mesh)
            try:
                params, opt_state, stats, metrics = steps.train(
                    params, opt_state, stats, jnp.int32(step), batch
                )
            except jax.errors.JaxRuntimeError as error:
                if "RESOURCE_EXHAUSTED" in str(error):
                    raise MemoryError(oom_message(error, config)) from error
                raise
            step += 1
            window.append((step, metrics))
            bar.update(1)
            at_log = step % int(config.train.log_every) == 0 or step == steps_total
            at_eval = step % int(config.train.eval_every) == 0 or step == steps_total
            at_save = step % int(config.train.checkpoint_every) == 0 or at_eval
            stop = preemption.should_stop(step)
            if at_log or at_save or stop:
                check_finite(window, config)
            if at_log:
                elapsed = time.time() - window_start
                sums = {
                    k: sum(float(m[k]) for _, m in window) for k in ("loss", "correct", "count")
                }
                values = {
                    "loss": sums["loss"] / max(sums["count"], 1.0),
                    spec.metric: score(sums, spec),
                    "lr": float(built.schedules["decay"](step)),
                    "grad_norm": float(window[-1][1]["grad_norm"]),
                    "tokens_per_s": tokens_per_batch * len(window) / max(elapsed, 1e-9),
                    **_memory_stats(),
                }
                log.write(step, values)
                bar.set_postfix(
                    loss=f"{values['loss']:.4f}", **{spec.metric: f"{values[spec.metric]:.3f}"}
                )
                window, window_start = [], time.time()
            val_metrics = None
            if at_eval:
                sums = evaluate(
                    steps,
                    params,
                    stats,
                    built.task,
                    "validation",
                    config,
                    mesh,
                    int(config.train.eval_batches),
                )
                val_metrics = {
                    "val_metric": score(sums, spec),
                    "val_loss": sums["loss"] / max(sums["count"], 1),
                }
                log.write(step, val_metrics)
            if at_save or stop:
                save(step, val_metrics, force_save=stop)
            if at_eval or at_save:
                window_start = time.time()
            if stop:
                checkpointer.wait()
                logger.info(
                    "preempted (SIGTERM): saved step %d in %s; rerun the same command to resume",
                    step,
                    workdir,
                )
                checkpointer.close()
                return {"step": step, "preempted": True}
        bar.close()
        checkpointer.wait()

    # Test at the best validation checkpoint (LRA's code tested the last one).
    best_step, best_state, _ = checkpointer.restore_best(abstract)
    best = (best_state["params"], best_state.get("stats", stats))
    interrupted = preemption.interrupted
    try:
        best_val = score(
            evaluate(steps, *best, built.task, "validation", config, mesh, 0, interrupted), spec
        )
        test = score(evaluate(steps, *best, built.task, "test", config, mesh, 0, interrupted), spec)
    except Preempted:
        checkpointer.close()
        logger.info(
            "preempted (SIGTERM) during the final evaluation: training finished at step %d and "
            "is saved in %s; rerun the same command to evaluate it",
            step,
            workdir,
        )
        return {"step": step, "preempted": True}
    summary = {
        "step": step,
        "best_step": best_step,
        "metric": spec.metric,
        "param_count": num_params,
        "param_checksum": param_checksum(params),
        "best_val": best_val,
        "test_at_best": test,
        "state_bytes_per_sequence": state_bytes,
        "wall_s": wall_s(),
        "num_devices": jax.device_count(),
        "device_kind": jax.devices()[0].device_kind,
        "config_fingerprint": config_lib.fingerprint(config),
        "task": config.task.name,
        "mixer": config.model.mixer,
    }
    if spec.target == "sequence":
        best_model = nnx.merge(built.graphdef, *jax.device_get(best), built.rest)
        batch_size = int(config.train.batch_size)
        summary["sequence_test"] = seq2seq_report.report(best_model, built.task, "test", batch_size)
    if jax.process_index() == 0:
        (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    checkpointer.close()
    return summary


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=initial, disable=not enabled or jax.process_index() != 0, unit="step"
    )


def evaluate_workdir(
    workdir: str | Path, split: str = "test", step: int | None = None
) -> dict[str, Any]:
    """Evaluate a run's best (or ``step``'s) checkpoint on ``split``; used by ``memjax eval``.

    Reads only, and never substitutes another step for the best one (see :func:`load_run`).
    """
    run = load_run(workdir, step)
    built = run.setup
    sums = evaluate(built.steps, run.params, run.stats, built.task, split, built.config, built.mesh)
    return {
        "split": split,
        "step": run.step,
        built.spec.metric: score(sums, built.spec),
        "examples": sums["count"],
    }

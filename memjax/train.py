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

import concurrent.futures
import dataclasses
import errno
import json
import logging
import math
import os
import shutil
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
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from memjax import budget, cells, data, models, optim, parallel, paths, tasks
from memjax import config as config_lib
from memjax.checkpoint import Checkpointer, CheckpointRestoreError
from memjax.preemption import Preempted, install_preemption_handler
from memjax.tasks.spec import TaskSpec
from memjax.workdir_lock import WorkdirLock

Batch = dict[str, Any]

logger = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss."""


class ConfigMismatch(RuntimeError):
    """The workdir holds a run of another config."""


class DiskFull(OSError):
    """A write into the workdir failed for lack of space."""


# ----------------------------------------------------------------------------- model and loss


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
        bidirectional=model_config.bidirectional,
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


def width_multiple(mixer: str, mixer_options: dict[str, Any]) -> int:
    """Widths a budget search may try: even, and a multiple of what the memory needs (heads)."""
    return math.lcm(2, cells.lookup(mixer).width_multiple(**mixer_options))


def devices_per_step(how: str) -> int:
    """Devices a train step splits its global batch over under ``config.parallel = how``."""
    if how == "none":
        return 1
    if how == "pmap":
        return jax.local_device_count() * jax.process_count()
    return jax.device_count()


def check_batch(config: ml_collections.ConfigDict, num_devices: int) -> None:
    """ValueError unless the global batch splits evenly over devices and then micro-batches.

    Each device gets ``batch_size / num_devices`` examples and splits them into
    ``optim.accumulate`` micro-batches, so both divisions must be exact.
    """
    batch, accumulate = int(config.train.batch_size), int(config.optim.accumulate)
    if batch % num_devices:
        raise ValueError(
            f"config.train.batch_size={batch} does not split over {num_devices} devices "
            f"(config.parallel={config.parallel!r}); expected a multiple of {num_devices}, "
            f"e.g. --config.train.batch_size={max(num_devices, batch - batch % num_devices)}"
        )
    per_device = batch // num_devices
    if per_device % accumulate:
        raise ValueError(
            f"config.optim.accumulate={accumulate} must divide the per-device batch: "
            f"config.train.batch_size={batch} over {num_devices} devices is {per_device} "
            f"examples per device; expected an accumulate that divides {per_device}"
        )


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


# ----------------------------------------------------------------------------- steps


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

    def forward(params, batch, key, train: bool):
        model = nnx.merge(graphdef, params, rest)
        if train:
            nnx.reseed(model, dropout=key)
            model.train()
        else:
            model.eval()
        return loss_sums(model(batch["inputs"], batch["mask"]), batch, spec)

    def total(tree):
        return tree if axis is None else jax.lax.psum(tree, axis)

    def train_step(params, opt_state, step, batch):
        key = jax.random.fold_in(seed_key, step)
        if axis is not None:
            key = jax.random.fold_in(key, jax.lax.axis_index(axis))
        micro = jax.tree.map(lambda x: x.reshape(accumulate, -1, *x.shape[1:]), batch)

        def one(carry, inputs):
            index, mb = inputs

            def objective(p):
                sums = forward(p, mb, jax.random.fold_in(key, index), True)
                return sums["loss"], sums

            grads, sums = jax.grad(objective, has_aux=True)(params)
            return jax.tree.map(jnp.add, carry, (grads, sums)), None

        zeros = (
            jax.tree.map(jnp.zeros_like, params),
            {k: jnp.zeros(()) for k in ("loss", "correct", "count")},
        )
        (grads, sums), _ = jax.lax.scan(one, zeros, (jnp.arange(accumulate), micro))
        grads, sums = total((grads, sums))
        grads = jax.tree.map(lambda g: g / jnp.maximum(sums["count"], 1.0), grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, {**sums, "grad_norm": optax.global_norm(grads)}

    def eval_step(params, batch):
        return total(forward(params, batch, None, False))

    how = config.parallel
    return Steps(
        # The train step donates params and opt_state: XLA writes the new ones in their place.
        train=parallel.data_parallel(train_step, how, n_replicated=3, donate_argnums=(0, 1)),
        evaluate=parallel.data_parallel(eval_step, how, n_replicated=1),
    )


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
    rest: Any
    tx: optax.GradientTransformation
    schedules: dict[str, Callable[[Any], Any]]
    opt_state: Any
    steps: Steps
    mesh: Mesh | None

    def abstract_state(self) -> dict[str, Any]:
        """What a checkpoint's ``state`` restores into: ``params`` and ``opt_state`` as
        ``jax.ShapeDtypeStruct`` leaves (shape, dtype, sharding) and ``step`` int64 []."""
        shape_of = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
        return {
            "params": jax.tree.map(shape_of, self.params),
            "opt_state": jax.tree.map(shape_of, self.opt_state),
            "step": np.asarray(0, np.int64),
        }


def setup(config: ml_collections.ConfigDict) -> Setup:
    """Task, model at initialisation, optimiser and jitted steps of ``config``'s run."""
    mesh = parallel.mesh() if config.parallel == "shard_map" else None
    task = tasks.get(config.task.name, **dict(config.task.options))
    model = build_model(config.model, task.spec, int(config.train.seed))
    graphdef, param_state, rest_state = nnx.split(model, nnx.Param, ...)
    params = nnx.to_pure_dict(param_state)
    rest = nnx.to_pure_dict(rest_state)
    tx, schedules = optim.build(config.optim, int(config.train.steps), model)
    opt_state = tx.init(params)
    if mesh is not None:
        params, opt_state = parallel.replicate((params, opt_state), mesh)
    return Setup(
        config=config,
        task=task,
        spec=task.spec,
        model=model,
        graphdef=graphdef,
        params=params,
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
    """

    setup: Setup
    step: int
    params: Any


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
    return LoadedRun(setup=built, step=at_step, params=state["params"])


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


def _device_batch(batch: Batch, how: str, mesh: Any) -> Batch:
    arrays = {k: v for k, v in batch.items() if isinstance(v, np.ndarray)}
    return parallel.global_batch(arrays, mesh) if how == "shard_map" else arrays


def _pad_batch(batch: Batch, size: int) -> Batch:
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
        padded = _pad_batch(batch, local_size)
        template = padded
        result = steps.evaluate(params, _device_batch(padded, config.parallel, mesh))
        sums = {k: sums[k] + float(result[k]) for k in sums}
    return sums


def param_checksum(params: Any) -> float:
    """float64 sum of |p| over every parameter: a cheap fingerprint of a model's weights."""
    return float(sum(np.abs(np.asarray(p, np.float64)).sum() for p in jax.tree.leaves(params)))


def _memory_stats() -> dict[str, float]:
    """The device's peak memory in GiB (2^30 bytes), where the backend reports it."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return {"device_peak_gib": stats["peak_bytes_in_use"] / 2**30}
    return {}


def _oom_message(error: Exception, config) -> str:
    return (
        f"device out of memory ({str(error).splitlines()[0]}). Try a smaller batch "
        f"(--config.train.batch_size={max(1, config.train.batch_size // 2)}), gradient "
        f"accumulation (--config.optim.accumulate=2), rematerialisation "
        "(--config.model.remat=64: keep the state every 64 steps) or a shorter sequence length "
        "in the task options."
    )


class MetricsLog:
    """One JSON object per line in ``workdir/metrics.jsonl`` (and TensorBoard, if installed).

    Only process 0 writes. :meth:`write` hands the line to a single writer thread and returns,
    so the train step never waits on the file system; lines land in the order written.
    :meth:`flush` waits for every line handed over and raises the first error a write met
    (a failed write also raises from the next :meth:`write`); :meth:`close` flushes and stops
    the thread, and so does leaving a ``with`` block.

    A local file is opened in append mode. On ``gs://`` (any URL) etils' epath goes through
    gcsfs, which has no append (``"a"`` would overwrite the object), so each write reads the
    file and rewrites it whole: a cost in the number of lines, paid in the writer thread.

    ``after_step``: the step a run resumes from (0 for a fresh start). Lines of later steps,
    logged by a process killed before it could save them, are dropped first (and a line torn
    by the kill), so each step is in the file once; TensorBoard hides its later events too.
    """

    def __init__(self, workdir: epath.Path, after_step: int | None = None):
        self.path = workdir / "metrics.jsonl"
        self.local = not paths.is_url(str(workdir))
        self.enabled = jax.process_index() == 0
        self.tensorboard = None
        self._pending: list[concurrent.futures.Future] = []
        if not self.enabled:
            return
        if after_step is not None:
            self._drop_after(after_step)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="metrics")
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            return
        purge = {} if after_step is None else {"purge_step": after_step + 1}
        self.tensorboard = SummaryWriter(str(workdir / "tensorboard"), **purge)

    def _drop_after(self, step: int) -> None:
        """Rewrites the file without the lines of steps after ``step`` (and a torn last line)."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if _logged_step(line) <= step]
        if len(kept) == len(lines):
            return
        if self.local:  # a kill during the rewrite leaves the old file, never half of it
            temporary = Path(f"{self.path}.tmp")
            temporary.write_text("".join(kept))
            os.replace(temporary, os.fspath(self.path))
        else:
            self.path.write_text("".join(kept))

    def write(self, step: int, values: dict[str, float]) -> None:
        """Queues ``{"step": step, **values}`` as one line; raises an earlier write's error."""
        if not self.enabled:
            return
        self._raise_failed()
        line = json.dumps({"step": step, **values}) + "\n"
        self._pending.append(self._executor.submit(self._append, step, line, values))

    def _append(self, step: int, line: str, values: dict[str, float]) -> None:
        """Runs in the writer thread."""
        if self.local:
            with open(os.fspath(self.path), "a") as file:
                file.write(line)
        else:
            old = self.path.read_text() if self.path.exists() else ""
            self.path.write_text(old + line)
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, step)

    def _raise_failed(self) -> None:
        """Raises the error of the first finished write that failed; forgets finished ones."""
        done, pending = [], []
        for future in self._pending:
            (done if future.done() else pending).append(future)
        self._pending = pending
        for future in done:
            future.result()

    def flush(self) -> None:
        """Waits until every line written so far is in the file; raises a write's error."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Flushes, then stops the writer thread and TensorBoard."""
        if not self.enabled:
            return
        try:
            self.flush()
        finally:
            self._executor.shutdown(wait=True)
            if self.tensorboard is not None:
                self.tensorboard.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        if exc is None:
            self.close()
            return
        try:  # the error in flight is the one to report; a write's error is logged beside it
            self.close()
        except Exception:
            logger.exception("writing %s failed as well", self.path)


def _logged_step(line: str) -> float:
    """The step of one metrics.jsonl line (with its newline); infinite for a line a kill cut
    short, which lacks its newline and may lack the end of its JSON."""
    if not line.endswith("\n"):
        return math.inf
    try:
        return json.loads(line)["step"]
    except json.JSONDecodeError:
        return math.inf


def make_checkpointer(
    workdir: epath.Path, config, spec: TaskSpec, read_only: bool = False
) -> Checkpointer:
    """Latest ``train.keep`` checkpoints plus the best by the validation metric."""
    return Checkpointer(
        workdir / "checkpoints",
        keep=int(config.train.keep),
        best_metric="val_metric",
        best_mode="max" if spec.metric == "accuracy" else "min",
        read_only=read_only,
    )


def _data_state(iterator_states: list[str], wall_s: float) -> dict[str, Any]:
    """A checkpoint's ``data_state``: every process's data-iterator state by process index, and
    the seconds the run has trained up to the checkpoint, summed over the processes it took."""
    return {
        "iterators": {str(i): text for i, text in enumerate(iterator_states)},
        "wall_s": wall_s,
    }


def _restored_progress(data_state: dict[str, Any], workdir) -> tuple[str, float]:
    """This process's data-iterator state and the run's wall seconds, from a ``data_state``."""
    if "iterators" not in data_state:  # written before wall time was kept: iterator states only
        return _own_data_state(data_state, workdir), 0.0
    return _own_data_state(data_state["iterators"], workdir), float(data_state["wall_s"])


def _own_data_state(data_states: dict[str, str], workdir) -> str:
    """This process's data-iterator state from a checkpoint's ``{process index: state}``."""
    if len(data_states) != jax.process_count():
        raise ValueError(
            f"the checkpoint in {workdir} was written by {len(data_states)} processes, but this "
            f"job has {jax.process_count()}; expected the same number of hosts to resume"
        )
    return data_states[str(jax.process_index())]


def _check_multihost(config) -> None:
    """ValueError unless a multi-process job runs the one mode whose state spans every host.

    With ``pmap`` or ``none`` each process would hold (and try to checkpoint) only its own copy
    of the train state, and with ``none`` the hosts would not even average their gradients.
    """
    if jax.process_count() > 1 and config.parallel != "shard_map":
        raise ValueError(
            f"config.parallel={config.parallel!r} cannot run on {jax.process_count()} processes; "
            "expected 'shard_map' (--config.parallel=shard_map), whose train state spans every "
            "host"
        )


def _check_identity(checkpointer: Checkpointer, config, workdir, force: bool) -> None:
    identity = {
        "fingerprint": config_lib.fingerprint(config),
        "config": json.loads(config.to_json()),
    }
    previous = checkpointer.read_identity()
    if previous is not None:  # recomputed, so that a fingerprint's definition may change
        previous["fingerprint"] = config_lib.fingerprint(
            ml_collections.ConfigDict(previous["config"])
        )
    if previous is not None and previous["fingerprint"] != identity["fingerprint"] and not force:
        differing = _differences(previous["config"], identity["config"])
        raise ConfigMismatch(
            f"workdir {workdir} holds a run of a different config (differing: {differing}). "
            f"Pick a new --workdir, delete {workdir} to start over, or pass --force to resume "
            f"it under the new config anyway."
        )
    if jax.process_count() > 1:  # every host reads the record before process 0 rewrites it
        multihost_utils.sync_global_devices("memjax: identity read")
    checkpointer.write_identity(identity)


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


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
        _check_multihost(config)
        check_batch(config, devices_per_step(config.parallel))
        with WorkdirLock(workdir, take=jax.process_index() == 0):
            try:
                return _train_in(config, workdir, preemption, force, progress, start_time)
            except Exception as error:
                if _is_disk_full(error):
                    raise DiskFull(_disk_full_message(error, workdir)) from error
                raise


def _is_disk_full(error: BaseException | None) -> bool:
    """Whether ENOSPC ("No space left on device") is anywhere in ``error``'s chain."""
    while error is not None:
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _disk_full_message(error: BaseException, workdir: epath.Path) -> str:
    steps = complete_checkpoint_steps(workdir / "checkpoints")
    last = f"step {steps[-1]} ({workdir / 'checkpoints' / str(steps[-1])})" if steps else "none"
    free = ""
    if not paths.is_url(str(workdir)):
        free = f" ({shutil.disk_usage(workdir).free / 2**20:.0f} MiB free now)"
    return (
        f"no space left on the device that holds {workdir}{free}: a write into the run "
        f"failed ({type(error).__name__}). The last good checkpoint is {last}. Free some space "
        "(or pick a --workdir on a larger disk) and run the same command again to resume."
    )


def complete_checkpoint_steps(directory: epath.Path) -> list[int]:
    """Steps whose folder Orbax finalised (renamed from its temporary name, metadata written),
    read from the listing alone, without opening (and cleaning) the directory."""
    if not directory.exists():
        return []
    return sorted(
        int(p.name)
        for p in directory.iterdir()
        if p.name.isdigit() and (p / "_CHECKPOINT_METADATA").exists()
    )


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
    params, opt_state = built.params, built.opt_state
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
    _check_identity(checkpointer, config, workdir, force)
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config.to_json(indent=1))
    step, earlier_wall_s = 0, 0.0
    if checkpointer.latest_step() is not None:
        step, state, data_state = checkpointer.restore(abstract)
        params, opt_state = state["params"], state["opt_state"]
        iterator_state, earlier_wall_s = _restored_progress(data_state, workdir)
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
            state = {
                "params": params,
                "opt_state": opt_state,
                "step": np.asarray(at_step, np.int64),
            }
            iterator_states = parallel.gather_texts(iterator.get_state().decode())
            checkpointer.save(
                at_step,
                state,
                data_state=_data_state(iterator_states, wall_s()),
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
            batch = _device_batch(next(iterator), config.parallel, mesh)
            try:
                params, opt_state, metrics = steps.train(params, opt_state, jnp.int32(step), batch)
            except jax.errors.JaxRuntimeError as error:
                if "RESOURCE_EXHAUSTED" in str(error):
                    raise MemoryError(_oom_message(error, config)) from error
                raise
            step += 1
            window.append((step, metrics))
            bar.update(1)
            at_log = step % int(config.train.log_every) == 0 or step == steps_total
            at_eval = step % int(config.train.eval_every) == 0 or step == steps_total
            at_save = step % int(config.train.checkpoint_every) == 0 or at_eval
            stop = preemption.should_stop(step)
            if at_log or at_save or stop:
                _check_finite(window, config)
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
    best_params = best_state["params"]
    interrupted = preemption.interrupted
    try:
        best_val = score(
            evaluate(steps, best_params, built.task, "validation", config, mesh, 0, interrupted),
            spec,
        )
        test = score(
            evaluate(steps, best_params, built.task, "test", config, mesh, 0, interrupted), spec
        )
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
    if jax.process_index() == 0:
        (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    checkpointer.close()
    return summary


def _check_finite(window: list[tuple[int, dict[str, jax.Array]]], config) -> None:
    for at_step, metrics in window:
        if not math.isfinite(float(metrics["loss"])):
            raise NonFiniteLoss(
                f"loss is {float(metrics['loss'])} at step {at_step}; training stopped and the "
                f"last good checkpoint kept. {_non_finite_remedies(config)}"
            )


def _non_finite_remedies(config) -> str:
    """What to try after a NaN loss, given what the config already does."""
    lr = float(config.optim.lr)
    remedies = [f"a lower learning rate (--config.optim.lr={lr / 3:.3g}; now {lr:g})"]
    clip = float(config.optim.clip_norm)
    if clip > 0:
        remedies.append(f"tighter clipping (--config.optim.clip_norm={clip / 4:g}; now {clip:g})")
    else:
        remedies.append("gradient clipping, which is off (--config.optim.clip_norm=1.0)")
    if int(config.optim.warmup_steps) < int(config.train.steps) // 10:
        remedies.append(
            f"a longer warmup (--config.optim.warmup_steps={max(1, int(config.train.steps) // 10)})"
        )
    if config.model.dtype != "float32":
        remedies.append("float32 compute (--config.model.dtype=float32)")
    return "Try " + ", ".join(remedies) + "."


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
    sums = evaluate(built.steps, run.params, built.task, split, built.config, built.mesh)
    return {
        "split": split,
        "step": run.step,
        built.spec.metric: score(sums, built.spec),
        "examples": sums["count"],
    }

"""Checkpoints for the trainer: latest N plus the best, verified restore, preemption.

One Orbax ``CheckpointManager`` writes every checkpoint as one step directory with three items:

- ``state``: the train state pytree (params, optimiser state, step, RNG key data), through
  ``StandardSave``/``StandardRestore``;
- ``data_state``: the data iterator's JSON state, through ``JsonSave``/``JsonRestore``;
- ``integrity``: SHA-256 digests of ``state`` and ``data_state`` taken at save time.

Which checkpoints are kept is Orbax's own preservation policy:
``AnyPreservationPolicy([LatestN(keep), BestN(n=1, keep_checkpoints_without_metrics=False)])``,
so the latest ``keep`` steps survive and so does the single best one by
``metrics[best_metric]`` however old it is. A save without metrics is never ranked, so it can
never become the best and never pushes the best out. ``best_fn`` is set as well because Orbax
only writes a step's metrics (and reloads them in a new process) when it is.

Corruption is detected on restore. Orbax itself raises when a file it needs is missing or
undecodable, but restores flipped bytes silently, so after every restore the digests of the
restored ``state`` and ``data_state`` are compared with the ones saved. When the latest step is
damaged (a digest mismatch, or TensorStore reporting a file or bytes missing or lost:
``NOT_FOUND``, ``DATA_LOSS``, ``OUT_OF_RANGE``), ``restore`` logs a warning naming the step and
the reason, tries the step before it, and once one restores, deletes the damaged newer steps so
that the resumed run can save those step numbers again (Orbax skips a save whose step is not
newer than the latest one on disk). Any other error (a network or permission error reading
``gs://``, say) says nothing about the checkpoint: the read is retried, and if it keeps failing
the restore stops with that error and deletes nothing.
A half-written step never appears at all: Orbax writes into a temporary directory and renames
it when complete, and temporary directories left by a killed process are removed on start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any, Self

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from memjax import paths

PyTree = Any

logger = logging.getLogger(__name__)

_IDENTITY_FILE = "identity.json"
_ITEMS = ("state", "data_state", "integrity")


class CheckpointRestoreError(RuntimeError):
    """No checkpoint could be restored from a checkpoint directory."""


class IntegrityError(ValueError):
    """A restored item's digest differs from the one saved with it."""


_DAMAGE_MARKERS = ("NOT_FOUND", "DATA_LOSS", "OUT_OF_RANGE", "was not found in the checkpoint")
"""TensorStore's status codes (and Orbax's message) for files or bytes that are not there."""

RESTORE_ATTEMPTS = 3
RETRY_SECONDS = 1.0


def is_damage(error: BaseException) -> bool:
    """Whether ``error`` shows the checkpoint itself is damaged (not a failure to read it)."""
    while error is not None:
        if isinstance(error, IntegrityError | FileNotFoundError):
            return True
        if any(marker in str(error) for marker in _DAMAGE_MARKERS):
            return True
        error = error.__cause__ or error.__context__
    return False


def _host_array(leaf: Any) -> np.ndarray:
    """A leaf as a host numpy array; typed PRNG keys become their uint32 key data.

    An array sharded across processes contributes only its shape and dtype, since no single
    process holds all of it.
    """
    if isinstance(leaf, jax.Array):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        if not (leaf.is_fully_addressable or leaf.is_fully_replicated):
            return np.empty((0,) * leaf.ndim, leaf.dtype)
    return np.ascontiguousarray(np.asarray(leaf))


def state_digest(state: PyTree) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in pytree order."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(state):
        array = _host_array(leaf)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def data_state_digest(data_state: Any) -> str:
    """SHA-256 of the canonical JSON text; raises TypeError if it is not JSON-serialisable."""
    text = json.dumps(data_state, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _integrity_record(state: PyTree, data_state: Any) -> dict[str, str]:
    return {"state_sha256": state_digest(state), "data_state_sha256": data_state_digest(data_state)}


def _verify_integrity(saved: Mapping[str, str], state: PyTree, data_state: Any) -> None:
    """Raises ValueError naming each item whose restored digest differs from the saved one."""
    restored = _integrity_record(state, data_state)
    bad = [key.removesuffix("_sha256") for key in restored if saved.get(key) != restored[key]]
    if bad:
        raise IntegrityError(
            f"checksum mismatch in {', '.join(bad)}: the files changed after the save (or, if "
            "every step fails this way, abstract_state's dtypes or shapes differ from the saved "
            "state's)"
        )


def _describe(error: BaseException) -> str:
    """A one-line reason for a failed restore."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line[:300]}"


class Checkpointer:
    """Saves and restores train state and data iterator state under one directory.

    ``directory`` may be local or ``gs://...``; all paths go through ``etils.epath``.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        keep: int = 3,
        best_metric: str | None = "val_accuracy",
        best_mode: str = "max",
        async_save: bool = True,
        read_only: bool = False,
    ) -> None:
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive int, got {keep!r}")
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
        self.directory = epath.Path(paths.resolve(directory))
        self.best_metric = best_metric
        self._manager = ocp.CheckpointManager(
            self.directory,
            item_names=_ITEMS,
            options=self._options(keep, best_mode, async_save, read_only),
        )

    def _options(
        self, keep: int, best_mode: str, async_save: bool, read_only: bool
    ) -> ocp.CheckpointManagerOptions:
        """Manager options: keep the latest ``keep`` steps and the best one, if ranked.

        ``read_only`` (``memjax eval``) writes and deletes nothing, not even the temporary
        folders of a save that a training process may be writing at that moment.
        """
        policies = ocp.checkpoint_managers
        latest = policies.LatestN(n=keep)
        common = dict(
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=not read_only,
            read_only=read_only,
        )
        if self.best_metric is None:
            return ocp.CheckpointManagerOptions(preservation_policy=latest, **common)
        metric = self.best_metric

        def rank(metrics: Mapping[str, float]) -> float:
            return metrics[metric]

        best = policies.BestN(
            get_metric_fn=rank,
            reverse=best_mode == "min",
            n=1,
            keep_checkpoints_without_metrics=False,
        )
        return ocp.CheckpointManagerOptions(
            best_fn=rank,
            best_mode=best_mode,
            preservation_policy=policies.AnyPreservationPolicy([latest, best]),
            **common,
        )

    def _ranked_metrics(self, step: int, metrics: Mapping[str, Any] | None) -> dict | None:
        """Metrics as plain floats, or None when this save must not compete for best."""
        if metrics is None or self.best_metric is None:
            return None
        if self.best_metric not in metrics:
            raise ValueError(
                f"metrics for step {step} lack best_metric {self.best_metric!r}; "
                f"got {sorted(metrics)}"
            )
        values = {name: float(value) for name, value in metrics.items()}
        if not math.isfinite(values[self.best_metric]):
            logger.warning(
                "step %d: %s is %s; this checkpoint is kept as a latest one but cannot be best",
                step,
                self.best_metric,
                values[self.best_metric],
            )
            return None
        return values

    def save(
        self,
        step: int,
        state: PyTree,
        *,
        data_state: Any,
        metrics: Mapping[str, float] | None = None,
        force: bool = False,
    ) -> bool:
        """Saves ``state`` and ``data_state`` as ``step``; returns whether a save started.

        With ``async_save`` the write continues in the background after this returns; the next
        ``save``, ``restore``, ``wait`` or ``close`` waits for it. A step that already exists is
        never overwritten (skipped, returns False). Without ``force`` a step older than the
        latest saved one is skipped too; ``force`` saves it anyway.
        """
        if step in self._manager.all_steps():
            logger.info("step %d already exists in %s; not saving it", step, self.directory)
            return False
        ranked = self._ranked_metrics(step, metrics)
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data_state=ocp.args.JsonSave(data_state),
            integrity=ocp.args.JsonSave(_integrity_record(state, data_state)),
        )
        return self._manager.save(step, args=args, metrics=ranked, force=force)

    def latest_step(self) -> int | None:
        """The newest saved step, or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step with the best ``metrics[best_metric]``, or None if no save was ranked."""
        if self.best_metric is None:
            return None
        return self._manager.best_step()

    def all_steps(self) -> list[int]:
        """Every kept step, ascending."""
        return sorted(self._manager.all_steps())

    def _restore_step(self, step: int, abstract_state: PyTree) -> tuple[PyTree, Any]:
        """Restores one step and checks it against the digests saved with it."""
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state),
                data_state=ocp.args.JsonRestore(),
                integrity=ocp.args.JsonRestore(),
            ),
        )
        _verify_integrity(restored.integrity, restored.state, restored.data_state)
        return restored.state, restored.data_state

    def restore(self, abstract_state: PyTree, step: int | None = None) -> tuple[int, PyTree, Any]:
        """Returns ``(step, state, data_state)``; ``step=None`` takes the latest good step.

        ``abstract_state`` has the saved state's structure with ``jax.ShapeDtypeStruct`` (or
        concrete array) leaves of the same dtypes and shapes. With ``step=None`` a damaged
        latest step (see :func:`is_damage`) is skipped with a warning and deleted once an older
        one restores; any other error is retried ``RESTORE_ATTEMPTS`` times and then raised as
        CheckpointRestoreError, with nothing deleted. Raises CheckpointRestoreError naming the
        directory if nothing can be restored.
        """
        self.wait()
        if step is not None:
            return step, *self._restore_named(step, abstract_state)
        failures: list[str] = []
        for candidate in reversed(self.all_steps()):
            try:
                state, data_state = self._restore_with_retries(candidate, abstract_state)
            except Exception as error:  # Orbax and TensorStore raise many types, some bare.
                if not is_damage(error):
                    raise CheckpointRestoreError(
                        f"checkpoint step {candidate} in {self.directory} could not be read after "
                        f"{RESTORE_ATTEMPTS} attempts ({_describe(error)}). The error does not "
                        "show that the checkpoint is damaged, so no older step is used and "
                        "nothing is deleted: fix the cause (network, permissions, disk) and run "
                        "the same command again."
                    ) from error
                failures.append(f"step {candidate}: {_describe(error)}")
                logger.warning(
                    "checkpoint step %d in %s cannot be restored (%s); trying the previous one",
                    candidate,
                    self.directory,
                    _describe(error),
                )
                continue
            self._discard_newer_than(candidate)
            return candidate, state, data_state
        raise CheckpointRestoreError(self._nothing_restorable(failures))

    def _restore_with_retries(self, step: int, abstract_state: PyTree) -> tuple[PyTree, Any]:
        """``_restore_step``, tried again after errors that do not show damage."""
        attempt = 1
        while True:
            try:
                return self._restore_step(step, abstract_state)
            except Exception as error:  # Orbax and TensorStore raise many types, some bare.
                if is_damage(error) or attempt == RESTORE_ATTEMPTS:
                    raise
                logger.warning(
                    "reading checkpoint step %d in %s failed (%s); attempt %d of %d in %.0f s",
                    step,
                    self.directory,
                    _describe(error),
                    attempt + 1,
                    RESTORE_ATTEMPTS,
                    RETRY_SECONDS * attempt,
                )
                time.sleep(RETRY_SECONDS * attempt)
                attempt += 1

    def _restore_named(self, step: int, abstract_state: PyTree) -> tuple[PyTree, Any]:
        """Restores exactly ``step``; no fallback, since the caller asked for that step."""
        if step not in self._manager.all_steps():
            raise CheckpointRestoreError(
                f"no checkpoint for step {step} in {self.directory}; steps: {self.all_steps()}"
            )
        try:
            return self._restore_with_retries(step, abstract_state)
        except Exception as error:  # Orbax and TensorStore raise many types, some bare.
            raise CheckpointRestoreError(
                f"checkpoint step {step} in {self.directory} cannot be restored: {_describe(error)}"
            ) from error

    def _discard_newer_than(self, good_step: int) -> None:
        """Deletes the unrestorable steps after ``good_step`` so training can save them again."""
        for bad_step in [s for s in self.all_steps() if s > good_step]:
            logger.warning(
                "restored step %d from %s instead of the unreadable step %d, which is deleted",
                good_step,
                self.directory,
                bad_step,
            )
            self._manager.delete(bad_step)

    def _nothing_restorable(self, failures: list[str]) -> str:
        if not failures:
            return f"no checkpoint to restore in {self.directory}"
        return f"no checkpoint in {self.directory} can be restored; " + "; ".join(failures)

    def damaged_steps(self) -> list[int]:
        """Listed steps whose folder lacks Orbax's metadata or one of the items."""
        required = ("_CHECKPOINT_METADATA", *_ITEMS)
        return [
            step
            for step in self.all_steps()
            if not all((self.directory / str(step) / name).exists() for name in required)
        ]

    def restore_best(self, abstract_state: PyTree) -> tuple[int, PyTree, Any]:
        """Restores the best step; no fallback, since a different step would not be the best.

        A damaged step folder takes its metrics with it, so it might have been the best: then
        this raises CheckpointRestoreError naming it rather than ranking the steps that remain.
        """
        self.wait()
        damaged = self.damaged_steps()
        if damaged:
            raise CheckpointRestoreError(
                f"checkpoint step(s) {damaged} in {self.directory} are damaged (files missing), "
                "so the best step cannot be known: one of them may have been it. Name a step "
                f"to use (memjax eval --step N; intact steps: "
                f"{[s for s in self.all_steps() if s not in damaged]}), or delete the damaged "
                "folders to rank the rest."
            )
        step = self.best_step()
        if step is None:
            raise CheckpointRestoreError(
                f"no checkpoint in {self.directory} is ranked by {self.best_metric!r}"
            )
        return self.restore(abstract_state, step)

    def wait(self) -> None:
        """Blocks until every asynchronous save has finished."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for saves to finish and releases Orbax's threads."""
        self._manager.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write_identity(self, identity: Mapping[str, Any]) -> None:
        """Writes the run's identity record (e.g. the config fingerprint) beside the steps."""
        if jax.process_index() != 0:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / _IDENTITY_FILE
        path.write_text(json.dumps(dict(identity), indent=2, sort_keys=True))

    def read_identity(self) -> dict | None:
        """The identity record written by ``write_identity``, or None if there is none."""
        path = self.directory / _IDENTITY_FILE
        if not path.exists():
            return None
        return json.loads(path.read_text())

"""What a workdir remembers of its run: the config's identity, the checkpoints, and the
progress stored with each checkpoint (each host's data iterator state, the wall time so far)."""

from __future__ import annotations

import json
from typing import Any

import jax
import ml_collections
from etils import epath
from jax.experimental import multihost_utils

from memjax import config as config_lib
from memjax.checkpoint import Checkpointer
from memjax.tasks.spec import TaskSpec


class ConfigMismatch(RuntimeError):
    """The workdir holds a run of another config."""


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


def progress_record(iterator_states: list[str], wall_s: float) -> dict[str, Any]:
    """A checkpoint's ``data_state``: every process's data-iterator state by process index, and
    the seconds the run has trained up to the checkpoint, summed over the processes it took."""
    return {
        "iterators": {str(i): text for i, text in enumerate(iterator_states)},
        "wall_s": wall_s,
    }


def restored_progress(data_state: dict[str, Any], workdir) -> tuple[str, float]:
    """This process's data-iterator state and the run's wall seconds, from a ``data_state``."""
    if "iterators" not in data_state:  # written before wall time was kept: iterator states only
        return own_data_state(data_state, workdir), 0.0
    return own_data_state(data_state["iterators"], workdir), float(data_state["wall_s"])


def own_data_state(data_states: dict[str, str], workdir) -> str:
    """This process's data-iterator state from a checkpoint's ``{process index: state}``."""
    if len(data_states) != jax.process_count():
        raise ValueError(
            f"the checkpoint in {workdir} was written by {len(data_states)} processes, but this "
            f"job has {jax.process_count()}; expected the same number of hosts to resume"
        )
    return data_states[str(jax.process_index())]


def check_identity(checkpointer: Checkpointer, config, workdir, force: bool) -> None:
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

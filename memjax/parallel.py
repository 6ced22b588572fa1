"""Data parallelism: one step function written per device, mapped over every device.

A step is written for one device's share of the batch and reduces across the ``data`` axis
with ``lax.psum``. :func:`data_parallel` maps it over all devices with ``jax.shard_map`` on a
1-D mesh (JAX's current form of pmap), with ``jax.pmap`` itself, or runs it directly on one
device; the three give the same numbers. On a multi-host TPU slice every host calls
:func:`initialize` first and feeds only its own shard of each global batch
(:func:`global_batch`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def initialize() -> None:
    """Start multi-host JAX when launched on several hosts (a TPU slice or a GPU cluster).

    ``jax.distributed.initialize()`` discovers the coordinator on Cloud TPU; on other clusters
    set ``MEMJAX_COORDINATOR``, ``MEMJAX_NUM_PROCESSES`` and ``MEMJAX_PROCESS_ID``.
    """
    if os.environ.get("MEMJAX_COORDINATOR"):
        jax.distributed.initialize(
            coordinator_address=os.environ["MEMJAX_COORDINATOR"],
            num_processes=int(os.environ["MEMJAX_NUM_PROCESSES"]),
            process_id=int(os.environ["MEMJAX_PROCESS_ID"]),
        )
    elif os.environ.get("TPU_WORKER_HOSTNAMES", "").count(",") > 0:
        jax.distributed.initialize()


def mesh() -> Mesh:
    """A 1-D mesh over every device of every host, axis ``data``."""
    return jax.make_mesh((jax.device_count(),), (AXIS,))


def global_batch(batch: dict[str, np.ndarray], device_mesh: Mesh) -> dict[str, jax.Array]:
    """This host's share of a batch -> global arrays sharded over ``data`` along axis 0."""
    sharding = NamedSharding(device_mesh, P(AXIS))
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch
    )


def replicate(tree: Any, device_mesh: Mesh) -> Any:
    """A pytree every process holds identically -> global arrays replicated over the mesh.

    The train state lives this way under ``shard_map`` so that, on several hosts, every step's
    inputs and outputs and every checkpoint span all of them.
    """
    sharding = NamedSharding(device_mesh, P())
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree
    )


def gather_texts(text: str) -> list[str]:
    """Every process's ``text``, in process order (a collective: all processes must call it)."""
    if jax.process_count() == 1:
        return [text]
    data = np.frombuffer(text.encode(), np.uint8)
    lengths = multihost_utils.process_allgather(np.int32(data.size))
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: data.size] = data
    rows = multihost_utils.process_allgather(padded)
    return [bytes(row[:n]).decode() for row, n in zip(rows, lengths, strict=True)]


def data_parallel(
    step: Callable[..., Any],
    how: str,
    n_replicated: int,
    n_split: int = 1,
    donate_argnums: tuple[int, ...] = (),
) -> Callable[..., Any]:
    """Map ``step(*replicated, *split)`` over devices; its (replicated) results come back whole.

    ``step`` receives its first ``n_replicated`` arguments whole and its last ``n_split``
    arguments divided along axis 0, and must reduce over axis ``"data"`` itself (``lax.psum``).
    With ``how="none"`` it runs on one device and must not call collectives.
    ``donate_argnums`` are handed to XLA, which may write the results into their buffers: those
    arguments are deleted by the call and must not be read after it.
    """
    if how == "none":
        return jax.jit(step, donate_argnums=donate_argnums)
    specs = (P(),) * n_replicated + (P(AXIS),) * n_split
    if how == "shard_map":
        # check_vma=False: a memory's initial carry is built inside the step and is not marked
        # as varying over ``data``; the step's own psum makes every output replicated.
        mapped = jax.shard_map(step, mesh=mesh(), in_specs=specs, out_specs=P(), check_vma=False)
        return jax.jit(mapped, donate_argnums=donate_argnums)
    if how == "pmap":
        n = jax.local_device_count()
        in_axes = (None,) * n_replicated + (0,) * n_split
        mapped = jax.pmap(step, axis_name=AXIS, in_axes=in_axes, donate_argnums=donate_argnums)

        def run(*args: Any) -> Any:
            split = jax.tree.map(
                lambda x: np.asarray(x).reshape(n, -1, *np.shape(x)[1:]), args[n_replicated:]
            )
            return jax.tree.map(lambda x: x[0], mapped(*args[:n_replicated], *split))

        return run
    raise ValueError(f"parallel must be one of ('shard_map', 'pmap', 'none'), got {how!r}")

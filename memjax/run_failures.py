"""What can stop a run, said clearly: bad batch splits, non-finite losses, out of memory,
a full disk, a multi-host job in a single-host mode."""

from __future__ import annotations

import errno
import math
import shutil

import jax
import ml_collections
from etils import epath

from memjax import paths


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss."""


class DiskFull(OSError):
    """A write into the workdir failed for lack of space."""


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


def oom_message(error: Exception, config) -> str:
    return (
        f"device out of memory ({str(error).splitlines()[0]}). Try a smaller batch "
        f"(--config.train.batch_size={max(1, config.train.batch_size // 2)}), gradient "
        f"accumulation (--config.optim.accumulate=2), rematerialisation "
        "(--config.model.remat=64: keep the state every 64 steps) or a shorter sequence length "
        "in the task options."
    )


def is_disk_full(error: BaseException | None) -> bool:
    """Whether ENOSPC ("No space left on device") is anywhere in ``error``'s chain."""
    while error is not None:
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_message(error: BaseException, workdir: epath.Path) -> str:
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


def check_finite(window: list[tuple[int, dict[str, jax.Array]]], config) -> None:
    for at_step, metrics in window:
        if not math.isfinite(float(metrics["loss"])):
            raise NonFiniteLoss(
                f"loss is {float(metrics['loss'])} at step {at_step}; training stopped and the "
                f"last good checkpoint kept. {non_finite_remedies(config)}"
            )


def non_finite_remedies(config) -> str:
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


def check_multihost(config) -> None:
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

"""The gcloud commands of ``memjax launch``, built as argument lists by small pure functions.

Nothing here runs anything: each function returns the exact ``argv`` of one ``gcloud`` call
(``--flag=value`` style), so ``--dry-run`` can print it and the tests can compare it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

Command = tuple[str, ...]

# The newest Cloud TPU VM software version per TPU generation.
TPU_RUNTIMES = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}
# A Deep Learning VM image family with an NVIDIA driver and CUDA 12 (jax[cuda12] brings the rest).
GPU_IMAGE_FAMILY = "common-cu128-ubuntu-2204-nvidia-570"
GPU_IMAGE_PROJECT = "deeplearning-platform-release"
GPU_BOOT_DISK = "200GB"

TPU_VM = ("gcloud", "compute", "tpus", "tpu-vm")
QUEUED = ("gcloud", "compute", "tpus", "queued-resources")
INSTANCES = ("gcloud", "compute", "instances")


@dataclasses.dataclass(frozen=True)
class Where:
    """Zone and (optional) project shared by every command of one launch."""

    zone: str
    project: str | None = None

    def flags(self) -> list[str]:
        """``--zone=...`` and, when set, ``--project=...``."""
        return [f"--zone={self.zone}"] + self.project_flags()

    def project_flags(self) -> list[str]:
        return [] if self.project is None else [f"--project={self.project}"]


def tpu_runtime(accelerator_type: str) -> str:
    """The default runtime version for an accelerator type such as ``v4-32``."""
    return TPU_RUNTIMES[accelerator_type.rsplit("-", 1)[0]]


def tpu_create(name: str, where: Where, accelerator_type: str, runtime: str, spot: bool) -> Command:
    """Create a TPU VM and wait until it is ready."""
    spot_flags = ["--spot"] if spot else []
    return (
        *TPU_VM,
        "create",
        name,
        *where.flags(),
        f"--accelerator-type={accelerator_type}",
        f"--version={runtime}",
        *spot_flags,
    )


def queued_create(
    name: str, where: Where, accelerator_type: str, runtime: str, spot: bool
) -> Command:
    """Queue a request for a TPU VM named ``name`` (the queued resource has the same name)."""
    spot_flags = ["--spot"] if spot else []
    return (
        *QUEUED,
        "create",
        name,
        *where.flags(),
        f"--node-id={name}",
        f"--accelerator-type={accelerator_type}",
        f"--runtime-version={runtime}",
        *spot_flags,
    )


def queued_state(name: str, where: Where) -> Command:
    """Print the queued resource's state (``WAITING_FOR_RESOURCES``, ``ACTIVE``, ...)."""
    return (*QUEUED, "describe", name, *where.flags(), "--format=value(state.state)")


def tpu_copy(name: str, where: Where, local: str, remote: str) -> Command:
    """Copy a local file to the home directory of every worker."""
    return (*TPU_VM, "scp", local, f"{name}:{remote}", *where.flags(), "--worker=all", "--quiet")


def tpu_ssh(name: str, where: Where, command: str, worker: str = "all") -> Command:
    """Run a shell command on every worker at once (or on worker ``worker`` only, e.g. ``0``)."""
    return (
        *TPU_VM, "ssh", name, *where.flags(), f"--worker={worker}", "--quiet", "--command", command
    )  # fmt: skip


def tpu_delete(name: str, where: Where) -> Command:
    """Delete a TPU VM made by ``tpu_create``."""
    return (*TPU_VM, "delete", name, *where.flags(), "--quiet")


def queued_delete(name: str, where: Where) -> Command:
    """Delete a queued resource and (``--force``) the TPU VM it made."""
    return (*QUEUED, "delete", name, *where.flags(), "--force", "--quiet")


def gpu_create(
    name: str,
    where: Where,
    machine_type: str,
    accelerator: str | None,
    image_family: str,
    spot: bool,
) -> Command:
    """Create a GPU VM from a Deep Learning VM image that may write to Cloud Storage.

    ``accelerator`` (``type=nvidia-l4,count=1``) is needed only for machine types without
    built-in GPUs (N1); A2, A3 and G2 machine types come with theirs.
    """
    accelerator_flags = [] if accelerator is None else [f"--accelerator={accelerator}"]
    spot_flags = ["--provisioning-model=SPOT", "--instance-termination-action=DELETE"]
    return (
        *INSTANCES,
        "create",
        name,
        *where.flags(),
        f"--machine-type={machine_type}",
        *accelerator_flags,
        f"--image-family={image_family}",
        f"--image-project={GPU_IMAGE_PROJECT}",
        f"--boot-disk-size={GPU_BOOT_DISK}",
        "--maintenance-policy=TERMINATE",
        "--metadata=install-nvidia-driver=True",
        "--scopes=cloud-platform",
        *(spot_flags if spot else []),
    )


def gpu_copy(name: str, where: Where, local: str, remote: str) -> Command:
    """Copy a local file to the VM's home directory."""
    return ("gcloud", "compute", "scp", local, f"{name}:{remote}", *where.flags(), "--quiet")


def gpu_ssh(name: str, where: Where, command: str) -> Command:
    """Run a shell command on the VM; its output streams back."""
    return ("gcloud", "compute", "ssh", name, *where.flags(), "--quiet", "--command", command)


def gpu_delete(name: str, where: Where) -> Command:
    """Delete the GPU VM (and its boot disk)."""
    return (*INSTANCES, "delete", name, *where.flags(), "--quiet")


def storage_copy(sources: Sequence[str], destination: str, where: Where) -> Command:
    """Copy objects from Cloud Storage into a local folder (``destination`` ends with ``/``)."""
    return ("gcloud", "storage", "cp", *where.project_flags(), *sources, destination)

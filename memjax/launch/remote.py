"""What ``memjax launch`` runs on the VM: the install script and the command line of the run.

Both are one-line bash scripts passed to ``gcloud ... ssh --command`` (gcloud makes the remote
user with bash as its login shell), run in that user's home directory: the source tarball is
unpacked into ``memjax/``, a virtual environment with Python 3.12 is made in ``memjax-venv/``
with uv (Cloud TPU images ship an older Python), and the command runs from ``memjax/`` so that
``--config configs/...`` paths resolve.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

TARBALL = "memjax-src.tar.gz"
SOURCE_DIR = "memjax"
VENV = "memjax-venv"
PYTHON = "3.12"
# jax's extra per platform; etils[epath-gcs] brings gcsfs, which etils.epath needs for gs://.
PLATFORM_PACKAGES = {
    "tpu": ("jax[tpu]", "etils[epath-gcs]"),
    "gpu": ("jax[cuda12]", "etils[epath-gcs]"),
}
# The port jax.distributed uses on Cloud TPU; worker 0 is the coordinator.
COORDINATOR_PORT = 8482
_METADATA = "http://metadata.google.internal/computeMetadata/v1/instance/attributes"


def _script(lines: Sequence[str]) -> str:
    """The lines joined with ``; ``, stopping at the first failure."""
    return "; ".join(["set -euo pipefail", *lines])


def _wait_for_driver() -> list[str]:
    """Deep Learning VM images install the NVIDIA driver on first boot: wait up to 15 min."""
    return [
        "for _ in $(seq 90); do nvidia-smi > /dev/null 2>&1 && break; sleep 10; done",
        "nvidia-smi --list-gpus",
    ]


def install_script(platform: str) -> str:
    """Unpack the source, make the virtual environment, install memjax and jax for ``platform``."""
    packages = " ".join(f'"{package}"' for package in PLATFORM_PACKAGES[platform])
    lines = [
        f"rm -rf {SOURCE_DIR} {VENV}",
        f"mkdir {SOURCE_DIR}",
        f"tar -xzf {TARBALL} -C {SOURCE_DIR}",
        'export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"',
        "command -v uv > /dev/null || curl -LsSf https://astral.sh/uv/install.sh | sh",
        f"uv venv --quiet --python {PYTHON} {VENV}",
        f"uv pip install --quiet --python {VENV}/bin/python ./{SOURCE_DIR} {packages}",
    ]
    return _script([*(_wait_for_driver() if platform == "gpu" else []), *lines])


def _distributed_env() -> list[str]:
    """Export MEMJAX_COORDINATOR / _NUM_PROCESSES / _PROCESS_ID from the TPU VM's metadata.

    ``memjax.parallel.initialize`` passes them to ``jax.distributed.initialize``. The worker
    list (``worker-network-endpoints``) holds ``name:id:ip`` triples or plain host names, in
    worker order; ``agent-worker-number`` is this worker's index.
    """
    fetch = f"curl -sf -H Metadata-Flavor:Google {_METADATA}"
    return [
        f'hosts="$({fetch}/worker-network-endpoints | tr , "\\n" | sed "s/.*://")"',
        f'export MEMJAX_COORDINATOR="$(echo "$hosts" | head -n 1):{COORDINATOR_PORT}"',
        'export MEMJAX_NUM_PROCESSES="$(echo "$hosts" | wc -l)"',
        f'export MEMJAX_PROCESS_ID="$({fetch}/agent-worker-number)"',
    ]


def run_script(platform: str, memjax_args: Sequence[str]) -> str:
    """Run ``memjax ARGS...`` from the unpacked source; on a TPU, as one process per worker."""
    env = _distributed_env() if platform == "tpu" else []
    run = f"exec ../{VENV}/bin/memjax {shlex.join(memjax_args)}"
    return _script([f"cd {SOURCE_DIR}", "export PYTHONUNBUFFERED=1", *env, run])

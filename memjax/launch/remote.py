"""What ``memjax launch`` runs on the VM: the install script, and the scripts that start the run
detached and poll it.

Each is a one-line bash script passed to ``gcloud ... ssh --command`` (gcloud makes the remote
user with bash as its login shell), run in that user's home directory: the source tarball is
unpacked into ``memjax/``, a virtual environment with Python 3.12 is made in ``memjax-venv/``
with uv (Cloud TPU images ship an older Python), and the command runs from ``memjax/`` so that
``--config configs/...`` paths resolve.

The run does not depend on the ssh connection that starts it: :func:`start_script` starts
``memjax ...`` in a new session (``setsid nohup``) with its output in ``~/memjax-run.log``, and
when it ends its exit status goes to ``~/memjax-run.status``; the script returns at once.
:func:`poll_script` then reports whether the run is going, its status once it ended, and the
log from a given byte offset, in the format :func:`parse_poll` reads.
"""

from __future__ import annotations

import re
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
# The detached run's files in the remote home: its output, its exit status (written once it
# ended) and the process id of the shell that waits for it.
LOG = "memjax-run.log"
STATUS = "memjax-run.status"
PID = "memjax-run.pid"
# The first line a poll prints: ``POLL_MARK STATE LOG_BYTES``, STATE ``running``, ``gone`` (no
# process and no status) or the exit status; the log from the asked offset follows.
POLL_MARK = "memjax-launch-poll"
RUNNING = "running"
GONE = "gone"
# Tenths of a second the start waits for the detached shell to write its process id.
_START_WAIT = 100


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


def _running() -> str:
    """A test that the detached run started here has not ended."""
    pid = f'"$HOME/{PID}"'
    return f'[ -f {pid} ] && [ ! -f "$HOME/{STATUS}" ] && kill -0 "$(cat {pid})" 2> /dev/null'


def start_script(platform: str, memjax_args: Sequence[str]) -> str:
    """Start ``memjax ARGS...`` detached from the ssh session and return at once.

    On a TPU it runs as one process per worker (the script runs on every worker). The run's
    output goes to ``~/memjax-run.log`` and, once it ended, its exit status to
    ``~/memjax-run.status`` (through a rename, so a poll never reads half of it). A run that is
    still going from an earlier start is left alone, so a retried start never runs it twice.
    """
    env = _distributed_env() if platform == "tpu" else []
    log, status, pid = (f'"$HOME/{name}"' for name in (LOG, STATUS, PID))
    job = (
        f"echo $$ > {pid}; ../{VENV}/bin/memjax {shlex.join(memjax_args)} > {log} 2>&1; "
        f"echo $? > {status}.tmp; mv {status}.tmp {status}"
    )
    detached = f"setsid nohup bash -c {shlex.quote(job)} > /dev/null 2>&1 < /dev/null &"
    wait = f"for _ in $(seq {_START_WAIT}); do [ -s {pid} ] && break; sleep 0.1; done"
    return _script(
        [
            f"if {_running()}; then echo 'memjax launch: the run is already going'; exit 0; fi",
            f"cd {SOURCE_DIR}",
            "export PYTHONUNBUFFERED=1",
            *env,
            f"rm -f {log} {status} {pid}",
            f"{detached} {wait}",
            f"test -s {pid}",
        ]
    )


def poll_script(offset: int) -> str:
    """Print ``POLL_MARK STATE LOG_BYTES`` and then the run's log from byte ``offset`` on.

    The state is read before the log's size, so the log is complete once a status shows.
    """
    return "; ".join(
        [
            'cd "$HOME"',
            f'if [ -f {STATUS} ]; then state="$(cat {STATUS})"; '
            f"elif {_running()}; then state={RUNNING}; else state={GONE}; fi",
            f'size="$(wc -c 2> /dev/null < {LOG} || echo 0)"',
            f'offset={int(offset)}; [ "$size" -ge "$offset" ] || offset=0',
            f'echo "{POLL_MARK} $state $size"',
            f'tail -c +"$((offset + 1))" {LOG} 2> /dev/null | head -c "$((size - offset))" || true',
        ]
    )


def report_script() -> str:
    """Each worker's exit status and the end of its log, each line led by the host name."""
    return "; ".join(
        [
            'cd "$HOME"',
            'host="$(hostname)"',
            f'echo "$host: exit status $(cat {STATUS} 2> /dev/null || echo none, still going)"',
            f'tail -n 20 {LOG} 2> /dev/null | sed "s/^/$host: /" || true',
        ]
    )


def parse_poll(output: bytes) -> tuple[str, int, bytes] | None:
    """``(state, log_bytes, log_chunk)`` from a poll's output, or None if it has no state line.

    Anything before the state line (a login banner) is dropped.
    """
    found = re.search(rb"^" + POLL_MARK.encode() + rb" (\S+) ([0-9]+)\n", output, re.MULTILINE)
    if found is None:
        return None
    state = found[1].decode()
    if state not in (RUNNING, GONE) and not state.isdigit():
        return None
    return state, int(found[2]), output[found.end() :]

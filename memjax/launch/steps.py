"""Running a launch's gcloud steps: output streamed, retries, polling, and the delete.

A :class:`Plan` is the ordered steps of one launch plus the step that deletes the VM. ``execute``
runs the steps with the ``gcloud`` found on PATH and runs the delete afterwards whenever the
create step succeeded, also after a failed step, Ctrl-C or SIGTERM, unless told to keep the VM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from memjax.launch.gcloud import Command

# Seconds between polls of a state query, and between tries of a retried step.
POLL_S = 30.0
RETRY_S = 20.0


class LaunchError(RuntimeError):
    """A step of a launch failed; the message names the step and its command."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One gcloud command of a launch.

    ``attempts`` > 1 retries a failure after ``RETRY_S`` seconds. With ``until`` set the command
    prints a state and is polled every ``POLL_S`` seconds until it prints ``until``; a state in
    ``fail_on`` fails the step. ``hint`` is added to the error when the step fails.
    """

    name: str
    command: Command
    attempts: int = 1
    until: str | None = None
    fail_on: tuple[str, ...] = ()
    hint: str = ""

    def error(self, reason: str) -> LaunchError:
        text = f"step {self.name!r} failed ({reason}): {shlex.join(self.command)}"
        return LaunchError(f"{text}\n{self.hint}" if self.hint else text)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The steps of a launch, in order, and the step that deletes what the first one made."""

    steps: tuple[Step, ...]
    delete: Step


def say(message: str) -> None:
    """A progress line on stderr, apart from the streamed output of the commands."""
    print(f"[memjax launch] {message}", file=sys.stderr, flush=True)


def _call(gcloud_path: str, step: Step, capture: bool) -> subprocess.CompletedProcess:
    return subprocess.run(
        [gcloud_path, *step.command[1:]],
        stdin=subprocess.DEVNULL,
        capture_output=capture,
        text=True,
        check=False,
    )


def _poll(gcloud_path: str, step: Step) -> None:
    """Reruns a state query until it prints ``step.until``."""
    while True:
        result = _call(gcloud_path, step, capture=True)
        if result.returncode != 0:
            raise step.error(f"exit status {result.returncode}: {result.stderr.strip()}")
        state = result.stdout.strip()
        if state == step.until:
            return
        if state in step.fail_on:
            raise step.error(f"state {state}")
        say(f"{step.name}: state {state or '(none yet)'}; asking again in {POLL_S:g} s")
        time.sleep(POLL_S)


def run_step(gcloud_path: str, step: Step) -> None:
    """Runs one step with its output streaming through; raises LaunchError if it fails."""
    say(f"{step.name}: {shlex.join(step.command)}")
    if step.until is not None:
        _poll(gcloud_path, step)
        return
    for attempt in range(1, step.attempts + 1):
        returncode = _call(gcloud_path, step, capture=False).returncode
        if returncode == 0:
            return
        if attempt < step.attempts:
            say(f"{step.name}: exit status {returncode}; try {attempt + 1} in {RETRY_S:g} s")
            time.sleep(RETRY_S)
    raise step.error(f"exit status {returncode}")


def execute(plan: Plan, gcloud_path: str, keep: bool) -> None:
    """Runs the steps; deletes the VM afterwards (also on failure) once ``create`` succeeded."""
    delete_line = shlex.join(plan.delete.command)
    created = False
    try:
        for step in plan.steps:
            run_step(gcloud_path, step)
            created = created or step.name == "create"
    except BaseException as error:
        if not created:
            error.add_note(f"If the VM was made anyway, delete it with: {delete_line}")
        elif keep:
            error.add_note(f"The VM is kept (--keep); delete it with: {delete_line}")
        else:
            _delete_after_failure(gcloud_path, plan.delete, error)
        raise
    if keep:
        say(f"kept the VM (--keep); delete it with: {delete_line}")
    else:
        run_step(gcloud_path, plan.delete)


def _delete_after_failure(gcloud_path: str, delete: Step, error: BaseException) -> None:
    try:
        run_step(gcloud_path, delete)
    except LaunchError as delete_error:
        error.add_note(f"Deleting the VM failed too, so it may still be billed: {delete_error}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"memjax launch stopped by signal {signum}")


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM acts like Ctrl-C, so a killed launch still deletes its VM."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def message(error: BaseException) -> str:
    """The error's text and its notes (what the delete did, or how to delete by hand)."""
    return "\n".join([str(error) or type(error).__name__, *getattr(error, "__notes__", [])])

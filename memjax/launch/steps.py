"""Running a launch's gcloud steps: output streamed, retries, polling, the detached run, the delete.

A :class:`Plan` is the ordered steps of one launch plus the step that deletes the VM. ``execute``
runs the steps with the ``gcloud`` found on PATH and runs the delete afterwards whenever the
create step succeeded, also after a failed step, Ctrl-C or SIGTERM, unless told to keep the VM.

Stopping: within :func:`sigterm_interrupts` (entered by the main thread) SIGTERM only records a
stop request. Every launch of the process, in the main thread or in others (``memjax table
--jobs N``), checks it between steps, while a gcloud command runs (which is then ended) and
while it waits, and raises :class:`Stopped`; ``execute`` then deletes the VM as after any error.
The delete itself is never stopped.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

from memjax.launch import remote
from memjax.launch.gcloud import Command

# Seconds between polls of a state query or of the detached run, and between tries of a retried
# step or of a failed poll of the run.
POLL_S = 30.0
RETRY_S = 20.0
# How long polls of the detached run may keep failing in a row (ssh down, the VM unreachable)
# before the launch gives up on the run (a preempted VM never answers again).
UNREACHABLE_S = 3600.0
# How often a running gcloud command looks for a stop request; how long it has to end.
_WAKE_S = 0.1
_END_S = 5.0


class LaunchError(RuntimeError):
    """A step of a launch failed; the message names the step and its command."""


class Stopped(KeyboardInterrupt):
    """A stop was requested (SIGTERM); raised in every launch so that each deletes its VM."""


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
class Follow:
    """Polls a run started detached on the VM until it ends, streaming its log meanwhile.

    ``poll(offset)`` is the gcloud command that runs :func:`remote.poll_script` from log byte
    ``offset``; it runs every ``POLL_S`` seconds. A failed poll is retried every ``RETRY_S``
    seconds, for up to ``UNREACHABLE_S`` in a row. The step fails when the run ends with a
    non-zero status (after ``report``, if given, shows every worker's status), when it is gone
    without a status, or after ``timeout_s`` seconds (None: no limit).
    """

    name: str
    poll: Callable[[int], Command]
    report: Command | None = None
    timeout_s: float | None = None
    hint: str = ""

    @property
    def command(self) -> Command:
        """The first poll (what ``--dry-run`` prints)."""
        return self.poll(0)

    def error(self, reason: str) -> LaunchError:
        return Step(self.name, self.command, hint=self.hint).error(reason)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The steps of a launch, in order, and the step that deletes what the first one made."""

    steps: tuple[Step | Follow, ...]
    delete: Step


def say(message: str) -> None:
    """A progress line on stderr, apart from the streamed output of the commands."""
    print(f"[memjax launch] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- stopping

_stop = threading.Event()
_stop_signal: int | None = None


def request_stop(signum: int) -> None:
    """Makes every launch of this process stop (and delete its VM) at its next check."""
    global _stop_signal
    if _stop_signal is None:
        _stop_signal = signum
    _stop.set()


def stop_signal() -> int | None:
    """The signal that requested a stop, or None."""
    return _stop_signal if _stop.is_set() else None


def check_stop() -> None:
    """Raises :class:`Stopped` if a stop was requested."""
    if _stop.is_set():
        raise Stopped(f"stopped by signal {_stop_signal}")


def _sleep(seconds: float) -> None:
    """``time.sleep`` that ends early, raising :class:`Stopped`, on a stop request."""
    _stop.wait(seconds)
    check_stop()


def _on_sigterm(signum: int, frame: object) -> None:
    request_stop(signum)


def _clear_stop() -> None:
    global _stop_signal
    _stop.clear()
    _stop_signal = None


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM stops every launch of this process, each deleting its VM.

    Only the main thread can install the handler; in other threads, or nested in a block that
    already installed it, this does nothing. The stop request is cleared on entry and exit.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is _on_sigterm
    ):
        yield
        return
    _clear_stop()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _clear_stop()


# ----------------------------------------------------------------------------- running steps


def _call(
    gcloud_path: str, command: Command, capture: bool, stoppable: bool = True
) -> subprocess.CompletedProcess:
    """Runs ``gcloud`` with ``command``'s arguments; ends it on a stop request (if
    ``stoppable``) or any error here (Ctrl-C), then re-raises. Captured output is bytes."""
    pipe = subprocess.PIPE if capture else None
    process = subprocess.Popen(
        [gcloud_path, *command[1:]], stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe
    )
    try:
        while True:
            try:
                out, err = process.communicate(timeout=_WAKE_S)
                break
            except subprocess.TimeoutExpired:
                if stoppable:
                    check_stop()
    except BaseException:
        _end(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _end(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(_END_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _text(data: bytes | None) -> str:
    return (data or b"").decode(errors="replace").strip()


def _poll(gcloud_path: str, step: Step) -> None:
    """Reruns a state query until it prints ``step.until``."""
    while True:
        result = _call(gcloud_path, step.command, capture=True)
        if result.returncode != 0:
            raise step.error(f"exit status {result.returncode}: {_text(result.stderr)}")
        state = _text(result.stdout)
        if state == step.until:
            return
        if state in step.fail_on:
            raise step.error(f"state {state}")
        say(f"{step.name}: state {state or '(none yet)'}; asking again in {POLL_S:g} s")
        _sleep(POLL_S)


def _follow(gcloud_path: str, step: Follow) -> None:
    """Polls the detached run until it ends, writing its new log bytes to stdout each time."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset, started = 0, time.monotonic()
    answered = started
    while True:
        result = _call(gcloud_path, step.poll(offset), capture=True)
        parsed = remote.parse_poll(result.stdout) if result.returncode == 0 else None
        now = time.monotonic()
        if parsed is None:
            why = f"exit status {result.returncode}: {_text(result.stderr)[-300:]}"
            if result.returncode == 0:
                why = f"no state in its output: {_text(result.stdout)[-300:]}"
            if now - answered >= UNREACHABLE_S:
                raise step.error(f"no answer for {now - answered:.0f} s, last {why}")
            say(
                f"{step.name}: polling the run failed ({why}); it keeps running on the VM; "
                f"asking again in {RETRY_S:g} s"
            )
            _sleep(RETRY_S)
            continue
        answered = now
        state, offset, chunk = parsed
        sys.stdout.write(decoder.decode(chunk))
        sys.stdout.flush()
        if state == remote.RUNNING:
            if step.timeout_s is not None and now - started >= step.timeout_s:
                raise step.error(f"still running after the timeout, {step.timeout_s / 3600:g} h")
            _sleep(POLL_S)
            continue
        sys.stdout.write(decoder.decode(b"", final=True))
        if state == remote.GONE:
            raise step.error("the run ended without an exit status; the VM may have restarted")
        if state != "0":
            if step.report is not None:
                say(f"{step.name}: every worker's exit status and last lines")
                _call(gcloud_path, step.report, capture=False)
            raise step.error(f"the run's exit status {state}")
        return


def run_step(gcloud_path: str, step: Step | Follow, stoppable: bool = True) -> None:
    """Runs one step with its output streaming through; raises LaunchError if it fails."""
    say(f"{step.name}: {shlex.join(step.command)}")
    if isinstance(step, Follow):
        _follow(gcloud_path, step)
        return
    if step.until is not None:
        _poll(gcloud_path, step)
        return
    for attempt in range(1, step.attempts + 1):
        returncode = _call(gcloud_path, step.command, False, stoppable).returncode
        if returncode == 0:
            return
        if attempt < step.attempts:
            say(f"{step.name}: exit status {returncode}; try {attempt + 1} in {RETRY_S:g} s")
            _sleep(RETRY_S)
    raise step.error(f"exit status {returncode}")


def execute(plan: Plan, gcloud_path: str, keep: bool) -> None:
    """Runs the steps; deletes the VM afterwards (also on failure) once ``create`` succeeded.

    A stop or Ctrl-C during ``create`` also tries the delete, since the VM may be made anyway.
    """
    delete_line = shlex.join(plan.delete.command)
    phase = "before"  # -> "creating" -> "created"
    try:
        for step in plan.steps:
            check_stop()
            if step.name == "create":
                phase = "creating"
            run_step(gcloud_path, step)
            if step.name == "create":
                phase = "created"
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        if phase == "before":
            raise
        if phase == "creating" and not interrupted:
            error.add_note(f"If the VM was made anyway, delete it with: {delete_line}")
        elif keep:
            error.add_note(f"The VM is kept (--keep); delete it with: {delete_line}")
        else:
            _delete_after_failure(gcloud_path, plan.delete, error, made=phase == "created")
        raise
    if keep:
        say(f"kept the VM (--keep); delete it with: {delete_line}")
    else:
        run_step(gcloud_path, plan.delete, stoppable=False)


def _delete_after_failure(gcloud_path: str, delete: Step, error: BaseException, made: bool) -> None:
    try:
        run_step(gcloud_path, delete, stoppable=False)
        error.add_note(f"Deleted the VM: {shlex.join(delete.command)}")
    except LaunchError as delete_error:
        if made:
            error.add_note(f"Deleting the VM failed too, so it may still be billed: {delete_error}")
        else:
            error.add_note(
                "The create was interrupted; deleting the VM in case it was made failed "
                f"(it may not exist). Check, and delete it with: {shlex.join(delete.command)}"
            )


def message(error: BaseException) -> str:
    """The error's text and its notes (what the delete did, or how to delete by hand)."""
    return "\n".join([str(error) or type(error).__name__, *getattr(error, "__notes__", [])])

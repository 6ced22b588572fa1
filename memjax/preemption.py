"""SIGTERM as a request to save and stop, for one process or for every host of a job.

The trainer installs the watch before it builds anything and keeps it until the summary is
written, so a SIGTERM that lands while the task is built, while the first step compiles or during
the final evaluation is never the default action (death with no message): the run saves at its
next step boundary, or, after training, stops its evaluation and says how to finish it. The
``memjax train`` command installs a :class:`PreemptionHandler` before it imports the trainer
and loads the config, and the trainer's handler carries over a request that arrived that early.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Self


class Preempted(Exception):
    """A SIGTERM arrived while the run could not save (the final evaluation)."""


class PreemptionHandler:
    """Turns SIGTERM into a flag the train loop polls: ``if handler.should_stop(step): save;
    exit``. For a single process; :class:`SyncedPreemption` is the multi-host counterpart.

    The handler only sets ``requested`` (and calls the optional callback), so a SIGTERM that
    lands mid-step or mid-save never runs checkpoint code re-entrantly; the loop saves at its
    next step boundary, where the state is consistent. The previous handler is restored by
    ``uninstall()`` or on leaving the ``with`` block.
    """

    def __init__(self, callback: Callable[[], None] | None = None) -> None:
        self._callback = callback
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        earlier = getattr(self._previous, "__self__", None)
        if isinstance(earlier, PreemptionHandler) and earlier.requested:
            self.requested = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if self._callback is not None:
            self._callback()

    def should_stop(self, step: int) -> bool:
        """Whether to save and stop after ``step``: a SIGTERM has arrived."""
        del step
        return self.requested

    def interrupted(self) -> bool:
        """Whether a SIGTERM has arrived; may be asked at any time (between evaluation batches)."""
        return self.requested

    def uninstall(self) -> None:
        """Puts back the SIGTERM handler that was installed before this one."""
        previous = signal.SIG_DFL if self._previous is None else self._previous
        signal.signal(signal.SIGTERM, previous)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.uninstall()


class SyncedPreemption:
    """Preemption across hosts: every host stops at the same step.

    A SIGTERM reaches one host, but a save is a collective: a host that saved and left alone
    would leave the others waiting in the next step. JAX's preemption sync manager (started by
    ``jax.distributed.initialize``; it catches SIGTERM itself, so no Python handler is
    installed) tells every host of a notice and picks the first step all of them can still
    reach; ``should_stop(step)`` is True on every host at that step. It must be called at every
    step, by every host.
    """

    def should_stop(self, step: int) -> bool:
        """Whether all hosts save and stop after ``step``."""
        from jax.experimental import multihost_utils

        return multihost_utils.reached_preemption_sync_point(step)

    def interrupted(self) -> bool:
        """Always False: hosts can only stop together, at a step, so evaluation runs to its end."""
        return False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def install_preemption_handler(
    callback: Callable[[], None] | None = None,
) -> PreemptionHandler | SyncedPreemption:
    """The preemption watch for this run: :class:`SyncedPreemption` when several processes run
    (multi-host), else a SIGTERM handler installed now (main thread only).

    ``callback`` runs inside the single-process signal handler, so it must be quick (log, set a
    flag); the checkpoint itself belongs in the train loop after ``should_stop(step)``.
    """
    import jax

    if jax.process_count() > 1:
        return SyncedPreemption()
    return PreemptionHandler(callback)

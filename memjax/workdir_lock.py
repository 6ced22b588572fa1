"""One writer per run directory: an exclusive ``flock`` on ``WORKDIR/.memjax.lock``.

Two ``memjax train`` processes on one workdir would both train, write every metrics line twice
and race on the checkpoints. The first to start takes the lock and writes who holds it (host,
pid, start time) into the lock file; a second is refused with that record. The operating system
drops the lock when its holder exits in any way, ``kill -9`` included, so a killed run never
leaves a stale lock behind. Local folders only: a ``gs://`` workdir has no file locks, so it is
not locked (logged), and in a multi-host job only process 0 takes the lock, for the whole job.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from typing import Self

from memjax import paths

LOCK_FILE = ".memjax.lock"

logger = logging.getLogger(__name__)


class WorkdirBusy(RuntimeError):
    """Another process holds the workdir."""


class WorkdirLock:
    """``with WorkdirLock(workdir): ...`` holds the workdir for this process.

    Raises :class:`WorkdirBusy` naming the holder's host and pid when another process holds it.
    ``take=False`` (the other processes of a multi-host job) holds nothing.
    """

    def __init__(self, workdir: str | os.PathLike, *, take: bool = True) -> None:
        self.workdir = os.fspath(workdir)
        self._file = None
        if not take:
            return
        if paths.is_url(self.workdir):
            logger.info("%s is not a local folder, so it is not locked", self.workdir)
            return
        path = Path(self.workdir) / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # held open for as long as the lock is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise WorkdirBusy(_busy_message(self.workdir, holder)) from None
        handle.seek(0)
        handle.truncate()
        record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        handle.write(json.dumps(record))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Drops the lock (also done by the operating system when the process exits)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _busy_message(workdir: str, holder_text: str) -> str:
    try:
        holder = json.loads(holder_text)
        who = f"host {holder['host']}, pid {holder['pid']}, since {holder['started']}"
        pid = holder["pid"]
    except (ValueError, KeyError, TypeError):
        who, pid = "a process that has not written its name yet", "PID"
    return (
        f"workdir {workdir} is in use by another memjax run ({who}). Wait for it to finish, "
        f"stop it (SIGTERM saves and exits: kill {pid}), or pick another --workdir."
    )

"""``metrics.jsonl`` (and TensorBoard on process 0): one JSON line per logged step."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import jax
from etils import epath

from memjax import paths

logger = logging.getLogger(__name__)


class MetricsLog:
    """One JSON object per line in ``workdir/metrics.jsonl`` (and TensorBoard, if installed).

    Only process 0 writes. :meth:`write` hands the line to a single writer thread and returns,
    so the train step never waits on the file system; lines land in the order written.
    :meth:`flush` waits for every line handed over and raises the first error a write met
    (a failed write also raises from the next :meth:`write`); :meth:`close` flushes and stops
    the thread, and so does leaving a ``with`` block.

    A local file is opened in append mode. On ``gs://`` (any URL) etils' epath goes through
    gcsfs, which has no append (``"a"`` would overwrite the object), so each write reads the
    file and rewrites it whole: a cost in the number of lines, paid in the writer thread.

    ``after_step``: the step a run resumes from (0 for a fresh start). Lines of later steps,
    logged by a process killed before it could save them, are dropped first (and a line torn
    by the kill), so each step is in the file once; TensorBoard hides its later events too.
    """

    def __init__(self, workdir: epath.Path, after_step: int | None = None):
        self.path = workdir / "metrics.jsonl"
        self.local = not paths.is_url(str(workdir))
        self.enabled = jax.process_index() == 0
        self.tensorboard = None
        self._pending: list[concurrent.futures.Future] = []
        if not self.enabled:
            return
        if after_step is not None:
            self._drop_after(after_step)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="metrics")
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            return
        purge = {} if after_step is None else {"purge_step": after_step + 1}
        self.tensorboard = SummaryWriter(str(workdir / "tensorboard"), **purge)

    def _drop_after(self, step: int) -> None:
        """Rewrites the file without the lines of steps after ``step`` (and a torn last line)."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if logged_step(line) <= step]
        if len(kept) == len(lines):
            return
        if self.local:  # a kill during the rewrite leaves the old file, never half of it
            temporary = Path(f"{self.path}.tmp")
            temporary.write_text("".join(kept))
            os.replace(temporary, os.fspath(self.path))
        else:
            self.path.write_text("".join(kept))

    def write(self, step: int, values: dict[str, float]) -> None:
        """Queues ``{"step": step, **values}`` as one line; raises an earlier write's error."""
        if not self.enabled:
            return
        self._raise_failed()
        line = json.dumps({"step": step, **values}) + "\n"
        self._pending.append(self._executor.submit(self._append, step, line, values))

    def _append(self, step: int, line: str, values: dict[str, float]) -> None:
        """Runs in the writer thread."""
        if self.local:
            with open(os.fspath(self.path), "a") as file:
                file.write(line)
        else:
            old = self.path.read_text() if self.path.exists() else ""
            self.path.write_text(old + line)
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, step)

    def _raise_failed(self) -> None:
        """Raises the error of the first finished write that failed; forgets finished ones."""
        done, pending = [], []
        for future in self._pending:
            (done if future.done() else pending).append(future)
        self._pending = pending
        for future in done:
            future.result()

    def flush(self) -> None:
        """Waits until every line written so far is in the file; raises a write's error."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Flushes, then stops the writer thread and TensorBoard."""
        if not self.enabled:
            return
        try:
            self.flush()
        finally:
            self._executor.shutdown(wait=True)
            if self.tensorboard is not None:
                self.tensorboard.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        if exc is None:
            self.close()
            return
        try:  # the error in flight is the one to report; a write's error is logged beside it
            self.close()
        except Exception:
            logger.exception("writing %s failed as well", self.path)


def logged_step(line: str) -> float:
    """The step of one metrics.jsonl line (with its newline); infinite for a line a kill cut
    short, which lacks its newline and may lack the end of its JSON."""
    if not line.endswith("\n"):
        return math.inf
    try:
        return json.loads(line)["step"]
    except json.JSONDecodeError:
        return math.inf

"""Launching the runs a table is missing: in this process, as subprocesses, or on Cloud VMs."""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

from etils import epath

from memjax.experiments.runs import VM_OPTION, Run


def summary_path(runs_dir: epath.Path, run: Run) -> epath.Path:
    """Where ``run`` writes its summary when it finishes."""
    return runs_dir / run.name / "summary.json"


def missing_data(runs: Sequence[Run]) -> dict[str, str]:
    """Run name -> the task's message with the steps to get its data, for data not here."""
    from memjax import tasks

    checked: dict[str, str | None] = {}
    out = {}
    for run in runs:
        config = run.load()
        options = dict(config.task.options)
        key = json.dumps([config.task.name, options], sort_keys=True, default=str)
        if key not in checked:
            try:
                tasks.get(config.task.name, **options).source("train")
                checked[key] = None
            except FileNotFoundError as error:  # the tasks' missing-data error
                checked[key] = str(error)
        if checked[key] is not None:
            out[run.name] = checked[key]
    return out


def train_here(run: Run, workdir: epath.Path) -> None:
    """Train ``run`` in this process."""
    from memjax import train

    train.train_and_evaluate(run.load(), workdir, progress=False)


def train_subprocess(run: Run, workdir: epath.Path) -> None:
    """Train ``run`` as a ``memjax train`` subprocess; its output goes to ``workdir/train.log``."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "train.log"
    argv = [sys.executable, "-m", "memjax.cli", *run.train_argv(str(workdir), run.absolute_config)]
    with log.open("w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        raise RuntimeError(
            f"exit status {done.returncode}; see {log}: {last_error(log.read_text())}"
        )


def last_error(output: str) -> str:
    """The last line of ``output`` that names an exception, else its last line."""
    lines = output.strip().splitlines() or [""]
    named = [line for line in lines if re.match(r"[\w.]*(Error|Exception|Exit)\b", line)]
    return (named or lines)[-1]


def vm_name(args: argparse.Namespace, digest: str, seed: int) -> str:
    """``NAME-<digest>-s<seed>`` from the launcher's ``args``; ValueError if it is too long."""
    from memjax.launch.cli import VM_NAME_MAX

    name = f"{args.name}-{digest}-s{seed}"
    if len(name) > VM_NAME_MAX:
        raise ValueError(
            f"{VM_OPTION[args.kind]} {args.name!r}: the VM name {name!r} has {len(name)} "
            f"characters; expected at most {VM_NAME_MAX} (a shorter NAME)"
        )
    return name


@dataclasses.dataclass(frozen=True)
class LaunchOnVm:
    """Trains each run on its own Cloud VM through :func:`memjax.launch.submit`, which fetches
    its summary.json back. ``args`` are the launcher's options, parsed once; each run's VM is
    named ``NAME-<run digest>-s<seed>``."""

    args: argparse.Namespace

    def __call__(self, run: Run, workdir: epath.Path) -> None:
        from memjax import launch

        name = vm_name(self.args, run.digest, run.seed)
        command = run.train_argv(str(workdir), run.config)
        job = launch.make_job(name, command, self.args.bucket, launch.source_root())
        launch.submit(argparse.Namespace(**{**vars(self.args), "name": name}), job)


def launch_runs(
    runs: Sequence[Run], runs_dir: epath.Path, job: Callable[[Run, epath.Path], None], jobs: int
) -> dict[str, str]:
    """Runs ``job(run, workdir)`` for every run, ``jobs`` at a time; run name -> its error.

    Launches on VMs stop on SIGTERM or Ctrl-C: every launch going deletes its VM, no other run
    starts, and this exits (SystemExit) saying so.
    """
    if not isinstance(job, LaunchOnVm):
        return _run_all(runs, runs_dir, job, jobs, on_vm=False)
    from memjax import launch

    with launch.sigterm_interrupts():
        try:
            errors = _run_all(runs, runs_dir, job, jobs, on_vm=True)
        except KeyboardInterrupt:  # Ctrl-C while waiting; _run_all waited for the deletes
            errors = None
        signum = launch.stop_signal()
    if signum is None and errors is not None:
        return errors
    name = signal.Signals(signum).name if signum else "Ctrl-C"
    raise SystemExit(
        f"memjax table: stopped by {name}: each launch that was going deleted its VM (unless "
        "said otherwise above) and no other run started; run the same command again to launch "
        "what is still missing"
    )


def _stopped(on_vm: bool) -> bool:
    """Whether launches on VMs were told to stop."""
    if not on_vm:
        return False
    from memjax import launch

    return launch.stop_signal() is not None


def _stop(on_vm: bool) -> None:
    """Tells the launches on VMs that are going to stop (each deletes its VM) after Ctrl-C."""
    if on_vm:
        from memjax import launch

        launch.request_stop(signal.SIGINT)


def _run_all(
    runs: Sequence[Run],
    runs_dir: epath.Path,
    job: Callable[[Run, epath.Path], None],
    jobs: int,
    on_vm: bool,
) -> dict[str, str]:
    def attempt(numbered: tuple[int, Run]) -> tuple[str, str | None]:
        index, run = numbered
        if _stopped(on_vm):
            return run.name, "stopped before it started"
        print(f"memjax table: [{index}/{len(runs)}] {run.name}", flush=True)
        try:
            job(run, runs_dir / run.name)
        except (Exception, SystemExit) as error:  # a failed run is reported, not fatal
            if isinstance(error.__cause__, KeyboardInterrupt):  # the launcher's Ctrl-C or stop
                _stop(on_vm)
            print(f"memjax table: {run.name} failed: {error}", file=sys.stderr, flush=True)
            return run.name, f"{type(error).__name__}: {error}"
        return run.name, None

    numbered = list(enumerate(runs, 1))
    if jobs == 1:
        results = [attempt(item) for item in numbered]
    else:
        pool = concurrent.futures.ThreadPoolExecutor(jobs)
        try:
            futures = [pool.submit(attempt, item) for item in numbered]
            pending = set(futures)
            while pending:  # waits in steps, so that this thread takes signals
                _, pending = concurrent.futures.wait(pending, timeout=0.2)
            results = [future.result() for future in futures]
        except BaseException:  # Ctrl-C here: the launches going stop and delete their VMs
            _stop(on_vm)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    return {name: error for name, error in results if error is not None}


def choose_job(how: str, jobs: int, options: Sequence[str]) -> Callable[[Run, epath.Path], None]:
    """In this process, as subprocesses, or on Cloud VMs (``options``: the launcher's options,
    parsed here once; usage errors exit with status 2 before anything is launched)."""
    if how == "local":
        return train_here if jobs == 1 else train_subprocess
    from memjax import launch

    args = launch.parse_options([how, *options])
    try:
        vm_name(args, "0" * 8, 0)  # the shortest a run's VM name can be
    except ValueError as error:
        raise SystemExit(f"memjax table: {error}") from error
    return LaunchOnVm(args)

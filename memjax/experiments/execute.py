"""Launching the runs a table is missing: in this process, as subprocesses, or on Cloud VMs."""

from __future__ import annotations

import concurrent.futures
import json
import re
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


def launcher_argv(run: Run, workdir: str, kind: str, options: Sequence[str]) -> list[str]:
    """``memjax launch`` arguments for ``run`` on its own VM, named after the run."""
    option, renamed, rest = VM_OPTION[kind], [], iter(options)
    for token in rest:
        if token == option:
            renamed += [option, f"{next(rest)}-{run.digest}-s{run.seed}"]
        elif token.startswith(option + "="):
            renamed.append(f"{token}-{run.digest}-s{run.seed}")
        else:
            renamed.append(token)
    return [kind, *renamed, "--", *run.train_argv(workdir, run.config)]


def launch_on_vm(run: Run, workdir: epath.Path, kind: str, options: Sequence[str]) -> None:
    """Train ``run`` on a Cloud VM through ``memjax launch``; it fetches summary.json back."""
    from memjax import launch

    launch.main(launcher_argv(run, str(workdir), kind, options), commands=("train",))


def launch_runs(
    runs: Sequence[Run], runs_dir: epath.Path, job: Callable[[Run, epath.Path], None], jobs: int
) -> dict[str, str]:
    """Runs ``job(run, workdir)`` for every run, ``jobs`` at a time; run name -> its error."""

    def attempt(numbered: tuple[int, Run]) -> tuple[str, str | None]:
        index, run = numbered
        print(f"memjax table: [{index}/{len(runs)}] {run.name}", flush=True)
        try:
            job(run, runs_dir / run.name)
        except (Exception, SystemExit) as error:  # a failed run is reported, not fatal
            print(f"memjax table: {run.name} failed: {error}", file=sys.stderr, flush=True)
            return run.name, f"{type(error).__name__}: {error}"
        return run.name, None

    numbered = list(enumerate(runs, 1))
    if jobs == 1:
        results = [attempt(item) for item in numbered]
    else:
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(attempt, numbered))
    return {name: error for name, error in results if error is not None}


def choose_job(how: str, jobs: int, options: Sequence[str]) -> Callable[[Run, epath.Path], None]:
    """In this process, as subprocesses, or on Cloud VMs."""
    if how == "local":
        return train_here if jobs == 1 else train_subprocess
    return lambda run, workdir: launch_on_vm(run, workdir, how, options)

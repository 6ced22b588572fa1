"""The ``memjax`` command: a dispatcher (nothing imports this module).

``memjax COMMAND --help`` gives each command's options; ``memjax --help`` lists the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence


def _train(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="memjax train", description="Train one config.")
    parser.add_argument("--config", required=True, help="configs/FILE.py[:VARIANT[,SCALE]]")
    parser.add_argument("--workdir", required=True, help="run directory (local path or gs://)")
    parser.add_argument("--force", action="store_true", help="resume even if the config changed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args, rest = parser.parse_known_args(argv)
    import logging

    from memjax import preemption

    with preemption.PreemptionHandler():  # a SIGTERM during the imports below is kept for later
        try:
            import jax

            from memjax import config as config_lib
            from memjax import parallel, paths, train

            config = config_lib.load(args.config, config_lib.parse_overrides(rest))
            parallel.initialize()
            if jax.process_index() == 0:  # the other hosts would repeat every message
                # force: absl's first message (orbax logs one at import) set up the root logger.
                logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", force=True)
                logging.getLogger("memjax").setLevel(logging.INFO)  # the rest: warnings only
            summary = train.train_and_evaluate(
                config, paths.resolve(args.workdir), force=args.force, progress=not args.no_progress
            )
        except Exception as error:
            _exit_with(error)
    print(json.dumps(summary, indent=1))


def _exit_with(error: Exception) -> None:
    """Report ``error`` and end the process now, status 1.

    ``os._exit`` rather than an exception: a failed asynchronous checkpoint save can leave
    non-daemon threads that would keep the interpreter from exiting. Errors memjax raises for the
    user end with their own message; anything else with its traceback too.
    """
    import os
    import traceback

    from memjax.checkpoint import CheckpointRestoreError
    from memjax.run_failures import DiskFull, NonFiniteLoss
    from memjax.run_state import ConfigMismatch
    from memjax.workdir_lock import WorkdirBusy

    expected = (
        ValueError,
        FileNotFoundError,
        MemoryError,
        ConfigMismatch,
        DiskFull,
        NonFiniteLoss,
        CheckpointRestoreError,
        WorkdirBusy,
    )
    if not isinstance(error, expected):
        traceback.print_exception(error)
    print(f"memjax train: {type(error).__name__}: {error}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _eval(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="memjax eval", description="Evaluate a run.")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"))
    parser.add_argument("--step", type=int, default=None, help="default: the best checkpoint")
    args = parser.parse_args(argv)
    from memjax import paths, train

    workdir = paths.resolve(args.workdir)
    print(json.dumps(train.evaluate_workdir(workdir, args.split, args.step), indent=1))


def _compare(argv: Sequence[str]) -> None:
    from memjax.experiments import compare

    compare.main(argv)


def _bench(argv: Sequence[str]) -> None:
    from memjax import bench

    bench.main(argv)


def _data(argv: Sequence[str]) -> None:
    from memjax import data

    raise SystemExit(data.main(list(argv)))


def _table(argv: Sequence[str]) -> None:
    from memjax import experiments

    experiments.main(argv)


def _probe(argv: Sequence[str]) -> None:
    from memjax import probes

    probes.main(argv)


def _launch(argv: Sequence[str]) -> None:
    from memjax import launch

    launch.main(argv, commands=sorted(set(COMMANDS) - {"launch"}))


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], None], str]] = {
    "train": (
        _train,
        "train one config in a workdir: --config configs/TASK.py:VARIANT --workdir DIR",
    ),
    "eval": (_eval, "evaluate a run's best (or --step N) checkpoint on a split: --workdir DIR"),
    "compare": (_compare, "train memories at one parameter budget and tabulate them (make demo)"),
    "table": (
        _table,
        "paper tables (lra, lra_speed, synthetic): ours beside the published numbers",
    ),
    "bench": (_bench, "time every memory forward and forward+backward beside the baselines"),
    "probe": (_probe, "gradient flow, recall and capacity of memories at init or of a trained run"),
    "data": (_data, "show or export a task's data: data show TASK, data export TASK --out DIR"),
    "launch": (
        _launch,
        "run a memjax command on a Cloud TPU or GPU VM made for it: launch tpu|gpu",
    ),
}
"""Command name -> (its function, the one line ``memjax --help`` prints)."""


def usage() -> str:
    """``memjax --help``: every command with one line."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "usage: memjax COMMAND [OPTIONS]   (memjax COMMAND --help for its options)\n\n" + (
        "commands:\n" + "\n".join(lines)
    )


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr)
        raise SystemExit(f"memjax: unknown command {argv[0]!r}; expected one of {list(COMMANDS)}")
    run, _ = COMMANDS[argv[0]]
    run(argv[1:])


if __name__ == "__main__":
    main()

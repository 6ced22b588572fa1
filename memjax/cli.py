"""The ``memjax`` command.

memjax train   --config configs/listops.py:lstm --workdir runs/listops-lstm [--config.KEY=VALUE ...]
memjax eval    --workdir runs/listops-lstm [--split test] [--step N]
memjax compare [--out out/compare] [--mixers lstm,mingru,lru,transformer] [--tasks mqar,listops]
memjax bench   [--mixers ...] [--batch 16 --length 256 --width 128]
memjax data    show TASK [--split train] [--n 3] [--option key=value ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _train(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="memjax train", description="Train one config.")
    parser.add_argument("--config", required=True, help="configs/FILE.py[:VARIANT[,SCALE]]")
    parser.add_argument("--workdir", required=True, help="run directory (local path or gs://)")
    parser.add_argument("--force", action="store_true", help="resume even if the config changed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args, rest = parser.parse_known_args(argv)
    from memjax import preemption

    with preemption.PreemptionHandler():  # a SIGTERM during the imports below is kept for later
        try:
            from memjax import config as config_lib
            from memjax import parallel, paths, train

            config = config_lib.load(args.config, config_lib.parse_overrides(rest))
            parallel.initialize()
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
    from memjax.train import ConfigMismatch, DiskFull, NonFiniteLoss
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


COMMANDS = {
    "train": _train,
    "eval": _eval,
    "compare": _compare,
    "bench": _bench,
    "data": _data,
    "launch": _launch,
    "probe": _probe,
    "table": _table,
}


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__)
        if argv and argv[0] not in ("-h", "--help"):
            raise SystemExit(
                f"memjax: unknown command {argv[0]!r}; expected one of {sorted(COMMANDS)}"
            )
        return
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()

"""``memjax compare``: train several memories at one parameter budget and tabulate them.

For every task x mixer it loads ``configs/TASK.py:MIXER,smoke``, sizes the model to
``--budget`` parameters (``model.param_budget``), trains it in ``OUT/runs/TASK-MIXER-DIGEST``
(``DIGEST``: the config's fingerprint, so a run is reused only under the same budget, steps,
learning rate and ``--set`` overrides), and collects the run's ``summary.json``. It prints
and writes a markdown table (test accuracy at the best validation checkpoint, training
tokens/s, parameters, memory state bytes per sequence at the task length) and a plot of
accuracy per task beside state bytes against sequence length: constant for a recurrent state,
growing linearly for attention's KV cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from memjax import config as config_lib
from memjax import paths, variants

DEFAULT_TASKS = ("mqar", "listops")


def run_one(task: str, variant: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume) one task x mixer run and return its summary row."""
    from memjax import train

    overrides = [
        ("model.param_budget", args.budget),
        ("train.steps", args.steps),
        ("train.seed", args.seed),
        ("train.eval_every", max(1, args.steps // 3)),
        ("train.checkpoint_every", max(1, args.steps // 3)),
        ("optim.lr", args.lr),
        ("parallel", "none"),
        *config_lib.parse_overrides([f"--config.{item}" for item in args.set]),
    ]
    config = config_lib.load(f"{args.configs}/{task}.py:{variant},smoke", overrides)
    digest = config_lib.fingerprint(config)
    workdir = out / "runs" / f"{task}-{variant}-{digest}"
    summary_path = workdir / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
    else:
        summary = train.train_and_evaluate(config, workdir, progress=args.progress)
    rates = [
        json.loads(line)["tokens_per_s"]
        for line in (workdir / "metrics.jsonl").read_text().splitlines()
        if "tokens_per_s" in line
    ]
    return {
        "task": task,
        "mixer": variant,
        "metric": summary["metric"],
        "test": summary["test_at_best"],
        "best_val": summary["best_val"],
        "params": summary["param_count"],
        "tokens_per_s": statistics.median(rates) if rates else float("nan"),
        "state_bytes": summary["state_bytes_per_sequence"],
    }


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The comparison as a markdown table."""
    headers = (
        "task",
        "variant",
        "test metric",
        "params",
        "tokens/s (train)",
        "state bytes / sequence",
    )
    table = [
        (
            r["task"],
            r["mixer"],
            f"{r['metric']} {r['test']:.3f}",
            f"{r['params']:,}",
            f"{r['tokens_per_s']:,.0f}",
            f"{r['state_bytes']:,}",
        )
        for r in rows
    ]
    align = ("left", "left", "right", "right", "right", "right")
    return tabulate(table, headers, tablefmt="pipe", colalign=align, disable_numparse=True)


def plot(rows: Sequence[dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    """Test metric per task and mixer; state bytes against length for each mixer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from memjax import models, tasks, train

    tasks_ = list(dict.fromkeys(r["task"] for r in rows))
    mixers = list(dict.fromkeys(r["mixer"] for r in rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(mixers)
    for i, mixer in enumerate(mixers):
        values = [
            next((r["test"] for r in rows if r["task"] == t and r["mixer"] == mixer), 0)
            for t in tasks_
        ]
        left.bar(np.arange(len(tasks_)) + i * width, values, width, label=mixer)
    left.set_xticks(np.arange(len(tasks_)) + 0.4 - width / 2, tasks_)
    left.set_ylabel("test metric at best validation")
    left.legend()
    lengths = [2**k for k in range(6, 15)]
    first = config_lib.load(f"{args.configs}/{tasks_[0]}.py:lstm,smoke")
    spec = tasks.get(tasks_[0], **dict(first.task.options)).spec
    for mixer in mixers:
        budget = [("model.param_budget", args.budget)]
        config = config_lib.load(f"{args.configs}/{tasks_[0]}.py:{mixer},smoke", budget)
        model = train.build_model(config.model, spec, 0)
        bytes_ = [models.state_bytes(model, n) for n in lengths]
        right.plot(lengths, bytes_, marker="o", label=mixer)
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("sequence length")
    right.set_ylabel("memory state bytes per sequence")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="memjax compare", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="out/compare", help="output folder")
    parser.add_argument(
        "--variants",
        default=",".join(variants.COMPARE_DEFAULT),
        help=f"model variants, of {', '.join(variants.VARIANTS)}",
    )
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    parser.add_argument("--budget", type=int, default=40_000, help="parameters per model")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--configs", default=str(config_lib.PACKAGED_CONFIGS), help="folder of config files"
    )
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run, e.g. --set task.options.length=32",
    )
    args = parser.parse_args(argv)
    try:
        args.variants = variants.parse_list(args.variants)
    except ValueError as error:
        parser.error(str(error))
    args.configs = paths.resolve(args.configs)
    out = Path(paths.resolve(args.out))
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        run_one(task, variant, out, args)
        for task in args.tasks.split(",")
        for variant in args.variants
    ]
    table = markdown(rows)
    (out / "compare.md").write_text(table + "\n")
    (out / "compare.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args, out / "compare.png")
    print(table)
    print(f"\nwrote {out / 'compare.md'}, {out / 'compare.json'} and {out / 'compare.png'}")
    return rows

"""``memjax probe``: run every probe on memories at initialisation or on trained runs.

    memjax probe --mixers lstm,lru,attention --out out/probes [--hidden 64] [--length 256]
                 [--depth 0] [--seed 0] [--workdir runs/mqar-lru ...]

Subjects: each of ``--mixers`` at initialisation, one bare layer of width ``--hidden``
(``--depth N`` >= 1: a small Encoder of N blocks instead), plus, for each ``--workdir``, the
run's model at initialisation and at its best checkpoint. Writes ``probes.json`` and the PNG
figures of :mod:`memjax.probes.plots` into ``--out`` and prints a summary table.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from memjax import cells, paths
from memjax.options import parse_memories
from memjax.probes import capacity, gradient, plots, recall, spectra, subjects, task_recall
from memjax.probes.subjects import Subject

GRADIENT_VOCAB = 16
"""Token ids ``1 .. 16`` feed the gradient and spectrum probes (any id works; few suffice)."""


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int no smaller than ``minimum``."""

    def parse_int(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}, got {text}")
        return value

    return parse_int


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; unknown mixer names are refused naming the registered ones."""
    parser = argparse.ArgumentParser(prog="memjax probe", description=__doc__.split("\n")[0])
    parser.add_argument("--mixers", default="lstm,lru,attention", help="'' for runs only")
    parser.add_argument("--workdir", action="append", default=[], help="a run directory")
    parser.add_argument("--out", required=True, help="folder for probes.json and the plots")
    parser.add_argument("--hidden", type=at_least(1), default=64)
    parser.add_argument("--length", type=at_least(2), default=256)
    parser.add_argument("--depth", type=at_least(0), default=0, help="0: a layer; N: N blocks")
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--batch", type=at_least(1), default=8, help="gradient-flow sequences")
    parser.add_argument("--recall-vocab", type=at_least(2), default=2, help="recall token ids")
    parser.add_argument("--recall-train", type=at_least(1), default=32, help="sequences")
    parser.add_argument("--recall-test", type=at_least(1), default=16, help="sequences")
    parser.add_argument("--k-max", type=at_least(1), default=8, help="most pairs, capacity")
    args = parser.parse_args(argv)
    unknown = [name for name in mixer_names(args) if name not in cells.names()]
    if unknown:
        parser.error(f"unknown mixer(s) {unknown}; expected some of {cells.names()}")
    return args


def mixer_names(args: argparse.Namespace) -> list[str]:
    """The ``--mixers`` list of registry names (empty for ``--mixers ''``)."""
    return parse_memories(args.mixers)


def builder(args: argparse.Namespace) -> Callable[[str, int], Subject]:
    """``(mixer, hidden) -> Subject`` at initialisation, a layer or a small model, built once.

    Subjects accept ``max(--length, 3 --k-max)`` steps, so the capacity probe at ``--hidden``
    reuses the subject the other probes see.
    """
    length = max(args.length, 3 * args.k_max)

    @functools.cache
    def build(mixer: str, hidden: int) -> Subject:
        if args.depth:
            return subjects.small_model(
                mixer, hidden=hidden, depth=args.depth, length=length, seed=args.seed
            )
        memory = subjects.build_memory(mixer, hidden, length)
        return subjects.layer(memory, length=length, seed=args.seed)

    return build


def all_subjects(args: argparse.Namespace, build: Callable[[str, int], Subject]) -> list[Subject]:
    """Every mixer at initialisation, then each run at initialisation and trained."""
    found = [build(name, args.hidden) for name in mixer_names(args)]
    for workdir in args.workdir:
        found.extend(subjects.run(workdir))
    return found


def probe_subject(subject: Subject, args: argparse.Namespace) -> dict[str, Any]:
    """Gradient flow, recall (ridge and, for runs, the task), spectrum of one subject."""
    length = min(args.length, subject.max_length)
    rng = np.random.default_rng(args.seed)
    ids = min(GRADIENT_VOCAB, subject.vocab - 1)
    tokens = rng.integers(1, ids + 1, size=(args.batch, length))
    ridge = recall.ridge_recall(
        subject,
        length=length,
        vocab=args.recall_vocab,
        train=args.recall_train,
        test=args.recall_test,
        seed=args.seed,
    )
    return {
        "gradient_flow": gradient.gradient_flow(subject, tokens),
        "recall": {"ridge": ridge, "task": task_recall.task_recall(subject, seed=args.seed)},
        "spectra": spectra.spectrum(subject, tokens),
    }


def capacity_sizes(hidden: int) -> list[int]:
    """Widths of the capacity sweep: ``hidden / 4, hidden / 2, hidden``, multiples of 4."""
    return sorted({h for h in (hidden // 4, hidden // 2, hidden) if h >= 4 and h % 4 == 0})


def capacity_records(
    found: list[Subject], args: argparse.Namespace, build: Callable[[str, int], Subject]
) -> list[dict[str, Any]]:
    """Associative capacity of each mixer at every sweep width, and of each MQAR run."""
    records = []
    for name in mixer_names(args):
        for hidden in capacity_sizes(args.hidden) or [args.hidden]:
            subject = build(name, hidden)
            record = capacity.associative_capacity(subject, k_max=args.k_max, seed=args.seed)
            records.append(
                {"label": f"{name} h={hidden}", "mixer": name, "hidden": hidden, **record}
            )
    for subject in found:
        record = task_recall.mqar_capacity(subject, seed=args.seed)
        if record is not None:
            records.append(
                {"label": subject.label, "mixer": subject.mixer, "hidden": None, **record}
            )
    return records


def run_probes(args: argparse.Namespace) -> dict[str, Any]:
    """Every probe on every subject: the contents of probes.json."""
    build = builder(args)
    found = all_subjects(args, build)
    per_subject = {s.label: probe_subject(s, args) for s in found}
    lengths = capacity.lengths_grid(args.length)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    return {
        "settings": {**settings, "mixers": mixer_names(args)},
        "subjects": [
            {"label": s.label, "mixer": s.mixer, "stage": s.stage, "run": s.task is not None}
            for s in found
        ],
        **{
            section: {label: probes[section] for label, probes in per_subject.items()}
            for section in ("gradient_flow", "recall", "spectra")
        },
        "capacity": capacity_records(found, args, build),
        "memory_bytes": {
            "lengths": lengths,
            "bytes": {s.label: capacity.memory_bytes(s, lengths) for s in found},
        },
    }


def summary_table(results: dict[str, Any]) -> str:
    """Markdown table: decay lags of the gradient flows, horizon, capacity, half-life."""
    headers = (
        "subject",
        "grad decay lag (x / h)",
        "recall horizon",
        "recall capacity",
        "median half-life of a",
    )
    table = []
    for s in results["subjects"]:
        label = s["label"]
        flow = results["gradient_flow"][label]
        state = (flow["state"]["decay_lag"] or "never") if flow["state"] else "-"
        ridge = results["recall"][label]["ridge"]
        spectrum = results["spectra"][label]
        life = spectrum["half_life_median"] if spectrum else None
        table.append(
            (
                label,
                f"{flow['input']['decay_lag'] or 'never'} / {state}",
                f"{'>=' if ridge['censored'] else ''}{ridge['horizon']:.1f}",
                f"{ridge['capacity']:.1f}",
                "-" if life is None else f"{life:.1f}",
            )
        )
    align = ("left", "left", "right", "right", "right")
    return tabulate(table, headers, tablefmt="pipe", colalign=align, disable_numparse=True)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``memjax probe``: write probes.json and the plots into ``--out``; returns the results."""
    args = parse(argv)
    args.workdir = [paths.resolve(workdir) for workdir in args.workdir]
    out = Path(paths.resolve(args.out))
    out.mkdir(parents=True, exist_ok=True)
    results = run_probes(args)
    (out / "probes.json").write_text(json.dumps(results, indent=1))
    plots.write_all(results, out)
    print(summary_table(results))
    print(f"wrote {out / 'probes.json'} and the plots in {out}")
    return results

"""``memjax table``: paper tables, our runs beside the published numbers.

memjax table NAME [--runs runs] [--out out/tables] [--scale smoke|paper] [--seeds N]
                  [--launch local|tpu|gpu] [--jobs N] [--variants a,b] [--set KEY=VALUE ...]
                  [--columns a,b]
                  [-- LAUNCHER OPTIONS]

A table expands into runs: task x model variant (x the sweep axes of ``synthetic``) x seed. A
run is a config file, overrides and a seed, and its directory under ``--runs`` is named after
them, so the same run always lands in the same place. Runs without a ``summary.json`` are
launched: here in this process (``--jobs 1``), as N ``memjax train`` subprocesses at a time
(``--jobs N``), or each on its own Cloud VM through ``memjax launch tpu|gpu`` (the launcher's
options follow ``--``; each run's VM is named ``NAME-<run digest>-s<seed>``, so a re-launch
resumes from the bucket). Then every ``summary.json`` is read and ``NAME.md``, ``NAME.tex``
and ``NAME.json`` are written to ``--out``: the test metric at the best validation checkpoint,
mean ± sample standard deviation over seeds, beside the published number of the same model and
its source. A cell whose task data is not on this machine says ``no data`` and the notes give
the steps to get it; failed runs say so too. Running the command again launches only what is
missing. ``--set`` adds config overrides to every run (``--set train.steps=3``).

Tables:
  lra        ListOps, Text, Retrieval, Image, Pathfinder, Path-X test accuracy.
  lra_speed  training steps/s and compiled memory of one step on the text task at four
             lengths, beside LRA's Table 2; measured here, one device, one at a time.
  synthetic  MQAR by length and width; induction heads and associative recall; selective
             copying; copying and adding by lag.
  scan       SCAN (Lake & Baroni 2018) exact match by split, oracle-length exact match and
             decoding cost of encoder-decoders (lstm, gru_attention, transformer by default).
  h3         H3's Table 2 (Fu et al. 2023): induction head and associative recall.
  mqar       Zoology's MQAR (Arora et al. 2023, Figure 2) at L = 64, 128 and widths 64, 128.
  mnist1d    MNIST-1D (Greydanus & Kobak 2024), plain and shuffled, beside its README's table.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from etils import epath

from memjax import config as config_lib
from memjax import paths, variants
from memjax.experiments import scan_plot, table_plot
from memjax.experiments.definitions import (
    TABLE_VARIANTS,
    TABLES,
    TRAINED_TABLES,
    all_runs,
    only_columns,
)
from memjax.experiments.execute import choose_job, launch_runs, missing_data, summary_path
from memjax.experiments.render import latex, markdown, to_json
from memjax.experiments.results import Document, collect
from memjax.experiments.runs import PROBLEM_PREFIX, SWEEPS, VM_OPTION, Plan
from memjax.experiments.speed import measured, speed_block, speed_runs

DESCRIPTION = (
    "Ours: the test metric at the best validation checkpoint, mean ± sample standard "
    "deviation (n-1) over {seeds} (a cell with fewer says how many finished). A row "
    "labelled `-style` beside a published number is not exactly that paper's setup: the "
    "notes under its table list what differs. `pub. X [k]` beside a cell is the published "
    "number of the same model from source [k]; rows marked published are copied from the "
    "sources listed at the end, not measured here."
)
PAPER_SEEDS = 3
"""Seeds per cell at paper scale unless ``--seeds`` says otherwise: one run's test accuracy
carries the sampling noise of its test set (about ±1.1 points for 2,000 examples)."""
SMOKE_NOTE = (
    " Smoke scale: shrunk tasks and models trained for a few steps, a check that everything "
    "runs end to end; its numbers are not comparable to the published ones."
)
SPEED_DESCRIPTION = (
    "Ours: measured by `memjax table lra_speed` on the device named below; `(×r)` is the ratio "
    "to our Transformer at the same length. Rows marked published are copied from the source "
    "listed at the end, not measured here."
)


def trained_document(
    name: str,
    plan: Plan,
    runs_dir: epath.Path,
    job: Callable,
    jobs: int,
    check_data: bool,
) -> Document:
    """Launch what is missing of a trained table (only ``plan.columns`` if given), then collect
    it."""
    sections = TRAINED_TABLES[name](plan)
    if plan.columns:
        sections = only_columns(sections, plan.columns)
    runs = all_runs(sections)
    pending = [run for run in runs if not summary_path(runs_dir, run).exists()]
    for run in pending:
        run.load()  # a bad --set stops here, before anything is launched
    absent = missing_data(pending) if check_data else {}
    failures = {run_name: ("no data", message) for run_name, message in absent.items()}
    to_launch = [run for run in pending if run.name not in absent]
    print(
        f"memjax table {name}: {len(runs)} runs, {len(runs) - len(pending)} complete, "
        f"{len(absent)} without data, {len(to_launch)} to launch",
        flush=True,
    )
    errors = launch_runs(to_launch, runs_dir, job, jobs)
    failures.update({run_name: ("failed", error) for run_name, error in errors.items()})
    seeds = f"{plan.seeds} seed" + ("s" if plan.seeds > 1 else "")
    description = DESCRIPTION.format(seeds=seeds)
    if plan.sets:
        changed = ", ".join(f"{key}={value!r}" for key, value in plan.sets)
        description += (
            f" Every run here carries `--set` overrides that its config's setup does not: "
            f"{changed}."
        )
    doc = Document(name, "", description + (SMOKE_NOTE if plan.scale == "smoke" else ""), [])
    doc.blocks = [collect(section, runs_dir, failures, doc) for section in sections]
    return doc


def speed_document(plan: Plan, runs_dir: epath.Path) -> Document:
    """Measure what is missing of lra_speed, one at a time in this process."""
    steps = SWEEPS[plan.scale].speed_steps
    results: dict[tuple[str, int], dict | str] = {}
    for key, run in speed_runs(plan).items():
        try:
            results[key] = measured(run, runs_dir, steps)
        except Exception as error:  # an out-of-memory length is reported, not fatal
            results[key] = f"{run.name}: {type(error).__name__}: {error}"
    smoke = " Smoke scale: the lengths are 1/8 of LRA's." if plan.scale == "smoke" else ""
    doc = Document("lra_speed", "", SPEED_DESCRIPTION + smoke, [])
    doc.blocks = [speed_block(plan, results, key, doc) for key in ("steps_per_s", "memory_gib")]
    return doc


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The table's options and the launcher's options (after ``--``)."""
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(
        prog="memjax table",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("name", choices=TABLES)
    parser.add_argument("--runs", default="runs", help="folder of run directories")
    parser.add_argument("--out", default="out/tables", help="for NAME.md, .tex and .json")
    parser.add_argument("--scale", default="smoke", choices=config_lib.SCALES)
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=f"seeds per cell (not lra_speed); default {PAPER_SEEDS} at paper scale, 1 at smoke",
    )
    parser.add_argument("--launch", default="local", choices=("local", *VM_OPTION))
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (not lra_speed)")
    parser.add_argument(
        "--variants",
        default=None,
        help=f"model variants, of {', '.join(variants.VARIANTS)}; default "
        f"{','.join(variants.TABLE_DEFAULT)}, or for "
        + "; ".join(f"{name}: {','.join(chosen)}" for name, chosen in TABLE_VARIANTS.items()),
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--columns",
        default="",
        help="only these columns, by header, comma-separated (e.g. simple,length for scan)",
    )
    args = parser.parse_args(argv[:split])
    options = argv[split + 1 :]
    try:
        args.overrides = config_lib.parse_overrides([f"--config.{item}" for item in args.set])
    except ValueError as error:
        parser.error(f"--set: {error}")
    if args.seeds is None:
        args.seeds = PAPER_SEEDS if args.scale == "paper" else 1
    if args.seeds < 1 or args.jobs < 1:
        parser.error(f"--seeds and --jobs must be >= 1, got {args.seeds} and {args.jobs}")
    try:
        chosen = args.variants or ",".join(TABLE_VARIANTS.get(args.name, variants.TABLE_DEFAULT))
        args.variants = variants.parse_list(chosen)
    except ValueError as error:
        parser.error(str(error))
    if any(key == "train.seed" for key, _ in args.overrides):
        parser.error("--set train.seed: seeds are 0..N-1 from --seeds")
    if args.launch != "local" and VM_OPTION[args.launch] not in " ".join(options):
        parser.error(
            f"--launch {args.launch} needs the launcher's options after '--', e.g. "
            f"-- {VM_OPTION[args.launch]} NAME --zone ZONE --bucket gs://BUCKET ..."
        )
    if args.launch != "local" and args.name == "lra_speed":
        parser.error(
            "lra_speed measures on this machine's device: run `memjax table lra_speed` on the "
            "VM, e.g. through `memjax launch tpu ... -- table lra_speed`"
        )
    return args, options


def main(argv: Sequence[str] | None = None) -> Document:
    """``memjax table``; returns the written document. Exits with status 1 if a run failed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, options = parse(argv)
    columns = tuple(c.strip() for c in args.columns.split(",") if c.strip())
    plan = Plan(args.scale, args.seeds, args.variants, tuple(args.overrides), columns)
    runs_dir = epath.Path(paths.resolve(args.runs))
    if args.name == "lra_speed":
        doc = speed_document(plan, runs_dir)
    else:
        job = choose_job(args.launch, args.jobs, options)
        check_data = args.launch == "local"
        if columns:
            try:
                only_columns(TRAINED_TABLES[args.name](plan), columns)
            except ValueError as error:
                sys.exit(f"memjax table: {error}")
        doc = trained_document(args.name, plan, runs_dir, job, args.jobs, check_data)
    doc.command = shlex.join(["memjax", "table", *argv])
    out = Path(paths.resolve(args.out))
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(doc)
    figure = out / f"{args.name}_by_length.png"
    (out / f"{args.name}.md").write_text(text)
    (out / f"{args.name}.tex").write_text(latex(doc))
    (out / f"{args.name}.json").write_text(to_json(doc))
    print(text)
    print(f"wrote {out / args.name}.md, .tex and .json")
    if args.name == "scan" and scan_plot.plot(TRAINED_TABLES["scan"](plan)[0], runs_dir, figure):
        print(f"wrote {figure}")
    if args.name in TRAINED_TABLES and args.name != "scan":
        bars, curves = out / f"{args.name}.png", out / f"{args.name}_curves.png"
        if table_plot.plot(doc, bars):
            print(f"wrote {bars}")
        first = TRAINED_TABLES[args.name](plan)[0]
        if first.metric == "accuracy" and table_plot.plot_curves(first, runs_dir, curves):
            print(f"wrote {curves}")
    failed = [label for label in doc.problems if label.startswith(PROBLEM_PREFIX["failed"])]
    if failed:
        raise SystemExit(f"memjax table: failures {', '.join(failed)}; see {out / args.name}.md")
    return doc

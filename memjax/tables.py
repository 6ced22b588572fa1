"""``memjax table``: paper tables, our runs beside the published numbers.

memjax table NAME [--runs runs] [--out out/tables] [--scale smoke|paper] [--seeds N]
                  [--launch local|tpu|gpu] [--jobs N] [--mixers a,b] [--set KEY=VALUE ...]
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
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from etils import epath

from memjax import config as config_lib
from memjax import paths, published
from memjax.published import PublishedRow

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIXERS = ("transformer", "lstm", "gru", "mingru", "lru", "s5")
MODEL_NAMES = {
    "transformer": "Transformer",
    "lstm": "LSTM",
    "gru": "GRU",
    "rnn": "RNN-Tanh",
    "rnn_relu": "RNN-ReLU",
    "mingru": "minGRU",
    "minlstm": "minLSTM",
    "lru": "LRU",
    "s5": "S5-style",
    "linear_attention": "Linear attention",
}
LRA_HEADERS = ("ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Path-X")
VM_OPTION = {"tpu": "--tpu", "gpu": "--vm"}
PROBLEM_PREFIX = {"no data": "d", "failed": "f"}
SPEED_BATCH = 32
Override = tuple[str, Any]


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The sweep axes of one scale."""

    mqar_lengths: tuple[int, ...]
    mqar_widths: tuple[int, ...]
    copy_lags: tuple[int, ...]
    adding_lengths: tuple[int, ...]
    speed_lengths: tuple[int, ...]
    speed_steps: int  # timed training steps per speed measurement


SWEEPS = {
    "paper": Sweep(
        mqar_lengths=(64, 128, 256, 512),
        mqar_widths=(64, 128, 256, 512),
        copy_lags=(100, 200, 500, 1000),
        adding_lengths=(100, 200, 400, 750),
        speed_lengths=published.SPEED_LENGTHS,
        speed_steps=20,
    ),
    "smoke": Sweep(
        mqar_lengths=(32, 64),
        mqar_widths=(16, 32),
        copy_lags=(10, 20),
        adding_lengths=(30, 60),
        speed_lengths=tuple(n // 8 for n in published.SPEED_LENGTHS),
        speed_steps=3,
    ),
}

# ----------------------------------------------------------------------------- runs


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: ``configs/FILE.py:VARIANT,SCALE`` plus overrides, at one seed."""

    config: str  # relative to the project root, as the launcher ships it
    overrides: tuple[Override, ...]
    seed: int

    @property
    def digest(self) -> str:
        """8 hex digits naming the config and overrides (not the seed)."""
        blob = json.dumps([self.config, [list(item) for item in self.overrides]])
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    @property
    def name(self) -> str:
        """The run directory's name: readable, and the same for the same run."""
        file, _, arg = self.config.partition(":")
        variant, scale = arg.split(",")
        return f"{Path(file).stem}-{variant}-{scale}-{self.digest}-seed{self.seed}"

    @property
    def all_overrides(self) -> tuple[Override, ...]:
        """The overrides with the seed last."""
        return (*self.overrides, ("train.seed", self.seed))

    @property
    def absolute_config(self) -> str:
        """The config spec with the file's absolute path."""
        file, _, arg = self.config.partition(":")
        return f"{ROOT / file}:{arg}"

    def load(self) -> Any:
        """The run's ConfigDict."""
        return config_lib.load(self.absolute_config, self.all_overrides)

    def train_argv(self, workdir: str, config: str) -> list[str]:
        """``train --config CONFIG --workdir ... --config.KEY=VALUE ...`` for ``memjax``."""
        overrides = [f"--config.{key}={value!r}" for key, value in self.all_overrides]
        return ["train", "--config", config, "--workdir", workdir, "--no-progress", *overrides]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The command line's choices that every table definition expands with."""

    scale: str
    seeds: int
    mixers: tuple[str, ...]
    sets: tuple[Override, ...]

    def runs(self, task: str, variant: str, overrides: Iterable[Override] = ()) -> tuple[Run, ...]:
        """One run per seed of ``configs/TASK.py:VARIANT,SCALE`` with ``overrides`` then --set."""
        config = f"configs/{task}.py:{variant},{self.scale}"
        chosen = (*overrides, *self.sets)
        return tuple(Run(config, chosen, seed) for seed in range(self.seeds))


# ----------------------------------------------------------------------------- definitions


@dataclasses.dataclass(frozen=True)
class Cell:
    """Runs over seeds, and the published number of the same model beside them."""

    runs: tuple[Run, ...]
    published: published.Value = None
    source: str | None = None


@dataclasses.dataclass(frozen=True)
class Row:
    """One model's cells across a section's columns."""

    label: str
    cells: tuple[Cell, ...]


@dataclasses.dataclass(frozen=True)
class Section:
    """One table: our rows, then published rows and analytic baselines under them."""

    title: str
    metric: str  # "accuracy" (shown in %) or "mse"
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    references: tuple[PublishedRow, ...] = ()
    baselines: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (label, value per column)
    notes: tuple[str, ...] = ()


def _beside(row: PublishedRow | None, column: int) -> dict[str, Any]:
    """Cell keyword arguments placing ``row``'s number of ``column`` beside ours."""
    if row is None:
        return {}
    return {"published": row.values[column], "source": row.source}


def lra(plan: Plan) -> tuple[Section, ...]:
    """Long Range Arena: every task x mixer, beside the published LRA rows."""
    rows = []
    for variant in plan.mixers:
        match = published.find(published.LRA, published.LRA_MATCH.get(variant))
        cells = tuple(
            Cell(plan.runs(task, variant), **_beside(match, i))
            for i, task in enumerate(published.LRA_TASKS)
        )
        rows.append(Row(MODEL_NAMES[variant], cells))
    notes = (
        "ListOps is generated with LRA's procedure (configs/listops.py); LRA's released files "
        "are the task option source='lra'.",
        "Path-X is Pathfinder at 128x128 (configs/pathx.py); smoke scale draws it at 32x32.",
    )
    return (
        Section(
            "Long Range Arena: test accuracy (%)",
            "accuracy",
            LRA_HEADERS,
            tuple(rows),
            references=published.LRA,
            notes=notes,
        ),
    )


def _mqar(plan: Plan, sweep: Sweep) -> Section:
    rows = []
    for variant in plan.mixers:
        for width in sweep.mqar_widths:
            cells = tuple(
                Cell(
                    plan.runs(
                        "mqar",
                        variant,
                        [
                            ("task.options.length", length),
                            ("task.options.num_kv_pairs", max(1, length // 16)),
                            ("model.d_model", width),
                        ],
                    )
                )
                for length in sweep.mqar_lengths
            )
            rows.append(Row(f"{MODEL_NAMES[variant]}, width {width}", cells))
    return Section(
        "MQAR (Zoology): accuracy (%) by sequence length and model width",
        "accuracy",
        tuple(f"L={length}" for length in sweep.mqar_lengths),
        tuple(rows),
        notes=(
            "L/16 key-value pairs per sequence, every key queried once (Zoology's generator).",
            "Arora et al. 2023 (Zoology) show MQAR as plots, not as a table: no published "
            "numbers to place beside these cells.",
        ),
    )


ASSOCIATIVE_RECALL = (
    ("task.options.vocab_size", 20),
    ("task.options.length", 32),
    ("task.options.num_kv_pairs", 4),
    ("task.options.random_non_queries", False),
)
INDUCTION = (("task.options.length", 30), ("task.options.num_symbols", 20))


def _recall(plan: Plan) -> Section:
    rows = []
    for variant in plan.mixers:
        match = published.find(published.H3_RECALL, published.H3_MATCH.get(variant))
        cells = (
            Cell(plan.runs("induction", variant, INDUCTION), **_beside(match, 0)),
            Cell(plan.runs("mqar", variant, ASSOCIATIVE_RECALL), **_beside(match, 1)),
        )
        rows.append(Row(MODEL_NAMES[variant], cells))
    return Section(
        "Induction heads and associative recall: accuracy (%), beside H3's Table 2",
        "accuracy",
        ("Induction head", "Associative recall"),
        tuple(rows),
        references=published.H3_RECALL,
        notes=(
            "Induction head: H3's setting, 30 random symbols of 20 then the trigger (chance 5%).",
            "Associative recall: the mqar task with 4 key-value pairs (8 keys, 10 values), "
            "length 32, filler between the pairs and the queries; all 4 keys are queried and "
            "accuracy is per query, so picking one of the 4 values seen scores 25%, H3's "
            "random baseline.",
        ),
    )


def _selective_copy(plan: Plan) -> Section:
    rows = tuple(
        Row(MODEL_NAMES[variant], (Cell(plan.runs("selective_copy", variant)),))
        for variant in plan.mixers
    )
    return Section(
        "Selective copying: accuracy (%), beside Mamba's Table 1",
        "accuracy",
        ("Selective copying",),
        rows,
        references=published.MAMBA_SELECTIVE_COPY,
        notes=("Task options from configs/selective_copy.py (Mamba's: length 4096, 16 tokens).",),
    )


def _by_option(plan: Plan, task: str, option: str, values: Sequence[int]) -> tuple[Row, ...]:
    """One row per mixer, one cell per value of ``task.options.<option>``."""
    return tuple(
        Row(
            MODEL_NAMES[variant],
            tuple(
                Cell(plan.runs(task, variant, [(f"task.options.{option}", value)]))
                for value in values
            ),
        )
        for variant in plan.mixers
    )


def _copy(plan: Plan, sweep: Sweep) -> Section:
    symbols = int(plan_config(plan, "copy").task.options.num_symbols)
    chance = f"{100 / symbols:.2f}"
    return Section(
        "Copying memory: accuracy (%) of the copied symbols by lag",
        "accuracy",
        tuple(f"lag {lag}" for lag in sweep.copy_lags),
        _by_option(plan, "copy", "lag", sweep.copy_lags),
        baselines=((f"chance, 1 of {symbols} symbols", (chance,) * len(sweep.copy_lags)),),
    )


def _adding(plan: Plan, sweep: Sweep) -> Section:
    return Section(
        "Adding problem: test MSE by sequence length (lower is better)",
        "mse",
        tuple(f"T={length}" for length in sweep.adding_lengths),
        _by_option(plan, "adding", "length", sweep.adding_lengths),
        baselines=(("always predicting 1", ("0.1667",) * len(sweep.adding_lengths)),),
    )


def plan_config(plan: Plan, task: str) -> Any:
    """The config of ``task`` at the plan's scale (first mixer, --set applied)."""
    return plan.runs(task, plan.mixers[0])[0].load()


def synthetic(plan: Plan) -> tuple[Section, ...]:
    """The synthetic memory tasks, with their sweeps."""
    sweep = SWEEPS[plan.scale]
    return (
        _mqar(plan, sweep),
        _recall(plan),
        _selective_copy(plan),
        _copy(plan, sweep),
        _adding(plan, sweep),
    )


TRAINED_TABLES: dict[str, Callable[[Plan], tuple[Section, ...]]] = {
    "lra": lra,
    "synthetic": synthetic,
}
TABLES = (*TRAINED_TABLES, "lra_speed")


def all_runs(sections: Sequence[Section]) -> list[Run]:
    """Every run of the sections, each once, in order."""
    runs = (run for s in sections for row in s.rows for cell in row.cells for run in cell.runs)
    return list({run.name: run for run in runs}.values())


# ----------------------------------------------------------------------------- data and launch


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

    launch.main(launcher_argv(run, str(workdir), kind, options))


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


# ----------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class Entry:
    """One printed cell: our mean ± std (None when no run finished), and the published value."""

    mean: float | None = None
    std: float | None = None
    seeds: int = 0
    ratio: float | None = None  # to the Transformer (lra_speed)
    status: str | None = None  # why runs are missing: "no data (d1)", "failed (f1)"
    published: published.Value = None
    source: str | None = None


@dataclasses.dataclass(frozen=True)
class Line:
    """A printed row: ours, published (from ``source``) or an analytic baseline."""

    label: str
    kind: str  # "ours", "published" or "analytic"
    entries: tuple[Entry, ...]
    source: str | None = None


@dataclasses.dataclass(frozen=True)
class Block:
    """A section with its numbers filled in, ready to print."""

    title: str
    columns: tuple[str, ...]
    lines: tuple[Line, ...]
    decimals: int
    notes: tuple[str, ...] = ()


@dataclasses.dataclass
class Document:
    """Everything written for one table."""

    name: str
    command: str
    description: str
    blocks: list[Block]
    devices: set[str] = dataclasses.field(default_factory=set)
    problems: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> message

    def problem(self, kind: str, message: str) -> str:
        """``"no data (d1)"``: a numbered note for ``message``, one per distinct message."""
        prefix = PROBLEM_PREFIX[kind]
        labels = [label for label in self.problems if label.startswith(prefix)]
        label = next((x for x in labels if self.problems[x] == message), None)
        if label is None:
            label = f"{prefix}{len(labels) + 1}"
            self.problems[label] = message
        return f"{kind} ({label})"


def reference_lines(section: Section) -> list[Line]:
    """The published rows and analytic baselines of a section."""
    lines = [
        Line(row.model, "published", tuple(Entry(published=v) for v in row.values), row.source)
        for row in section.references
    ]
    lines += [
        Line(label, "analytic", tuple(Entry(published=v) for v in values))
        for label, values in section.baselines
    ]
    return lines


def collect(
    section: Section, runs_dir: epath.Path, failures: dict[str, tuple[str, str]], doc: Document
) -> Block:
    """Reads every run's summary.json into the section's entries."""
    lines = []
    for row in section.rows:
        entries = []
        for cell in row.cells:
            values, reasons = [], []
            for run in cell.runs:
                path = summary_path(runs_dir, run)
                if path.exists():
                    summary = json.loads(path.read_text())
                    doc.devices.add(str(summary.get("device_kind", "unknown device")))
                    scale = 100.0 if summary["metric"] == "accuracy" else 1.0
                    values.append(scale * float(summary["test_at_best"]))
                elif run.name in failures:
                    reasons.append(doc.problem(*failures[run.name]))
            entries.append(_entry(values, len(cell.runs), reasons, cell))
        lines.append(Line(row.label, "ours", tuple(entries)))
    decimals = 2 if section.metric == "accuracy" else 4
    lines += reference_lines(section)
    return Block(section.title, section.columns, tuple(lines), decimals, section.notes)


def _entry(values: list[float], expected: int, reasons: list[str], cell: Cell) -> Entry:
    why = ", ".join(dict.fromkeys(reasons)) or "no summary.json"
    status = None
    if len(values) < expected:
        status = f"{len(values)}/{expected} seeds; {why}" if values else why
    return Entry(
        mean=statistics.mean(values) if values else None,
        std=statistics.stdev(values) if len(values) > 1 else None,
        seeds=len(values),
        status=status,
        published=cell.published,
        source=cell.source,
    )


# ----------------------------------------------------------------------------- lra_speed


def speed_runs(plan: Plan) -> dict[tuple[str, int], Run]:
    """(mixer, length) -> the text-task config the speed is measured with."""
    out = {}
    for variant in plan.mixers:
        for length in SWEEPS[plan.scale].speed_lengths:
            overrides = [
                ("task.options.max_length", length),
                ("train.batch_size", SPEED_BATCH),
                ("parallel", "none"),
            ]
            (out[variant, length],) = dataclasses.replace(plan, seeds=1).runs(
                "text", variant, overrides
            )
    return out


def synthetic_batch(spec: Any, batch_size: int) -> dict[str, Any]:
    """Random byte tokens of the task's shape, a full mask and labels."""
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (batch_size, spec.max_length)
    return {
        "inputs": rng.integers(1, spec.vocab_size, shape).astype(np.int32),
        "mask": np.ones(shape, bool),
        "label": rng.integers(0, spec.num_classes, batch_size).astype(np.int32),
    }


def measure_speed(run: Run, steps: int) -> dict[str, Any]:
    """Training steps/s of ``run``'s model over ``steps`` steps after one warm-up step, and the
    memory XLA compiled its training step to (arguments + outputs + temporaries)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from memjax import optim, tasks, train

    config = run.load()
    spec = tasks.get(config.task.name, **dict(config.task.options)).spec
    model = train.build_model(config.model, spec, run.seed)
    graphdef, param_state, rest = nnx.split(model, nnx.Param, ...)
    params = nnx.to_pure_dict(param_state)
    tx, _ = optim.build(config.optim, int(config.train.steps), model)
    opt_state = tx.init(params)
    step = train.make_steps(graphdef, nnx.to_pure_dict(rest), tx, spec, config).train
    batch = synthetic_batch(spec, int(config.train.batch_size))
    compiled = step.lower(params, opt_state, jnp.int32(0), batch).compile()
    memory = compiled.memory_analysis()
    used = (
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )
    params, opt_state, _ = jax.block_until_ready(compiled(params, opt_state, jnp.int32(0), batch))
    start = time.perf_counter()
    for i in range(steps):
        params, opt_state, _ = compiled(params, opt_state, jnp.int32(i + 1), batch)
    jax.block_until_ready(params)
    return {
        "steps_per_s": steps / (time.perf_counter() - start),
        "memory_gib": used / 2**30,
        "device": jax.devices()[0].device_kind,
        "length": spec.max_length,
        "batch": int(config.train.batch_size),
    }


def measured(run: Run, runs_dir: epath.Path, steps: int) -> dict[str, Any]:
    """The speed of ``run``: read from ``runs_dir/speed/NAME.json``, or measured and saved."""
    path = runs_dir / "speed" / f"{run.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    print(f"memjax table: measuring {run.name}", flush=True)
    result = measure_speed(run, steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return result


def _speed_block(
    plan: Plan, results: dict[tuple[str, int], dict | str], key: str, doc: Document
) -> Block:
    lengths = SWEEPS[plan.scale].speed_lengths
    row = published.LRA_STEPS_PER_S if key == "steps_per_s" else published.LRA_MEMORY_GB
    lines = []
    for variant in plan.mixers:
        entries = []
        for i, length in enumerate(lengths):
            result = results[variant, length]
            beside = _beside(row, i) if variant == "transformer" else {}
            if isinstance(result, str):
                entries.append(Entry(status=doc.problem("failed", result), **beside))
                continue
            doc.devices.add(result["device"])
            base = results.get(("transformer", length))
            ratio = result[key] / base[key] if isinstance(base, dict) and base[key] else None
            entries.append(Entry(mean=result[key], seeds=1, ratio=ratio, **beside))
        lines.append(Line(MODEL_NAMES[variant], "ours", tuple(entries)))
    values = tuple(Entry(published=v) for v in row.values)
    lines.append(Line(f"{row.model}, TPU v3 4x4", "published", values, row.source))
    what = (
        f"Training steps/s, text task, batch {SPEED_BATCH}"
        if key == "steps_per_s"
        else "Memory of one compiled training step, GiB (2^30 bytes; LRA's row is in its own GB)"
    )
    title = f"{what} (in parentheses: ratio to our Transformer)"
    notes = (
        "Inputs are random byte tokens of the text task's shape [batch, L]: speed and memory do "
        "not depend on content, so imdb_reviews need not be on this machine.",
        "Ours: one device, the model of configs/text.py at this scale, "
        f"{SWEEPS[plan.scale].speed_steps} timed steps after a warm-up; memory is XLA's compiled "
        "arguments + outputs + temporaries of the step. Published: LRA's 4x4 TPU v3 at "
        "L=1K, 2K, 3K, 4K.",
    )
    columns = tuple(f"L={length}" for length in lengths)
    return Block(title, columns, tuple(lines), 2 if key == "steps_per_s" else 3, notes)


# ----------------------------------------------------------------------------- rendering

MARKDOWN = {"pm": "±", "sep": " · ", "times": "×", "none": "–"}
LATEX = {"pm": r"$\pm$", "sep": r" $\cdot$ ", "times": r"$\times$", "none": "--"}


def source_numbers(blocks: Sequence[Block]) -> dict[str, int]:
    """Source key -> its number in the legend, in order of first appearance."""
    keys = [line.source for b in blocks for line in b.lines]
    keys += [e.source for b in blocks for line in b.lines for e in line.entries]
    return {key: i for i, key in enumerate(dict.fromkeys(k for k in keys if k), 1)}


def entry_text(entry: Entry, line: Line, decimals: int, numbers: dict[str, int], sym: dict) -> str:
    """One cell as printed: ``61.20 ± 0.40 · pub. 60.2 [3]``, ``no data (d1)`` or ``FAIL``."""
    if line.kind != "ours":
        return entry.published or sym["none"]
    parts = []
    if entry.mean is not None:
        text = f"{entry.mean:.{decimals}f}"
        if entry.std is not None:
            text += f" {sym['pm']} {entry.std:.{decimals}f}"
        if entry.ratio is not None:
            text += f" ({sym['times']}{entry.ratio:.2f})"
        parts.append(text)
    if entry.status:
        parts.append(entry.status)
    if entry.source:
        parts.append(f"pub. {entry.published or sym['none']} [{numbers[entry.source]}]")
    return sym["sep"].join(parts) or sym["none"]


def line_label(line: Line, numbers: dict[str, int]) -> str:
    """A row's label, marked when its numbers are published or analytic."""
    if line.kind == "published":
        return f"{line.label} (published [{numbers[line.source]}])"
    if line.kind == "analytic":
        return f"{line.label} (analytic)"
    return line.label


def markdown(doc: Document) -> str:
    """The document as GitHub markdown."""
    numbers = source_numbers(doc.blocks)
    out = [f"# Table `{doc.name}`", "", doc.description, "", f"Command: `{doc.command}`", ""]
    out.append(f"Runs on: {', '.join(sorted(doc.devices)) or 'no finished runs'}")
    for block in doc.blocks:
        out += ["", f"## {block.title}", "", "| model | " + " | ".join(block.columns) + " |"]
        out.append("|---|" + "---:|" * len(block.columns))
        for line in block.lines:
            cells = [entry_text(e, line, block.decimals, numbers, MARKDOWN) for e in line.entries]
            out.append(f"| {line_label(line, numbers)} | " + " | ".join(cells) + " |")
        if block.notes:
            out += [""] + [f"- {note}" for note in block.notes]
    out += ["", "## Sources", ""]
    out += [f"{i}. {published.SOURCES[key]}" for key, i in numbers.items()]
    if doc.problems:
        out += ["", "## Missing data and failed runs"]
        for label, message in doc.problems.items():
            out += ["", f"**{label}**:", "", "```", message, "```"]
    return "\n".join(out) + "\n"


def latex_escape(text: str) -> str:
    """Text with LaTeX's special characters escaped."""
    table = {c: "\\" + c for c in "&%$#_{}"}
    table.update({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})
    return "".join(table.get(c, c) for c in text)


def latex(doc: Document) -> str:
    """The document as LaTeX tables (needs booktabs); notes and sources follow them."""
    numbers = source_numbers(doc.blocks)
    out = [
        f"% {doc.command}",
        r"% needs \usepackage{booktabs}",
    ]
    for block in doc.blocks:
        out += [r"\begin{table}[ht]", r"\centering\small"]
        out.append(rf"\caption{{{latex_escape(block.title)}}}")
        out.append(r"\begin{tabular}{l" + "r" * len(block.columns) + "}")
        out += [r"\toprule", " & ".join(["Model", *map(latex_escape, block.columns)]) + r" \\"]
        out.append(r"\midrule")
        for line in block.lines:
            cells = [_latex_cell(e, line, block.decimals, numbers) for e in line.entries]
            out.append(" & ".join([latex_escape(line_label(line, numbers)), *cells]) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}"]
        for note in block.notes:
            out.append(r"\par\footnotesize " + latex_escape(note))
        out += [r"\end{table}", ""]
    out.append(r"\paragraph{Sources.}")
    out += [rf"[{i}] {latex_escape(published.SOURCES[key])}\par" for key, i in numbers.items()]
    if doc.problems:
        out += ["", r"\paragraph{Missing data and failed runs.}", r"\begin{verbatim}"]
        out += [f"{label}: {message}" for label, message in doc.problems.items()]
        out.append(r"\end{verbatim}")
    return "\n".join(out) + "\n"


def _latex_cell(entry: Entry, line: Line, decimals: int, numbers: dict[str, int]) -> str:
    """A cell for LaTeX: the markdown text's parts escaped, LaTeX's symbols between them."""
    safe = dataclasses.replace(
        entry,
        status=latex_escape(entry.status) if entry.status else None,
        published=latex_escape(entry.published) if entry.published else None,
    )
    return entry_text(safe, line, decimals, numbers, LATEX)


def to_json(doc: Document) -> str:
    """The document's numbers, for notebooks: blocks, sources and problems."""
    numbers = source_numbers(doc.blocks)
    return json.dumps(
        {
            "name": doc.name,
            "command": doc.command,
            "devices": sorted(doc.devices),
            "blocks": [dataclasses.asdict(block) for block in doc.blocks],
            "sources": {key: published.SOURCES[key] for key in numbers},
            "problems": doc.problems,
        },
        indent=1,
    )


# ----------------------------------------------------------------------------- main


DESCRIPTION = (
    "Ours: the test metric at the best validation checkpoint, mean ± sample standard "
    "deviation (n-1) over seeds. `pub. X [k]` beside a cell is the published number of the "
    "same model from source [k]; rows marked published are copied from the sources listed "
    "at the end, not measured here."
)
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
    name: str, plan: Plan, runs_dir: epath.Path, job: Callable, jobs: int, check_data: bool
) -> Document:
    """Launch what is missing of a trained table, then collect it."""
    sections = TRAINED_TABLES[name](plan)
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
    doc = Document(name, "", DESCRIPTION + (SMOKE_NOTE if plan.scale == "smoke" else ""), [])
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
    doc.blocks = [_speed_block(plan, results, key, doc) for key in ("steps_per_s", "memory_gib")]
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
    parser.add_argument("--seeds", type=int, default=1, help="seeds per cell (not lra_speed)")
    parser.add_argument("--launch", default="local", choices=("local", *VM_OPTION))
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (not lra_speed)")
    parser.add_argument("--mixers", default=",".join(DEFAULT_MIXERS), help="model variants")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv[:split])
    options = argv[split + 1 :]
    try:
        args.overrides = config_lib.parse_overrides([f"--config.{item}" for item in args.set])
    except ValueError as error:
        parser.error(f"--set: {error}")
    if args.seeds < 1 or args.jobs < 1:
        parser.error(f"--seeds and --jobs must be >= 1, got {args.seeds} and {args.jobs}")
    for variant in args.mixers.split(","):
        if variant not in config_lib.VARIANTS:
            parser.error(f"--mixers: unknown {variant!r}; expected {sorted(config_lib.VARIANTS)}")
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
    plan = Plan(args.scale, args.seeds, tuple(args.mixers.split(",")), tuple(args.overrides))
    runs_dir = epath.Path(paths.resolve(args.runs))
    if args.name == "lra_speed":
        doc = speed_document(plan, runs_dir)
    else:
        job = choose_job(args.launch, args.jobs, options)
        check_data = args.launch == "local"
        doc = trained_document(args.name, plan, runs_dir, job, args.jobs, check_data)
    doc.command = shlex.join(["memjax", "table", *argv])
    out = Path(paths.resolve(args.out))
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(doc)
    (out / f"{args.name}.md").write_text(text)
    (out / f"{args.name}.tex").write_text(latex(doc))
    (out / f"{args.name}.json").write_text(to_json(doc))
    print(text)
    print(f"wrote {out / args.name}.md, .tex and .json")
    failed = [label for label in doc.problems if label.startswith(PROBLEM_PREFIX["failed"])]
    if failed:
        raise SystemExit(f"memjax table: failures {', '.join(failed)}; see {out / args.name}.md")
    return doc

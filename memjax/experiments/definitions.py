"""The trained tables (``lra``, ``synthetic``) as sections of rows of cells of runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from memjax import variants
from memjax.experiments import published
from memjax.experiments.published import PublishedRow
from memjax.experiments.runs import LRA_HEADERS, SWEEPS, Plan, Run, Sweep


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


def published_beside(row: PublishedRow | None, column: int) -> dict[str, Any]:
    """Cell keyword arguments placing ``row``'s number of ``column`` beside ours."""
    if row is None:
        return {}
    return {"published": row.values[column], "source": row.source}


def lra(plan: Plan) -> tuple[Section, ...]:
    """Long Range Arena: every task x mixer, beside the published LRA rows."""
    rows = []
    for variant in plan.variants:
        match = published.find(published.LRA, variants.get(variant).published.get("lra"))
        cells = tuple(
            Cell(plan.runs(task, variant), **published_beside(match, i))
            for i, task in enumerate(published.LRA_TASKS)
        )
        rows.append(Row(variants.get(variant).display, cells))
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
    for variant in plan.variants:
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
            rows.append(Row(f"{variants.get(variant).display}, width {width}", cells))
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
    for variant in plan.variants:
        match = published.find(published.H3_RECALL, variants.get(variant).published.get("h3"))
        cells = (
            Cell(plan.runs("induction", variant, INDUCTION), **published_beside(match, 0)),
            Cell(plan.runs("mqar", variant, ASSOCIATIVE_RECALL), **published_beside(match, 1)),
        )
        rows.append(Row(variants.get(variant).display, cells))
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
        Row(variants.get(variant).display, (Cell(plan.runs("selective_copy", variant)),))
        for variant in plan.variants
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
            variants.get(variant).display,
            tuple(
                Cell(plan.runs(task, variant, [(f"task.options.{option}", value)]))
                for value in values
            ),
        )
        for variant in plan.variants
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
    return plan.runs(task, plan.variants[0])[0].load()


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

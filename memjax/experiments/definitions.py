"""The trained tables (``lra``, ``synthetic``) as sections of rows of cells of runs."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from memjax import provenance, tasks, variants
from memjax.config import SMOKE_DIFFERENCE
from memjax.experiments import published
from memjax.experiments.published import PublishedRow
from memjax.experiments.runs import LRA_HEADERS, SWEEPS, Plan, Run, Sweep
from memjax.tasks import mqar


@dataclasses.dataclass(frozen=True)
class Cell:
    """Runs over seeds, and the published number of the same model beside them."""

    runs: tuple[Run, ...]
    published: published.Value = None
    source: str | None = None
    field: str = "test_at_best"  # what each run's summary.json gives, dotted into nested dicts


@dataclasses.dataclass(frozen=True)
class Row:
    """One model's cells across a section's columns."""

    label: str
    cells: tuple[Cell, ...]


@dataclasses.dataclass(frozen=True)
class Section:
    """One table: our rows, then published rows and analytic baselines under them."""

    title: str
    metric: str  # "accuracy" (shown in %), "mse" or "count" (bytes, tokens/s: whole numbers)
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


def labelled(
    variant: str, cells: Sequence[Cell], columns: Sequence[str], plan: Plan
) -> tuple[str, tuple[str, ...]]:
    """A row's label and its notes: ``"<model>-style"`` when a cell the table prints has a
    published number beside it but its config still differs from that paper's setup, the
    differences in notes.

    Each difference is printed once, with the printed columns it applies to.
    """
    display = variants.get(variant).display
    where: dict[str, list[str]] = {}
    differs = False
    for cell, column in zip(cells, columns, strict=True):
        if cell.published is None or not cell.runs or not plan.shows(column):
            continue
        found = provenance.from_config(cell.runs[0].load())
        differs = differs or not found.faithful
        for difference in found.differences:
            if difference != SMOKE_DIFFERENCE:
                where.setdefault(difference, []).append(column)
    if not differs:
        return display, ()
    if display.endswith("-style"):
        label = display
    else:
        label = f"{display} (-style)" if " " in display else f"{display}-style"
    notes = tuple(
        f"{label} ({', '.join(found_in)}): {difference}." for difference, found_in in where.items()
    )
    return label, notes


def lra(plan: Plan) -> tuple[Section, ...]:
    """Long Range Arena: every task x mixer, beside the published LRA rows."""
    rows, style_notes = [], []
    for variant in plan.variants:
        match = published.find(published.LRA, variants.get(variant).published.get("lra"))
        cells = tuple(
            Cell(plan.runs(task, variant), **published_beside(match, i))
            for i, task in enumerate(published.LRA_TASKS)
        )
        label, notes = labelled(variant, cells, LRA_HEADERS, plan)
        rows.append(Row(label, cells))
        style_notes += notes
    listops = {**tasks.options("listops"), **plan_config(plan, "listops").task.options}
    notes = (
        "ListOps is generated with LRA's procedure (configs/listops.py); LRA's released files "
        "are the task option source='lra'.",
        *test_set_noise("ListOps", listops),
        "Path-X is Pathfinder at 128x128 (configs/pathx.py), read from LRA's released images "
        "at paper scale (source='lra'); smoke scale draws it at 32x32.",
        *style_notes,
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
    figure2 = {length: (pairs, batch) for length, pairs, batch in mqar.FIGURE2}
    rows = []
    for variant in plan.variants:
        for width in sweep.mqar_widths:
            cells = []
            for length in sweep.mqar_lengths:
                pairs, batch = figure2.get(length, (max(1, length // 16), None))
                overrides = [
                    ("task.options.length", length),
                    ("task.options.num_kv_pairs", pairs),
                    ("model.d_model", width),
                ]
                if plan.scale == "paper" and batch is not None:  # Figure 2's batch, 64 epochs
                    overrides += [
                        ("train.batch_size", batch),
                        ("train.steps", mqar.figure2_steps(batch)),
                    ]
                cells.append(Cell(plan.runs("mqar", variant, overrides)))
            rows.append(Row(f"{variants.get(variant).display}, width {width}", tuple(cells)))
    return Section(
        "MQAR (Zoology): accuracy (%) by sequence length and model width",
        "accuracy",
        tuple(f"L={length}" for length in sweep.mqar_lengths),
        tuple(rows),
        notes=(
            "Zoology's Figure 2 setting (configs/mqar.py): (length, key-value pairs) "
            + ", ".join(f"({length}, {pairs})" for length, pairs, _ in mqar.FIGURE2)
            + ", vocabulary 8192, every key queried once, no random tokens between the queries "
            "(random_non_queries=False), batch "
            + "/".join(str(batch) for _, _, batch in mqar.FIGURE2)
            + " for 64 epochs of 100,000 sequences; smoke lengths outside it use L/16 pairs.",
            "Zoology plots each model's best of four learning rates (1e-4 .. 1e-2); each cell "
            "here trains the config's one learning rate (optim.lr).",
            "Arora et al. 2023 (Zoology) show MQAR as plots, not as a table: no published "
            "numbers to place beside these cells.",
        ),
    )


ASSOCIATIVE_RECALL = (("task.options.vocab_size", 10), ("task.options.length", 20))
"""H3's associative recall (safari configs/experiment/synthetics/associative_recall/
vocab_size_10.yaml): vocabulary 10, 20 tokens of key-value pairs."""
INDUCTION = (("task.options.length", 30), ("task.options.num_symbols", 18))
"""H3's induction head (safari configs/pipeline/induction_head.yaml): 30 body tokens over 18
symbols (its vocabulary of 20 counts the trigger and the no-op token)."""


def _recall(plan: Plan) -> Section:
    rows, style_notes = [], []
    columns = ("Induction head", "Associative recall")
    for variant in plan.variants:
        match = published.find(published.H3_RECALL, variants.get(variant).published.get("h3"))
        cells = (
            Cell(plan.runs("induction", variant, INDUCTION), **published_beside(match, 0)),
            Cell(
                plan.runs("associative_recall", variant, ASSOCIATIVE_RECALL),
                **published_beside(match, 1),
            ),
        )
        label, notes = labelled(variant, cells, columns, plan)
        rows.append(Row(label, cells))
        style_notes += notes
    return Section(
        "Induction heads and associative recall: accuracy (%), beside H3's Table 2",
        "accuracy",
        columns,
        tuple(rows),
        references=published.H3_RECALL,
        notes=(
            "Both tasks are H3's (HazyResearch/safari src/dataloaders/synthetics.py): trained "
            "with a language-model loss on every position, scored on the last position only.",
            "Induction head: 30 random symbols of 18 with the trigger at one of positions 0..27, "
            "then the trigger (31 inputs); the answer is the symbol after the first trigger. "
            "Chance is 1/18 = 5.6%; H3 prints Random 5.0, one in its vocabulary of 20.",
            "Associative recall: vocabulary 10 (4 keys, 4 values), 10 key-value pairs with keys "
            "drawn with replacement, then => and a query key seen before (22 inputs). The "
            "answer is uniform over the 4 values whatever the key, so without memory no guess "
            "beats 25%, H3's Random.",
            *style_notes,
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
        notes=(
            "Task and training from configs/selective_copy.py, Mamba's appendix E.1: length "
            "4096, vocabulary 16 counting the noise token and the marker (14 data symbols), 16 "
            "tokens to memorise, 2 layers of width 64, 400K steps of batch 64 at a constant "
            "learning rate of 1e-4.",
            "Mamba's S4, S6 and H3 layers are not memjax mixers: its rows stand beside ours, "
            "not for the same models.",
        ),
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


def test_set_noise(task: str, options: Mapping[str, Any]) -> tuple[str, ...]:
    """A note on the sampling noise of a generated test set of ``options.num_test`` examples:
    one standard error of an accuracy ``p`` measured on ``n`` examples is
    ``100 sqrt(p (1 - p) / n)`` points, at most ``50 / sqrt(n)`` (at p = 0.5)."""
    size = options.get("num_test")
    if options.get("source", "generate") != "generate" or not size:
        return ()
    return (
        f"{task}'s generated test set has {size} examples: one run's accuracy carries a "
        f"sampling standard error of up to ±{50 / math.sqrt(size):.2f} points, so cells give "
        "the mean ± std over seeds.",
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


def scan(plan: Plan) -> tuple[Section, ...]:
    """SCAN (Lake & Baroni 2018): exact match per split beside the paper's models, then the
    oracle-length exact match and what decoding costs, from the same runs."""
    columns = tuple(published.SCAN_SPLITS)
    runs = {
        variant: [plan.runs("scan", variant, [("task.options.split", s)]) for s in columns]
        for variant in plan.variants
    }

    def rows(field: str, beside: Mapping[str, Mapping[str, str]]) -> tuple[Row, ...]:
        out = []
        for variant in plan.variants:
            numbers = beside.get(variant, {})
            cells = tuple(
                Cell(
                    split_runs,
                    published=numbers.get(split),
                    source="lake2018" if split in numbers else None,
                    field=field,
                )
                for split, split_runs in zip(columns, runs[variant], strict=True)
            )
            out.append(Row(variants.get(variant).display, cells))
        return tuple(out)

    exact = rows("test_at_best", published.SCAN_BESIDE)
    oracle = rows("sequence_test.oracle_length_exact_match", published.SCAN_ORACLE_BESIDE)
    labels, style_notes = [], []
    for variant, row in zip(plan.variants, exact, strict=True):  # oracle's published: the same
        label, notes = labelled(variant, row.cells, columns, plan)
        labels.append(label)
        style_notes += notes

    def relabel(section_rows: tuple[Row, ...]) -> tuple[Row, ...]:
        return tuple(
            dataclasses.replace(row, label=label)
            for row, label in zip(section_rows, labels, strict=True)
        )

    return (
        Section(
            "SCAN: exact-match accuracy (%) of the greedy decoding by split",
            "accuracy",
            columns,
            relabel(exact),
            references=published.SCAN,
            notes=(
                "Exact match: the whole action sequence right, EOS included, decoded greedily "
                "through the decoder's streaming face (configs/scan.py). Each run's "
                "summary.json also holds token accuracy and accuracy by action and command "
                "length (sequence_test).",
                "The paper averages 5 runs of 100,000 presentations; each cell here is the "
                "mean ± std over the seeds the description names.",
                *style_notes,
            ),
        ),
        Section(
            "SCAN: exact match (%) when decoding exactly the target's length (oracle length)",
            "accuracy",
            columns,
            relabel(oracle),
            references=published.SCAN_ORACLE,
            notes=(
                "The paper's Experiment 2: EOS is never emitted; the decoder runs for the "
                "target's number of actions and takes the best non-EOS action at each step.",
            ),
        ),
        Section(
            "SCAN: greedy decoding speed (output tokens/s over the test set)",
            "count",
            columns,
            relabel(rows("sequence_test.decode_tokens_per_s", {})),
            notes=(
                "Measured at the end of each run on the device named above, compiled once "
                "beforehand, in batches of the evaluation's size; runs that shared the machine "
                "(--jobs) shared its cores, so compare rows of one table only.",
            ),
        ),
        Section(
            "SCAN: wall time per run (s: training, evaluations and the final report)",
            "count",
            columns,
            relabel(rows("wall_s", {})),
            notes=(
                "On the device named above, with the runs that shared it at the same time "
                "(--jobs).",
            ),
        ),
        Section(
            "SCAN: bytes one sequence holds while decoding (at the split's longest source "
            "and target)",
            "count",
            columns,
            relabel(rows("sequence_test.state_bytes_per_sequence", {})),
            notes=(
                "The decoder's recurrent state (constant in the target's length) or KV cache "
                "(growing with it), plus the encoder states its attention reads, float32 "
                "(memjax.seq2seq.state_breakdown).",
            ),
        ),
    )


def h3(plan: Plan) -> tuple[Section, ...]:
    """H3's Table 2 (Fu et al. 2023): induction head and associative recall."""
    return (_recall(plan),)


MQAR_CPU_SWEEP = dataclasses.replace(SWEEPS["paper"], mqar_lengths=(64, 128), mqar_widths=(64, 128))
"""The smallest Figure 2 cells of Zoology that a CPU trains: L = 64 and 128, widths 64, 128."""


def mqar_table(plan: Plan) -> tuple[Section, ...]:
    """Zoology's MQAR (Arora et al. 2023, Figure 2) at its smallest lengths and widths."""
    sweep = MQAR_CPU_SWEEP if plan.scale == "paper" else SWEEPS[plan.scale]
    return (_mqar(plan, sweep),)


def mnist1d(plan: Plan) -> tuple[Section, ...]:
    """MNIST-1D (Greydanus & Kobak 2024): test accuracy, and with the sequence shuffled."""
    columns = published.MNIST1D_COLUMNS
    rows, style_notes = [], []
    for variant in plan.variants:
        match = published.find(published.MNIST1D, variants.get(variant).published.get("mnist1d"))
        cells = (
            Cell(plan.runs("mnist1d", variant), **published_beside(match, 0)),
            Cell(
                plan.runs("mnist1d", variant, [("task.options.shuffle_seq", True)]),
                **published_beside(match, 1),
            ),
        )
        label, notes = labelled(variant, cells, columns, plan)
        rows.append(Row(label, cells))
        style_notes += notes
    return (
        Section(
            "MNIST-1D: test accuracy (%), and with the 40 positions shuffled",
            "accuracy",
            columns,
            tuple(rows),
            references=published.MNIST1D,
            notes=(
                "The data are the mnist1d package's own make_dataset with its default "
                "arguments (seed 42): 4,000 training and 1,000 test sequences of 40 values, 10 "
                "classes (configs/mnist1d.py); the validation split is carved from the 4,000 "
                "by seed. Shuffled: the package's shuffle_seq, one fixed permutation of the "
                "positions for every sequence.",
                "Every memory other than the GRU trains at 5,530 parameters (configs/mnist1d.py "
                "PARAMETER_BUDGET: the GRU in memjax's usual block, with an input projection and "
                "a residual); the paper's bare GRU has 5,110. At one layer with no MLP and no "
                "activation, LRU and S5 are linear maps of the input, so they can reach only "
                "what logistic regression reaches.",
                *style_notes,
            ),
        ),
    )


TRAINED_TABLES: dict[str, Callable[[Plan], tuple[Section, ...]]] = {
    "lra": lra,
    "synthetic": synthetic,
    "scan": scan,
    "h3": h3,
    "mqar": mqar_table,
    "mnist1d": mnist1d,
}
TABLES = (*TRAINED_TABLES, "lra_speed")
TABLE_VARIANTS = {
    "scan": ("lstm", "gru_attention", "transformer"),
    "h3": ("transformer", "s4d", "h3", "lstm", "gru", "mingru", "lru", "s5", "linear_attention"),
    "mnist1d": ("gru", "transformer", "lstm", "mingru", "lru", "s5", "linear_attention"),
}
"""The variants ``memjax table NAME`` trains without ``--variants``, where they differ from
:data:`memjax.variants.TABLE_DEFAULT`."""


def only_columns(sections: Sequence[Section], columns: Sequence[str]) -> tuple[Section, ...]:
    """``sections`` cut to ``columns`` (column headers); ValueError naming any unknown one.

    A section without any of them is left out; published rows keep the matching values.
    """
    known = {column for section in sections for column in section.columns}
    unknown = [column for column in columns if column not in known]
    if unknown:
        raise ValueError(
            f"--columns: {unknown} not in this table; expected some of {sorted(known)}"
        )
    kept = []
    for section in sections:
        keep = [i for i, column in enumerate(section.columns) if column in columns]
        if not keep:
            continue

        def cut(values: Sequence[Any], keep: list[int] = keep) -> tuple[Any, ...]:
            return tuple(values[i] for i in keep)

        kept.append(
            dataclasses.replace(
                section,
                columns=cut(section.columns),
                rows=tuple(dataclasses.replace(row, cells=cut(row.cells)) for row in section.rows),
                references=tuple(
                    dataclasses.replace(ref, values=cut(ref.values)) for ref in section.references
                ),
                baselines=tuple((label, cut(values)) for label, values in section.baselines),
            )
        )
    return tuple(kept)


def all_runs(sections: Sequence[Section]) -> list[Run]:
    """Every run of the sections, each once, in order."""
    runs = (run for s in sections for row in s.rows for cell in row.cells for run in cell.runs)
    return list({run.name: run for run in runs}.values())

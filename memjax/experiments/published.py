"""Published numbers that ``memjax table`` prints beside its own, each with its source.

Every value here is copied from the paper its source names; memjax measured none of them. A
value is a string exactly as the paper printed it (``"71.40"``, ``"FAIL"``, ``"chance"``: accuracy
in %, steps/s or GB), or None where the paper gives no number for that column; ``number`` reads
one as a float.
"""

from __future__ import annotations

import dataclasses

Value = str | None


@dataclasses.dataclass(frozen=True)
class PublishedRow:
    """One published model's numbers, one per column of the table they appear in."""

    model: str
    source: str  # key into SOURCES
    values: tuple[Value, ...]


SOURCES = {
    "tay2020": "Tay et al. 2020, Long Range Arena: A Benchmark for Efficient Transformers "
    "(ICLR 2021), Table 1",
    "tay2020speed": "Tay et al. 2020, Long Range Arena (ICLR 2021), Table 2: steps/s and peak "
    "memory on a TPU v3 4x4, text task, batch 32",
    "gu2022": "Gu, Goel and Re 2022, Efficiently Modeling Long Sequences with Structured State "
    "Spaces (S4, ICLR 2022), updated LRA results",
    "smith2023": "Smith, Warrington and Linderman 2023, Simplified State Space Layers for "
    "Sequence Modeling (S5, ICLR 2023)",
    "orvieto2023": "Orvieto et al. 2023, Resurrecting Recurrent Neural Networks for Long "
    "Sequences (LRU, ICML 2023); the RNN rows are its Table 1",
    "fu2023": "Fu et al. 2023, Hungry Hungry Hippos: Towards Language Modeling with State Space "
    "Models (H3, ICLR 2023), Table 2",
    "gu2023": "Gu and Dao 2023, Mamba: Linear-Time Sequence Modeling with Selective State "
    "Spaces, Table 1 (S4 and S6: no gate; H3: H3 architecture with S4)",
    "greydanus2024": "Greydanus and Kobak 2024, Scaling down Deep Learning with MNIST-1D "
    "(ICML 2024); the results table of the dataset's README (greydanus/mnist1d)",
    "lake2018": "Lake and Baroni 2018, Generalization without Systematicity: On the "
    "Compositional Skills of Sequence-to-Sequence Recurrent Networks (ICML 2018), Experiments "
    "1-3 (mean of 5 runs)",
}

LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
"""The column order of every LRA row below."""

LRA = (
    PublishedRow("Transformer", "tay2020", ("36.37", "64.27", "57.46", "42.44", "71.40", "FAIL")),
    PublishedRow("S4", "gu2022", ("59.60", "86.82", "90.90", "88.65", "94.20", "96.35")),
    PublishedRow("S5", "smith2023", ("62.15", "89.31", "91.40", "88.00", "95.33", "98.58")),
    PublishedRow("LRU", "orvieto2023", ("60.2", "89.4", "89.9", None, "95.1", "94.2")),
    PublishedRow("RNN-ReLU", "orvieto2023", ("37.6", "88.0", "88.5", None, "chance", "chance")),
    PublishedRow("RNN-Tanh", "orvieto2023", ("43.9", "87.2", "88.9", None, "chance", "chance")),
    PublishedRow("RNN-Lin", "orvieto2023", ("50.4", "89.1", "89.1", None, "chance", "chance")),
)

SPEED_LENGTHS = (1024, 2048, 3072, 4096)
LRA_STEPS_PER_S = PublishedRow("Transformer", "tay2020speed", ("8.1", "4.9", "2.3", "1.4"))
LRA_MEMORY_GB = PublishedRow("Transformer", "tay2020speed", ("0.85", "2.65", "5.51", "9.48"))

H3_COLUMNS = ("induction", "recall")
H3_RECALL = (
    PublishedRow("Random", "fu2023", ("5.0", "25.0")),
    PublishedRow("S4D", "fu2023", ("35.6", "86.0")),
    PublishedRow("H3", "fu2023", ("100", "99.8")),
    PublishedRow("Attention", "fu2023", ("100", "100")),
)

MAMBA_SELECTIVE_COPY = (
    PublishedRow("S4", "gu2023", ("18.3",)),
    PublishedRow("S6", "gu2023", ("97.0",)),
    PublishedRow("H3", "gu2023", ("57.0",)),
)


MNIST1D_COLUMNS = ("MNIST-1D", "shuffled")
MNIST1D = (
    PublishedRow("Logistic regression", "greydanus2024", ("32", "32")),
    PublishedRow("MLP", "greydanus2024", ("68", "68")),
    PublishedRow("CNN", "greydanus2024", ("94", "56")),
    PublishedRow("GRU", "greydanus2024", ("91", "57")),
    PublishedRow("Human", "greydanus2024", ("96", None)),
)
"""Test accuracy (%), as the dataset's README prints it, unshuffled and with shuffle_seq."""

SCAN_SPLITS = ("simple", "length", "addprim_jump", "addprim_turn_left")
"""The column order of the SCAN rows below (the task option ``split``)."""

SCAN = (
    PublishedRow(
        "Overall-best (LSTM 2x200, no attention, dropout 0.5)",
        "lake2018",
        ("99.7", "13.8", "0.08", "90.0"),
    ),
    PublishedRow("Top per split", "lake2018", ("99.8", "20.8", "1.2", "90.3")),
)
"""Exact-match accuracy (%). The top models: simple, LSTM 2x200 without attention or dropout;
length, GRU with attention; add-jump, LSTM with attention; add-turn-left, GRU with attention."""

SCAN_BESIDE = {
    "lstm": {
        "simple": "99.7",
        "length": "13.8",
        "addprim_jump": "0.08",
        "addprim_turn_left": "90.0",
    },
    "gru_attention": {"length": "20.8", "addprim_turn_left": "90.3"},
    "lstm_attention": {"addprim_jump": "1.2"},
}
"""Which published number sits beside which memjax variant: the overall-best model's beside
``lstm`` (its setup), each split's top model beside the variant that is that model."""

SCAN_ORACLE = (
    PublishedRow(
        "Overall-best (LSTM 2x200, no attention, dropout 0.5)",
        "lake2018",
        (None, "23.6", None, None),
    ),
    PublishedRow("GRU + attention (length's top)", "lake2018", (None, "60.2", None, None)),
)
"""Exact match (%) with the target's length given (Experiment 2), on the length split only."""

SCAN_ORACLE_BESIDE = {"lstm": {"length": "23.6"}, "gru_attention": {"length": "60.2"}}


def find(rows: tuple[PublishedRow, ...], model: str | None) -> PublishedRow | None:
    """The row of ``model`` in ``rows``, or None."""
    return next((row for row in rows if row.model == model), None)


def number(value: Value) -> float | None:
    """A published value as a float, or None for a word (``"FAIL"``) or no number."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None

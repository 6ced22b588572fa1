"""Where a config's setup comes from, and what in it still differs from that source.

A config sits beside a published number as "the same model" only when it is that paper's setup:
its data, model, initialisation, optimiser and budget. Every task config therefore records, per
model variant, a :class:`Provenance`: the source (paper, table, repository file) and the list of
ways memjax's run still differs from it. An empty list means the run is the source's setup; a
table labels any other row ``"<model>-style"`` and prints the differences in its notes.

A variant whose paper never ran the task gets :func:`never_ran`: the config trains it with the
task's shared setup, and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import ml_collections


@dataclasses.dataclass(frozen=True)
class Provenance:
    """The source of one config's setup and what still differs from it.

    Attributes:
      source: the paper, its table and the repository file the setup was read from.
      differences: each way memjax's run still differs from the source; empty when it does not.
    """

    source: str
    differences: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ValueError("Provenance.source is empty; expected the paper and file it names")
        if isinstance(self.differences, str):
            raise ValueError(
                f"Provenance.differences={self.differences!r} is one string; expected a tuple "
                "of strings, one per difference"
            )

    @property
    def faithful(self) -> bool:
        """True when the run is the source's setup (no differences listed)."""
        return not self.differences

    def with_differences(self, extra: Sequence[str]) -> Provenance:
        """The same source with ``extra`` differences appended."""
        return dataclasses.replace(self, differences=(*self.differences, *extra))

    def to_config(self) -> ml_collections.ConfigDict:
        """``{"source": str, "differences": [str, ...]}`` for ``config.provenance``."""
        return ml_collections.ConfigDict(
            {"source": self.source, "differences": list(self.differences)}
        )


def never_ran(variant: str, task: str, shared: str) -> Provenance:
    """The provenance of ``variant`` on ``task`` when no published run of it exists.

    ``shared`` names the setup the config trains it with (e.g. "LRA's released listops config").
    """
    return Provenance(
        source=f"no published setup of {variant!r} on {task!r}",
        differences=(f"no paper ran {variant!r} on {task!r}: this config trains it with {shared}",),
    )


def from_config(config: ml_collections.ConfigDict) -> Provenance:
    """The :class:`Provenance` recorded in ``config.provenance``."""
    node = config.provenance
    return Provenance(str(node.source), tuple(str(d) for d in node.differences))


LRA_TRANSFORMER_DIFFERENCES = (
    "no dropout on the attention probabilities (LRA's attention_dropout_rate) and none inside "
    "the MLP after its GELU or after the position embedding: memjax drops out each block's "
    "two residual branches",
    "classifier head: one linear layer on the pooled features; LRA's classifier_head is "
    "Dense(mlp_dim), ReLU, Dense(num_classes) (two hidden layers for the dual encoder)",
    "weight decay on matrices only; LRA's flax Adam decays every parameter (biases, norms, "
    "embeddings); Adam eps 1e-8 (optax) against LRA's 1e-9",
    "flax NNX's default initialisers; LRA: xavier_uniform kernels in attention and MLP, "
    "N(0, 1) token embeddings, a zero CLS token",
)
"""Where memjax's Transformer still differs from LRA's (lra_benchmarks/models/transformer/
transformer.py and models/layers/common_layers.py, read at google-research/long-range-arena
HEAD) in every LRA task: the rows are "Transformer-style"."""


def lra_transformer(config_file: str, *extra: str) -> Provenance:
    """The LRA Transformer's provenance for one task: its released config file, and what
    still differs (:data:`LRA_TRANSFORMER_DIFFERENCES` plus ``extra``)."""
    return Provenance(
        f"Tay et al. 2021, Long Range Arena (ICLR 2021): google-research/long-range-arena "
        f"{config_file} with lra_benchmarks/models/transformer/transformer.py",
        (*LRA_TRANSFORMER_DIFFERENCES, *extra),
    )


def lru_without_its_table(shared: str) -> Provenance:
    """The LRU's provenance on an LRA task: its paper, whose per-task table memjax lacks.

    The LRU paper (Orvieto et al. 2023) gives its per-task hyperparameters (depth, width,
    ``r_min``, ``r_max``, max phase, learning rates and the recurrence's factor, dropout, batch,
    epochs) in an appendix table; no copy of that table, and no official code release, was
    reachable when these configs were written, so the LRU trains with ``shared`` and its own
    default initialisation, and its rows are "LRU-style" until the table's values are added.
    """
    return Provenance(
        source="Orvieto et al. 2023 (LRU, ICML 2023), per-task hyperparameters of its appendix",
        differences=(
            "the LRU paper's per-task hyperparameters (r_min, r_max, max phase, learning rates "
            "and the recurrence's factor, dropout, depth, width) are not in this config: the "
            "paper's table was not reachable and the official code is unreleased; it trains "
            f"with {shared} and LRU's default r_min=0.9, r_max=0.999, max phase 2 pi",
        ),
    )


S5_DIFFERENCES = (
    "BatchNorm's statistics leave padded steps out (S5's include them), and the backward pass "
    "of the bidirectional form starts at each sequence's last valid step (S5's at the padded "
    "end)",
    "tokens enter through an embedding table; S5 applies a Dense layer (with a bias, LeCun "
    "init) to one-hot tokens",
    "optax's warmup-cosine schedule: S5's cosine counts the global step, starts at the full "
    "rate on its first step and ends at total - warmup steps",
)
"""Where memjax's ``s5`` at paper scale still differs from S5's release (lindermanlab/S5:
s5/ssm.py, s5/layers.py, s5/seq_model.py, s5/train_helpers.py, run_train.py): the rows are
"S5-style"."""


def s5_release(script: str, *extra: str) -> Provenance:
    """S5's provenance for one LRA task: its run script, and what still differs
    (:data:`S5_DIFFERENCES` plus ``extra``)."""
    return Provenance(
        f"Smith et al. 2023, S5 (ICLR 2023): lindermanlab/S5 bin/run_experiments/{script} "
        "with run_train.py's defaults",
        (*S5_DIFFERENCES, *extra),
    )


SAFARI_WEIGHT_DECAY = (
    "weight decay on matrices only; safari's synthetic runs set no optimizer_param_grouping, "
    "so AdamW decays every ordinary parameter (biases, norms, embeddings, D)"
)
H3_LAYER_DIFFERENCES = (
    "the shift SSM's B is fixed at e_0, its kernel the learned shift_c; safari trains B "
    "(initialised to e_0) and convolves B with C, the same set of kernels parametrised "
    "differently",
    "the shift and diagonal SSMs run as a direct convolution and a recurrence; safari uses FFT "
    "convolutions (the same maths, other rounding)",
)
"""Where memjax's ``h3`` (memjax/h3.py) differs from safari's H3 layer
(src/models/sequence/h3.py, configs/model/layer/h3.yaml)."""
S4D_LAYER_DIFFERENCES = (
    "S4D-Lin initialisation; safari's s4d layer initialises S4D-Inv (scaling='inverse')",
    "every channel has its own A and B; safari shares one A and B across channels, draws B "
    "as a normalised random complex vector and folds it into C",
    "the layer outputs SSM(u) + D u; safari's s4d layer adds a GELU and an output Linear H -> H",
    "a recurrence; safari computes the kernel and an FFT convolution",
)
"""Where memjax's ``s4d`` (memjax/cells/s4d.py) differs from safari's S4D layer
(src/models/sequence/ssm/s4d.py, configs/model/layer/s4d.yaml)."""


def h3_table_2(model: str, config_file: str, differences: Sequence[str]) -> Provenance:
    """A row of H3's Table 2 (Fu et al. 2023): ``model`` trained by safari's
    ``configs/experiment/synthetics/<config_file>``, with ``differences``."""
    return Provenance(
        f"Fu et al. 2023, H3 (ICLR 2023), Table 2, {model}: HazyResearch/safari "
        f"configs/experiment/synthetics/{config_file}",
        (*differences, SAFARI_WEIGHT_DECAY),
    )

"""MNIST-1D (Greydanus & Kobak 2024, "Scaling down deep learning with MNIST-1D", ICML): classify
40-step real-valued digit sequences into 10 classes; ``shuffle_seq`` shuffles the positions.

Paper setup (``gru``), read at greydanus/mnist1d HEAD 7878d96: ``notebooks/models.py``
``GRUBase(..., hidden_size=6, time_steps=40, bidirectional=True)`` (one bidirectional torch GRU
layer of 6 units per direction; its outputs at all 40 steps flattened into one linear layer;
5,134 parameters) trained by ``notebooks/train.py`` ``train_model`` with ``get_model_args()``
(``'learning_rate': 1e-2``, ``'weight_decay': 0``, ``'batch_size': 100``; ``optim.Adam``, so
torch's betas (0.9, 0.999) and eps 1e-8, a constant rate, no clipping, no dropout) for
``args.total_steps = 6000`` steps, as ``notebooks/mnist1d-classification.ipynb`` sets it. The
README's table (test accuracy): logistic regression 32%, MLP 68%, CNN 94%, GRU 91%, human 96%;
with the sequence shuffled 32, 68, 56, 57 and ~30%. The notebook shuffles with its own
permutation (``np.random.seed(42)``, ``permutation(40)``), not the package's ``shuffle_seq``
one this task uses: both are one fixed permutation of the 40 positions, but not the same one.

memjax's ``gru`` is that model: two GRUs of 6 units side by side (``bidirectional_form=
"concat"``) reading the scalar input as it is (``input_projection=False``), every step's 12
outputs and nothing else (``residual=False``) flattened into a linear head 480 -> 10
(``pooling="flatten"``), no norm (``norm="none"``); 5,110 parameters, the paper's 5,134 less
torch's 24 redundant recurrent biases ``b_hr, b_hz`` (memjax's GRU keeps ``b_hn`` only: the
same functions). With memjax's usual block (an input projection 1 -> 12 and a residual, 5,530
parameters) the same recipe reached 82.77 +/- 1.50 (the first version of
``results/tables/mnist1d.md``, session 6); the torch reference
``results/reference/mnist1d_torch_gru.py`` measured that block at about 7 points.
Every other memory (``transformer``, ``lstm``,
``mingru``, ``lru``, ``s5``, ``linear_attention`` ...) trains with the same setup and model
shape (one layer, no MLP, the flattened head, bidirectional by concatenation except the
Transformer, whose attention already sees both ways; attention with 2 heads, so that its width
may be any even number) at 5,530 parameters, the GRU in memjax's usual block
(``param_budget``, :data:`PARAMETER_BUDGET`); no paper ran them on MNIST-1D. Smoke scale keeps
the GRU at the paper's one layer of 2 x 6 units (smaller than memjax's smoke model) and trains
for a few steps.
Usage: ``--config configs/mnist1d.py:gru``.
"""

from memjax.config import parse_arg, task_config
from memjax.provenance import Provenance

HIDDEN = 6
"""``GRUBase(hidden_size=6)``: units per direction of the paper's GRU."""

PARAMETER_BUDGET = 5530
"""The parameter count every variant but the GRU is sized to: that of memjax's GRU in memjax's
usual block (the paper's 5,134, 2 x 162 in the GRUs and 4,810 in the head, plus 396: an input
projection 1 -> 12, 24, and GRUs reading 12 features, not 1, 372 more), the setup of the first
GRU row; the paper's GRU itself has 5,110 here (tests/test_tasks_mnist1d.py checks both)."""

SOURCE = (
    "Greydanus & Kobak 2024, MNIST-1D (ICML 2024), README table (GRU 91%): greydanus/mnist1d "
    "notebooks/models.py GRUBase(hidden_size=6, bidirectional=True) trained by "
    "notebooks/train.py get_model_args() and train_model for 6000 steps "
    "(notebooks/mnist1d-classification.ipynb)"
)
DIFFERENCES = (
    "initialisation: memjax's GRU (LeCun-normal input weights, orthogonal recurrent weights, "
    "zero biases, one recurrent bias b_hn) and flax's Linear; torch's GRU and Linear draw "
    "every weight and both bias vectors from U(-1/sqrt(fan), 1/sqrt(fan))",
    "training order: memjax reshuffles the training rows every epoch; the paper reads them in "
    "the package's fixed order, batch (step * 100) % 4000",
    "validation: 10% of the training rows (400) are held out, so memjax trains on 3,600; the "
    "paper trains on all 4,000 and reports the test accuracy of its last step, memjax that of "
    "the best validation checkpoint",
    "6,000 updates; the paper's loop runs range(total_steps + 1), 6,001 updates",
)
SHARED = (
    "the MNIST-1D paper's GRU training (greydanus/mnist1d notebooks/train.py: Adam, lr 1e-2, "
    "batch 100, 6,000 steps) and model shape (one bidirectional layer, no MLP), at the memjax "
    "GRU's parameter count"
)


def get_config(arg=None):
    config = task_config(
        "mnist1d",
        arg,
        options=dict(shuffle_seq=False, val_percent=10, seed=0),
        paper=dict(
            batch_size=100,
            steps=6000,
            lr=1e-2,
            schedule="constant",
            warmup_steps=0,
            weight_decay=0.0,
            clip_norm=0.0,
            b1=0.9,
            b2=0.999,
            depth=1,
            mlp="none",
            dropout=0.0,
            bidirectional=True,
            bidirectional_form="concat",
            pooling="flatten",
            final_norm=False,
            norm="none",
            heads=2,
            param_budget=PARAMETER_BUDGET,
        ),
        per_variant={
            "gru": dict(d_model=2 * HIDDEN, param_budget=0, input_projection=False, residual=False),
            "transformer": dict(bidirectional=False),
        },
        sources={"gru": Provenance(SOURCE, DIFFERENCES)},
        shared=SHARED,
        smoke_options={},
    )
    variant, scale = parse_arg(arg)
    if variant == "gru" and scale == "smoke":  # the paper's GRU is smaller than smoke's model
        config.model.update(d_model=2 * HIDDEN, depth=1)
    return config

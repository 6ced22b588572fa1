"""Multi-query associative recall (Arora et al. 2023, Zoology):
recall the value bound to each queried key.

Paper scale: Zoology's Figure 2 setup, HazyResearch/zoology
``zoology/experiments/paper_configs/iclr24_zoology_figure2/configs.py`` (first released as
``zoology/experiments/paper/figure2.py``) with the trainer ``zoology/train.py`` and the defaults
of ``zoology/config.py``, at its L=256 cell: vocabulary 8192, 16 key-value pairs, ``power_a``
0.01, ``random_non_queries=False``, 100,000 training and 3,000 test examples, batch 256, 64
epochs (25,024 steps), AdamW (betas 0.9/0.999, weight decay 0.1) at lr 10**(-10/3) = 4.6e-4
with cosine decay to 0 and no warmup or clipping, 2 layers, no MLP (Figure 2's ``state_mixer``
is ``torch.nn.Identity``), one attention head with learned positions, no residual dropout.
``memjax table synthetic`` sets each cell's length, pairs, batch and steps from
``memjax.tasks.mqar.FIGURE2`` and the width from the sweep (64..512).

Still different from Zoology: Figure 2 plots each model's best of four learning rates
(``np.logspace(-4, -2, 4)``; this config trains one, 4.6e-4: pass ``--config.optim.lr`` for
the others); Zoology steps its cosine once per epoch and stops early at 99% validation
accuracy; its embedding dropout (0.1) and attention dropout (0.1) are not modelled; Zoology
validates on its test set, memjax draws a separate validation split of the same size; memjax
has one key id fewer (id 0 is padding, see ``memjax/tasks/mqar.py``). The Jan 2024 release of
the file used 4 layers for the non-attention models; the current one uses 2 for all.
Usage: ``--config configs/mqar.py:lstm``.
"""

from memjax.config import task_config
from memjax.provenance import Provenance
from memjax.tasks import mqar

LENGTH, PAIRS, BATCH = mqar.FIGURE2[2]  # the L=256 cell: (256, 16, 256)
TRANSFORMER = Provenance(
    "Arora et al. 2023, Zoology, Figure 2, attention: HazyResearch/zoology "
    "zoology/experiments/paper_configs/iclr24_zoology_figure2/configs.py",
    (
        "one learning rate (4.6e-4); Figure 2 plots the best of np.logspace(-4, -2, 4)",
        "the cosine is stepped every step, not once per epoch, and there is no early stop at "
        "99% validation accuracy",
        "no embedding dropout (0.1) and no attention dropout (0.1)",
        "a separate validation split of 3,000 (Zoology validates on its test split)",
        "one key id fewer (memjax's id 0 is padding)",
    ),
)


def get_config(arg=None):
    config = task_config(
        "mqar",
        arg,
        options=dict(
            vocab_size=mqar.FIGURE2_VOCAB,
            length=LENGTH,
            num_kv_pairs=PAIRS,
            power_a=0.01,
            random_non_queries=False,
            num_train=mqar.FIGURE2_NUM_TRAIN,
            num_validation=mqar.FIGURE2_NUM_TEST,
            num_test=mqar.FIGURE2_NUM_TEST,
        ),
        paper=dict(
            steps=mqar.figure2_steps(BATCH),
            batch_size=BATCH,
            lr=mqar.FIGURE2_LRS[1],
            weight_decay=0.1,
            schedule="cosine",
            warmup_steps=0,
            clip_norm=0.0,
            d_model=128,
            depth=2,
            mlp="none",
            dropout=0.0,
            heads=1,
            positional="learned",
        ),
        smoke_options=dict(
            vocab_size=64,
            length=64,
            num_kv_pairs=4,
            num_train=4000,
            num_validation=256,
            num_test=256,
        ),
        sources={"transformer": TRANSFORMER},
        shared="Zoology's Figure 2 setup (zoology/experiments/paper_configs/"
        "iclr24_zoology_figure2/configs.py)",
    )
    config.optim.b2 = 0.999  # torch.optim.AdamW's default, which zoology/train.py uses
    return config

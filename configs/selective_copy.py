"""Selective copying (Gu and Dao 2023, Mamba, Table 1):
copy the scattered data tokens in order, ignoring noise.

Paper scale: Mamba's appendix E.1 ("Selective Copying"): sequences of length 4096, a vocabulary
of 16 tokens including the noise token (and, in the generator it builds on, state-spaces/s4
``src/dataloaders/datasets/copying.py`` with ``variable=True``, the marker: 14 data symbols), 16
data tokens to memorise, 2 layers of width 64, 400K steps at a constant learning rate of 1e-4,
batch 64. Training data is fresh for every step as in s4's ``CopyingTrainDataset``: 400K x 64
distinct generated sequences (``num_train``), each seen once.

Not given by the paper, so memjax's shared synthetic setup: the optimiser (Adam-type; E.1 says
"Adam ... no weight decay" for its induction-heads runs, so no weight decay here), no warmup,
gradient clipping at 1.0, the SwiGLU MLP of width 2x and 4 attention heads, and the validation
and test sizes (2,000 each). Also not verifiable: which length "4096" names (here the region
before the 16 markers, so inputs are 4112 long; see ``memjax/tasks/selective_copy.py``); the
paper's code for this task was never released (state-spaces/mamba issue 343). Mamba's S4, S6
and H3 layers are not memjax mixers. Usage: ``--config configs/selective_copy.py:lstm``.
"""

from memjax.config import SYNTHETIC_SETUP, task_config

STEPS, BATCH = 400_000, 64


def get_config(arg=None):
    return task_config(
        "selective_copy",
        arg,
        options=dict(length=4096, num_memorize=16, vocab_size=16, num_train=STEPS * BATCH),
        paper=dict(
            **{
                **SYNTHETIC_SETUP,
                "schedule": "constant",
                "warmup_steps": 0,
                "weight_decay": 0.0,
            },
            steps=STEPS,
            batch_size=BATCH,
            lr=1e-4,
            d_model=64,
            depth=2,
        ),
        smoke_options=dict(
            length=48,
            num_memorize=4,
            vocab_size=6,
            num_train=2000,
            num_validation=128,
            num_test=128,
        ),
        shared="Mamba's selective-copying setup (Gu and Dao 2023, appendix E.1)",
    )

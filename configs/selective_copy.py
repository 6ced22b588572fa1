"""Selective copying (Gu and Dao 2023, Mamba):
copy the scattered data tokens in order, ignoring noise.

Generated data (deterministic from a seed, no download). The paper scale here is a setup in the
spirit of the task's source paper, not its published hyperparameters; tune
``--config.optim.lr`` per mixer as Zoology does. Usage: ``--config configs/selective_copy.py:lstm``.
"""

from memjax.config import SYNTHETIC_SETUP, task_config


def get_config(arg=None):
    return task_config(
        "selective_copy",
        arg,
        options=dict(length=4096, num_memorize=16, num_symbols=16),
        paper=dict(
            **SYNTHETIC_SETUP,
            steps=400_000,
            batch_size=64,
            lr=1e-3,
            d_model=64,
            depth=2,
        ),
        smoke_options=dict(
            length=48,
            num_memorize=4,
            num_symbols=4,
            num_train=2000,
            num_validation=128,
            num_test=128,
        ),
    )

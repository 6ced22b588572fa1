"""Copying memory (Arjovsky et al. 2016): reproduce copy_length symbols after a blank lag.

Generated data (deterministic from a seed, no download). The paper scale here is a setup in the
spirit of the task's source paper, not its published hyperparameters; tune
``--config.optim.lr`` per mixer as Zoology does. Usage: ``--config configs/copy.py:lstm``.
"""

from memjax.config import SYNTHETIC_SETUP, task_config


def get_config(arg=None):
    return task_config(
        "copy",
        arg,
        options=dict(lag=100, copy_length=10, num_symbols=8),
        paper=dict(
            **SYNTHETIC_SETUP,
            steps=20_000,
            batch_size=64,
            lr=1e-3,
            d_model=128,
            depth=2,
        ),
        smoke_options=dict(
            lag=10, copy_length=4, num_symbols=4, num_train=2000, num_validation=128, num_test=128
        ),
    )

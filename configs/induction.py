"""Induction heads (Fu et al. 2023, H3):
after a special token, output the token that followed its earlier occurrence.

Generated data (deterministic from a seed, no download). The paper scale here is a setup in the
spirit of the task's source paper, not its published hyperparameters; tune
``--config.optim.lr`` per mixer as Zoology does. Usage: ``--config configs/induction.py:lstm``.
"""

from memjax.config import SYNTHETIC_SETUP, task_config


def get_config(arg=None):
    return task_config(
        "induction",
        arg,
        options=dict(length=256, num_symbols=20),
        paper=dict(
            **SYNTHETIC_SETUP,
            steps=10_000,
            batch_size=32,
            lr=5e-4,
            d_model=64,
            depth=2,
        ),
        smoke_options=dict(length=30, num_train=2000, num_validation=128, num_test=128),
    )

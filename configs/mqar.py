"""Multi-query associative recall (Arora et al. 2023, Zoology):
recall the value bound to each queried key.

Generated data (deterministic from a seed, no download). The paper scale here is a setup in the
spirit of the task's source paper, not its published hyperparameters; tune
``--config.optim.lr`` per mixer as Zoology does. Usage: ``--config configs/mqar.py:lstm``.
"""

from memjax.config import SYNTHETIC_SETUP, task_config


def get_config(arg=None):
    return task_config(
        "mqar",
        arg,
        options=dict(vocab_size=8192, length=256, num_kv_pairs=16),
        paper=dict(
            **SYNTHETIC_SETUP,
            steps=20_000,
            batch_size=64,
            lr=1e-3,
            d_model=128,
            depth=2,
        ),
        smoke_options=dict(
            vocab_size=64,
            length=64,
            num_kv_pairs=4,
            num_train=4000,
            num_validation=256,
            num_test=256,
        ),
    )

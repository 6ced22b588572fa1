"""Adding problem (Hochreiter and Schmidhuber 1997):
regress the sum of the two marked values (metric MSE).

Generated data (deterministic from a seed, no download). The paper scale here is a setup in the
spirit of the task's source paper, not its published hyperparameters; tune
``--config.optim.lr`` per mixer as Zoology does. Usage: ``--config configs/adding.py:lstm``.
"""

from memjax.config import SYNTHETIC_SETUP, task_config


def get_config(arg=None):
    return task_config(
        "adding",
        arg,
        options=dict(length=200),
        paper=dict(
            **SYNTHETIC_SETUP,
            steps=20_000,
            batch_size=64,
            lr=1e-3,
            d_model=128,
            depth=2,
            pooling="last",
        ),
        smoke_options=dict(length=30, num_train=2000, num_validation=128, num_test=128),
    )

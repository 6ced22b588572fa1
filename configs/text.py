"""Text (LRA): byte-level IMDb sentiment, 2 classes, from tfds ``imdb_reviews``.

Paper setup: LRA's released text config (batch 32, 20k steps, rsqrt schedule, lr 0.05, warmup
8000, weight decay 0.1, 4 layers of width 256, MLP 1024, length 1000 as in the release; the
paper's 4K is ``--config.task.options.max_length=4096``). ``s5``: the S5 release's
run_lra_imdb.sh (6 layers, H=256, P=192, batch 50, 35 epochs, lr 0.004, SSM lr 0.001, wd 0.07).
"""

from memjax.config import task_config


def get_config(arg=None):
    return task_config(
        "text",
        arg,
        options={"max_length": 1000},
        paper=dict(
            batch_size=32,
            steps=20_000,
            lr=0.05,
            schedule="rsqrt",
            warmup_steps=8000,
            weight_decay=0.1,
            d_model=256,
            depth=4,
            mlp="mlp",
            mlp_expand=4,
            heads=4,
            positional="sinusoidal",
        ),
        per_variant={
            "s5": dict(
                batch_size=50,
                steps=17_500,
                lr=0.004,
                recurrence_lr=0.001,
                schedule="cosine",
                warmup_steps=0,
                weight_decay=0.07,
                d_model=256,
                depth=6,
                state_size=192,
                bidirectional=True,
                dropout=0.1,
            ),
        },
        smoke_options=dict(max_length=256),
    )

"""Retrieval (LRA): byte-level AAN citation matching of two 4000-byte documents, 2 classes.

Paper setup: LRA's released matching config (batch 32, 5k steps, rsqrt schedule, lr 0.05,
warmup 8000, weight decay 0.1, 4 layers of width 128, MLP 512). ``s5``: the S5 release's
run_lra_aan.sh (6 layers, H=128, P=256, batch 32, 20 epochs, lr 0.002, SSM lr 0.001, wd 0.05).
Needs LRA's released files (see ``memjax data show retrieval``).
"""

from memjax.config import task_config


def get_config(arg=None):
    return task_config(
        "retrieval",
        arg,
        options={"max_length": 4000},
        paper=dict(
            batch_size=32,
            steps=5000,
            lr=0.05,
            schedule="rsqrt",
            warmup_steps=8000,
            weight_decay=0.1,
            d_model=128,
            depth=4,
            mlp="mlp",
            mlp_expand=4,
            heads=4,
            positional="sinusoidal",
        ),
        per_variant={
            "s5": dict(
                batch_size=32,
                steps=91_929,
                lr=0.002,
                recurrence_lr=0.001,
                schedule="cosine",
                warmup_steps=4596,
                weight_decay=0.05,
                d_model=128,
                depth=6,
                state_size=256,
                bidirectional=True,
                dropout=0.0,
            ),
        },
        smoke_options=dict(max_length=256),
    )

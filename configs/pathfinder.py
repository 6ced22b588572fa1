"""Pathfinder (LRA): are two markers joined by a contour? 32x32 pixels as 1024 tokens.

Paper setup: LRA's released pathfinder32 config (batch 512, 200 epochs of 160k = 62.5k steps,
lr 1e-3, warmup one epoch, cosine decay, no weight decay, 1 layer of width 32, 2 heads, MLP 32,
dropout 0.1, mean pooling). ``s5``: the S5 release's run_lra_pathfinder.sh (6 layers, H=192,
P=256, batch 64, 200 epochs, lr 0.0045, SSM lr 0.0009, wd 0.03, dropout 0.05).
"""

from memjax.config import task_config


def get_config(arg=None):
    return task_config(
        "pathfinder",
        arg,
        options={"resolution": 32, "contour_length": 14},
        paper=dict(
            batch_size=512,
            steps=62_500,
            lr=1e-3,
            schedule="cosine",
            warmup_steps=312,
            weight_decay=0.0,
            clip_norm=0.0,
            d_model=32,
            depth=1,
            mlp="mlp",
            mlp_expand=1,
            heads=2,
            dropout=0.1,
            positional="sinusoidal",
        ),
        per_variant={
            "s5": dict(
                batch_size=64,
                steps=500_000,
                lr=0.0045,
                recurrence_lr=0.0009,
                schedule="cosine",
                warmup_steps=2500,
                weight_decay=0.03,
                d_model=192,
                depth=6,
                state_size=256,
                bidirectional=True,
                dropout=0.05,
            ),
        },
        smoke_options=dict(
            resolution=32, contour_length=6, num_train=512, num_validation=64, num_test=64
        ),
    )

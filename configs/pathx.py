"""Path-X (LRA): Pathfinder at 128x128 pixels, 16384 tokens.

Paper setup: LRA's pathfinder128 setup follows pathfinder32's; every Transformer in LRA failed
(chance). ``s5``: the S5 release's run_lra_pathx.sh (6 layers, H=128, P=256, batch 32,
75 epochs, lr 0.0018, SSM lr 0.0006, wd 0.06, dt_min 1e-4).
"""

from memjax.config import task_config


def get_config(arg=None):
    config = task_config(
        "pathfinder",
        arg,
        options={"resolution": 128, "contour_length": 14},
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
                batch_size=32,
                steps=375_000,
                lr=0.0018,
                recurrence_lr=0.0006,
                schedule="cosine",
                warmup_steps=5000,
                weight_decay=0.06,
                d_model=128,
                depth=6,
                state_size=256,
                dropout=0.0,
            ),
        },
        smoke_options=dict(
            resolution=32, contour_length=6, num_train=512, num_validation=64, num_test=64
        ),
    )
    if config.model.mixer == "s5":
        config.model.mixer_options.dt_min = 1e-4
    return config

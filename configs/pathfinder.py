"""Pathfinder (LRA): are two markers joined by a contour? 32x32 pixels as 1024 tokens.

Paper setup (``transformer``): LRA's released
lra_benchmarks/image/configs/pathfinder32/transformer_base.py on base_pathfinder32_config.py (batch
512, 200 epochs of 160k = 62.4k steps, lr 1e-3, warmup one epoch, cosine decay, no weight decay, no
clipping, 4 layers of width 32, 4 heads of width 4 (qkv_dim 16), MLP 32, dropout 0.2, mean pooling,
sinusoidal positions); other memories train with the same setup. ``s5``: the S5 release's
run_lra_pathfinder.sh (6 layers, H=192, P=256, batch 64, 200 epochs, lr 0.0045, SSM lr 0.0009, wd
0.03, dropout 0.05).
"""

from memjax.config import task_config
from memjax.provenance import lra_transformer, lru_without_its_table, s5_release

SHARED = "LRA's released pathfinder32 Transformer setup (transformer_base.py)"
"""The setup memories without a published one of their own train with."""


def get_config(arg=None):
    return task_config(
        "pathfinder",
        arg,
        options={"resolution": 32, "contour_length": 14},
        paper=dict(
            batch_size=512,
            steps=62_400,
            lr=1e-3,
            schedule="cosine",
            warmup_steps=312,
            weight_decay=0.0,
            clip_norm=0.0,
            d_model=32,
            depth=4,
            mlp="mlp",
            mlp_expand=1,
            heads=4,
            head_dim=4,
            dropout=0.2,
            pooling="mean",
            embed_positional="sinusoidal",  # LRA: AddPositionEmbs at the embedding
        ),
        per_variant={
            # bin/run_experiments/run_lra_pathfinder.sh of github.com/lindermanlab/S5 (flags as
            # given there; the rest are run_train.py's defaults), translated by
            # memjax.s5_release.s5_setup. train_size: 80% of the 200,000 images (S5's 10%
            # validation and 10% test splits), 160,000.
            "s5": dict(
                s5_script=dict(
                    C_init="trunc_standard_normal",
                    batchnorm=True,
                    bidirectional=True,
                    blocks=8,
                    bn_momentum=0.9,
                    bsz=64,
                    d_model=192,
                    dataset="pathfinder-classification",
                    epochs=200,
                    jax_seed=8180844,
                    lr_factor=5,
                    n_layers=6,
                    opt_config="standard",
                    p_dropout=0.05,
                    ssm_lr_base=0.0009,
                    ssm_size_base=256,
                    warmup_end=1,
                    weight_decay=0.03,
                    train_size=160_000,
                ),
            ),
        },
        sources={
            "transformer": lra_transformer(
                "lra_benchmarks/image/configs/pathfinder32/transformer_base.py"
            ),
            "lru": lru_without_its_table(SHARED),
            "s5": s5_release("run_lra_pathfinder.sh"),
        },
        shared=SHARED,
        smoke_options=dict(
            resolution=32, contour_length=6, num_train=512, num_validation=64, num_test=64
        ),
    )

"""Image (LRA): CIFAR-10 in grayscale as a sequence of 1024 pixel tokens, 10 classes.

Paper setup (``transformer``): LRA's released
lra_benchmarks/image/configs/cifar10/transformer_base.py on base_cifar10_config.py (batch 256, 200
epochs of 45k examples = 35k steps, lr 5e-4, warmup one epoch, cosine decay, no weight decay, no
clipping, 1 layer of width 128, 8 heads of width 8 (qkv_dim 64), MLP 128, dropout 0.3, CLS pooling,
learned positions); other memories train with the same setup and mean pooling. ``s5``: the S5
release's run_lra_cifar.sh (6 layers, H=512, P=384, batch 50, 250 epochs, lr 0.0045, SSM lr 0.001,
wd 0.07, dropout 0.1).
"""

from memjax.config import task_config
from memjax.provenance import lra_transformer, lru_without_its_table, s5_release

SHARED = "LRA's released cifar10 Transformer setup (transformer_base.py)"
"""The setup memories without a published one of their own train with."""


def get_config(arg=None):
    return task_config(
        "image",
        arg,
        options={},
        paper=dict(
            batch_size=256,
            steps=35_000,
            lr=5e-4,
            schedule="cosine",
            warmup_steps=175,
            weight_decay=0.0,
            clip_norm=0.0,
            d_model=128,
            depth=1,
            mlp="mlp",
            mlp_expand=1,
            heads=8,
            head_dim=8,
            dropout=0.3,
            embed_positional="learned",  # LRA: AddPositionEmbs at the embedding
        ),
        per_variant={
            "transformer": dict(pooling="cls"),
            # bin/run_experiments/run_lra_cifar.sh of github.com/lindermanlab/S5 (flags as given
            # there; the rest are run_train.py's defaults), translated by
            # memjax.s5_release.s5_setup. train_size: CIFAR-10's train split less S5's 10%
            # validation split, 45,000.
            "s5": dict(
                s5_script=dict(
                    C_init="lecun_normal",
                    batchnorm=True,
                    bidirectional=True,
                    blocks=3,
                    bsz=50,
                    clip_eigs=True,
                    d_model=512,
                    dataset="lra-cifar-classification",
                    epochs=250,
                    jax_seed=16416,
                    lr_factor=4.5,
                    n_layers=6,
                    opt_config="BfastandCdecay",
                    p_dropout=0.1,
                    ssm_lr_base=0.001,
                    ssm_size_base=384,
                    warmup_end=1,
                    weight_decay=0.07,
                    train_size=45_000,
                ),
            ),
        },
        sources={
            "transformer": lra_transformer(
                "lra_benchmarks/image/configs/cifar10/transformer_base.py"
            ),
            "lru": lru_without_its_table(SHARED),
            "s5": s5_release(
                "run_lra_cifar.sh",
                "S5 reads CIFAR as one continuous channel; memjax's image task gives pixel tokens",
            ),
        },
        shared=SHARED,
        smoke_options={},
    )

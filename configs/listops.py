"""ListOps (LRA): 10-way classification of nested MAX/MIN/MED/SUM_MOD expressions, length 2000.

Paper setup (``transformer``): LRA's released lra_benchmarks/listops/configs/transformer_base.py
on base_listops_config.py (batch 32, 5k steps, rsqrt schedule, lr 0.05, warmup 1000, weight
decay 0.1, 4 layers of width 512, 8 heads, MLP 1024, dropout 0.1, CLS pooling, sinusoidal
positions); other memories train with the same setup and mean pooling.
``s5``: the S5 release's run_lra_listops.sh (8 layers, H=128, P=16, batch 50, 40 epochs,
lr 0.003, SSM lr 0.001, weight decay 0.04). Usage: ``--config configs/listops.py:lstm``.
"""

from memjax.config import task_config
from memjax.provenance import lra_transformer, lru_without_its_table, s5_release

SHARED = "LRA's released listops Transformer setup (transformer_base.py)"
"""The setup memories without a published one of their own train with."""


def get_config(arg=None):
    return task_config(
        "listops",
        arg,
        options={"source": "generate"},
        paper=dict(
            batch_size=32,
            steps=5000,
            lr=0.05,
            schedule="rsqrt",
            warmup_steps=1000,
            weight_decay=0.1,
            clip_norm=0.0,
            d_model=512,
            depth=4,
            mlp="mlp",
            mlp_expand=2,
            dropout=0.1,
            heads=8,
            embed_positional="sinusoidal",  # LRA: AddPositionEmbs at the embedding
        ),
        per_variant={
            "transformer": dict(pooling="cls"),
            # bin/run_experiments/run_lra_listops.sh of github.com/lindermanlab/S5 (flags as
            # given there; the rest are run_train.py's defaults), translated by
            # memjax.s5_release.s5_setup. train_size: S5's LRA ListOps train split, 96,000.
            "s5": dict(
                s5_script=dict(
                    C_init="lecun_normal",
                    activation_fn="half_glu2",
                    batchnorm=True,
                    bidirectional=True,
                    blocks=8,
                    bsz=50,
                    d_model=128,
                    dataset="listops-classification",
                    epochs=40,
                    jax_seed=6554595,
                    lr_factor=3,
                    n_layers=8,
                    opt_config="BfastandCdecay",
                    p_dropout=0,
                    ssm_lr_base=0.001,
                    ssm_size_base=16,
                    warmup_end=1,
                    weight_decay=0.04,
                    train_size=96_000,
                ),
            ),
        },
        sources={
            "transformer": lra_transformer("lra_benchmarks/listops/configs/transformer_base.py"),
            "lru": lru_without_its_table(SHARED),
            "s5": s5_release("run_lra_listops.sh"),
        },
        shared=SHARED,
        smoke_options=dict(
            num_train=2000,
            num_validation=200,
            num_test=200,
            min_length=20,
            max_length=120,
            max_depth=4,
        ),
    )

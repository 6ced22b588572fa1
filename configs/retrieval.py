"""Retrieval (LRA): byte-level AAN citation matching of two 4000-byte documents, 2 classes.

Paper setup (``transformer``): LRA's released lra_benchmarks/matching/configs/transformer_base.py
on base_match_config.py (batch 32, 5k steps, rsqrt schedule, lr 0.05, warmup 8000, weight decay
0.1, 4 layers of width 128, 4 heads, MLP 512, dropout 0.1, CLS pooling); other memories train
with the same setup and mean pooling. ``s5``: the S5 release's
run_lra_aan.sh (6 layers, H=128, P=256, batch 32, 20 epochs, lr 0.002, SSM lr 0.001, wd 0.05).
Needs LRA's released files (see ``memjax data show retrieval``).
"""

from memjax.config import task_config
from memjax.provenance import lra_transformer, lru_without_its_table, s5_release

SHARED = "LRA's released matching Transformer setup (transformer_base.py)"
"""The setup memories without a published one of their own train with."""


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
            clip_norm=0.0,
            d_model=128,
            depth=4,
            mlp="mlp",
            mlp_expand=4,
            dropout=0.1,
            heads=4,
            embed_positional="sinusoidal",  # LRA: AddPositionEmbs at the embedding
        ),
        per_variant={
            "transformer": dict(pooling="cls"),
            # bin/run_experiments/run_lra_aan.sh of github.com/lindermanlab/S5 (flags as given
            # there; the rest are run_train.py's defaults), translated by
            # memjax.s5_release.s5_setup. train_size: LRA's AAN train split, 147,086 pairs.
            "s5": dict(
                s5_script=dict(
                    C_init="trunc_standard_normal",
                    batchnorm=True,
                    bidirectional=True,
                    blocks=16,
                    bsz=32,
                    d_model=128,
                    dataset="aan-classification",
                    dt_global=True,
                    epochs=20,
                    jax_seed=5464368,
                    lr_factor=2,
                    n_layers=6,
                    opt_config="standard",
                    p_dropout=0.0,
                    ssm_lr_base=0.001,
                    ssm_size_base=256,
                    warmup_end=1,
                    weight_decay=0.05,
                    train_size=147_086,
                ),
            ),
        },
        sources={
            "transformer": lra_transformer(
                "lra_benchmarks/matching/configs/transformer_base.py",
                "dual-encoder interaction [u, v, u*v, u-v] then one GELU layer of width d_model; "
                "LRA's classifier_head_dual concatenates [u, v] (no NLI interaction by default) "
                "into Dense(mlp_dim), ReLU, Dense(mlp_dim/2), ReLU",
            ),
            "lru": lru_without_its_table(SHARED),
            "s5": s5_release(
                "run_lra_aan.sh",
                "the dual encoder's features [u, v, u*v, u-v] are a permutation of S5's",
            ),
        },
        shared=SHARED,
        smoke_options=dict(max_length=256),
    )

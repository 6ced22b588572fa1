"""Text (LRA): byte-level IMDb sentiment, 2 classes, from tfds ``imdb_reviews``.

Paper setup (``transformer``): LRA's released
lra_benchmarks/text_classification/configs/transformer_base.py on base_tc_config.py (batch 32,
20k steps, rsqrt schedule, lr 0.05, warmup 8000, weight decay 0.1, 4 layers of width 256,
4 heads, MLP 1024, dropout 0.1, CLS pooling, length 1000 as in the release; the paper's 4K is
``--config.task.options.max_length=4096``); other memories train with the same setup and mean
pooling. ``s5``: the S5 release's
run_lra_imdb.sh (6 layers, H=256, P=192, batch 50, 35 epochs, lr 0.004, SSM lr 0.001, wd 0.07).
"""

from memjax.config import task_config
from memjax.provenance import lra_transformer, lru_without_its_table, s5_release

SHARED = "LRA's released text Transformer setup (transformer_base.py)"
"""The setup memories without a published one of their own train with."""


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
            clip_norm=0.0,
            d_model=256,
            depth=4,
            mlp="mlp",
            mlp_expand=4,
            dropout=0.1,
            heads=4,
            embed_positional="sinusoidal",  # LRA: AddPositionEmbs at the embedding
        ),
        per_variant={
            "transformer": dict(pooling="cls"),
            # bin/run_experiments/run_lra_imdb.sh of github.com/lindermanlab/S5 (flags as given
            # there; the rest are run_train.py's defaults), translated by
            # memjax.s5_release.s5_setup. train_size: IMDb's train split, 25,000; S5's IMDB
            # loader reads 4096 bytes (s5/dataloaders/lra.py, IMDB l_max).
            "s5": dict(
                s5_script=dict(
                    C_init="lecun_normal",
                    activation_fn="half_glu2",
                    batchnorm=True,
                    bidirectional=True,
                    blocks=12,
                    bsz=50,
                    d_model=256,
                    dataset="imdb-classification",
                    dt_global=True,
                    epochs=35,
                    jax_seed=8825365,
                    lr_factor=4,
                    n_layers=6,
                    opt_config="standard",
                    p_dropout=0.1,
                    ssm_lr_base=0.001,
                    ssm_size_base=192,
                    warmup_end=0,
                    weight_decay=0.07,
                    train_size=25_000,
                ),
                task_options=dict(max_length=4096),
            ),
        },
        sources={
            "transformer": lra_transformer(
                "lra_benchmarks/text_classification/configs/transformer_base.py"
            ),
            "lru": lru_without_its_table(SHARED),
            "s5": s5_release("run_lra_imdb.sh"),
        },
        shared=SHARED,
        smoke_options=dict(max_length=256),
    )

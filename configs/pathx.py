"""Path-X (LRA): Pathfinder at 128x128 pixels, 16384 tokens.

Paper setup (``transformer``): LRA's released
lra_benchmarks/image/configs/pathfinder128/transformer_base.py on base_pathfinder128_config.py
(batch 64, 200 epochs of 160k = 500k steps, lr 1e-3, warmup one epoch, cosine decay, no weight
decay, clipping at norm 1, 1 layer of width 32, 2 heads of width 8 (qkv_dim 16), MLP 32, dropout
0.1, mean pooling, learned positions); other memories train with the same setup. Every Transformer
in LRA failed (chance). ``s5``: the S5 release's run_lra_pathx.sh (6 layers, H=128, P=256, batch
32, 75 epochs, lr 0.0018, SSM lr 0.0006, wd 0.06, dt_min 1e-4).

Paper scale reads LRA's released Path-X images (``source="lra"``): memjax draws them as the
original generator does, at seconds per 128 px image, so 200,000 of them would take days of CPU;
``--config.task.options.source=generate`` draws them anyway. Smoke scale draws at 32 px.
"""

from pathlib import Path

from memjax.config import SMOKE_DIFFERENCE, apply_setup, load_module, parse_arg
from memjax.provenance import lra_transformer, lru_without_its_table, never_ran, s5_release

PATHFINDER128 = dict(
    train=dict(batch_size=64, steps=500_000),
    optim=dict(lr=1e-3, schedule="cosine", warmup_steps=2500, weight_decay=0.0, clip_norm=1.0),
    model=dict(d_model=32, depth=1, mlp="mlp", mlp_expand=1, dropout=0.1, pooling="mean"),
)
"""LRA's base_pathfinder128_config.py (its transformer_base.py changes nothing)."""


def get_config(arg=None):
    pathfinder = load_module(Path(__file__).with_name("pathfinder.py"))
    config = pathfinder.get_config(arg)
    variant, _ = parse_arg(arg)
    shared = "LRA's released pathfinder128 Transformer setup"
    provenance = never_ran(variant, "pathx", shared)
    if variant == "lru":
        provenance = lru_without_its_table(shared)
    if variant == "s5":
        provenance = s5_release("run_lra_pathx.sh")
    if variant == "transformer":
        provenance = lra_transformer(
            "lra_benchmarks/image/configs/pathfinder128/transformer_base.py"
        )
    if config.scale == "paper":
        # LRA's released Path-X images: drawing 200,000 of them as the original does takes days
        config.task.options.update(resolution=128, contour_length=14, source="lra")
        if config.model.mixer != "s5":
            for group, values in PATHFINDER128.items():
                config[group].update(values)
            if config.model.mixer == "attention":
                config.model.mixer_options.update(heads=2, head_dim=8)
                config.model.positional = "learned"  # LRA: AddPositionEmbs, at the embedding
        if config.model.mixer == "s5":
            # bin/run_experiments/run_lra_pathx.sh of github.com/lindermanlab/S5 (flags as given
            # there; the rest are run_train.py's defaults), translated by
            # memjax.s5_release.s5_setup. train_size: 80% of the Path-X images, 160,000.
            s5_script = dict(
                C_init="complex_normal",
                batchnorm=True,
                bidirectional=True,
                blocks=16,
                bn_momentum=0.9,
                bsz=32,
                d_model=128,
                dataset="pathx-classification",
                dt_min=0.0001,
                epochs=75,
                jax_seed=6429262,
                lr_factor=3,
                n_layers=6,
                opt_config="BandCdecay",
                p_dropout=0.0,
                ssm_lr_base=0.0006,
                ssm_size_base=256,
                warmup_end=1,
                weight_decay=0.06,
                train_size=160_000,
            )
            apply_setup(config, dict(s5_script=s5_script), "pathx")
    if config.scale == "smoke":
        provenance = provenance.with_differences([SMOKE_DIFFERENCE])
    config.provenance = provenance.to_config()
    return config

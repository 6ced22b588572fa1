"""Path-X (LRA): Pathfinder at 128x128 pixels, 16384 tokens.

Paper setup: LRA's pathfinder128 setup follows pathfinder32's; every Transformer in LRA failed
(chance). ``s5``: the S5 release's run_lra_pathx.sh (6 layers, H=128, P=256, batch 32,
75 epochs, lr 0.0018, SSM lr 0.0006, wd 0.06, dt_min 1e-4).
"""

from pathlib import Path

from memjax.config import load_module


def get_config(arg=None):
    pathfinder = load_module(Path(__file__).with_name("pathfinder.py"))
    config = pathfinder.get_config(arg)
    if config.scale == "paper":
        config.task.options.update(resolution=128, contour_length=14)
        if config.model.mixer == "s5":
            config.train.update(batch_size=32, steps=375_000)
            config.optim.update(
                lr=0.0018, recurrence_lr=0.0006, warmup_steps=5000, weight_decay=0.06
            )
            config.model.update(d_model=128, dropout=0.0)
            config.model.mixer_options.dt_min = 1e-4
    return config

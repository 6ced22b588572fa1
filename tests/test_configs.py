"""Every config file loads for every variant and scale, and carries its published setup."""

from __future__ import annotations

from pathlib import Path

import pytest

from memjax import config as config_lib

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.py"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_variant_and_scale_loads(path):
    for variant in config_lib.VARIANTS:
        paper = config_lib.load(f"{path}:{variant}")
        smoke = config_lib.load(f"{path}:{variant},smoke")
        assert paper.model.mixer == config_lib.VARIANTS[variant]["mixer"] == smoke.model.mixer
        assert smoke.scale == "smoke" and smoke.train.steps <= 100 <= paper.train.steps
        assert smoke.model.d_model <= paper.model.d_model


def test_published_setups():
    listops = config_lib.load(f"{CONFIGS[0].parent}/listops.py:transformer")
    assert (listops.train.batch_size, listops.train.steps, listops.optim.lr) == (32, 5000, 0.05)
    assert (listops.optim.schedule, listops.optim.warmup_steps) == ("rsqrt", 1000)
    assert (listops.model.d_model, listops.model.depth) == (512, 6)
    s5 = config_lib.load(f"{CONFIGS[0].parent}/listops.py:s5")
    assert (s5.model.depth, s5.model.d_model, s5.model.mixer_options.state_size) == (8, 128, 16)
    assert (s5.optim.lr, s5.optim.recurrence_lr, s5.optim.weight_decay) == (0.003, 0.001, 0.04)
    pathx = config_lib.load(f"{CONFIGS[0].parent}/pathx.py:s5")
    assert pathx.task.options.resolution == 128 and pathx.model.mixer_options.dt_min == 1e-4


def test_scale_override_applies_before_other_overrides():
    path = f"{CONFIGS[0].parent}/mqar.py:lstm"
    config = config_lib.load(path, [("scale", "smoke"), ("train.steps", 7)])
    assert config.scale == "smoke" and config.train.steps == 7 and config.model.d_model == 32

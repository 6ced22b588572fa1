"""Every config file loads for every variant and scale, and carries its published setup."""

from __future__ import annotations

from pathlib import Path

import pytest

from memjax import config as config_lib
from memjax import variants

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_variant_and_scale_loads(path):
    for variant in variants.VARIANTS:
        paper = config_lib.load(f"{path}:{variant}")
        smoke = config_lib.load(f"{path}:{variant},smoke")
        assert paper.model.mixer == variants.get(variant).mixer == smoke.model.mixer
        assert smoke.scale == "smoke" and smoke.train.steps <= 100 <= paper.train.steps
        assert smoke.model.d_model <= paper.model.d_model


def test_published_setups():
    listops = config_lib.load(f"{CONFIGS[0].parent}/listops.py:transformer")
    assert (listops.train.batch_size, listops.train.steps, listops.optim.lr) == (32, 5000, 0.05)
    assert (listops.optim.schedule, listops.optim.warmup_steps) == ("rsqrt", 1000)
    assert (listops.model.d_model, listops.model.depth) == (512, 4)
    s5 = config_lib.load(f"{CONFIGS[0].parent}/listops.py:s5")
    # S5's ssm_size_base P=16 with conj_sym stores P/2 = 8 modes (tests/test_s5_paper.py)
    assert (s5.model.depth, s5.model.d_model, s5.model.mixer_options.state_size) == (8, 128, 8)
    assert (s5.optim.lr, s5.optim.recurrence_lr, s5.optim.weight_decay) == (0.003, 0.001, 0.04)
    pathx = config_lib.load(f"{CONFIGS[0].parent}/pathx.py:s5")
    assert pathx.task.options.resolution == 128 and pathx.model.mixer_options.dt_min == 1e-4


def test_scale_override_applies_before_other_overrides():
    path = f"{CONFIGS[0].parent}/mqar.py:lstm"
    config = config_lib.load(path, [("scale", "smoke"), ("train.steps", 7)])
    assert config.scale == "smoke" and config.train.steps == 7 and config.model.d_model == 32


def test_one_variant_table_names_every_variant_everywhere():
    """Tables print, and match published rows by, the same table the configs read."""
    from memjax import cells
    from memjax.experiments import published

    for variant in variants.VARIANTS.values():
        assert variant.mixer in cells.names()
        for family, row in variant.published.items():
            rows = {"lra": published.LRA, "h3": published.H3_RECALL, "mnist1d": published.MNIST1D}[
                family
            ]
            assert published.find(rows, row) is not None, (variant.name, row)
    assert set(variants.TABLE_DEFAULT) | set(variants.COMPARE_DEFAULT) <= set(variants.VARIANTS)
    with pytest.raises(ValueError, match=r"--variants: unknown model variant 'lsmt'.*'lstm'"):
        variants.parse_list("lru,lsmt")


def test_overrides_go_through_configdicts_locked_typed_assignment():
    path = f"{CONFIGS[0].parent}/mqar.py:lstm"
    config = config_lib.load(path, [("model.mixer_options.forget_bias", 0.5), ("optim.lr", 1)])
    assert config.model.mixer_options.forget_bias == 0.5
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    with pytest.raises(ValueError, match=r"unknown config key config\.optim\.lrr.*optim\.lr"):
        config_lib.load(path, [("optim.lrr", 1e-3)])
    with pytest.raises(ValueError, match=r"config\.optim\.recurrence_lr expects a float, got 'x'"):
        config_lib.load(path, [("optim.recurrence_lr", "x")])
    with pytest.raises(ValueError, match=r"config\.model is a group of fields"):
        config_lib.load(path, [("model", 3)])
    assert not config.is_locked  # locked only while an override is applied


def test_configs_are_found_from_any_directory_and_ship_in_the_package(tmp_path, monkeypatch):
    import setuptools

    root = CONFIGS[0].parent.parent
    assert "memjax.configs" in setuptools.find_packages(str(root), include=["memjax*"])
    assert sorted(p.name for p in config_lib.PACKAGED_CONFIGS.glob("*.py")) == sorted(
        [p.name for p in CONFIGS] + ["__init__.py"]
    )
    monkeypatch.chdir(tmp_path)  # no configs/ here: the installed ones are found
    for spec in ("configs/mqar.py:lstm", "mqar.py:lstm", "mqar:lstm"):
        assert config_lib.load(spec).task.name == "mqar"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mqar.py").write_text(
        "from memjax import config\n"
        "def get_config(arg):\n"
        "    return config.task_config(\n"
        "        'mqar', arg, options={}, paper={'steps': 7}, smoke_options={}\n"
        "    )\n"
    )
    assert config_lib.load("configs/mqar.py:lstm").train.steps == 7  # a user's own file wins
    with pytest.raises(FileNotFoundError, match=r"looked for .*nope\.py and for .*installed"):
        config_lib.load("configs/nope.py:lstm")


def test_lra_transformer_positions_are_added_at_the_embedding():
    """LRA's AddPositionEmbs: sinusoidal unless the config sets learn_pos_emb (cifar10's
    base_cifar10_config.py and pathfinder128's base_pathfinder128_config.py); memjax routes
    ``embed_positional`` to ``model.positional`` and turns the attention layers' own off."""
    expected = dict(
        listops="sinusoidal", text="sinusoidal", retrieval="sinusoidal", image="learned",
        pathfinder="sinusoidal", pathx="learned",
    )  # fmt: skip
    for task, positional in expected.items():
        config = config_lib.load(f"{CONFIGS[0].parent}/{task}.py:transformer")
        assert config.model.positional == positional, task
        assert config.model.mixer_options.positional == "none", task
        lstm = config_lib.load(f"{CONFIGS[0].parent}/{task}.py:lstm")
        assert lstm.model.positional == "none", task

"""Where each config's setup comes from: the LRA Transformer configs against LRA's released
configs, provenance recorded, logged and kept out of the fingerprint, and tables labelling a
row ``-style`` with its differences in the notes."""

from __future__ import annotations

import logging

import pytest
from tiny_run import ROOT

from memjax import config as config_lib
from memjax import provenance, train
from memjax.experiments import definitions
from memjax.experiments.runs import Plan

CONFIGS = ROOT / "configs"

# google-research/long-range-arena at HEAD, the files each row was read from:
#   listops:    lra_benchmarks/listops/configs/base_listops_config.py (+ transformer_base.py)
#   text:       lra_benchmarks/text_classification/configs/base_tc_config.py (+ transformer_base)
#   retrieval:  lra_benchmarks/matching/configs/base_match_config.py (+ transformer_base.py)
#   image:      lra_benchmarks/image/configs/cifar10/transformer_base.py on base_cifar10_config
#   pathfinder: lra_benchmarks/image/configs/pathfinder32/transformer_base.py on its base config
#   pathx:      lra_benchmarks/image/configs/pathfinder128/base_pathfinder128_config.py
# Columns: batch, steps, lr, schedule, warmup, weight decay, clip (0: none), layers, width,
# heads, head width (qkv_dim / heads), MLP width, dropout, pooling, positions. Steps of the
# image tasks are (train examples // batch) * 200 epochs; warmup is one epoch.
LRA_TRANSFORMER = {
    "listops": (32, 5000, 0.05, "rsqrt", 1000, 0.1, 0.0, 4, 512, 8, 64, 1024, 0.1, "cls", "sin"),
    "text": (32, 20_000, 0.05, "rsqrt", 8000, 0.1, 0.0, 4, 256, 4, 64, 1024, 0.1, "cls", "sin"),
    "retrieval": (32, 5000, 0.05, "rsqrt", 8000, 0.1, 0.0, 4, 128, 4, 32, 512, 0.1, "cls", "sin"),
    "image": (256, 35_000, 5e-4, "cosine", 175, 0.0, 0.0, 1, 128, 8, 8, 128, 0.3, "cls", "learn"),
    "pathfinder": (512, 62_400, 1e-3, "cosine", 312, 0.0, 0.0, 4, 32, 4, 4, 32, 0.2, "mean", "sin"),
    "pathx": (64, 500_000, 1e-3, "cosine", 2500, 0.0, 1.0, 1, 32, 2, 8, 32, 0.1, "mean", "learn"),
}


def positions(config) -> str:
    """``"sin"`` or ``"learn"``: the position embedding, wherever the model config puts it."""
    where = config.model.get("positional") or config.model.mixer_options.get("positional")
    return {"sinusoidal": "sin", "learned": "learn"}[where]


@pytest.mark.parametrize("task", sorted(LRA_TRANSFORMER))
def test_lra_transformer_configs_are_lra_released_configs(task):
    config = config_lib.load(f"{CONFIGS}/{task}.py:transformer")
    model, optim, attention = config.model, config.optim, config.model.mixer_options
    head_width = attention.get("head_dim") or model.d_model // attention.heads
    got = (
        config.train.batch_size,
        config.train.steps,
        optim.lr,
        optim.schedule,
        optim.warmup_steps,
        optim.weight_decay,
        optim.clip_norm,
        model.depth,
        model.d_model,
        attention.heads,
        head_width,
        model.d_model * model.mlp_expand,
        model.dropout,
        model.pooling,
        positions(config),
    )
    assert got == LRA_TRANSFORMER[task]
    assert (model.mlp, attention.causal, optim.b1, optim.b2) == ("mlp", False, 0.9, 0.98)
    found = provenance.from_config(config)
    assert "google-research/long-range-arena" in found.source and "transformer" in found.source
    assert set(provenance.LRA_TRANSFORMER_DIFFERENCES) <= set(found.differences)


def test_a_variant_no_paper_ran_on_a_task_says_so():
    found = provenance.from_config(config_lib.load(f"{CONFIGS}/listops.py:lstm"))
    assert "no published setup of 'lstm' on 'listops'" in found.source
    assert not found.faithful and "LRA's released listops" in found.differences[0]
    smoke = provenance.from_config(config_lib.load(f"{CONFIGS}/listops.py:lstm,smoke"))
    assert smoke.differences[-1] == config_lib.SMOKE_DIFFERENCE


def test_provenance_describes_and_does_not_change_the_fingerprint():
    config = config_lib.load(f"{CONFIGS}/listops.py:transformer,smoke")
    before = config_lib.fingerprint(config)
    config.provenance = provenance.Provenance("another description").to_config()
    assert config_lib.fingerprint(config) == before
    config.model.depth += 1
    assert config_lib.fingerprint(config) != before


def test_provenance_refuses_an_empty_source_and_a_bare_string_of_differences():
    with pytest.raises(ValueError, match="source is empty"):
        provenance.Provenance(" ")
    with pytest.raises(ValueError, match="one string; expected a tuple"):
        provenance.Provenance("paper", "differs")  # type: ignore[arg-type]


def test_training_logs_the_source_and_each_difference(caplog):
    config = config_lib.load(f"{CONFIGS}/listops.py:lstm,smoke")
    with caplog.at_level(logging.INFO, logger="memjax.train"):
        train.log_provenance(config)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "setup: no published setup of 'lstm' on 'listops'"
    assert lines[1:] == [f"differs from that source: {d}" for d in config.provenance.differences]


def test_lra_rows_beside_a_published_number_are_labelled_style_with_notes(monkeypatch):
    plan = Plan("paper", 1, ("transformer", "lstm"), ())
    (section,) = definitions.lra(plan)
    labels = [row.label for row in section.rows]
    assert labels == ["Transformer-style", "LSTM"]  # LSTM has no published LRA row
    notes = "\n".join(section.notes)
    for difference in provenance.LRA_TRANSFORMER_DIFFERENCES:
        assert (
            f"Transformer-style (ListOps, Text, Retrieval, Image, Pathfinder, Path-X): "
            f"{difference}." in notes
        )
    assert "generated test set has 2000 examples" in notes and "±1.12 points" in notes
    (shown,) = definitions.lra(Plan("paper", 1, ("transformer",), (), ("Text", "Image")))
    assert f"Transformer-style (Text, Image): {provenance.LRA_TRANSFORMER_DIFFERENCES[0]}." in (
        shown.notes
    )  # --columns: the notes name only the columns printed

    faithful = provenance.Provenance("the paper itself")
    monkeypatch.setattr(provenance, "from_config", lambda config: faithful)
    (section,) = definitions.lra(plan)
    assert [row.label for row in section.rows] == ["Transformer", "LSTM"]
    assert not any("Transformer-style" in note for note in section.notes)

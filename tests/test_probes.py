"""Memory probes: exact gradient flow of a fixed decay, horizons, state bytes, plots, command."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from memjax import cells, probes, tasks, train
from memjax import config as config_lib
from memjax.cells.base import LinearCell
from memjax.probes import capacity, gradient, recall, subjects, task_recall

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = (
    "settings",
    "subjects",
    "gradient_flow",
    "recall",
    "capacity",
    "memory_bytes",
    "spectra",
)
FIGURES = ("gradient_flow", "recall", "capacity", "memory_bytes", "spectra", "overview")
TINY_RUN = [
    ("task.options.vocab_size", 16),
    ("task.options.length", 16),
    ("task.options.num_kv_pairs", 2),
    ("task.options.num_train", 64),
    ("task.options.num_validation", 16),
    ("task.options.num_test", 16),
    ("model.d_model", 8),
    ("parallel", "none"),
]


@dataclasses.dataclass(frozen=True)
class FixedDecay(LinearCell):
    """``s_t = a s_{t-1} + x_t``, ``y_t = s_t``: gradient flow ``a^lag`` exactly."""

    a: float = 0.8
    name = "fixed_decay_test"

    def init(self, key, d_in):
        return {"width": jnp.zeros((d_in,))}

    def input_features(self, params):
        return params["width"].shape[0]

    def initial_carry(self, params, batch_shape: Sequence[int]):
        return jnp.zeros((*batch_shape, self.hidden))

    def prepare(self, params, x):
        return x.astype(jnp.float32)

    def elements(self, params, pre):
        return jnp.full_like(pre, self.a), pre

    def emit(self, params, state, pre):
        return state


def tokens(batch: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 9, size=(batch, length))


def test_fixed_decay_has_gradient_flow_a_to_the_lag():
    a, length = 0.8, 24
    subject = subjects.layer(FixedDecay(hidden=1, a=a), length=length)
    flow = gradient.gradient_flow(subject, tokens(3, length))
    lags = np.arange(length)
    np.testing.assert_allclose(flow["input"]["norm"], a**lags, atol=1e-5)
    np.testing.assert_allclose(flow["state"]["norm"], a ** (lags + 1), atol=1e-5)
    np.testing.assert_allclose(flow["state"]["relative"], a**lags, atol=1e-5)
    assert flow["input"]["lags"] == lags.tolist()
    assert flow["state"]["lags"] == (lags + 1).tolist()
    expected = next(k for k in range(1, length) if a ** (k - 1) < 1 / math.e)
    assert flow["state"]["decay_lag"] == flow["input"]["decay_lag"] == expected


def test_mingru_with_its_decay_pinned_to_a_has_relative_flow_a_to_the_lag():
    a, hidden, length = 0.7, 4, 16
    memory = cells.get("mingru", hidden=hidden)
    subject = subjects.layer(memory, length=length)
    params = subject.params["memory"]
    params["w_i"] = params["w_i"].at[:, :hidden].set(0.0)
    params["b"] = params["b"].at[:hidden].set(math.log((1 - a) / a))  # sigmoid(-k_z) = a
    flow = gradient.gradient_flow(subject, tokens(2, length))
    lags = np.arange(1, length)
    np.testing.assert_allclose(flow["input"]["relative"][1:], a ** (lags - 1), atol=1e-5)
    np.testing.assert_allclose(flow["input"]["relative"][0], 1 / a, rtol=1e-5)
    np.testing.assert_allclose(
        flow["state"]["norm"], a ** np.arange(1, length + 1) * 2.0, atol=1e-5
    )


def test_lru_with_lambda_near_one_reaches_further_back_than_lambda_one_half():
    length = 128

    def reach(**ring):
        memory = cells.get("lru", hidden=32, **ring)
        return recall.ridge_recall(subjects.layer(memory, length=length), length=length)

    near_one = reach(r_min=0.95, r_max=0.99)
    half = reach(r_min=0.5, r_max=0.5)
    assert near_one["horizon"] > half["horizon"] + 5
    assert near_one["capacity"] > half["capacity"]
    assert near_one["accuracy"][0] == half["accuracy"][0] == 1.0


@pytest.mark.parametrize(
    ("normalised", "expected"),
    [
        ([1.0, 0.8, 0.2, 0.1], (1.5, False)),
        ([0.4, 0.9, 0.9, 0.9], (0.0, False)),
        ([1.0, 0.9, 0.8, 0.7], (3.0, True)),
    ],
)
def test_horizon_is_where_normalised_accuracy_crosses_one_half(normalised, expected):
    assert recall.horizon(np.arange(4), np.asarray(normalised)) == pytest.approx(expected)


def test_kv_cache_bytes_grow_linearly_while_recurrent_states_stay_constant():
    lengths = capacity.lengths_grid(32)
    assert lengths == [16, 32, 64, 128, 256, 512]
    for name in ("lru", "mingru"):
        memory = subjects.build_memory(name, 8, 512)
        assert len(set(capacity.memory_bytes(subjects.layer(memory, length=512), lengths))) == 1
    attention = subjects.layer(subjects.build_memory("attention", 8, 512), length=512)
    kv = np.asarray(capacity.memory_bytes(attention, lengths))
    np.testing.assert_array_equal(kv, kv[0] // lengths[0] * np.asarray(lengths))
    assert kv[0] // lengths[0] == 2 * 8 * 4  # K and V, 8 features each, float32


def test_mqar_query_distances_point_back_to_the_value():
    example = tasks.mqar.generate(
        np.random.default_rng(0),
        vocab_size=32,
        length=32,
        num_kv_pairs=4,
        power_a=0.01,
        random_non_queries=True,
    )
    inputs, mask = example["inputs"][None], example["loss_mask"][None]
    distances = task_recall.query_distances(inputs, mask, 4)
    queries = np.flatnonzero(mask[0])
    np.testing.assert_array_equal(inputs[0, queries - distances], example["targets"][queries])


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    out = tmp_path_factory.mktemp("probes")
    argv = ["--mixers", "lstm,lru,attention", "--out", str(out), "--hidden", "8"]
    argv += ["--length", "24", "--batch", "2", "--k-max", "4", "--recall-train", "16"]
    return out, probes.main(argv)


def test_probe_command_writes_every_section(probed):
    out, results = probed
    saved = json.loads((out / "probes.json").read_text())
    assert set(saved) == set(SECTIONS)
    labels = ["lstm", "lru", "attention"]
    assert [s["label"] for s in saved["subjects"]] == labels
    for section in ("gradient_flow", "recall", "spectra"):
        assert list(saved[section]) == labels
    assert saved["gradient_flow"]["attention"]["state"] is None
    assert len(saved["gradient_flow"]["lstm"]["state"]["norm"]) == 24
    assert saved["spectra"]["lstm"] is None and saved["spectra"]["attention"] is None
    assert 0.899 < saved["spectra"]["lru"]["quantiles"]["0"] < 1.0
    ridge = saved["recall"]["lru"]["ridge"]
    assert ridge["lags"] == list(range(13)) and ridge["chance"] == 0.5
    assert {(c["mixer"], c["hidden"]) for c in saved["capacity"]} == {
        (m, h) for m in labels for h in (4, 8)
    }
    assert saved["capacity"][0]["pairs_per_sequence"] == [1, 2, 4]
    kv = saved["memory_bytes"]["bytes"]
    assert len(set(kv["lstm"])) == 1 and kv["attention"][-1] == 32 * kv["attention"][0]


def test_plots_are_valid_png_files(probed):
    out, _ = probed
    for name in FIGURES:
        path = out / f"{name}.png"
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        with Image.open(path) as image:
            image.load()
            assert image.format == "PNG" and min(image.size) > 100


def fake_run(workdir: Path) -> None:
    """A run directory as the trainer leaves it, whose best checkpoint holds the init
    parameters with the LRU's ``nu_log`` lowered by one (``|lambda|`` moved towards 1)."""
    config = config_lib.load(f"{ROOT}/configs/mqar.py:lru,smoke", TINY_RUN)
    workdir.mkdir()
    (workdir / "config.json").write_text(config.to_json(indent=1))
    built = train.setup(config)
    shift = lambda path, p: p - 1.0 if "nu_log" in jax.tree_util.keystr(path) else p
    trained = jax.tree_util.tree_map_with_path(shift, built.params)
    state = {
        "params": trained,
        "opt_state": built.tx.init(trained),
        "step": np.asarray(1, np.int64),
    }
    checkpointer = train.make_checkpointer(workdir, config, built.spec)
    checkpointer.save(1, state, data_state={}, metrics={"val_metric": 0.5, "val_loss": 1.0})
    checkpointer.close()


def test_probe_of_a_run_loads_its_best_checkpoint_and_probes_its_task(tmp_path):
    fake_run(tmp_path / "mqar-lru")
    argv = ["--mixers", "", "--workdir", str(tmp_path / "mqar-lru"), "--out", str(tmp_path)]
    results = probes.main([*argv, "--batch", "2", "--recall-train", "8", "--recall-test", "4"])
    labels = ["mqar-lru@init", "mqar-lru@trained"]
    assert [s["label"] for s in results["subjects"]] == labels
    init, trained = (results["spectra"][label]["quantiles"]["0.5"] for label in labels)
    assert init < trained < 1.0
    for label in labels:
        task = results["recall"][label]["task"]
        assert task["probe"] == "mqar" and task["chance"] == 1 / 8
        assert len(results["gradient_flow"][label]["state"]["norm"]) == 16
    runs = [c for c in results["capacity"] if c["hidden"] is None]
    assert [c["label"] for c in runs] == labels
    assert runs[0]["pairs_per_sequence"] == [1, 2, 4]
    assert (tmp_path / "overview.png").read_bytes()[:8] == PNG_SIGNATURE

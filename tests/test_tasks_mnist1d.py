"""MNIST-1D: the mnist1d package's own arrays, the task's splits, ``shuffle_seq``, the options,
the paper's GRU config and a smoke run through the trainer. Nothing is downloaded."""

from __future__ import annotations

import io
import random

import mnist1d.data
import numpy as np
import pytest
from tiny_run import ROOT

import memjax.tasks as tasks
from memjax import budget, data, train
from memjax import config as config_lib
from memjax.run_model import build_model
from memjax.tasks import mnist1d as task_module

CONFIG = ROOT / "configs" / "mnist1d.py"
KEYS = ("x", "y", "x_test", "y_test")


@pytest.fixture(scope="module")
def package():
    """The package's own datasets, unshuffled (False) and shuffled (True), made directly."""
    made = {}
    for shuffle_seq in (False, True):
        args = mnist1d.data.get_dataset_args()
        args.shuffle_seq = shuffle_seq
        made[shuffle_seq] = mnist1d.data.make_dataset(args)
    return made


def test_generation_is_the_packages_default_dataset_and_leaves_global_seeds_alone(package):
    np.random.seed(123)
    random.seed(123)
    expected = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    arrays = task_module.generate.__wrapped__(False)  # a fresh generation, not the cached one
    assert (np.random.random(), random.random()) == expected
    shapes = {"x": (4000, 40), "y": (4000,), "x_test": (1000, 40), "y_test": (1000,)}
    assert {key: arrays[key].shape for key in KEYS} == shapes
    for key in KEYS:
        np.testing.assert_array_equal(arrays[key], package[False][key])  # two generations
        assert not arrays[key].flags.writeable
    # mnist1d 0.0.2.post1's default dataset; the released mnist1d_data.pkl holds the same.
    np.testing.assert_array_equal(arrays["y"][:10], [2, 6, 4, 5, 6, 6, 6, 0, 3, 1])
    np.testing.assert_allclose(arrays["x"][0, :3], [-0.33200567, -0.47191037, -0.77869708])


def test_validation_is_carved_from_train_by_seed_and_test_is_untouched(package):
    sources = {split: tasks.get("mnist1d").source(split) for split in tasks.SPLITS}
    train_rows, validation_rows = sources["train"].rows, sources["validation"].rows
    assert (len(train_rows), len(validation_rows), len(sources["test"])) == (3600, 400, 1000)
    assert not set(train_rows) & set(validation_rows)
    every_row = np.sort(np.concatenate([train_rows, validation_rows]))
    np.testing.assert_array_equal(every_row, np.arange(4000))
    test = sources["test"]
    np.testing.assert_array_equal(test.inputs[..., 0], package[False]["x_test"].astype(np.float32))
    np.testing.assert_array_equal(test.labels, package[False]["y_test"])
    same = tasks.get("mnist1d", seed=0).source("validation").rows
    other = tasks.get("mnist1d", seed=1).source("validation").rows
    np.testing.assert_array_equal(same, validation_rows)
    assert len(other) == 400 and set(other) != set(validation_rows)
    assert len(tasks.get("mnist1d", val_percent=20).source("validation")) == 800


def test_examples_are_the_packages_rows_with_its_labels(package):
    task = tasks.get("mnist1d")
    for split in ("train", "validation"):
        src = task.source(split)
        x, y = package[False]["x"][src.rows], package[False]["y"][src.rows]
        np.testing.assert_array_equal(src.inputs[..., 0], x.astype(np.float32))
        assert [src[i]["label"] for i in range(len(src))] == y.tolist()
    example = task.source("validation")[3]
    assert example["inputs"].shape == (40, 1) and example["inputs"].dtype == np.float32
    assert example["id"] == "mnist1d/validation/3" and isinstance(example["label"], int)
    encoded = data.encode(task.spec, example)
    assert encoded["inputs"].shape == (40, 1) and encoded["mask"].all()
    assert encoded["label"] == example["label"]
    with pytest.raises(IndexError, match="out of range"):
        task.source("test")[1000]
    assert task.spec.decode(example["inputs"]).startswith("len 40, values ")
    out = io.StringIO()
    data.show("mnist1d", "test", n=1, out=out)
    assert "task mnist1d: continuous (1 ch), max_length 40, 10 classes" in out.getvalue()
    assert "split sizes: train 3600, validation 400, test 1000" in out.getvalue()


def test_shuffle_seq_is_the_packages_one_permutation_of_every_example(package):
    shuffled, plain = package[True], package[False]
    task = tasks.get("mnist1d", shuffle_seq=True)
    src = task.source("train")
    np.testing.assert_array_equal(src.inputs[..., 0], shuffled["x"][src.rows].astype(np.float32))
    np.testing.assert_array_equal(src.labels, plain["y"][src.rows])
    np.testing.assert_array_equal(task.source("test").labels, plain["y_test"])
    # Each shuffled position is one original position, the same for all 5,000 examples.
    every, every_shuffled = (np.concatenate([d["x"], d["x_test"]]) for d in (plain, shuffled))
    matches = np.isclose(every[:, :, None], every_shuffled[:, None, :], rtol=0, atol=1e-12)
    order = [np.flatnonzero(matches[:, :, j].all(0)) for j in range(40)]
    assert [len(found) for found in order] == [1] * 40
    permutation = np.concatenate(order)
    assert sorted(permutation) == list(range(40)) and list(permutation) != list(range(40))
    np.testing.assert_allclose(every_shuffled, every[:, permutation], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shuffle_seq": 1}, "shuffle_seq=1; expected True or False"),
        ({"val_percent": 0}, "val_percent=0; expected an int >= 1 and <= 50"),
        ({"val_percent": 60}, "val_percent=60; expected an int >= 1 and <= 50"),
        ({"seed": -1}, "seed=-1; expected an int >= 0"),
        ({"seed": 1.5}, "seed=1.5; expected an int >= 0"),
        ({"num_train": 10}, "unknown option(s) num_train for task 'mnist1d'; valid options"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tasks.get("mnist1d", **options)


def test_gru_config_is_the_papers_and_the_others_share_its_parameter_count():
    module = config_lib.load_module(CONFIG)
    gru = config_lib.load(f"{CONFIG}:gru")
    model = gru.model
    assert (model.d_model, model.depth, model.bidirectional, model.mlp) == (12, 1, True, "none")
    assert (model.bidirectional_form, model.pooling, model.norm) == ("concat", "flatten", "none")
    assert (gru.train.batch_size, gru.train.steps, gru.optim.lr) == (100, 6000, 1e-2)
    assert (gru.optim.schedule, gru.optim.warmup_steps, gru.optim.clip_norm) == ("constant", 0, 0)
    assert (gru.optim.weight_decay, gru.optim.b1, gru.optim.b2) == (0.0, 0.9, 0.999)
    assert "GRUBase" in gru.provenance.source and gru.provenance.differences
    spec = tasks.get("mnist1d").spec
    built = build_model(model, spec, 0)
    assert (model.input_projection, model.residual) == (False, False)
    assert built.encoder.embed is None and not built.encoder.blocks[0].residual
    assert built.encoder.blocks[0].mixer.params["w_i"].shape == (1, 18)  # reads the scalar
    assert (built.encoder.blocks[0].mixer.memory.hidden, built.head.in_features) == (6, 480)
    paper_gru = 2 * 3 * (6 * 1 + 6 * 6 + 6 + 6)  # torch.nn.GRU(1, 6, bidirectional=True)
    paper_head = 40 * 12 * 10 + 10
    assert paper_gru + paper_head == 5134  # the paper's count
    torch_redundant_biases = 2 * 2 * 6  # b_hr, b_hz per direction (memjax keeps b_hn only)
    assert budget.param_count(built) == 5134 - torch_redundant_biases == 5110
    memjax_block = config_lib.load(f"{CONFIG}:gru", [("model.input_projection", True)])
    memjax_block.model.residual = True
    assert budget.param_count(build_model(memjax_block.model, spec, 0)) == 5530
    assert module.PARAMETER_BUDGET == 5530
    for variant in ("transformer", "lstm", "mingru", "lru", "s5", "linear_attention"):
        config = config_lib.load(f"{CONFIG}:{variant}")
        assert config.model.param_budget == module.PARAMETER_BUDGET, variant
        assert "no paper ran" in config.provenance.differences[0], variant
    assert not config_lib.load(f"{CONFIG}:transformer").model.bidirectional


def test_gru_smoke_run_trains_and_tests(tmp_path):
    config = config_lib.load(f"{CONFIG}:gru,smoke", [("parallel", "none")])
    assert (config.model.d_model, config.model.depth, config.train.steps) == (12, 1, 60)
    summary = train.train_and_evaluate(config, tmp_path, progress=False)
    assert (summary["step"], summary["param_count"]) == (60, 5110)
    assert 0.0 <= summary["test_at_best"] <= 1.0


def test_bare_block_options_are_refused_by_an_encoder_decoder():
    """An encoder-decoder builds its own blocks: the bare options would be ignored there."""
    config = config_lib.load("configs/scan.py:lstm,smoke", [("model.residual", False)])
    with pytest.raises(ValueError, match="encoder-only form; the encoder-decoder of task 'scan'"):
        build_model(config.model, tasks.get("scan").spec, 0)

"""Synthetic memory tasks: targets checked by construction, determinism, shapes."""

import numpy as np
import pytest

import memjax.tasks as tasks

SMALL = {
    "copy": {"lag": 12, "copy_length": 5, "num_symbols": 4},
    "adding": {"length": 16},
    "selective_copy": {"length": 24, "num_memorize": 4, "num_symbols": 6},
    "mqar": {"vocab_size": 64, "length": 32, "num_kv_pairs": 4},
    "induction": {"length": 12, "num_symbols": 5},
}
SIZES = {"num_train": 64, "num_validation": 16, "num_test": 16}


def small(name, **extra):
    return tasks.get(name, **SMALL[name], **SIZES, **extra)


def examples(name, split="train", n=32, **extra):
    src = small(name, **extra).source(split)
    return [src[i] for i in range(n)]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_examples_other_seed_differs(name):
    a, b = examples(name, seed=3), examples(name, seed=3)
    c = examples(name, seed=4)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        np.testing.assert_array_equal(x["inputs"], y["inputs"])
    assert any(not np.array_equal(x["inputs"], z["inputs"]) for x, z in zip(a, c, strict=True))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_splits_are_different_streams_and_sizes_apply(name):
    task = small(name)
    assert [len(task.source(s)) for s in tasks.SPLITS] == [64, 16, 16]
    train, val = task.source("train")[0], task.source("validation")[0]
    assert not np.array_equal(train["inputs"], val["inputs"])
    with pytest.raises(IndexError):
        task.source("test")[16]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_lengths_and_vocabulary_fit_the_spec(name):
    spec = small(name).spec
    for ex in examples(name):
        assert len(ex["inputs"]) == spec.max_length
        if spec.input_kind == "tokens":
            assert ex["inputs"].min() >= 1 and ex["inputs"].max() < spec.vocab_size
        if spec.target == "per_position":
            assert ex["targets"][ex["loss_mask"]].min() >= 1
            assert ex["targets"].max() < spec.num_classes
            assert np.all(ex["targets"][~ex["loss_mask"]] == 0)


def test_copy_targets_are_the_leading_symbols_after_the_lag():
    lag, n = 12, 5
    for ex in examples("copy"):
        x, y, m = ex["inputs"], ex["targets"], ex["loss_mask"]
        assert len(x) == lag + 2 * n
        symbols = x[:n]
        assert np.all(symbols >= 3)
        assert np.all(x[n : n + lag - 1] == 1)  # blanks during the lag
        assert x[n + lag - 1] == 2  # delimiter
        assert np.all(x[n + lag :] == 1)
        np.testing.assert_array_equal(np.flatnonzero(m), np.arange(lag + n, lag + 2 * n))
        np.testing.assert_array_equal(y[m], symbols)


def test_adding_label_is_the_sum_of_the_two_marked_values():
    for ex in examples("adding"):
        x = ex["inputs"]
        assert x.shape == (16, 2) and x.dtype == np.float32
        assert np.all((0 <= x[:, 0]) & (x[:, 0] <= 1))
        marked = np.flatnonzero(x[:, 1] == 1.0)
        assert len(marked) == 2 and np.all(np.isin(x[:, 1], [0.0, 1.0]))
        assert marked[0] < 8 <= marked[1]  # one in each half
        assert ex["label"] == pytest.approx(x[marked, 0].sum(), abs=1e-6)
    assert small("adding").spec.metric == "mse"


def test_selective_copy_targets_are_the_scattered_symbols_in_order():
    for ex in examples("selective_copy"):
        x, y, m = ex["inputs"], ex["targets"], ex["loss_mask"]
        region, queries = x[:24], x[24:]
        symbols = region[region >= 3]
        assert len(symbols) == 4 and np.all(np.isin(region, [1, *symbols]))
        assert np.all(queries == 2)
        np.testing.assert_array_equal(np.flatnonzero(m), np.arange(24, 28))
        np.testing.assert_array_equal(y[m], symbols)
    positions = [tuple(np.flatnonzero(ex["inputs"][:24] >= 3)) for ex in examples("selective_copy")]
    assert len(set(positions)) > 1  # positions vary between examples


@pytest.mark.parametrize("random_non_queries", [True, False])
def test_mqar_answers_are_the_values_bound_to_the_queried_keys(random_non_queries):
    vocab, kv = 64, 4
    for ex in examples("mqar", random_non_queries=random_non_queries):
        x, y, m = ex["inputs"], ex["targets"], ex["loss_mask"]
        keys, values = x[0 : 2 * kv : 2], x[1 : 2 * kv : 2]
        assert len(set(keys)) == kv and len(set(values)) == kv
        assert np.all((keys >= 2) & (keys < vocab // 2)) and np.all(values >= vocab // 2)
        binding = dict(zip(keys.tolist(), values.tolist(), strict=True))
        queried = np.flatnonzero(m)
        assert len(queried) == kv and np.all(queried >= 2 * kv)
        assert sorted(x[queried].tolist()) == sorted(keys.tolist())  # every key queried once
        for position in queried:
            assert y[position] == binding[int(x[position])]
        if not random_non_queries:
            others = np.ones(len(x), dtype=bool)
            others[: 2 * kv] = False
            others[queried] = False
            assert np.all(x[others] == 1)


def test_induction_target_is_the_token_after_the_first_trigger():
    for ex in examples("induction"):
        x, y, m = ex["inputs"], ex["targets"], ex["loss_mask"]
        triggers = np.flatnonzero(x == 1)
        assert len(triggers) == 2 and triggers[1] == len(x) - 1 == 12
        np.testing.assert_array_equal(np.flatnonzero(m), [12])
        assert y[12] == x[triggers[0] + 1] >= 2


def test_decode_reads_the_tokens():
    spec = small("copy").spec
    ex = small("copy").source("train")[0]
    text = spec.decode(ex["inputs"])
    assert text.endswith("| _*5") and "_*11" in text
    assert (
        small("adding").spec.decode(examples("adding", n=1)[0]["inputs"]).startswith("len 16: x[")
    )
    assert small("induction").spec.decode(np.array([2, 1, 3, 0, 0])) == "s0 > s1"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("copy", {"lag": 0}, "lag=0; expected an int >= 1"),
        ("copy", {"num_train": -1}, "num_train=-1"),
        ("adding", {"length": "long"}, "length='long'"),
        ("mqar", {"num_kv_pairs": 10, "length": 32}, "length=32; expected an int >= 40"),
        ("mqar", {"vocab_size": 8, "num_kv_pairs": 4, "length": 32}, "vocab_size=8"),
        ("mqar", {"power_a": 0.0}, "power_a=0.0"),
        ("selective_copy", {"num_memorize": 8, "length": 4}, "length=4; expected an int >= 8"),
        ("induction", {"seed": -2}, "seed=-2"),
    ],
)
def test_bad_options_raise_value_errors_naming_them(name, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        tasks.get(name, **options)

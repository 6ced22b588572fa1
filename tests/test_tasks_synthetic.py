"""Synthetic memory tasks: targets checked by construction, determinism, shapes."""

import numpy as np
import pytest

import memjax.tasks as tasks

SMALL = {
    "copy": {"lag": 12, "copy_length": 5, "num_symbols": 4},
    "adding": {"length": 16},
    "selective_copy": {"length": 24, "num_memorize": 4, "vocab_size": 8},
    "mqar": {"vocab_size": 64, "length": 32, "num_kv_pairs": 4},
    "induction": {"length": 12, "num_symbols": 5},
    "associative_recall": {"vocab_size": 10, "length": 20},
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
        symbols = region[region >= 2]
        assert len(symbols) == 4 and np.all(np.isin(region, [1, *symbols]))
        assert np.all(symbols <= 7) and np.all(queries == 8)  # 6 data symbols, then the marker
        np.testing.assert_array_equal(np.flatnonzero(m), np.arange(24, 28))
        np.testing.assert_array_equal(y[m], symbols)
    positions = [tuple(np.flatnonzero(ex["inputs"][:24] >= 2)) for ex in examples("selective_copy")]
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
    for split in ("validation", "test"):
        for ex in examples("induction", split=split, n=16):
            x, y, m = ex["inputs"], ex["targets"], ex["loss_mask"]
            triggers = np.flatnonzero(x == 2)
            assert len(triggers) == 2 and triggers[1] == len(x) - 1 == 12
            np.testing.assert_array_equal(np.flatnonzero(m), [12])  # the last position only
            assert y[12] == x[triggers[0] + 1] >= 3


def test_decode_reads_the_tokens():
    spec = small("copy").spec
    ex = small("copy").source("train")[0]
    text = spec.decode(ex["inputs"])
    assert text.endswith("| _*5") and "_*11" in text
    assert (
        small("adding").spec.decode(examples("adding", n=1)[0]["inputs"]).startswith("len 16: x[")
    )
    assert small("induction").spec.decode(np.array([3, 2, 4, 0, 0])) == "s0 => s1"


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
        ("induction", {"lm_loss": "yes"}, "lm_loss='yes'; expected True or False"),
        ("selective_copy", {"vocab_size": 2}, "vocab_size=2; expected an int >= 3"),
        ("associative_recall", {"vocab_size": 3}, "vocab_size=3; expected an int >= 4"),
        ("associative_recall", {"allow_dot": 1}, "allow_dot=1; expected True or False"),
    ],
)
def test_bad_options_raise_value_errors_naming_them(name, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        tasks.get(name, **options)


# ----------------------------------------------------------------- the papers' setups
# Values below are read from the original repositories (named with each test).


def test_mqar_without_random_non_queries_has_no_decoys():
    """Zoology Figure 2 (random_non_queries=False): after the context, a key appears only at
    its query; with Zoology's default (True) keys also appear as decoys."""

    def decoys(random_non_queries):
        count = 0
        for ex in examples("mqar", n=64, random_non_queries=random_non_queries):
            x, m = ex["inputs"], ex["loss_mask"]
            after = np.arange(len(x)) >= 8
            count += int(np.sum(after & ~m & (x >= 2) & (x < 32)))
        return count

    assert decoys(False) == 0 and decoys(True) > 0
    assert tasks.options("mqar")["random_non_queries"] is True  # zoology MQARConfig's default


ZOOLOGY_FIGURE2 = [(64, 4), (128, 8), (256, 16), (512, 64)]
"""HazyResearch/zoology zoology/experiments/paper/figure2.py (Jan 2024), now
zoology/experiments/paper_configs/iclr24_zoology_figure2/configs.py: (input_seq_len,
num_kv_pairs), batch 512/512/256/128, d_model 64..512, 64 epochs of 100,000 examples."""


def test_mqar_table_plan_is_zoology_figure_2():
    from memjax import experiments

    plan = experiments.Plan("paper", 1, ("lstm",), ())
    section = experiments.synthetic(plan)[0]
    assert section.columns == tuple(f"L={length}" for length, _ in ZOOLOGY_FIGURE2)
    widths = [row.label.rsplit(" ", 1)[1] for row in section.rows]
    assert widths == ["64", "128", "256", "512"]
    batches = {64: 512, 128: 512, 256: 256, 512: 128}
    for row in section.rows:
        for cell, (length, pairs) in zip(row.cells, ZOOLOGY_FIGURE2, strict=True):
            (run,) = cell.runs
            overrides = dict(run.overrides)
            assert overrides["task.options.length"] == length
            assert overrides["task.options.num_kv_pairs"] == pairs
            assert overrides["train.batch_size"] == batches[length]
            assert overrides["train.steps"] == 64 * -(-100_000 // batches[length])
    config = section.rows[0].cells[-1].runs[0].load()
    assert config.task.options.random_non_queries is False
    assert (config.task.options.vocab_size, config.task.options.num_kv_pairs) == (8192, 64)


def test_induction_layout_is_safaris():
    """safari src/dataloaders/synthetics.py generate_induction_head, input_seq_len 30, vocab 20
    (18 symbols + '=>' + '.'): trigger at 0..27, 31 inputs."""
    task = tasks.get("induction", num_train=4000, num_validation=16, num_test=600)
    assert task.spec.vocab_size == 21 and task.spec.max_length == 31  # + memjax's padding
    train = task.source("train")
    first = []
    for i in range(4000):
        ex = train[i]
        x, y, m = ex["inputs"], ex["targets"], ex["loss_mask"]
        triggers = np.flatnonzero(x == 2)
        assert len(triggers) == 2 and triggers[1] == 30
        body = np.delete(x[:30], triggers[0])
        assert np.all((body >= 3) & (body < 21))
        first.append(triggers[0])
        assert m.all()  # training: a language-model loss on every position
        np.testing.assert_array_equal(y[:-1], x[1:])
        assert y[30] == x[triggers[0] + 1]
    assert min(first) == 0 and max(first) == 27
    answers = []
    for i in range(600):
        ex = task.source("test")[i]
        np.testing.assert_array_equal(np.flatnonzero(ex["loss_mask"]), [30])
        answers.append(int(ex["targets"][30]))
    # Without memory the best guess is the most common answer: about 1/18.
    best = np.bincount(answers).max() / len(answers)
    assert 1 / 18 - 0.02 < best < 1 / 18 + 0.035
    no_lm = tasks.get("induction", lm_loss=False, num_train=4).source("train")[0]
    np.testing.assert_array_equal(np.flatnonzero(no_lm["loss_mask"]), [30])


def test_associative_recall_layout_is_safaris():
    """safari generate_assoc_recall, vocab_size_10.yaml: 4 keys, 4 values, 10 pairs, '=>', key."""
    task = tasks.get("associative_recall", num_train=8, num_validation=8, num_test=8)
    assert task.spec.vocab_size == 11 and task.spec.max_length == 22
    keys, values = set(range(3, 7)), set(range(7, 11))
    for split in tasks.SPLITS:
        for i in range(8):
            ex = task.source(split)[i]
            x, y, m = ex["inputs"], ex["targets"], ex["loss_mask"]
            assert set(x[0:20:2]) <= keys and set(x[1:20:2]) <= values and x[20] == 2
            binding = {}
            for k, v in zip(x[0:20:2], x[1:20:2], strict=True):
                assert binding.setdefault(int(k), int(v)) == v  # one value per key
            answer = binding[int(x[21])]  # the query key was seen (allow_dot=False)
            if split == "train":
                assert m.all() and y[21] == answer
                np.testing.assert_array_equal(y[:-1], x[1:])
            else:
                np.testing.assert_array_equal(np.flatnonzero(m), [21])
                assert y[21] == answer


def test_associative_recall_random_baseline_is_h3s_25_percent():
    """H3 Table 2 prints Random 25.0: the answer is uniform over the 4 values whatever the query
    key, so any memoryless guess (here: the best value per query key, and a uniform value)
    scores 1/4; guessing among the values seen in the context would score more."""
    src = tasks.get("associative_recall", num_test=3000).source("test")
    rng = np.random.default_rng(0)
    by_key = np.zeros((11, 11))
    uniform = seen = 0.0
    for i in range(len(src)):
        x, y = src[i]["inputs"], src[i]["targets"]
        answer = y[21]
        by_key[x[21], answer] += 1
        uniform += rng.integers(7, 11) == answer
        seen += 1 / len(set(x[1:20:2].tolist()))
    n = len(src)
    assert abs(by_key.max(axis=1).sum() / n - 0.25) < 0.04
    assert abs(uniform / n - 0.25) < 0.03
    assert seen / n > 0.3


def test_selective_copy_vocabulary_of_16_includes_noise_and_marker():
    """Mamba appendix E.1: vocab 16 'including the white noise token', 16 data tokens; s4
    src/dataloaders/datasets/copying.py: 0 noise, 1..A-2 data, A-1 marker."""
    task = tasks.get("selective_copy", length=256, num_train=64)
    assert task.spec.vocab_size == 17 and task.spec.max_length == 256 + 16  # + padding
    seen = set()
    for i in range(64):
        ex = task.source("train")[i]
        x, y, m = ex["inputs"], ex["targets"], ex["loss_mask"]
        data = x[:256][x[:256] != 1]
        assert len(data) == 16 and np.all((data >= 2) & (data <= 15))
        assert np.all(x[256:] == 16) and np.flatnonzero(m).tolist() == list(range(256, 272))
        np.testing.assert_array_equal(y[m], data)
        seen |= set(data.tolist())
    assert seen == set(range(2, 16))  # 14 data symbols
    assert len(set(np.unique([1, 16, *seen]))) == 16


def _config(name):
    from memjax import config as config_lib

    return config_lib.load(f"{config_lib.PACKAGED_CONFIGS / name}.py:transformer")


def test_paper_configs_are_the_sources_setups():
    mqar = _config("mqar")  # zoology iclr24_zoology_figure2/configs.py, L=256 cell
    assert dict(mqar.task.options) == {
        "vocab_size": 8192,
        "length": 256,
        "num_kv_pairs": 16,
        "power_a": 0.01,
        "random_non_queries": False,
        "num_train": 100_000,
        "num_validation": 3_000,
        "num_test": 3_000,
    }
    assert (mqar.train.batch_size, mqar.train.steps) == (256, 64 * 391)
    assert mqar.optim.lr == pytest.approx(10 ** (-4 + 2 / 3))  # np.logspace(-4, -2, 4)[1]
    assert (mqar.optim.weight_decay, mqar.optim.b2, mqar.optim.warmup_steps) == (0.1, 0.999, 0)
    assert (mqar.model.d_model, mqar.model.depth, mqar.model.mlp) == (128, 2, "none")
    assert mqar.model.mixer_options.heads == 1

    # safari configs/experiment/synthetics/induction_head/{base,transformer}.yaml,
    # configs/pipeline/induction_head.yaml, configs/dataset/icl_synthetics.yaml
    induction = _config("induction")
    options = induction.task.options
    assert (options.length, options.num_symbols, options.lm_loss) == (30, 18, True)
    assert (options.num_train, options.num_validation, options.num_test) == (5000, 500, 500)
    assert (induction.train.batch_size, induction.train.steps) == (32, 157 * 400)
    assert (induction.optim.lr, induction.optim.weight_decay) == (5e-4, 0.1)
    assert (induction.optim.schedule, induction.optim.warmup_steps) == ("cosine", 157 * 40)
    assert (induction.model.d_model, induction.model.depth) == (32, 2)
    assert (induction.model.mlp, induction.model.mlp_expand) == ("mlp", 4)

    # safari configs/experiment/synthetics/associative_recall/{base,vocab_size_10}.yaml
    recall = _config("associative_recall")
    options = recall.task.options
    assert (options.vocab_size, options.length, options.num_train) == (10, 20, 5000)
    assert (recall.train.batch_size, recall.train.steps) == (32, 157 * 200)
    assert (recall.optim.lr, recall.optim.weight_decay, recall.optim.warmup_steps) == (
        5e-4, 0.1, 157 * 20
    )  # fmt: skip
    assert (recall.model.d_model, recall.model.depth, recall.model.mlp_expand) == (32, 2, 4)

    # Mamba (Gu and Dao 2023) appendix E.1, Selective Copying
    copy = _config("selective_copy")
    options = copy.task.options
    assert (options.length, options.num_memorize, options.vocab_size) == (4096, 16, 16)
    assert (copy.train.batch_size, copy.train.steps) == (64, 400_000)
    assert options.num_train == 64 * 400_000  # fresh data every step, as s4's train dataset
    assert (copy.optim.lr, copy.optim.schedule, copy.optim.warmup_steps) == (1e-4, "constant", 0)
    assert (copy.model.d_model, copy.model.depth) == (64, 2)

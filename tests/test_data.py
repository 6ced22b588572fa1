"""The grain pipeline: layouts, padding, determinism, per-epoch shuffle, host shards, resume."""

import json
import pickle

import numpy as np
import pytest

import memjax.tasks as tasks
from memjax import data
from memjax.tasks.spec import Task, TaskSpec
from memjax.tasks.vocab import TokenDecoder


class Counting:
    """Example i: tokens [i + 1] * (1 + i % 4), label i % 3: each batch row names its example."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        i = int(i)
        return {"inputs": np.full(1 + i % 4, i + 1, dtype=np.int32), "label": i % 3, "id": f"c/{i}"}

    def __repr__(self):
        return f"Counting({self.size})"


def counting_task(size: int = 40, max_length: int = 4) -> Task:
    spec = TaskSpec(
        name="counting",
        input_kind="tokens",
        vocab_size=size + 1,
        max_length=max_length,
        num_classes=3,
        target="class",
        metric="accuracy",
        decode=TokenDecoder([str(i) for i in range(size + 1)]),
    )
    return Task(spec, lambda split: Counting(size))


def ids(batch) -> list[int]:
    return (batch["inputs"][:, 0] - 1).tolist()


def loader(task=None, **kwargs):
    args = {"global_batch_size": 8, "seed": 0, "process_index": 0, "process_count": 1}
    return data.make_loader(task or counting_task(), "train", **{**args, **kwargs})


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_classification_batches_are_padded_at_the_end_with_a_mask():
    batch = next(iter(loader(shuffle=False)))
    assert batch["inputs"].shape == (8, 4) and batch["inputs"].dtype == np.int32
    assert batch["mask"].dtype == bool and batch["label"].dtype == np.int32
    for row, i in enumerate(range(8)):
        n = 1 + i % 4
        assert batch["inputs"][row].tolist() == [i + 1] * n + [0] * (4 - n)
        assert batch["mask"][row].tolist() == [True] * n + [False] * (4 - n)
        assert batch["label"][row] == i % 3


@pytest.mark.parametrize(
    ("name", "options", "layout"),
    [
        (
            "copy",
            {"lag": 6, "copy_length": 3},
            {"inputs": ((12,), np.int32), "targets": ((12,), np.int32), "loss_mask": ((12,), bool)},
        ),
        ("adding", {"length": 10}, {"inputs": ((10, 2), np.float32), "label": ((), np.float32)}),
        (
            "mqar",
            {"vocab_size": 32, "length": 16, "num_kv_pairs": 2},
            {"inputs": ((16,), np.int32), "targets": ((16,), np.int32)},
        ),
    ],
)
def test_task_batch_layouts(name, options, layout):
    task = tasks.get(name, **options, num_train=16)
    batch = next(iter(loader(task, global_batch_size=4)))
    assert batch["mask"].shape == (4, task.spec.max_length) and batch["mask"].all()
    for key, (shape, dtype) in layout.items():
        assert batch[key].shape == (4, *shape) and batch[key].dtype == dtype


def test_too_long_is_an_error_naming_the_example_unless_truncated():
    task = counting_task(max_length=3)
    with pytest.raises(
        ValueError, match=r"example c/3 of task 'counting' has length 4 > max_length 3"
    ):
        take(iter(loader(task, shuffle=False)), 1)
    batch = next(iter(loader(task, shuffle=False, truncate=True)))
    assert batch["inputs"][3].tolist() == [4, 4, 4] and batch["mask"][3].all()


def test_same_seed_same_batches_other_seed_different():
    for name, options in [("copy", {"lag": 5}), ("induction", {})]:
        task = tasks.get(name, **options, num_train=64)
        a = take(iter(loader(task, seed=1)), 5)
        b = take(iter(loader(task, seed=1)), 5)
        c = take(iter(loader(task, seed=2)), 5)
        for x, y in zip(a, b, strict=True):
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
        assert any(not np.array_equal(x["inputs"], z["inputs"]) for x, z in zip(a, c, strict=True))


def test_each_epoch_is_a_fresh_permutation():
    batches = list(iter(loader(global_batch_size=10, num_epochs=3, seed=4)))
    assert len(batches) == 12
    epochs = [sum((ids(b) for b in batches[k : k + 4]), []) for k in (0, 4, 8)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(40))
    assert epochs[0] != epochs[1] != epochs[2] != list(range(40))
    unshuffled = sum(
        (ids(b) for b in loader(global_batch_size=10, num_epochs=1, shuffle=False)), []
    )
    assert unshuffled == list(range(40))


@pytest.mark.parametrize(("size", "hosts"), [(40, 2), (41, 3), (7, 4)])
def test_host_shards_partition_an_epoch(size, hosts):
    seen = []
    for host in range(hosts):
        shard = loader(
            counting_task(size),
            global_batch_size=hosts,
            num_epochs=1,
            drop_remainder=False,
            process_index=host,
            process_count=hosts,
            seed=3,
        )
        seen.append([i for batch in shard for i in ids(batch)])
        assert all(b["inputs"].shape[0] <= 1 for b in shard)  # global 'hosts' -> 1 per host
    everything = sum(seen, [])
    assert sorted(everything) == list(range(size))  # nothing missing, nothing twice
    for a in range(hosts):
        for b in range(a + 1, hosts):
            assert not set(seen[a]) & set(seen[b])


def test_equal_shards_with_drop_remainder():
    counts, seen = [], set()
    for host in range(3):
        shard = list(
            loader(
                counting_task(41),
                global_batch_size=6,
                num_epochs=1,
                process_index=host,
                process_count=3,
            )
        )
        counts.append(len(shard))
        batch_ids = {i for batch in shard for i in ids(batch)}
        assert all(batch["inputs"].shape[0] == 2 for batch in shard)
        assert not batch_ids & seen
        seen |= batch_ids
    assert counts == [6, 6, 6]  # every host takes the same number of steps


@pytest.mark.parametrize("skip", [0, 3, 7])
def test_checkpointed_state_resumes_the_identical_batch_sequence(skip):
    task = tasks.get("copy", lag=4, copy_length=2, num_train=30)
    reference = iter(loader(task, global_batch_size=4, seed=9))
    take(reference, skip)
    state = reference.get_state()
    json.loads(state)  # JSON bytes: storable next to a checkpoint
    expected = take(reference, 10)  # crosses epoch boundaries (30 examples, 4 per batch)
    resumed = iter(loader(task, global_batch_size=4, seed=9))
    resumed.set_state(state)
    for a, b in zip(expected, take(resumed, 10), strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_default_host_is_jax_process():
    batch = next(iter(data.make_loader(counting_task(), "validation", global_batch_size=5, seed=0)))
    assert batch["inputs"].shape == (5, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"global_batch_size": 6, "process_count": 4},
            "global_batch_size=6; expected a multiple of process_count=4",
        ),
        (
            {"process_index": 2, "process_count": 2},
            r"process_index=2; expected an int >= 0 and <= 1",
        ),
        ({"global_batch_size": 0}, r"global_batch_size=0; expected an int >= 1"),
        ({"seed": -1}, r"seed=-1; expected an int >= 0 and <= 4294967295"),
        ({"num_epochs": 0}, r"num_epochs=0; expected an int >= 1"),
        ({"worker_count": -1}, r"worker_count=-1"),
    ],
)
def test_bad_arguments_name_argument_value_and_expectation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        loader(**kwargs)


def test_bad_split_and_task_names():
    with pytest.raises(
        ValueError, match=r"split='dev'; expected one of 'train', 'validation', 'test'"
    ):
        data.make_loader(counting_task(), "dev", global_batch_size=2, seed=0)
    with pytest.raises(ValueError, match=r"task='imagenet'; expected one of 'listops', 'text'"):
        tasks.get("imagenet")


def test_sources_pickle_for_grain_workers(tmp_path):
    listops = tasks.get(
        "listops",
        data_dir=str(tmp_path),
        num_train=5,
        num_validation=2,
        num_test=2,
        min_length=5,
        max_length=40,
        max_depth=4,
        max_args=3,
    )
    sources = [
        listops.source("train"),
        tasks.get("pathfinder", num_train=2).source("train"),
        tasks.get("mqar", num_train=2).source("train"),
    ]
    for src in sources:
        copy = pickle.loads(pickle.dumps(src))
        assert repr(copy) == repr(src)
        np.testing.assert_array_equal(copy[1]["inputs"], src[1]["inputs"])


def test_worker_processes_read_each_example_once_per_epoch_and_resume():
    task = counting_task(24)
    run = iter(loader(task, global_batch_size=4, num_epochs=2, seed=5, worker_count=2))
    first = take(run, 6)
    assert sorted(sum((ids(b) for b in first), [])) == list(range(24))
    state = run.get_state()
    rest = [ids(b) for b in run]
    resumed = iter(loader(task, global_batch_size=4, num_epochs=2, seed=5, worker_count=2))
    resumed.set_state(state)
    assert [ids(b) for b in resumed] == rest
    assert sorted(sum(rest, [])) == list(range(24))


def test_worker_loader_leaves_absl_flags_unparsed(monkeypatch):
    from absl import flags

    # Start unparsed however earlier tests left absl (monkeypatch restores both afterwards).
    monkeypatch.setitem(flags.FLAGS.__dict__, "__flags_parsed", False)
    monkeypatch.setattr(flags.FLAGS["grain_enable_multiprocess_worker_profiling"], "present", 0)
    run = iter(loader(counting_task(8), global_batch_size=4, num_epochs=1, worker_count=1))
    assert sorted(sum((ids(b) for b in run), [])) == list(range(8))
    assert not flags.FLAGS.is_parsed()
    with pytest.raises(flags.UnparsedFlagAccessError):
        _ = flags.FLAGS.grain_py_debug_mode  # other flags are still unparsed too


def test_pipeline_errors_print_their_own_message_last():
    import traceback

    run = iter(loader(counting_task(max_length=3), shuffle=False))
    with pytest.raises(ValueError, match=r"example c/3 of task 'counting'") as info:
        next(run)
    printed = "".join(traceback.format_exception(info.value)).strip().splitlines()
    assert printed[-1].startswith("ValueError: example c/3 of task 'counting' has length 4")

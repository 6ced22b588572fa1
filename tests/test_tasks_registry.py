"""The task registry and the published default specs."""

import dataclasses

import pytest

import memjax.tasks as tasks

PUBLISHED = {
    # name: (input_kind, vocab_size or channels, max_length, num_classes, target, metric, paired)
    "listops": ("tokens", 16, 2000, 10, "class", "accuracy", False),
    "text": ("tokens", 257, 4096, 2, "class", "accuracy", False),
    "retrieval": ("tokens", 257, 4000, 2, "class", "accuracy", True),
    "image": ("tokens", 257, 1024, 10, "class", "accuracy", False),
    "mnist": ("tokens", 257, 784, 10, "class", "accuracy", False),
    "permuted_mnist": ("tokens", 257, 784, 10, "class", "accuracy", False),
    "mnist1d": ("continuous", 1, 40, 10, "class", "accuracy", False),
    "pathfinder": ("tokens", 257, 1024, 2, "class", "accuracy", False),
    "pathx": ("tokens", 257, 16384, 2, "class", "accuracy", False),
    "copy": ("tokens", 11, 120, 11, "per_position", "accuracy", False),
    "adding": ("continuous", 2, 200, 1, "class", "mse", False),
    "selective_copy": ("tokens", 17, 4112, 17, "per_position", "accuracy", False),
    "mqar": ("tokens", 8192, 256, 8192, "per_position", "accuracy", False),
    "induction": ("tokens", 21, 31, 21, "per_position", "accuracy", False),
    "associative_recall": ("tokens", 11, 22, 11, "per_position", "accuracy", False),
    "scan": ("tokens", 14, 9, 9, "sequence", "accuracy", False),
}


def test_names_lists_every_task():
    assert tasks.names() == list(PUBLISHED)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_default_specs(name):
    spec = tasks.get(name).spec  # builds without touching any data
    kind, width, length, classes, target, metric, paired = PUBLISHED[name]
    assert spec.name == name
    assert spec.input_kind == kind
    assert (spec.vocab_size if kind == "tokens" else spec.channels) == width
    assert (spec.max_length, spec.num_classes) == (length, classes)
    assert (spec.target, spec.metric, spec.paired) == (target, metric, paired)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.max_length = 1


def test_options_show_defaults():
    assert tasks.options("pathx")["resolution"] == 128
    assert tasks.options("listops")["num_train"] == 96_000
    assert tasks.options("text")["max_length"] == 4096


def test_unknown_names_and_options():
    with pytest.raises(ValueError, match=r"task='lisptops'; expected one of 'listops', 'text'"):
        tasks.get("lisptops")
    with pytest.raises(ValueError, match=r"unknown option\(s\) lenght for task 'copy'.*lag"):
        tasks.get("copy", lenght=3)


def test_spec_checks_its_fields():
    with pytest.raises(ValueError, match="input_kind='words'; expected one of 'tokens'"):
        tasks.TaskSpec("x", "words", 3, 2, "class", "accuracy", decode=str, vocab_size=5)
    with pytest.raises(ValueError, match="vocab_size=0 for a token task"):
        tasks.TaskSpec("x", "tokens", 3, 2, "class", "accuracy", decode=str)
    with pytest.raises(ValueError, match="channels=0 for a continuous task"):
        tasks.TaskSpec("x", "continuous", 3, 2, "class", "mse", decode=str)

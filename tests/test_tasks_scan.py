"""SCAN: the grammar's commands and meanings, the released splits, the reader, tfds, batching."""

import sys
from collections import Counter

import numpy as np
import pytest
import tensorflow_datasets as tfds

import memjax.tasks as tasks
from memjax import data
from memjax.tasks import scan_grammar, scan_splits, scan_task
from memjax.tasks.spec import BOS, EOS, TaskSpec
from memjax.tasks.vocab import TokenDecoder

# split: (train lines, distinct train commands, test lines), as in SCAN's released files
RELEASED = {
    "simple": (16_728, 16_728, 4_182),
    "length": (16_990, 16_990, 3_920),
    "addprim_jump": (14_670, 13_204, 7_706),
    "addprim_turn_left": (21_890, 19_702, 1_208),
}
# split: (train, validation, test) lines at the defaults (val_percent=10, seed=0)
DEFAULT_SIZES = {
    "simple": (15_055, 1_673, 4_182),
    "length": (15_291, 1_699, 3_920),
    "addprim_jump": (13_350, 1_320, 7_706),
    "addprim_turn_left": (19_920, 1_970, 1_208),
}
PRIMITIVE = {"addprim_jump": "jump", "addprim_turn_left": "turn left"}
L, R = "I_TURN_LEFT", "I_TURN_RIGHT"


def reference(command: str) -> list[str]:
    """SCAN's meaning of a command, evaluated independently of memjax's parser."""
    if " after " in command:
        first, second = command.split(" after ")
        return reference(second) + reference(first)
    if " and " in command:
        first, second = command.split(" and ")
        return reference(first) + reference(second)
    words = command.split()
    times = {"twice": 2, "thrice": 3}.get(words[-1], 1)
    words = words[:-1] if times > 1 else words
    act = [] if words[0] == "turn" else [f"I_{words[0].upper()}"]
    turn = {"left": [L], "right": [R]}
    if len(words) == 1:
        unit = act
    elif len(words) == 2:
        unit = turn[words[1]] + act
    elif words[1] == "opposite":
        unit = turn[words[2]] * 2 + act
    else:
        assert words[1] == "around"
        unit = (turn[words[2]] + act) * 4
    return unit * times


def text(example):
    """(command, actions) of a source example, as strings."""
    return (
        " ".join(scan_task.COMMAND_NAMES[i] for i in example["inputs"]),
        " ".join(scan_task.ACTION_NAMES[i] for i in example["targets"]),
    )


def lines(source):
    """Every example of ``source`` as strings (slow: for small sources)."""
    return [text(source[i]) for i in range(len(source))]


def ids(source):
    """Every example of ``source`` as (inputs, targets) bytes."""
    return [
        (source[i]["inputs"].tobytes(), source[i]["targets"].tobytes()) for i in range(len(source))
    ]


def write(path, pairs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"IN: {c} OUT: {a}\n" for c, a in pairs))


def test_the_grammar_gives_20910_commands_of_1_to_9_words_and_1_to_48_actions():
    commands = scan_grammar.commands()
    assert len(commands) == len(set(commands)) == scan_grammar.NUM_COMMANDS == 20_910
    assert {len(c) for c in commands} == set(range(1, 10))
    lengths = {len(a) for _, a in scan_grammar.pairs()}
    assert (min(lengths), max(lengths)) == (1, 48) and 23 not in lengths
    assert set(scan_grammar.ACTIONS) == {a for _, acts in scan_grammar.pairs() for a in acts}


@pytest.mark.parametrize(
    ("command", "actions"),
    [
        ("jump", ["I_JUMP"]),
        ("jump left", [L, "I_JUMP"]),
        ("turn left twice", [L, L]),
        ("turn around right", [R, R, R, R]),
        ("turn opposite left", [L, L]),
        ("jump around right", [R, "I_JUMP"] * 4),
        ("jump opposite left after walk twice", ["I_WALK", "I_WALK", L, L, "I_JUMP"]),
        ("look thrice and run around left", ["I_LOOK"] * 3 + [L, "I_RUN"] * 4),
        ("jump opposite left and walk thrice", [L, L, "I_JUMP"] + ["I_WALK"] * 3),
        ("jump opposite left after walk around left", [L, "I_WALK"] * 4 + [L, L, "I_JUMP"]),
    ],
)
def test_hand_written_meanings(command, actions):
    assert list(scan_grammar.interpret(command)) == actions == reference(command)


def test_every_command_means_what_an_independent_evaluation_says():
    for command, actions in scan_grammar.pairs():
        assert list(actions) == reference(" ".join(command)), command


@pytest.mark.parametrize(
    "command", ["turn", "jump and walk and run", "walk around", "left jump", "jump twice twice"]
)
def test_commands_outside_the_grammar_are_errors(command):
    with pytest.raises(ValueError, match=f"command '{command}' is not in SCAN's grammar"):
        scan_grammar.interpret(command)


@pytest.mark.parametrize("split", list(RELEASED))
def test_generated_splits_have_the_released_sizes(split):
    parts = scan_splits.generate(split, seed=0)
    train, test = parts["train"], parts["test"]
    assert (len(train), len({e.command for e in train}), len(test)) == RELEASED[split]
    assert len({e.command for e in test}) == len(test)
    assert not {e.command for e in train} & {e.command for e in test}
    assert len({e.command for e in train} | {e.command for e in test}) == 20_910


def test_length_split_cuts_at_22_actions():
    parts = scan_splits.generate("length", seed=0)
    assert max(len(e.actions) for e in parts["train"]) == 22
    lengths = [len(e.actions) for e in parts["test"]]
    assert (min(lengths), max(lengths)) == (24, 48)


@pytest.mark.parametrize("split", list(PRIMITIVE))
def test_addprim_train_repeats_the_bare_primitive_to_a_tenth(split):
    parts = scan_splits.generate(split, seed=0)
    phrase = f" {PRIMITIVE[split]} "
    train = [" ".join(e.command) for e in parts["train"]]
    bare = sum(c == PRIMITIVE[split] for c in train)
    assert bare * 10 == len(train)  # 1,467 of 14,670; 2,189 of 21,890
    assert all(c == PRIMITIVE[split] or phrase not in f" {c} " for c in train)
    assert all(phrase in f" {' '.join(e.command)} " for e in parts["test"])


@pytest.mark.parametrize("split", list(DEFAULT_SIZES))
def test_validation_is_held_out_of_train_by_distinct_command(split):
    task = tasks.get("scan", split=split)
    sizes = tuple(len(task.source(s)) for s in tasks.SPLITS)
    assert sizes == DEFAULT_SIZES[split]
    commands = {s: Counter(c for c, _ in ids(task.source(s))) for s in tasks.SPLITS}
    assert not commands["train"].keys() & commands["validation"].keys()
    assert not commands["test"].keys() & (commands["train"].keys() | commands["validation"])
    assert max(commands["validation"].values()) == 1
    if split in PRIMITIVE:  # every repeat of the added primitive stays in train
        primitive = np.array([scan_task.WORD_IDS[w] for w in PRIMITIVE[split].split()], np.int32)
        assert commands["train"][primitive.tobytes()] == RELEASED[split][0] // 10
    distinct = len(commands["train"]) + len(commands["validation"]) - (split in PRIMITIVE)
    assert len(commands["validation"]) == round(0.1 * distinct)


def test_splits_and_validation_are_determined_by_the_seed():
    def built(split, seed):
        return scan_task.build(split, "generate", None, seed, 10, None)

    simple = built("simple", 0)
    assert simple == built("simple", 0)
    other = built("simple", 1)
    assert {e.command for e in other["test"]} != {e.command for e in simple["test"]}
    length, length_other = built("length", 0), built("length", 1)
    assert length["test"] == length_other["test"]  # the rule, not the seed, makes test
    assert length["validation"] != length_other["validation"]  # the seed draws validation


def test_reader_gives_the_generators_examples_from_released_format_files(tmp_path):
    parts = scan_splits.generate("addprim_jump", seed=0)
    subset = {
        "train": [e for e in parts["train"] if e.command == ("jump",)][:9]
        + [e for e in parts["train"] if e.command != ("jump",)][:60],
        "test": parts["test"][::700],
    }
    for part, examples in subset.items():  # the layout of a clone of brendenlake/SCAN
        path = tmp_path / "add_prim_split" / f"tasks_{part}_addprim_jump.txt"
        write(path, [(" ".join(e.command), " ".join(e.actions)) for e in examples])
    task = tasks.get(
        "scan", split="addprim_jump", source="files", path=str(tmp_path), val_percent=20
    )
    train, validation = scan_splits.hold_out(subset["train"], 20, 0, ("jump",))
    expected = {"train": train, "validation": validation, "test": subset["test"]}
    for part, examples in expected.items():
        got = lines(task.source(part))
        assert got == [(" ".join(e.command), " ".join(e.actions)) for e in examples]
    assert len(task.source("validation")) == 12  # 20% of the 60 other distinct commands
    assert lines(task.source("train")).count(("jump", "I_JUMP")) == 9


def test_reader_reads_a_hand_written_file(tmp_path):
    write(tmp_path / "tasks_test_length.txt", [("walk", "I_WALK")])
    (tmp_path / "tasks_train_length.txt").write_text(
        "IN: jump twice OUT: I_JUMP I_JUMP\n"
        "\n"
        "IN: turn left after look OUT: I_LOOK I_TURN_LEFT\r\n"
        "IN: run opposite right OUT: I_TURN_RIGHT I_TURN_RIGHT I_RUN\n"
    )
    task = tasks.get("scan", split="length", source="files", path=str(tmp_path), val_percent=34)
    train = task.source("train")
    examples = [train[i] for i in range(len(train))] + [task.source("validation")[0]]
    by_id = {e["id"].rsplit(":", 1)[1]: e for e in examples}
    assert sorted(by_id) == ["1", "3", "4"]  # the blank line 2 is skipped
    assert by_id["1"]["inputs"].tolist() == [4, 10] and by_id["1"]["targets"].tolist() == [6, 6]
    assert text(by_id["3"]) == ("turn left after look", "I_LOOK I_TURN_LEFT")
    assert text(by_id["4"]) == ("run opposite right", "I_TURN_RIGHT I_TURN_RIGHT I_RUN")
    assert by_id["1"]["id"] == f"{tmp_path / 'tasks_train_length.txt'}:1"
    assert len(task.source("validation")) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("IN: jump twise OUT: I_JUMP I_JUMP", r":2: unknown command word 'twise' in 'jump twise'"),
        ("IN: jump OUT: I_HOP", r":2: unknown action 'I_HOP'; expected one of I_WALK"),
        ("jump OUT: I_JUMP", r":2: malformed line 'jump OUT: I_JUMP'; expected 'IN: <command"),
        ("IN: jump OUT:", r":2: malformed line 'IN: jump OUT:'"),
        ("IN: jump I_JUMP", r":2: malformed line"),
    ],
)
def test_reader_errors_name_file_line_and_word(tmp_path, line, message):
    write(tmp_path / "tasks_test_simple.txt", [("walk", "I_WALK")])
    path = tmp_path / "tasks_train_simple.txt"
    path.write_text(f"IN: walk OUT: I_WALK\n{line}\n")
    task = tasks.get("scan", source="files", path=str(tmp_path))
    with pytest.raises(ValueError, match=f"^{path}{message}"):
        task.source("test")  # a bad line in any split fails when the first split is read


def test_missing_and_empty_files_say_what_to_do(tmp_path):
    task = tasks.get("scan", split="length", source="files", path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"(?s)tasks_train_length.txt not found.*git clone"):
        task.source("train")
    (tmp_path / "tasks_train_length.txt").write_text("\n")
    write(tmp_path / "tasks_test_length.txt", [("walk", "I_WALK")])
    task = tasks.get("scan", split="length", source="files", path=str(tmp_path))
    with pytest.raises(ValueError, match=r"tasks_train_length.txt: no lines; expected 'IN: "):
        task.source("train")


def test_bad_options_name_argument_value_and_expectation():
    with pytest.raises(
        ValueError,
        match=r"split='jump'; expected one of 'simple', 'length', 'addprim_jump', "
        r"'addprim_turn_left'",
    ):
        tasks.get("scan", split="jump")
    with pytest.raises(ValueError, match=r"source='web'; expected one of 'generate', 'files'"):
        tasks.get("scan", source="web")
    with pytest.raises(ValueError, match=r"path=None for source='files'; expected the folder"):
        tasks.get("scan", source="files")
    with pytest.raises(ValueError, match=r"val_percent=0; expected an int >= 1 and <= 50"):
        tasks.get("scan", val_percent=0)


def test_export_then_read_back_gives_the_same_examples(tmp_path, capsys):
    split = "addprim_turn_left"
    options = {"split": split, "seed": 3, "val_percent": 5}
    argv = ["export", "scan", "--out", str(tmp_path)]
    assert data.main(argv + [f"--option={k}={v}" for k, v in options.items()]) == 0
    assert f"examples to {tmp_path / f'tasks_validation_{split}.txt'}" in capsys.readouterr().out
    first = (tmp_path / f"tasks_train_{split}.txt").read_text().splitlines()[0]
    assert first == "IN: walk opposite left OUT: I_TURN_LEFT I_TURN_LEFT I_WALK"
    generated = tasks.get("scan", **options)
    read = tasks.get("scan", split=split, source="files", path=str(tmp_path))
    for part in tasks.SPLITS:
        assert ids(read.source(part)) == ids(generated.source(part))


def test_export_of_a_task_without_text_format_is_a_clear_error(tmp_path, capsys):
    assert data.main(["export", "copy", "--out", str(tmp_path)]) == 1
    assert "error: task 'copy' has target='per_position', which has no text export yet" in (
        capsys.readouterr().err
    )


def test_spec_reserves_padding_bos_and_eos_of_the_targets():
    spec = tasks.get("scan").spec
    assert (spec.target, spec.vocab_size, spec.max_length) == ("sequence", 14, 9)
    assert (spec.target_vocab_size, spec.num_classes, spec.max_target_length) == (9, 9, 49)
    assert scan_task.ACTION_NAMES[:3] == ("<pad>", "<bos>", "<eos>") and (BOS, EOS) == (1, 2)
    assert spec.decode(np.array([4, 10, 0])) == "jump twice"
    assert spec.decode_target(np.array([6, 6, EOS, 0])) == "I_JUMP I_JUMP <eos>"


def sequence_spec(**changes):
    fields = {
        "name": "s",
        "input_kind": "tokens",
        "max_length": 4,
        "num_classes": 5,
        "target": "sequence",
        "metric": "accuracy",
        "decode": str,
        "vocab_size": 3,
        "target_vocab_size": 5,
        "max_target_length": 3,
        "decode_target": str,
    }
    return TaskSpec(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_vocab_size": 3, "num_classes": 3}, r"target_vocab_size=3 for target='seq"),
        ({"num_classes": 4}, r"num_classes=4 for target='sequence'; expected target_vocab_"),
        ({"max_target_length": 1}, r"max_target_length=1 for target='sequence'; expected >= 2"),
        ({"decode_target": None}, r"decode_target=None for target='sequence'"),
        ({"metric": "mse"}, r"metric='mse' for target='sequence'; expected 'tokens', False"),
        ({"target": "class"}, r"max_target_length=3, decode_target=.* for target='class'"),
    ],
)
def test_sequence_spec_checks_its_fields(changes, message):
    sequence_spec()
    with pytest.raises(ValueError, match=message):
        sequence_spec(**changes)


def test_batches_pad_inputs_and_append_eos_to_targets():
    task = tasks.get("scan", split="length")
    loader = data.make_loader(
        task, "test", global_batch_size=4, seed=0, shuffle=False, process_index=0, process_count=1
    )
    batch = next(iter(loader))
    assert set(batch) == {"inputs", "mask", "targets", "target_mask"}
    assert batch["inputs"].shape == batch["mask"].shape == (4, 9)
    assert batch["targets"].shape == batch["target_mask"].shape == (4, 49)
    assert batch["targets"].dtype == np.int32 and batch["target_mask"].dtype == bool
    source = task.source("test")
    for row in range(4):
        inputs, targets = source[row]["inputs"], source[row]["targets"]
        n, m = len(inputs), len(targets)
        assert batch["inputs"][row].tolist() == inputs.tolist() + [0] * (9 - n)
        assert batch["mask"][row].tolist() == [True] * n + [False] * (9 - n)
        assert batch["targets"][row].tolist() == targets.tolist() + [EOS] + [0] * (48 - m)
        assert batch["target_mask"][row].tolist() == [True] * (m + 1) + [False] * (48 - m)
    longest = max(range(len(source)), key=lambda i: len(source[i]["targets"]))
    assert data.encode(task.spec, source[longest])["target_mask"].all()  # 48 actions + EOS


def test_targets_longer_than_max_target_length_are_an_error():
    spec = sequence_spec(decode=TokenDecoder("abc"), decode_target=TokenDecoder("abcde"))
    example = {"inputs": np.array([1]), "targets": np.array([3, 4, 3]), "id": "s/0"}
    with pytest.raises(ValueError, match=r"example s/0 of task 's' has 4 target tokens with EOS"):
        data.encode(spec, example, truncate=True)


def test_tfds_source_reads_the_scan_builder_of_the_split():
    asked = []
    records = [
        {"commands": b"jump twice", "actions": b"I_JUMP I_JUMP"},
        {"commands": "walk left", "actions": "I_TURN_LEFT I_WALK"},
        {"commands": b"look", "actions": b"I_LOOK"},
    ]

    def as_data_source(builder, split, **kwargs):
        asked.append((builder.name, builder.builder_config.name, split))
        return records

    with tfds.testing.mock_data(as_data_source_fn=as_data_source):
        task = tasks.get("scan", split="addprim_jump", source="tfds", val_percent=50)
        train = lines(task.source("train"))
    assert asked == [("scan", "addprim_jump", "train"), ("scan", "addprim_jump", "test")]
    assert len(train) + len(task.source("validation")) == 3 and len(task.source("test")) == 3
    assert ("jump twice", "I_JUMP I_JUMP") in train + lines(task.source("validation"))
    assert "tensorflow" not in sys.modules


def test_tfds_source_not_prepared_says_how(tmp_path):
    task = tasks.get("scan", split="length", source="tfds", tfds_data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"tfds build scan/length"):
        task.source("train")

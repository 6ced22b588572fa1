"""SCAN (Lake & Baroni 2018) as a sequence-to-sequence task: a command to its action sequence.

``jump opposite left after walk twice`` -> ``I_WALK I_WALK I_TURN_LEFT I_TURN_LEFT I_JUMP``.
The grammar and its meaning are in ``memjax.tasks.scan_grammar``, the splits (``simple``,
``length``, ``addprim_jump``, ``addprim_turn_left``, each one of SCAN's released file pairs)
in ``memjax.tasks.scan_splits``.

Sources (option ``source``):

- ``"generate"`` (default): the 20,910 commands enumerated from the grammar, split by rule;
- ``"files"``: SCAN's released ``tasks_train_<split>.txt`` and ``tasks_test_<split>.txt`` in
  the folder ``path``, directly or in its released subfolder (so ``path`` may be a clone of
  ``brendenlake/SCAN``). A folder written by ``memjax data export`` also holds
  ``tasks_validation_<split>.txt``: that file is then the validation split, train is read
  whole, and ``seed`` and ``val_percent`` are not used;
- ``"tfds"``: tensorflow-datasets' ``scan/<split>`` builder (built from the same released
  files) through ``tfds.data_source``, once prepared in the array_record format.

Lines are ``IN: <command words> OUT: <actions>``, e.g. ``IN: jump twice OUT: I_JUMP I_JUMP``.

Validation is held out of train by ``seed``, never from test: ``val_percent``% (default 10)
of the distinct training commands, the added primitive of an ``addprim`` split excepted, with
all their lines (``scan_splits.hold_out``). At the defaults: simple 15,055 / 1,673 / 4,182,
length 15,291 / 1,699 / 3,920, addprim_jump 13,350 / 1,320 / 7,706 (the 1,467 ``jump`` lines
all in train), addprim_turn_left 19,920 / 1,970 / 1,208 lines (train / validation / test).

Examples (``target="sequence"``): ``inputs`` int32 [n] command word ids, ``targets`` int32 [m]
action ids, without BOS or EOS (``memjax.data`` appends EOS). Ids:

- commands (vocab 14, L = 9): 0 padding, 1..13 ``walk look run jump turn left right opposite
  around twice thrice and after``;
- actions (target vocab 9, M = 49: up to 48 actions and EOS): 0 padding, 1 BOS, 2 EOS, 3..8
  ``I_WALK I_LOOK I_RUN I_JUMP I_TURN_LEFT I_TURN_RIGHT``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memjax import paths
from memjax.tasks.checks import check_choice, check_int
from memjax.tasks.scan_grammar import ACTIONS, MAX_ACTIONS, MAX_COMMAND_WORDS, WORDS
from memjax.tasks.scan_splits import (
    RELEASED_FOLDERS,
    SPLIT_NAMES,
    Example,
    added_primitive,
    generate,
    hold_out,
    released_name,
)
from memjax.tasks.spec import FIRST_TARGET, SPLITS, Task, TaskSpec
from memjax.tasks.tfds_source import TfdsSource
from memjax.tasks.vocab import TokenDecoder

SOURCES = ("generate", "files", "tfds")
COMMAND_NAMES = ("<pad>", *WORDS)
ACTION_NAMES = ("<pad>", "<bos>", "<eos>", *ACTIONS)  # ids 0, BOS, EOS, then FIRST_TARGET..
WORD_IDS = {word: i for i, word in enumerate(COMMAND_NAMES) if i > 0}
ACTION_IDS = {action: i for i, action in enumerate(ACTION_NAMES) if i >= FIRST_TARGET}
_LINE = re.compile(r"IN: (\S.*?) OUT: (\S.*)")
_FORMAT = "'IN: <command words> OUT: <actions>'"


def check_line(command: Sequence[str], actions: Sequence[str], where: str) -> None:
    """Raises ValueError naming ``where`` for a word or an action outside SCAN's vocabulary."""
    for word in command:
        if word not in WORD_IDS:
            raise ValueError(
                f"{where}: unknown command word {word!r} in {' '.join(command)!r}; expected "
                f"one of {', '.join(WORDS)}"
            )
    for action in actions:
        if action not in ACTION_IDS:
            raise ValueError(
                f"{where}: unknown action {action!r}; expected one of {', '.join(ACTIONS)}"
            )


def read_lines(path: Path) -> list[Example]:
    """The lines of one SCAN file, each checked; errors name ``path:line``."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            text, where = line.strip(), f"{path}:{number}"
            if not text:
                continue
            match = _LINE.fullmatch(text)
            if match is None:
                raise ValueError(f"{where}: malformed line {text[:80]!r}; expected {_FORMAT}")
            command, actions = tuple(match[1].split()), tuple(match[2].split())
            check_line(command, actions, where)
            examples.append(Example(command, actions, where))
    if not examples:
        raise ValueError(f"{path}: no lines; expected {_FORMAT} lines (is the file empty?)")
    return examples


def find_file(folder: Path, split: str, part: str) -> Path | None:
    """``folder/<name>`` or ``folder/<released subfolder>/<name>`` if either exists."""
    name = released_name(split, part)
    for candidate in (folder / name, folder / RELEASED_FOLDERS[split] / name):
        if candidate.is_file():
            return candidate
    return None


def _read_files(folder: Path, split: str) -> dict[str, list[Example]]:
    """train and test (and validation, in an exported folder) of ``split`` from ``folder``."""
    parts = {}
    for part in SPLITS:
        path = find_file(folder, split, part)
        if path is not None:
            parts[part] = read_lines(path)
        elif part != "validation":
            name = released_name(split, part)
            raise FileNotFoundError(
                f"SCAN file {name} not found: looked for {folder / name} and "
                f"{folder / RELEASED_FOLDERS[split] / name}\n"
                "To get SCAN's released files: git clone https://github.com/brendenlake/SCAN "
                "and pass path=<the clone> (or a folder written by memjax data export)"
            )
    return parts


@dataclasses.dataclass(frozen=True)
class ScanText:
    """tfds ``scan`` record ``{"commands", "actions"}`` (text) -> ``{"command", "actions"}``
    as tuples of words."""

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "command": tuple(_text(record["commands"]).split()),
            "actions": tuple(_text(record["actions"]).split()),
        }


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_tfds(split: str, data_dir: str | None) -> dict[str, list[Example]]:
    """train and test of tfds's ``scan/<split>``, each record checked."""
    parts = {}
    for part in ("train", "test"):
        records = TfdsSource(f"scan/{split}", part, data_dir, ScanText())
        examples = []
        for index in range(len(records)):
            record = records[index]
            check_line(record["command"], record["actions"], record["id"])
            examples.append(Example(record["command"], record["actions"], record["id"]))
        parts[part] = examples
    return parts


class ScanSource:
    """The examples of one split, encoded once: ``src[i]`` = ``{"inputs", "targets", "id"}``."""

    def __init__(self, examples: Sequence[Example], description: str):
        self.description = description
        self._inputs = [np.array([WORD_IDS[w] for w in e.command], np.int32) for e in examples]
        self._targets = [np.array([ACTION_IDS[a] for a in e.actions], np.int32) for e in examples]
        self._ids = [e.id for e in examples]

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self!r}")
        return {
            "inputs": self._inputs[index],
            "targets": self._targets[index],
            "id": self._ids[index],
        }

    def __repr__(self) -> str:
        return f"ScanSource({self.description}, size={len(self)})"


def build(
    split: str,
    source: str,
    path: str | None,
    seed: int,
    val_percent: int,
    tfds_data_dir: str | None,
) -> dict[str, list[Example]]:
    """The train, validation and test examples of ``split`` read from ``source``."""
    if source == "generate":
        parts = generate(split, seed)
    elif source == "files":
        parts = _read_files(Path(paths.resolve(path)), split)
    else:
        parts = _read_tfds(split, tfds_data_dir)
    if "validation" not in parts:
        keep = added_primitive(split)
        parts["train"], parts["validation"] = hold_out(parts["train"], val_percent, seed, keep)
    return {part: parts[part] for part in SPLITS}


def make(
    *,
    split: str = "simple",
    source: str = "generate",
    path: str | None = None,
    seed: int = 0,
    val_percent: int = 10,
    tfds_data_dir: str | None = None,
    max_examples: int = 0,
) -> Task:
    """SCAN's ``split``, generated, read from released files (``path``) or from tfds.

    ``seed`` draws the ``simple`` split and the validation commands; ``val_percent`` is the
    share of distinct training commands held out as validation; ``tfds_data_dir`` is the tfds
    data directory; ``max_examples`` > 0 keeps only the first that many examples of each split
    (smoke runs and tests; 0 keeps them all).
    """
    check_choice("split", split, SPLIT_NAMES)
    check_choice("source", source, SOURCES)
    if source == "files" and path is None:
        raise ValueError(
            "path=None for source='files'; expected the folder of SCAN's released files "
            "(a clone of brendenlake/SCAN, or a folder written by memjax data export)"
        )
    check_int("seed", seed, 0)
    check_int("val_percent", val_percent, 1, 50)
    check_int("max_examples", max_examples, 0)
    spec = TaskSpec(
        name="scan",
        input_kind="tokens",
        vocab_size=len(COMMAND_NAMES),
        max_length=MAX_COMMAND_WORDS,
        num_classes=len(ACTION_NAMES),
        target="sequence",
        metric="accuracy",
        decode=TokenDecoder(COMMAND_NAMES),
        target_vocab_size=len(ACTION_NAMES),
        max_target_length=MAX_ACTIONS + 1,
        decode_target=TokenDecoder(ACTION_NAMES),
    )
    where = {"generate": f"seed={seed}", "files": f"path={path}", "tfds": "tfds"}[source]
    built: dict[str, list[Example]] = {}

    def make_source(part: str) -> ScanSource:
        if not built:
            built.update(build(split, source, path, seed, val_percent, tfds_data_dir))
        description = f"{split}/{part}, source={source}, {where}, val_percent={val_percent}"
        examples = built[part][:max_examples] if max_examples else built[part]
        if max_examples:
            description += f", max_examples={max_examples}"
        return ScanSource(examples, description)

    export_files = {part: released_name(split, part) for part in SPLITS}
    return Task(spec, make_source, export_files=export_files)

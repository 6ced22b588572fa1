"""SCAN's train/test splits (Lake & Baroni 2018) over the generated commands, and validation.

Each split reproduces one pair of SCAN's released files (``brendenlake/SCAN``):

- ``simple`` (``simple_split/tasks_{train,test}_simple.txt``): a random 80/20 split of the
  20,910 commands, drawn from ``seed``: 16,728 train, 4,182 test (the released files are one
  such draw, whose seed was not published, so only the sizes and the rule match);
- ``length`` (``length_split/tasks_{train,test}_length.txt``): train is the 16,990 commands
  of at most 22 actions, test the 3,920 others (24 to 48 actions; no command has 23);
- ``addprim_jump`` (``add_prim_split/tasks_{train,test}_addprim_jump.txt``): train is every
  command without ``jump`` (13,203) plus the bare command ``jump`` repeated 1,467 times, so
  that it is 10% of the 14,670 training lines (13,204 distinct); test is the 7,706 other
  commands with ``jump``;
- ``addprim_turn_left`` (``add_prim_split/tasks_{train,test}_addprim_turn_left.txt``): the
  same for the phrase ``turn left`` (``turn opposite left`` and ``turn around left`` do not
  contain it): 19,701 commands plus ``turn left`` 2,189 times, 21,890 training lines (19,702
  distinct); test is the 1,208 other commands with ``turn left``.

Validation (``hold_out``) is taken from train, never from test, by distinct command: a seeded
``val_percent``% of the distinct training commands, the added primitive excepted, move with all
their lines to validation. The repeated primitive (``jump``, ``turn left``) therefore stays
whole in train and never appears in validation, and validation shares no command with train.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from memjax.tasks.checks import check_choice
from memjax.tasks.scan_grammar import Actions, Command, pairs

SPLIT_NAMES = ("simple", "length", "addprim_jump", "addprim_turn_left")
RELEASED_FOLDERS = {
    "simple": "simple_split",
    "length": "length_split",
    "addprim_jump": "add_prim_split",
    "addprim_turn_left": "add_prim_split",
}
SIMPLE_TRAIN_FRACTION = 0.8
LENGTH_MAX_TRAIN_ACTIONS = 22
ADDED_PRIMITIVES: dict[str, Command] = {
    "addprim_jump": ("jump",),
    "addprim_turn_left": ("turn", "left"),
}
PRIMITIVE_SHARE = 0.1  # of the training lines that are the added primitive
_SIMPLE_STREAM, _VALIDATION_STREAM = 0, 1  # independent random streams of one seed


class Example(NamedTuple):
    """One line of SCAN: a command, its action sequence, and where it came from."""

    command: Command
    actions: Actions
    id: str


def released_name(split: str, part: str) -> str:
    """The released file name of ``part`` (train, test; validation for our exports)."""
    return f"tasks_{part}_{split}.txt"


def _contains(command: Command, phrase: Command) -> bool:
    n = len(phrase)
    return any(command[i : i + n] == phrase for i in range(len(command) - n + 1))


def added_primitive(split: str) -> Command | None:
    """The primitive command an ``addprim`` split adds (``("jump",)``), else None."""
    return ADDED_PRIMITIVES.get(split)


def generate(split: str, seed: int) -> dict[str, list[Example]]:
    """The train and test lines of ``split`` over all generated commands (no validation yet).

    ``seed`` draws the ``simple`` split; the others are fixed by their rule. Lines keep the
    grammar's order (``simple``: the drawn order); an added primitive's repeats are consecutive.
    """
    check_choice("split", split, SPLIT_NAMES)
    everything = pairs()
    parts: dict[str, list[tuple[Command, Actions]]] = {"train": [], "test": []}
    if split == "simple":
        order = np.random.default_rng([seed, _SIMPLE_STREAM]).permutation(len(everything))
        cut = round(SIMPLE_TRAIN_FRACTION * len(everything))
        parts["train"] = [everything[i] for i in order[:cut]]
        parts["test"] = [everything[i] for i in order[cut:]]
    elif split == "length":
        for pair in everything:
            parts["test" if len(pair[1]) > LENGTH_MAX_TRAIN_ACTIONS else "train"].append(pair)
    else:
        primitive = ADDED_PRIMITIVES[split]
        others = sum(not _contains(command, primitive) for command, _ in everything)
        copies = round(others * PRIMITIVE_SHARE / (1 - PRIMITIVE_SHARE))
        for pair in everything:
            if pair[0] == primitive:
                parts["train"].extend([pair] * copies)
            else:
                parts["test" if _contains(pair[0], primitive) else "train"].append(pair)
    return {
        part: [Example(*pair, f"scan/{split}/{part}/{k}") for k, pair in enumerate(lines)]
        for part, lines in parts.items()
    }


def hold_out(
    train: Sequence[Example], val_percent: int, seed: int, keep: Command | None = None
) -> tuple[list[Example], list[Example]]:
    """(train, validation): ``val_percent``% of train's distinct commands, other than ``keep``,
    drawn from ``seed``, move with all their lines to validation.

    The draw permutes the distinct commands in sorted order, so it depends on the set of
    training commands and the seed, not on the order of the lines (generated, read from files
    or from tfds: the same commands are held out). ``round(val_percent / 100 * distinct)``
    commands are held out.
    """
    distinct = sorted({e.command for e in train} - {keep})
    count = round(val_percent / 100 * len(distinct))
    order = np.random.default_rng([seed, _VALIDATION_STREAM]).permutation(len(distinct))
    held = {distinct[i] for i in order[:count]}
    kept = [e for e in train if e.command not in held]
    validation = [e for e in train if e.command in held]
    return kept, validation

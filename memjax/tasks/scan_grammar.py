"""SCAN's commands and their meaning (Lake & Baroni 2018, "Generalization without systematicity").

The phrase-structure grammar of the paper's appendix (``D[1]`` is the first word of a ``D``,
``u`` or ``turn``, and ``D[2]`` its direction):

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> D[1] opposite D[2] | D[1] around D[2] | D | U
    D -> U left | U right | turn left | turn right
    U -> walk | look | run | jump

Its interpretation ``[[.]]``, a phrase to its action sequence (``u`` a ``U``, ``x`` any phrase;
``right`` as ``left`` with ``I_TURN_RIGHT``):

    [[walk]] = I_WALK   [[look]] = I_LOOK   [[run]] = I_RUN   [[jump]] = I_JUMP
    [[turn left]] = I_TURN_LEFT
    [[u left]] = I_TURN_LEFT [[u]]
    [[turn opposite left]] = I_TURN_LEFT I_TURN_LEFT
    [[u opposite left]] = [[turn opposite left]] [[u]]
    [[turn around left]] = I_TURN_LEFT I_TURN_LEFT I_TURN_LEFT I_TURN_LEFT
    [[u around left]] = I_TURN_LEFT [[u]] I_TURN_LEFT [[u]] I_TURN_LEFT [[u]] I_TURN_LEFT [[u]]
    [[x twice]] = [[x]] [[x]]           [[x thrice]] = [[x]] [[x]] [[x]]
    [[x1 and x2]] = [[x1]] [[x2]]       [[x1 after x2]] = [[x2]] [[x1]]

The grammar has 4 ``U``, 10 ``D``, 34 ``V`` and 102 ``S``, so ``102 + 2 * 102**2 = 20,910``
commands ``C`` (SCAN's ``tasks.txt``) of 1 to 9 words, meaning 1 to 48 actions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

PRIMITIVES = ("walk", "look", "run", "jump")
DIRECTIONS = ("left", "right")
REPEATS = {"twice": 2, "thrice": 3}
CONJUNCTIONS = ("and", "after")
WORDS = (*PRIMITIVES, "turn", *DIRECTIONS, "opposite", "around", *REPEATS, *CONJUNCTIONS)
ACTIONS = ("I_WALK", "I_LOOK", "I_RUN", "I_JUMP", "I_TURN_LEFT", "I_TURN_RIGHT")
NUM_COMMANDS = 20_910
MAX_COMMAND_WORDS = 9
MAX_ACTIONS = 48

_ACTION = dict(zip(PRIMITIVES, ACTIONS[:4], strict=True))
_TURN = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}

Command = tuple[str, ...]
Actions = tuple[str, ...]


def _not_in_grammar(words: Sequence[str], why: str) -> ValueError:
    return ValueError(f"command {' '.join(words)!r} is not in SCAN's grammar: {why}")


def _verb(words: Command, command: Command) -> Actions:
    """[[V]] of a ``V`` phrase: ``u``, ``D``, ``D[1] opposite D[2]`` or ``D[1] around D[2]``."""
    if len(words) == 1 and words[0] in _ACTION:
        return (_ACTION[words[0]],)
    if len(words) in (2, 3) and words[-1] in _TURN and words[0] in (*PRIMITIVES, "turn"):
        act = (_ACTION[words[0]],) if words[0] in _ACTION else ()
        turn = _TURN[words[-1]]
        if len(words) == 2:
            return (turn, *act)
        if words[1] == "opposite":
            return (turn, turn, *act)
        if words[1] == "around":
            return (turn, *act) * 4
    raise _not_in_grammar(command, f"{' '.join(words)!r} is not a V phrase")


def _sentence(words: Command, command: Command) -> Actions:
    """[[S]] of an ``S`` phrase: ``V``, ``V twice`` or ``V thrice``."""
    if not words:
        raise _not_in_grammar(command, "an empty phrase")
    if words[-1] in REPEATS:
        return _verb(words[:-1], command) * REPEATS[words[-1]]
    return _verb(words, command)


def interpret(command: str | Sequence[str]) -> Actions:
    """The action sequence of a command (words, or one string of space-separated words).

    Raises ValueError naming the command for one that SCAN's grammar does not produce.
    """
    words = tuple(command.split() if isinstance(command, str) else command)
    joins = [i for i, word in enumerate(words) if word in CONJUNCTIONS]
    if len(joins) > 1:
        raise _not_in_grammar(words, f"{len(joins)} conjunctions; expected at most one")
    if not joins:
        return _sentence(words, words)
    i = joins[0]
    first, second = _sentence(words[:i], words), _sentence(words[i + 1 :], words)
    return first + second if words[i] == "and" else second + first


def _verb_phrases() -> list[Command]:
    """Every ``V``, in the grammar's order."""
    heads = (*PRIMITIVES, "turn")
    directed = [(head, direction) for head in heads for direction in DIRECTIONS]
    opposite = [(head, "opposite", direction) for head, direction in directed]
    around = [(head, "around", direction) for head, direction in directed]
    return opposite + around + directed + [(u,) for u in PRIMITIVES]


def _sentences() -> list[Command]:
    """Every ``S``: each ``V`` alone, then twice, then thrice."""
    verbs = _verb_phrases()
    return verbs + [verb + (repeat,) for repeat in REPEATS for verb in verbs]


@functools.cache
def commands() -> tuple[Command, ...]:
    """All 20,910 commands, in a fixed order: the 102 ``S``, then ``S and S``, ``S after S``."""
    sentences = _sentences()
    joined = [
        first + (conjunction,) + second
        for conjunction in CONJUNCTIONS
        for first in sentences
        for second in sentences
    ]
    return tuple(sentences + joined)


@functools.cache
def pairs() -> tuple[tuple[Command, Actions], ...]:
    """Every (command, action sequence), in ``commands()``'s order."""
    return tuple((command, interpret(command)) for command in commands())

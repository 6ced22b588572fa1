"""``key=value`` text from a command line, parsed one way for every command.

Values are Python literals where they parse as one (``3``, ``1e-3``, ``True``, ``None``,
``(1, 2)``) and strings otherwise, so ``--option split=train`` and ``--option length=64`` both
read naturally. A memory is written ``name[:key=value,...]`` (``lstm:bptt=False``); a list of
memories separates them with ``;`` (``"lstm;lstm:bptt=False;lru"``), since options have commas,
or with ``,`` when none has options (``"lstm,gru,lru"``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any


def parse_value(text: str) -> Any:
    """A Python literal if ``text`` is one, else ``text`` itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_pair(text: str, argument: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``("key", value)``; ValueError naming ``argument`` otherwise."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{argument}: got {text!r}; expected key=value")
    return key.strip(), parse_value(value)


def parse_pairs(items: Iterable[str], argument: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; a key given twice is an error."""
    pairs: dict[str, Any] = {}
    for item in items:
        key, value = parse_pair(item, argument)
        if key in pairs:
            raise ValueError(f"{argument}: {key!r} given twice ({pairs[key]!r} and {value!r})")
        pairs[key] = value
    return pairs


def parse_memory(text: str) -> tuple[str, dict[str, Any]]:
    """``"lstm:bptt=False,forget_bias=0.5"`` -> ``("lstm", {"bptt": False, "forget_bias": .5})``."""
    name, _, options = text.partition(":")
    items = [item for item in options.split(",") if item]
    return name.strip(), parse_pairs(items, f"memory options of {text!r}")


def parse_memories(text: str) -> list[str]:
    """Memories separated by ``;``, or by ``,`` when none has options, each checked to parse::

    "lstm,gru"                     -> ["lstm", "gru"]
    "lstm;lstm:bptt=False,unroll=2" -> ["lstm", "lstm:bptt=False,unroll=2"]
    """
    separator = ";" if ";" in text or ":" in text else ","
    memories = list(dict.fromkeys(item.strip() for item in text.split(separator) if item.strip()))
    for memory in memories:
        parse_memory(memory)
    return memories

"""What every task is: a spec (vocabulary, length, target, metric, decode) plus sources.

A task's ``source(split)`` returns an object with ``len(src)`` and ``src[i]``; ``src[i]`` is a
dict of unpadded numpy arrays plus an ``"id"`` string naming the example (used in error messages):

- classification: ``{"inputs": int32 [n] or float32 [n, C], "label": int (or float), "id"}``;
- paired: ``{"inputs1": int32 [n1], "inputs2": int32 [n2], "label": int, "id"}``;
- per-position: ``{"inputs": int32 [n], "targets": int32 [n], "loss_mask": bool [n], "id"}``.

``memjax.data`` pads these to ``spec.max_length`` and batches them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, Protocol

import numpy as np

from memjax.tasks.checks import check_choice

SPLITS = ("train", "validation", "test")

InputKind = Literal["tokens", "continuous"]
Target = Literal["class", "per_position"]
Metric = Literal["accuracy", "mse"]


class Source(Protocol):
    """A random-access data source: ``len(src)`` examples, ``src[i]`` a dict of numpy arrays."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Static description of a task, all the trainer needs to build a model and a loss.

    Attributes:
      name: registry name of the task.
      input_kind: ``"tokens"`` (int ids, 0 is padding) or ``"continuous"`` (float features).
      max_length: L, the length every batch is padded to.
      num_classes: width of the output head: classes for ``"accuracy"``, 1 for ``"mse"``;
        for per-position tasks the number of target token ids.
      target: ``"class"`` (one label per sequence) or ``"per_position"`` (targets [L]).
      metric: ``"accuracy"`` or ``"mse"``.
      decode: turns one example's inputs (ids [n] or floats [n, C]) into readable text.
      vocab_size: number of token ids including padding id 0 (tokens only, else 0).
      channels: C, features per step (continuous only, else 0).
      paired: True when every example holds two sequences (inputs [2, L]).
    """

    name: str
    input_kind: InputKind
    max_length: int
    num_classes: int
    target: Target
    metric: Metric
    decode: Callable[[np.ndarray], str] = dataclasses.field(compare=False, repr=False)
    vocab_size: int = 0
    channels: int = 0
    paired: bool = False

    def __post_init__(self) -> None:
        check_choice("input_kind", self.input_kind, ("tokens", "continuous"))
        check_choice("target", self.target, ("class", "per_position"))
        check_choice("metric", self.metric, ("accuracy", "mse"))
        if self.input_kind == "tokens" and self.vocab_size < 2:
            raise ValueError(f"vocab_size={self.vocab_size} for a token task; expected >= 2")
        if self.input_kind == "continuous" and self.channels < 1:
            raise ValueError(f"channels={self.channels} for a continuous task; expected >= 1")


@dataclasses.dataclass(frozen=True)
class Task:
    """A spec plus a factory of per-split sources."""

    spec: TaskSpec
    make_source: Callable[[str], Source] = dataclasses.field(repr=False)
    _sources: dict[str, Source] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def source(self, split: str) -> Source:
        """The random-access source of ``split`` (one of ``SPLITS``), built on first use.

        Building may scan files (LRA's readers) or generate and cache a dataset (ListOps), so
        each split's source is built once per task and then reused.
        """
        check_choice("split", split, SPLITS)
        if split not in self._sources:
            self._sources[split] = self.make_source(split)
        return self._sources[split]


def build_splits_together(build: Callable[[str], Source]) -> Callable[[str], Source]:
    """A ``Task.make_source`` that builds every split on the first request, the requested first.

    For readers that check their files while building a split (LRA's): a missing file or a
    malformed row in any split then fails when the task's data is first read, typically the
    training loader before the first step, not at the first evaluation. ``memjax.tasks.get``
    itself still touches no data (a task's spec needs none).
    """
    built: dict[str, Source] = {}

    def make_source(split: str) -> Source:
        if not built:
            sources = {split: build(split)}
            for other in SPLITS:
                if other not in sources:
                    sources[other] = build(other)
            built.update(sources)  # only once every split has built and passed its checks
        return built[split]

    return make_source

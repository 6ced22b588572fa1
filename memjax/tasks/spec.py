"""What every task is: a spec (vocabulary, length, target, metric, decode) plus sources.

A task's ``source(split)`` returns an object with ``len(src)`` and ``src[i]``; ``src[i]`` is a
dict of unpadded numpy arrays plus an ``"id"`` string naming the example (used in error messages):

- classification: ``{"inputs": int32 [n] or float32 [n, C], "label": int (or float), "id"}``;
- paired: ``{"inputs1": int32 [n1], "inputs2": int32 [n2], "label": int, "id"}``;
- per-position: ``{"inputs": int32 [n], "targets": int32 [n], "loss_mask": bool [n], "id"}``;
- sequence (sequence to sequence): ``{"inputs": int32 [n], "targets": int32 [m], "id"}``, the
  source tokens and the target tokens without BOS or EOS (ids ``FIRST_TARGET`` and up).

Target ids of sequence tasks reserve 0 for padding, ``BOS`` = 1 (the decoder's first input) and
``EOS`` = 2 (appended to every target by ``memjax.data``); the task's tokens start at 3.

``memjax.data`` pads these to ``spec.max_length`` (targets to ``spec.max_target_length``) and
batches them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

import numpy as np

from memjax.tasks.checks import check_choice

SPLITS = ("train", "validation", "test")

InputKind = Literal["tokens", "continuous"]
Target = Literal["class", "per_position", "sequence"]
Metric = Literal["accuracy", "mse"]
TARGETS = ("class", "per_position", "sequence")
BOS, EOS, FIRST_TARGET = 1, 2, 3  # reserved target ids of sequence tasks (0 is padding)


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
        for per-position tasks the number of target token ids; for sequence tasks
        ``target_vocab_size``.
      target: ``"class"`` (one label per sequence), ``"per_position"`` (targets [L]) or
        ``"sequence"`` (targets [M] of their own length, decoded from the inputs).
      metric: ``"accuracy"`` or ``"mse"``.
      decode: turns one example's inputs (ids [n] or floats [n, C]) into readable text.
      vocab_size: number of token ids including padding id 0 (tokens only, else 0).
      channels: C, features per step (continuous only, else 0).
      paired: True when every example holds two sequences (inputs [2, L]).
      target_vocab_size: number of target ids including padding 0, ``BOS`` and ``EOS``
        (sequence tasks only, else 0).
      max_target_length: M, the length targets are padded to, EOS included (sequence tasks
        only, else 0).
      decode_target: turns target ids [m] into readable text (sequence tasks only).
      scored_positions: K, the most ``loss_mask`` positions any one sequence has (per-position
        tasks only; 0 when not bounded). With K > 0 the loss gathers those K positions before
        the output head, so the head computes logits [B, K, C] instead of [B, L, C] (MQAR
        scores its K queries of L tokens over a vocabulary of 8192). ``memjax.data`` refuses
        an example with more.
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
    target_vocab_size: int = 0
    max_target_length: int = 0
    decode_target: Callable[[np.ndarray], str] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    scored_positions: int = 0

    def __post_init__(self) -> None:
        check_choice("input_kind", self.input_kind, ("tokens", "continuous"))
        check_choice("target", self.target, TARGETS)
        check_choice("metric", self.metric, ("accuracy", "mse"))
        if self.input_kind == "tokens" and self.vocab_size < 2:
            raise ValueError(f"vocab_size={self.vocab_size} for a token task; expected >= 2")
        if self.input_kind == "continuous" and self.channels < 1:
            raise ValueError(f"channels={self.channels} for a continuous task; expected >= 1")
        if self.scored_positions and not (
            self.target == "per_position" and 0 < self.scored_positions <= self.max_length
        ):
            raise ValueError(
                f"scored_positions={self.scored_positions} for target={self.target!r} and "
                f"max_length={self.max_length}; expected 0, or 1..max_length for target="
                "'per_position'"
            )
        if self.target == "sequence":
            self._check_sequence()
        elif self.target_vocab_size or self.max_target_length or self.decode_target:
            raise ValueError(
                f"target_vocab_size={self.target_vocab_size}, max_target_length="
                f"{self.max_target_length}, decode_target={self.decode_target!r} for target="
                f"{self.target!r}; expected 0, 0 and None (they are for target='sequence')"
            )

    def _check_sequence(self) -> None:
        if self.input_kind != "tokens" or self.paired or self.metric != "accuracy":
            raise ValueError(
                f"input_kind={self.input_kind!r}, paired={self.paired}, metric={self.metric!r} "
                "for target='sequence'; expected 'tokens', False and 'accuracy'"
            )
        if self.target_vocab_size <= FIRST_TARGET:
            raise ValueError(
                f"target_vocab_size={self.target_vocab_size} for target='sequence'; expected > "
                f"{FIRST_TARGET} (ids 0 padding, {BOS} BOS, {EOS} EOS, then the target tokens)"
            )
        if self.num_classes != self.target_vocab_size:
            raise ValueError(
                f"num_classes={self.num_classes} for target='sequence'; expected "
                f"target_vocab_size={self.target_vocab_size} (the decoder's output width)"
            )
        if self.max_target_length < 2:
            raise ValueError(
                f"max_target_length={self.max_target_length} for target='sequence'; expected "
                ">= 2 (a target token and EOS)"
            )
        if self.decode_target is None:
            raise ValueError("decode_target=None for target='sequence'; expected a decoder")


@dataclasses.dataclass(frozen=True)
class Task:
    """A spec plus a factory of per-split sources.

    ``export_files`` names the file of each split that ``memjax data export`` writes (a split
    not named there goes to ``<split>.txt``); SCAN names them as its released files.
    """

    spec: TaskSpec
    make_source: Callable[[str], Source] = dataclasses.field(repr=False)
    export_files: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)
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

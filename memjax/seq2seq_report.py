"""What a trained encoder-decoder gets right on a split, and what its decoding costs.

:func:`report` decodes every example of a split greedily through the streaming face (and once
more at the target's own length, Lake & Baroni's "oracle lengths") and returns:

- ``exact_match``: the share of sequences decoded exactly, EOS at the right place (the task's
  metric, as ``summary.json``'s ``test_at_best``);
- ``oracle_length_exact_match``: the same with the output length forced to the target's
  (:func:`memjax.decoding.oracle_length`; Lake & Baroni 2018, Experiment 2);
- ``token_accuracy``: the share of target tokens (EOS included) the greedy output has at the
  same position;
- ``by_target_length`` / ``by_command_length``: exact match per number of actions (EOS not
  counted) and per number of command words, as ``{length: [correct, count]}``;
- ``decode_tokens_per_s``: greedy decoding's output tokens (up to EOS) per second over the
  split, compiled once beforehand, on this process's first device;
- ``state_bytes_per_sequence``: what decoding holds per sequence at the split's longest
  source and target (:func:`memjax.seq2seq.state_bytes`: recurrent state or KV cache, plus the
  encoder states attention reads).

It runs on one device over the whole split (every host computes the same numbers).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from memjax import data, decoding
from memjax.seq2seq import Seq2Seq, state_bytes
from memjax.tasks.spec import Task


def _batches(task: Task, split: str, batch_size: int):
    """The split's examples encoded and stacked, ``batch_size`` at a time (the last shorter)."""
    source = task.source(split)
    for start in range(0, len(source), batch_size):
        rows = [
            data.encode(task.spec, source[i])
            for i in range(start, min(start + batch_size, len(source)))
        ]
        yield {key: np.stack([row[key] for row in rows]) for key in rows[0]}


def _tally(table: dict[int, list[int]], lengths: np.ndarray, exact: np.ndarray) -> None:
    for length, right in zip(lengths.tolist(), exact.tolist(), strict=True):
        entry = table.setdefault(int(length), [0, 0])
        entry[0] += int(right)
        entry[1] += 1


def report(model: Seq2Seq, task: Task, split: str, batch_size: int) -> dict[str, Any]:
    """Greedy and oracle-length decoding of every example of ``split`` (module docstring)."""
    model.eval()
    max_length = task.spec.max_target_length
    totals = dict(sequences=0, exact=0, oracle=0, tokens=0, right_tokens=0, decoded=0)
    by_target: dict[int, list[int]] = {}
    by_command: dict[int, list[int]] = {}
    longest_source = longest_target = 0
    first = next(_batches(task, split, batch_size))
    decoding.greedy(model, first["inputs"], first["mask"], max_length).block_until_ready()
    decode_seconds = 0.0
    for batch in _batches(task, split, batch_size):
        targets, target_mask = batch["targets"], batch["target_mask"].astype(bool)
        start = time.perf_counter()
        greedy = np.asarray(
            jax.block_until_ready(
                decoding.greedy(model, batch["inputs"], batch["mask"], max_length)
            )
        )
        decode_seconds += time.perf_counter() - start
        oracle = np.asarray(
            decoding.oracle_length(
                model, batch["inputs"], batch["mask"], target_mask.sum(-1), max_length
            )
        )
        exact = np.all(greedy == targets, axis=-1)
        totals["sequences"] += len(targets)
        totals["exact"] += int(exact.sum())
        totals["oracle"] += int(np.all(oracle == targets, axis=-1).sum())
        totals["tokens"] += int(target_mask.sum())
        totals["right_tokens"] += int(((greedy == targets) & target_mask).sum())
        totals["decoded"] += int((greedy != 0).sum())
        actions = target_mask.sum(-1) - 1  # EOS is not an action
        words = batch["mask"].sum(-1)
        _tally(by_target, actions, exact)
        _tally(by_command, words, exact)
        longest_source = max(longest_source, int(words.max()))
        longest_target = max(longest_target, int(target_mask.sum(-1).max()))
    sequences = max(totals["sequences"], 1)
    return {
        "split": split,
        "sequences": totals["sequences"],
        "exact_match": totals["exact"] / sequences,
        "oracle_length_exact_match": totals["oracle"] / sequences,
        "token_accuracy": totals["right_tokens"] / max(totals["tokens"], 1),
        "by_target_length": dict(sorted(by_target.items())),
        "by_command_length": dict(sorted(by_command.items())),
        "decode_tokens_per_s": totals["decoded"] / max(decode_seconds, 1e-9),
        "state_bytes_per_sequence": state_bytes(model, longest_source, longest_target),
    }

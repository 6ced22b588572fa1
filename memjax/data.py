"""The input pipeline: task source -> shuffle -> encode -> batch -> this host's shard, on grain.

    loader = memjax.data.make_loader(task, "train", global_batch_size=32, seed=0)
    it = iter(loader)
    batch = next(it)             # dict of numpy arrays, ready for jax.device_put
    state = it.get_state()       # bytes; it.set_state(state) resumes exactly there

Batches (B = global_batch_size // process_count, L = task.spec.max_length):

- classification: ``inputs`` int32 [B, L] (float32 [B, L, C] for continuous inputs),
  ``mask`` bool [B, L] (True = valid; padding only at the end), ``label`` int32 [B]
  (float32 [B] for regression);
- paired: ``inputs`` [B, 2, L], ``mask`` [B, 2, L], ``label`` [B];
- per-position: ``inputs`` [B, L], ``mask`` [B, L], ``targets`` int32 [B, L], ``loss_mask``
  bool [B, L];
- sequence (M = task.spec.max_target_length): ``inputs`` int32 [B, L], ``mask`` bool [B, L],
  ``targets`` int32 [B, M], the target ids with ``EOS`` appended (``memjax.tasks.spec``: 0
  padding, 1 BOS, 2 EOS), and ``target_mask`` bool [B, M] (True at the targets and their EOS).
  A teacher-forced decoder reads ``[BOS, targets[:, :-1]]``.

Token inputs are padded with id 0. ``python -m memjax.data show TASK`` prints examples and
stats; ``python -m memjax.data export TASK --out DIR`` writes a sequence task's splits as
``IN: <inputs> OUT: <targets>`` lines (SCAN's released format), one file per split.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grain.python as grain
import jax
import numpy as np
from absl import flags

from memjax import paths, tasks
from memjax.options import parse_pairs
from memjax.tasks.checks import check_int
from memjax.tasks.spec import EOS, Task, TaskSpec


def _pad(
    spec: TaskSpec, values: np.ndarray, dtype: type, example_id: str, truncate: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Pads [n, ...] to [L, ...] with zeros; returns (padded, mask bool [L])."""
    values = np.asarray(values)
    length, limit = len(values), spec.max_length
    if length > limit:
        if not truncate:
            raise ValueError(
                f"example {example_id} of task {spec.name!r} has length {length} > max_length "
                f"{limit}; pass truncate=True to cut it (LRA truncates text and retrieval) or "
                "raise the task's max_length"
            )
        values, length = values[:limit], limit
    return _fill(values, limit, dtype)


def _fill(values: np.ndarray, limit: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """[n, ...] with n <= limit -> (zeros [limit, ...] holding ``values`` first, mask [limit])."""
    padded = np.zeros((limit, *values.shape[1:]), dtype=dtype)
    padded[: len(values)] = values
    mask = np.zeros(limit, dtype=bool)
    mask[: len(values)] = True
    return padded, mask


def _sequence_targets(
    spec: TaskSpec, targets: np.ndarray, example_id: str
) -> tuple[np.ndarray, np.ndarray]:
    """Target ids [m] -> (ids with EOS, padded to [M]; target_mask bool [M])."""
    with_eos = np.append(np.asarray(targets, dtype=np.int32), np.int32(EOS))
    if len(with_eos) > spec.max_target_length:
        raise ValueError(
            f"example {example_id} of task {spec.name!r} has {len(with_eos)} target tokens with "
            f"EOS > max_target_length {spec.max_target_length}; raise the task's "
            "max_target_length (targets are never truncated)"
        )
    return _fill(with_eos, spec.max_target_length, np.int32)


def encode(
    spec: TaskSpec, example: dict[str, Any], truncate: bool = False
) -> dict[str, np.ndarray]:
    """One source example -> fixed-shape arrays (the batch layout without the batch axis)."""
    dtype = np.int32 if spec.input_kind == "tokens" else np.float32
    example_id = str(example.get("id", "?"))
    if spec.paired:
        first, mask1 = _pad(spec, example["inputs1"], dtype, example_id, truncate)
        second, mask2 = _pad(spec, example["inputs2"], dtype, example_id, truncate)
        return {
            "inputs": np.stack([first, second]),
            "mask": np.stack([mask1, mask2]),
            "label": np.int32(example["label"]),
        }
    inputs, mask = _pad(spec, example["inputs"], dtype, example_id, truncate)
    if spec.target == "per_position":
        targets, _ = _pad(spec, example["targets"], np.int32, example_id, truncate)
        loss_mask, _ = _pad(spec, example["loss_mask"], bool, example_id, truncate)
        scored = int(loss_mask.sum())
        if spec.scored_positions and scored > spec.scored_positions:
            raise ValueError(
                f"example {example_id} of task {spec.name!r} scores {scored} positions; "
                f"expected at most the task's scored_positions={spec.scored_positions}"
            )
        return {"inputs": inputs, "mask": mask, "targets": targets, "loss_mask": loss_mask}
    if spec.target == "sequence":
        targets, target_mask = _sequence_targets(spec, example["targets"], example_id)
        return {"inputs": inputs, "mask": mask, "targets": targets, "target_mask": target_mask}
    label_dtype = np.float32 if spec.metric == "mse" else np.int32
    return {"inputs": inputs, "mask": mask, "label": label_dtype(example["label"])}


class Encode(grain.MapTransform):
    """grain transform: ``encode`` every example of ``spec``'s task."""

    def __init__(self, spec: TaskSpec, truncate: bool):
        self.spec, self.truncate = spec, truncate

    def map(self, element: dict[str, Any]) -> dict[str, np.ndarray]:
        return encode(self.spec, element, self.truncate)


class HostShard:
    """This host's contiguous share of a source: records [start, stop).

    ``drop_remainder`` gives every host ``len(source) // count`` records (equal step counts);
    otherwise the shares differ by at most one and together hold every record once. (grain's
    own ShardOptions path reads only ``len // count`` records per host even when told not to
    drop the remainder, so uneven shards lose records there.)
    """

    def __init__(self, source: tasks.Source, index: int, count: int, drop_remainder: bool):
        n = len(source)
        if drop_remainder:
            self.start, self.stop = index * (n // count), (index + 1) * (n // count)
        else:
            self.start, self.stop = index * n // count, (index + 1) * n // count
        self.source, self.index, self.count = source, index, count

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, record: int) -> dict[str, Any]:
        return self.source[self.start + int(record)]

    def __repr__(self) -> str:
        where = f"host {self.index} of {self.count}: {self.start}:{self.stop}"
        return f"HostShard({self.source!r}, {where})"


# grain reads this flag of its own (in this process, when an iterator starts its workers).
_GRAIN_WORKER_FLAG = "grain_enable_multiprocess_worker_profiling"
# The note grain's traceback filter appends to an exception raised inside its pipeline.
_GRAIN_NOTE = "Grain has removed its internal frames"


def _let_grain_read_its_worker_flag() -> None:
    """Lets grain read ``--grain_enable_multiprocess_worker_profiling`` outside an absl app.

    grain reads that flag's value when an iterator with ``worker_count > 0`` starts its
    workers, which raises UnparsedFlagAccessError while absl's FLAGS are unparsed (any program
    that is not an absl app). absl answers a read of an unparsed flag that is marked present, so
    only that grain flag is marked (keeping its value; grain does the same for its debug flags
    in its workers): FLAGS stay unparsed and every other flag is untouched, for the caller's own
    ``app.run`` or ``FLAGS(argv)`` to parse later.
    """
    if flags.FLAGS.is_parsed() or _GRAIN_WORKER_FLAG not in flags.FLAGS:
        return
    flag = flags.FLAGS[_GRAIN_WORKER_FLAG]
    if not flag.present:
        flag.present = 1


def _restated(error: Exception) -> Exception | None:
    """A fresh copy of ``error`` (same type and args) if grain annotated it, else None."""
    if not any(_GRAIN_NOTE in str(note) for note in getattr(error, "__notes__", ())):
        return None
    try:
        return type(error)(*error.args)
    except Exception:  # a type that cannot be rebuilt from its args: leave it as grain made it
        return None


class LoaderIterator:
    """``iter(Loader)``: grain's DataLoaderIterator (``get_state``, ``set_state``), whose errors
    end with their own message.

    grain's traceback filter appends a note ("Grain has removed its internal frames ...") to an
    exception raised inside its pipeline, so the note, not the error (say, a reader's
    ``file:line``), would be the last thing printed. Such an error is raised again here, same
    type and message, from the annotated one (which keeps the traceback into memjax's code).
    """

    def __init__(self, iterator: Any):
        self._iterator = iterator

    def __iter__(self) -> LoaderIterator:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        try:
            return next(self._iterator)
        except StopIteration:
            raise
        except Exception as error:
            again = _restated(error)
            if again is None:
                raise
            raise again from error

    def get_state(self) -> bytes:
        return self._iterator.get_state()

    def set_state(self, state: bytes) -> None:
        self._iterator.set_state(state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iterator, name)


class Loader(grain.DataLoader):
    """grain's DataLoader, iterating as ``LoaderIterator``."""

    def __iter__(self) -> LoaderIterator:  # type: ignore[override]
        return LoaderIterator(super().__iter__())


def make_loader(
    task: Task,
    split: str,
    *,
    global_batch_size: int,
    seed: int,
    shuffle: bool = True,
    num_epochs: int | None = None,
    drop_remainder: bool = True,
    process_index: int | None = None,
    process_count: int | None = None,
    truncate: bool = False,
    worker_count: int = 0,
) -> Loader:
    """A grain DataLoader over this host's shard of ``split``.

    The records are split into ``process_count`` contiguous shards (``HostShard``) and host
    ``process_index`` (default: JAX's) reads its own, in batches of ``global_batch_size //
    process_count``, each epoch in a fresh order drawn from ``seed`` and the host index
    (grain's IndexSampler). ``num_epochs=None`` repeats forever. With ``drop_remainder`` the
    shards are equal and a last partial batch is dropped; without it every example is read
    exactly once per epoch across hosts (for evaluation).

    ``iter(loader)`` has ``get_state()`` (JSON bytes) and ``set_state(state)``, which resumes
    with exactly the batches an uninterrupted run would have seen. The batch order depends on
    ``worker_count`` (grain deals records to workers in turn), so a state restores only into a
    loader with the same arguments.

    Records are read in the loading process itself (grain's ``ReadOptions(num_threads=0)``, its
    advice for sources already in memory, as every memjax task's is or reads from local files):
    grain's default 16 read threads and 500-record prefetch buffer scan that buffer once per
    record: with them a batch of 100 took 3.5x as long for MNIST-1D and 2.7x for MQAR (grain
    0.2.18, this project's 2-core CPU).

    Raises ValueError naming the argument for bad arguments, and (while iterating) for an
    example longer than the task's max_length unless ``truncate``.
    """
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    check_int("process_count", process_count, 1)
    check_int("process_index", process_index, 0, process_count - 1)
    check_int("global_batch_size", global_batch_size, 1)
    if global_batch_size % process_count:
        raise ValueError(
            f"global_batch_size={global_batch_size}; expected a multiple of "
            f"process_count={process_count}"
        )
    check_int("seed", seed, 0, 2**32 - 1)
    if num_epochs is not None:
        check_int("num_epochs", num_epochs, 1)
    check_int("worker_count", worker_count, 0)
    if worker_count:
        _let_grain_read_its_worker_flag()
    shard = HostShard(task.source(split), process_index, process_count, drop_remainder)
    if len(shard) == 0:
        raise ValueError(
            f"split {split!r} of task {task.spec.name!r} has {len(shard.source)} examples "
            f"({shard.source!r}), too few to give each of process_count={process_count} hosts one"
        )
    host_seed = int(np.random.SeedSequence([seed, process_index]).generate_state(1)[0])
    sampler = grain.IndexSampler(
        num_records=len(shard),
        shard_options=grain.NoSharding(),
        shuffle=shuffle,
        num_epochs=num_epochs,
        seed=host_seed,
    )
    return Loader(
        data_source=shard,
        sampler=sampler,
        operations=[
            Encode(task.spec, truncate),
            grain.Batch(global_batch_size // process_count, drop_remainder=drop_remainder),
        ],
        worker_count=worker_count,
        shard_options=grain.NoSharding(),
        read_options=grain.ReadOptions(num_threads=0, prefetch_buffer_size=0),
    )


def example_length(example: dict[str, Any]) -> int:
    """Steps in a source example (the longer document for paired tasks)."""
    if "inputs1" in example:
        return max(len(example["inputs1"]), len(example["inputs2"]))
    return len(example["inputs"])


def _clip(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else f"{text[:limit]} ... (+{len(text) - limit} chars)"


def _summary(spec: TaskSpec) -> str:
    """One line: the spec's kind, vocabulary, lengths, outputs, target and metric."""
    kind = f"vocab {spec.vocab_size}" if spec.input_kind == "tokens" else f"{spec.channels} ch"
    line = (
        f"task {spec.name}: {spec.input_kind} ({kind}), max_length {spec.max_length}, "
        f"{spec.num_classes} {'outputs' if spec.metric == 'mse' else 'classes'}, "
        f"target {spec.target}, metric {spec.metric}" + (", paired" if spec.paired else "")
    )
    if spec.target == "sequence":
        line += (
            f", target vocab {spec.target_vocab_size} (0 pad, 1 BOS, 2 EOS), "
            f"max_target_length {spec.max_target_length} (EOS included)"
        )
    return line


def _print_example(spec: TaskSpec, example: dict[str, Any], out) -> None:
    what = f"length {example_length(example)}"
    if "label" in example:
        what += f", label {example['label']}"
    if spec.target == "sequence":
        what += f", {len(example['targets'])} targets"
    print(f"\nexample {example['id']} ({what}):", file=out)
    if spec.paired:
        print("  document 1: " + _clip(spec.decode(example["inputs1"])), file=out)
        print("  document 2: " + _clip(spec.decode(example["inputs2"])), file=out)
    else:
        print(_clip(spec.decode(example["inputs"])), file=out)
    if spec.target == "per_position":
        answers = spec.decode(example["targets"][example["loss_mask"]])
        print("  targets at loss positions: " + _clip(answers), file=out)
    if spec.target == "sequence":
        print("  targets: " + _clip(spec.decode_target(example["targets"])), file=out)


def _print_lengths(title: str, lengths: np.ndarray, limit: str, too_long: int, out) -> None:
    """Spread and histogram (whole lengths, at most 10 bins) of int ``lengths``, after
    ``title``; ``too_long`` of them exceed ``limit``."""
    p50, p90, p99 = np.percentile(lengths, [50, 90, 99])
    print(
        f"\n{title}: min {lengths.min()}, median {p50:.0f}, p90 {p90:.0f}, p99 {p99:.0f}, "
        f"max {lengths.max()}, mean {lengths.mean():.1f}; longer than {limit}: {too_long}",
        file=out,
    )
    low, high = int(lengths.min()), int(lengths.max())
    width = -(-(high - low + 1) // 10)  # whole lengths per bin, at most 10 bins
    counts, edges = np.histogram(lengths, bins=np.arange(low, high + width + 1, width))
    for c, lo in zip(counts, edges[:-1], strict=True):
        span = f"{lo:8d}" + (f" - {lo + width - 1:8d}" if width > 1 else " " * 11)
        print(f"  {span} | {'#' * int(40 * c / counts.max())} {c}", file=out)


def show(
    task_name: str,
    split: str = "train",
    n: int = 3,
    options: dict[str, Any] | None = None,
    stats_limit: int = 1000,
    out=None,
) -> None:
    """Prints the spec, split sizes, ``n`` decoded examples of ``split`` and its length spread.

    Lengths are measured on up to ``stats_limit`` examples spread evenly over the split; the
    same pass measures how fast the source produces examples. Sequence tasks also print their
    targets and the spread of the target lengths.
    """
    out = out or sys.stdout
    task = tasks.get(task_name, **(options or {}))
    spec = task.spec
    print(_summary(spec), file=out)
    sizes = {s: len(task.source(s)) for s in tasks.SPLITS}
    print("split sizes: " + ", ".join(f"{s} {k}" for s, k in sizes.items()), file=out)
    source = task.source(split)
    for index in range(min(n, len(source))):
        _print_example(spec, source[index], out)
    count = min(stats_limit, len(source))
    indices = np.linspace(0, len(source) - 1, count).astype(int)
    start = time.perf_counter()
    examples = [source[i] for i in indices]
    rate = count / max(time.perf_counter() - start, 1e-9)
    lengths = np.array([example_length(example) for example in examples])
    over = f"max_length {spec.max_length}"
    title = f"lengths over {count} of {len(source)} {split} examples"
    _print_lengths(title, lengths, over, int((lengths > spec.max_length).sum()), out)
    if spec.target == "sequence":
        targets = np.array([len(example["targets"]) for example in examples])
        limit = spec.max_target_length - 1
        over = f"max_target_length {spec.max_target_length} less EOS"
        _print_lengths(
            "target lengths (EOS not counted)", targets, over, int((targets > limit).sum()), out
        )
    print(f"source speed: {rate:.0f} examples/s (one process)", file=out)


def export(
    task_name: str, folder: str, options: dict[str, Any] | None = None, out=None
) -> dict[str, Path]:
    """Writes every split of a sequence task as text, one file per split; returns the paths.

    A line is ``IN: <decoded inputs> OUT: <decoded targets>`` (SCAN's released format), the
    file of a split ``task.export_files[split]`` or else ``<split>.txt`` in ``folder`` (made
    if missing; existing files are replaced). Other tasks have no text export yet: ValueError.
    """
    out = out or sys.stdout
    task = tasks.get(task_name, **(options or {}))
    spec = task.spec
    if spec.target != "sequence":
        raise ValueError(
            f"task {task_name!r} has target={spec.target!r}, which has no text export yet; "
            "export writes sequence-to-sequence tasks (target='sequence') as "
            "'IN: <inputs> OUT: <targets>' lines"
        )
    root = Path(paths.resolve(folder))
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for split in tasks.SPLITS:
        source = task.source(split)
        lines = []
        for index in range(len(source)):
            example = source[index]
            command, answer = spec.decode(example["inputs"]), spec.decode_target(example["targets"])
            line = f"IN: {command} OUT: {answer}"
            if "\n" in line or line.count(" OUT: ") != 1:
                raise ValueError(
                    f"example {example['id']} does not fit on one IN/OUT line: {line!r}"
                )
            lines.append(line + "\n")
        path = root / task.export_files.get(split, f"{split}.txt")
        partial = path.with_name(path.name + ".partial")
        partial.write_text("".join(lines), encoding="utf-8")
        partial.replace(path)
        written[split] = path
        print(f"wrote {len(lines)} {split} examples to {path}", file=out)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m memjax.data show TASK [--split S] [--n N] [--option key=value ...]`` or
    ``python -m memjax.data export TASK --out DIR [--option key=value ...]``.

    Returns the exit status: 0, or 1 after printing why (missing data, a bad option).
    """
    parser = argparse.ArgumentParser(prog="python -m memjax.data")
    commands = parser.add_subparsers(dest="command", required=True)
    show_parser = commands.add_parser("show", help="print decoded examples and length stats")
    show_parser.add_argument("task", choices=tasks.names())
    show_parser.add_argument("--split", default="train", choices=tasks.SPLITS)
    show_parser.add_argument("--n", type=int, default=3, help="examples to print")
    show_parser.add_argument(
        "--stats-limit", type=int, default=1000, help="examples measured for the length stats"
    )
    export_parser = commands.add_parser(
        "export",
        help="write a sequence task's splits as 'IN: ... OUT: ...' text files, one per split",
    )
    export_parser.add_argument("task", choices=tasks.names())
    export_parser.add_argument("--out", required=True, help="folder the files are written to")
    for sub in (show_parser, export_parser):
        sub.add_argument(
            "--option", action="append", default=[], help="task option key=value (repeatable)"
        )
    args = parser.parse_args(argv)
    try:
        options = parse_pairs(args.option, "--option")
        if args.command == "show":
            show(args.task, args.split, args.n, options, args.stats_limit)
        else:
            export(args.task, args.out, options)
    except (FileNotFoundError, ValueError) as e:  # missing data, bad options: say, don't trace
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

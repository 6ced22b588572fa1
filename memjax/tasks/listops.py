"""ListOps (Nangia & Bowman 2018) as in Long Range Arena: evaluate nested list operations.

An expression is a tree over MAX, MIN, MED (median, truncated to an integer) and SM (sum mod 10)
of digits, written prefix with a closing bracket: ``[MAX 2 9 [MIN 4 7 ] 0 ]`` = 9. The label is
its value (10 classes).

Generator (LRA's ``lra_benchmarks/data/listops.py`` procedure): below ``max_depth`` a node is a
digit with probability 0.75, otherwise an operator with 2..``max_args`` children; at
``max_depth`` it is a digit. Expressions are drawn until ``num_train + num_validation +
num_test`` unique ones with ``min_length < length < max_length`` tokens are kept (a digit counts
1, an operator its token plus its closing bracket), then split in order. Uniqueness across
splits needs the whole set at once, so the dataset is generated once (about 1,000 kept
expressions/s on one CPU core: the default 100,000 in two to three minutes) and cached under
``<data_dir>/listops/<hash>/`` (about 100 MB), memory-mapped from then on.

Reader: LRA's released ``listops-1000/basic_{train,val,test}.tsv`` (header ``Source\\tTarget``,
sources written with parentheses, which are dropped as LRA's fixed pipeline does).

Ids: 0 padding, 1..10 digits ``0``..``9``, 11 ``[MIN``, 12 ``[MAX``, 13 ``[MED``, 14 ``[SM``,
15 ``]``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from memjax.tasks import storage
from memjax.tasks.checks import check_choice, check_int
from memjax.tasks.generated import split_sizes
from memjax.tasks.spec import SPLITS, Task, TaskSpec, build_splits_together
from memjax.tasks.tsv import TsvFile
from memjax.tasks.vocab import TokenDecoder

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
NAMES = ("<pad>", *map(str, range(10)), *OPERATORS, "]")
IDS = {name: i for i, name in enumerate(NAMES)}
FIRST_DIGIT, FIRST_OPERATOR, CLOSE = 1, 11, 15
DIGIT_PROBABILITY = 0.75
GENERATOR_VERSION = 1  # part of the cache key: bump when generation changes
PATIENCE = 200_000  # draws without a new kept expression before generation gives up
LRA_FILES = {"train": "basic_train.tsv", "validation": "basic_val.tsv", "test": "basic_test.tsv"}


def _apply(operator: int, args: list[int]) -> int:
    name = NAMES[operator]
    if name == "[MIN":
        return min(args)
    if name == "[MAX":
        return max(args)
    if name == "[MED":  # int(np.median(args)) as LRA computed it, for digits
        ordered, mid = sorted(args), len(args) // 2
        return ordered[mid] if len(args) % 2 else (ordered[mid - 1] + ordered[mid]) // 2
    return sum(args) % 10


def generate_tree(
    rng: random.Random, max_depth: int, max_args: int, out: list[int], depth: int = 1
) -> int:
    """Appends one random expression's ids to ``out`` and returns its value.

    Uses only ``rng.random()``, whose stream Python guarantees across versions.
    """
    if depth >= max_depth or rng.random() < DIGIT_PROBABILITY:
        digit = int(rng.random() * 10)
        out.append(FIRST_DIGIT + digit)
        return digit
    operator = FIRST_OPERATOR + int(rng.random() * len(OPERATORS))
    num_args = 2 + int(rng.random() * (max_args - 1))
    out.append(operator)
    args = [generate_tree(rng, max_depth, max_args, out, depth + 1) for _ in range(num_args)]
    out.append(CLOSE)
    return _apply(operator, args)


def generate(
    *, num: int, seed: int, min_length: int, max_length: int, max_depth: int, max_args: int
) -> dict[str, np.ndarray]:
    """``num`` unique expressions, concatenated.

    Returns tokens uint8 [total], offsets int64 [num + 1] (example i is
    ``tokens[offsets[i]:offsets[i + 1]]``) and labels int8 [num].
    """
    rng = random.Random(seed)
    seen: set[bytes] = set()
    pieces, labels = [], []
    draws_since_kept = 0
    while len(labels) < num:
        if draws_since_kept > PATIENCE:
            raise ValueError(
                f"ListOps generation kept {len(labels)} of num={num} unique expressions and then "
                f"nothing in {PATIENCE} draws with min_length={min_length}, "
                f"max_length={max_length}, max_depth={max_depth}, max_args={max_args}; "
                "widen the length bounds, raise max_depth or ask for fewer examples"
            )
        draws_since_kept += 1
        out: list[int] = []
        value = generate_tree(rng, max_depth, max_args, out)
        if min_length < len(out) < max_length:
            tokens = np.asarray(out, dtype=np.uint8)
            key = tokens.tobytes()
            if key not in seen:
                seen.add(key)
                pieces.append(tokens)
                labels.append(value)
                draws_since_kept = 0
    offsets = np.cumsum([0] + [len(p) for p in pieces], dtype=np.int64)
    return {
        "tokens": np.concatenate(pieces),
        "offsets": offsets,
        "labels": np.asarray(labels, dtype=np.int8),
    }


class GeneratedListOps:
    """Examples ``[start, stop)`` of the generated set cached in ``folder``.

    The arrays are memory-mapped on first access, and not pickled (grain workers map their own).
    """

    def __init__(self, folder: Path, split: str, start: int, stop: int):
        self.folder, self.split, self.start, self.stop = folder, split, start, stop
        self._arrays: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self!r}")
        if self._arrays is None:
            self._arrays = storage.load_arrays(self.folder)
        offsets = self._arrays["offsets"]
        begin, end = offsets[self.start + index], offsets[self.start + index + 1]
        return {
            "inputs": np.asarray(self._arrays["tokens"][begin:end], dtype=np.int32),
            "label": int(self._arrays["labels"][self.start + index]),
            "id": f"listops/{self.split}/{index}",
        }

    def __repr__(self) -> str:
        return f"GeneratedListOps(cache={self.folder.name}, split={self.split}, size={len(self)})"


_LRA_WORDS = {name.encode(): i for i, name in enumerate(NAMES) if i > 0}
_LRA_SKIPPED = {b"(", b")"}  # LRA's release wraps every pair in parentheses
_LRA_TARGETS = {str(d).encode(): d for d in range(10)}


def _check_lra_row(fields: list[bytes], where: str) -> None:
    """Raises ValueError naming ``where`` unless the row is a ListOps source and a digit target."""
    source, target = fields
    unknown = set(source.split()) - _LRA_SKIPPED - _LRA_WORDS.keys()
    if unknown:
        names = sorted(w.decode("utf-8", "replace") for w in unknown)
        raise ValueError(f"{where}: unknown ListOps tokens {names}; expected {NAMES[1:]}")
    if target.strip() not in _LRA_TARGETS:
        raise ValueError(f"{where}: Target {target!r}; expected a digit 0..9")


class LraListOps:
    """One of LRA's ``basic_*.tsv`` files, parsed row by row on access.

    Opening scans the file once and checks every row (header, two fields, known tokens, a digit
    target), raising ValueError with ``file:line`` for the first bad one.
    """

    def __init__(self, path: Path):
        if not path.exists():
            raise storage.missing_lra_file(path, "LRA ListOps file")
        self.file = TsvFile(path, num_columns=2, header=("Source", "Target"), check=_check_lra_row)

    def __len__(self) -> int:
        return len(self.file)

    def __getitem__(self, index: int) -> dict[str, Any]:
        fields = self.file.row(int(index))
        _check_lra_row(fields, self.file.where(int(index)))
        source, target = fields
        words = [w for w in source.split() if w not in _LRA_SKIPPED]
        return {
            "inputs": np.asarray([_LRA_WORDS[w] for w in words], dtype=np.int32),
            "label": _LRA_TARGETS[target.strip()],
            "id": self.file.where(int(index)),
        }

    def __repr__(self) -> str:
        return f"LraListOps({self.file.path})"


def make(
    *,
    source: str = "generate",
    seed: int = 0,
    num_train: int = 96_000,
    num_validation: int = 2_000,
    num_test: int = 2_000,
    min_length: int = 500,
    max_length: int = 2_000,
    max_depth: int = 10,
    max_args: int = 10,
    data_dir: str | None = None,
    lra_dir: str | None = None,
) -> Task:
    """ListOps, generated (``source="generate"``) or read from LRA's release (``"lra"``).

    ``max_length`` is both the generator's exclusive bound and the task length L; the
    generation options are ignored when reading LRA's files.
    """
    check_choice("source", source, ("generate", "lra"))
    check_int("max_length", max_length, 2)
    spec = TaskSpec(
        name="listops",
        input_kind="tokens",
        vocab_size=len(NAMES),
        max_length=max_length,
        num_classes=10,
        target="class",
        metric="accuracy",
        decode=TokenDecoder(NAMES),
    )
    if source == "lra":
        folder = storage.lra_dir(lra_dir) / "listops-1000"
        return Task(
            spec, build_splits_together(lambda split: LraListOps(folder / LRA_FILES[split]))
        )

    check_int("seed", seed, 0)
    check_int("min_length", min_length, 0, max_length - 2)
    check_int("max_depth", max_depth, 2)
    check_int("max_args", max_args, 2)
    sizes = split_sizes(num_train, num_validation, num_test)
    params = {
        "num": sum(sizes.values()),
        "seed": seed,
        "min_length": min_length,
        "max_length": max_length,
        "max_depth": max_depth,
        "max_args": max_args,
    }
    key = storage.cache_key({"generator": GENERATOR_VERSION, **params})
    folder = storage.data_dir(data_dir) / "listops" / key
    bounds = np.cumsum([0] + [sizes[s] for s in SPLITS])
    starts = {split: (int(bounds[i]), int(bounds[i + 1])) for i, split in enumerate(SPLITS)}

    def make_source(split: str) -> GeneratedListOps:
        storage.ensure_cached(
            folder,
            lambda tmp: storage.save_arrays(tmp, generate(**params)),
            params,
            f"ListOps ({params['num']} unique expressions)",
        )
        return GeneratedListOps(folder, split, *starts[split])

    return Task(spec, make_source)

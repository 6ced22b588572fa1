"""Retrieval (LRA): do two ACL Anthology papers cite one another? Byte-level document pairs.

Read from LRA's released ``tsv_data/new_aan_pairs.{train,eval,test}.tsv``: no header, five
tab-separated columns ``label, id1, id2, text1, text2`` (label written as ``0``/``1`` or
``0.0``/``1.0``; text read raw, as LRA read it without quote handling). Each document becomes
UTF-8 bytes + 1 (0 is padding, vocabulary 257), 4000 bytes per document in LRA, which truncates
longer ones: pipelines for this task pass ``truncate=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memjax.tasks import storage
from memjax.tasks.checks import check_int
from memjax.tasks.spec import Task, TaskSpec, build_splits_together
from memjax.tasks.tsv import TsvFile
from memjax.tasks.vocab import decode_bytes, encode_bytes

FILES = {
    "train": "new_aan_pairs.train.tsv",
    "validation": "new_aan_pairs.eval.tsv",
    "test": "new_aan_pairs.test.tsv",
}


def _label(label: bytes, where: str) -> int:
    try:
        value = float(label)
    except ValueError:
        value = -1.0
    if value not in (0.0, 1.0):
        raise ValueError(f"{where}: label {label!r}; expected 0 or 1")
    return int(value)


def _check_row(fields: list[bytes], where: str) -> None:
    _label(fields[0], where)


class AanPairs:
    """One of LRA's AAN pair files: ``{"inputs1", "inputs2": int32 [n], "label": 0/1, "id"}``.

    Opening scans the file once and checks every row (five fields, a 0/1 label), raising
    ValueError with ``file:line`` for the first bad one.
    """

    def __init__(self, path: Path):
        if not path.exists():
            raise storage.missing_lra_file(path, "LRA retrieval (AAN) file")
        self.file = TsvFile(path, num_columns=5, check=_check_row)

    def __len__(self) -> int:
        return len(self.file)

    def __getitem__(self, index: int) -> dict[str, Any]:
        label, _, _, text1, text2 = self.file.row(int(index))
        where = self.file.where(int(index))
        return {
            "inputs1": encode_bytes(text1),
            "inputs2": encode_bytes(text2),
            "label": _label(label, where),
            "id": where,
        }

    def __repr__(self) -> str:
        return f"AanPairs({self.file.path})"


def make(*, max_length: int = 4000, lra_dir: str | None = None) -> Task:
    """AAN retrieval; ``max_length`` is the length of each of the two documents."""
    check_int("max_length", max_length, 1)
    spec = TaskSpec(
        name="retrieval",
        input_kind="tokens",
        vocab_size=257,
        max_length=max_length,
        num_classes=2,
        target="class",
        metric="accuracy",
        decode=decode_bytes,
        paired=True,
    )
    folder = storage.lra_dir(lra_dir) / "tsv_data"
    return Task(spec, build_splits_together(lambda split: AanPairs(folder / FILES[split])))

"""Reading TensorFlow Datasets through ``tfds.data_source`` (ArrayRecord files, no TensorFlow).

Preparing a dataset (download and conversion) runs TensorFlow-based builder code once, so the
steps in ``not_prepared`` use a separate throwaway environment; reading needs only
``tensorflow-datasets`` (and Pillow to decode images).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from memjax import paths


def split_expressions(val_percent: int) -> dict[str, str]:
    """tfds split strings of our three splits.

    ``val_percent`` > 0 holds out the last ``val_percent``% of ``train`` as validation (LRA's
    image tasks use 10); 0 reuses ``test`` as validation (LRA's text task, as published).
    """
    if val_percent == 0:
        return {"train": "train", "validation": "test", "test": "test"}
    cut = 100 - val_percent
    return {"train": f"train[:{cut}%]", "validation": f"train[{cut}%:]", "test": "test"}


def not_prepared(name: str, data_dir: str | None, cause: Exception) -> FileNotFoundError:
    """The error for a dataset that is not prepared as ArrayRecord, with the steps to prepare it."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    root = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    return FileNotFoundError(
        f"tfds dataset {name!r} is not prepared in the array_record format: looked in "
        f"{builder.data_dir} ({type(cause).__name__}: {str(cause).splitlines()[0]})\n"
        "Prepare it once (preparation runs TensorFlow code, so use a separate environment):\n"
        "  python3 -m venv /tmp/tfds-prep\n"
        "  /tmp/tfds-prep/bin/pip install tensorflow tensorflow-datasets pillow "
        "importlib_resources\n"
        f"  /tmp/tfds-prep/bin/tfds build {name} --data_dir={root} --file_format=array_record\n"
        "then pass the task option tfds_data_dir=... (or set TFDS_DATA_DIR) if you used "
        "another folder than ~/tensorflow_datasets."
    )


class TfdsSource:
    """A tfds data source of one split, mapped to our examples by a picklable ``convert``.

    Args:
      name: tfds dataset name.
      expression: the tfds split string it reads.
      data_dir: tfds data directory (None: tfds's default).
      convert: maps a tfds example dict to ours (without ``"id"``); its repr must not change
        between processes (a frozen dataclass), since grain compares it when restoring state.
    """

    def __init__(
        self,
        name: str,
        expression: str,
        data_dir: str | None,
        convert: Callable[[dict[str, Any]], dict[str, Any]],
    ):
        import tensorflow_datasets as tfds

        self.name, self.expression, self.convert = name, expression, convert
        data_dir = None if data_dir is None else paths.resolve(data_dir)
        try:
            self.records: Sequence[dict[str, Any]] = tfds.data_source(
                name, split=expression, data_dir=data_dir, download=False
            )
        except (NotImplementedError, FileNotFoundError, KeyError, ValueError, AssertionError) as e:
            raise not_prepared(name, data_dir, e) from e

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        example = self.convert(self.records[index])
        example["id"] = f"{self.name}/{self.expression}/{index}"
        return example

    def __repr__(self) -> str:
        return f"TfdsSource({self.name}, split={self.expression!r}, convert={self.convert!r})"

"""Random access to the rows of a large tab-separated file, with errors that name file and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


class TsvFile:
    """Rows of a TSV file by index, without loading the file into memory.

    Opening scans the file once, records where each row starts, checks that every row has
    ``num_columns`` fields and passes each row to ``check``, so a malformed or truncated line
    fails at once with its ``file:line``; so does a file without rows. Row fields are returned
    as raw bytes (LRA's files are read without quote handling).

    Args:
      path: the file.
      num_columns: fields per row.
      header: the expected first line's fields, or None when the file has no header.
      check: called as ``check(fields, "path:line")`` on every row while scanning; raises
        ValueError (naming that ``path:line``) for a row the reader could not use.
    """

    def __init__(
        self,
        path: Path,
        num_columns: int,
        header: tuple[str, ...] | None = None,
        check: Callable[[list[bytes], str], None] | None = None,
    ):
        self.path = Path(path)
        self.num_columns = num_columns
        starts, numbers = [], []
        with open(self.path, "rb") as f:
            if header is not None:
                expected = "\t".join(header)
                line = f.readline()
                if not line:
                    raise ValueError(f"{self.path}: empty file; expected the header {expected!r}")
                first = line.rstrip(b"\r\n").decode("utf-8", "replace")
                if tuple(first.split("\t")) != header:
                    raise ValueError(f"{self.path}:1: header is {first!r}; expected {expected!r}")
            offset = f.tell()
            for number, line in enumerate(f, start=1 if header is None else 2):
                if line.strip():
                    self._check(line, number)
                    if check is not None:
                        check(line.rstrip(b"\r\n").split(b"\t"), f"{self.path}:{number}")
                    starts.append(offset)
                    numbers.append(number)
                offset += len(line)
        if not starts:
            after = " after the header" if header is not None else ""
            raise ValueError(
                f"{self.path}: no rows{after}; expected {num_columns} tab-separated fields a line "
                "(is the file empty or cut short?)"
            )
        self._starts = np.asarray(starts, dtype=np.int64)
        self._numbers = np.asarray(numbers, dtype=np.int64)

    def _check(self, line: bytes, number: int) -> None:
        fields = line.rstrip(b"\r\n").count(b"\t") + 1
        if fields != self.num_columns:
            raise ValueError(
                f"{self.path}:{number}: malformed line: {fields} tab-separated fields, "
                f"expected {self.num_columns} (line starts {line[:60]!r})"
            )

    def __len__(self) -> int:
        return len(self._starts)

    def row(self, index: int) -> list[bytes]:
        """The fields of row ``index`` (0-based, header and blank lines not counted)."""
        with open(self.path, "rb") as f:
            f.seek(int(self._starts[index]))
            return f.readline().rstrip(b"\r\n").split(b"\t")

    def where(self, index: int) -> str:
        """``"path:line"`` of row ``index``, for error messages."""
        return f"{self.path}:{self._numbers[index]}"

"""Where data lives: the memjax cache directory, LRA's release folder, and atomic array caches."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memjax import paths

LRA_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The memjax data directory, absolute: ``explicit``, else $MEMJAX_DATA_DIR, else
    ~/.cache/memjax."""
    chosen = (
        explicit if explicit is not None else os.environ.get("MEMJAX_DATA_DIR", "~/.cache/memjax")
    )
    return Path(paths.resolve(chosen))


def lra_dir(explicit: str | os.PathLike | None = None) -> Path:
    """LRA's unpacked release, absolute: ``explicit``, else $MEMJAX_LRA_DIR, else
    <data_dir>/lra_release."""
    if explicit is not None:
        return Path(paths.resolve(explicit))
    if "MEMJAX_LRA_DIR" in os.environ:
        return Path(paths.resolve(os.environ["MEMJAX_LRA_DIR"]))
    return data_dir() / "lra_release"


def missing_lra_file(path: Path, what: str) -> FileNotFoundError:
    """The error for a missing file of LRA's release, with the steps that fetch it."""
    return FileNotFoundError(
        f"{what} not found: looked for {path}\n"
        "To get LRA's released data (a 7.7 GB download):\n"
        f"  1. download {LRA_URL}\n"
        "  2. unpack it:  mkdir -p ~/.cache/memjax && tar xzf lra_release.gz -C ~/.cache/memjax\n"
        "     (this creates ~/.cache/memjax/lra_release/)\n"
        "  3. if you unpacked it elsewhere, pass lra_dir=/path/to/lra_release or set "
        "MEMJAX_LRA_DIR"
    )


def cache_key(params: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-serialisable generation parameters."""
    blob = json.dumps(dict(params), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def ensure_cached(
    folder: Path, write: Callable[[Path], None], params: Mapping[str, Any], what: str
) -> None:
    """Has ``write(tmp)`` fill a temporary folder that then becomes ``folder``, unless ``folder``
    already exists; says on stderr that ``what`` is being built, and how long it took.

    The rename is atomic, so concurrent builders (several processes or hosts on one file
    system) never see a partial cache; ``params`` are saved beside the data as params.json.
    """
    if folder.exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    print(f"memjax: building {what} once, into {folder} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        write(tmp)
        (tmp / "params.json").write_text(json.dumps(dict(params), sort_keys=True, indent=1))
        tmp.rename(folder)
        print(f"memjax: built {what} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    except OSError:
        if not folder.exists():  # not a lost race with an identical builder
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def save_arrays(folder: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes each array as ``folder/<name>.npy``."""
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)


def load_arrays(folder: Path) -> dict[str, np.ndarray]:
    """``folder/*.npy`` memory-mapped read-only, by file stem."""
    return {p.stem: np.load(p, mmap_mode="r") for p in sorted(folder.glob("*.npy"))}

"""Pathfinder (Linsley et al. 2018; LRA's Pathfinder and Path-X): are two markers connected?

Generator (``pathfinder_draw``, the procedure of ``drewlinsley/pathfinder``'s ``snakes2.py``
that LRA used, with LRA's per-resolution arguments in ``pathfinder_geometry``): two target
contours, each a chain of ``contour_length`` separate short dashes with gaps between them and
bounded turns, start a few pixels apart; distractor contours of ``contour_length // 3``
dashes fill the canvas. One marker (a disc) sits on a target's start; the second on the same
contour's end (label 1) or on the other target's end (label 0). Markers are joined exactly
when label is 1 under the original's rule of continuity (consecutive dashes of one contour),
not by touching pixels. Example i of a split is a pure function of (seed, split, i) with
label i % 2, so every split is exactly balanced. Resolutions 32, 64, 128 (Path-X) and 256;
difficulty by contour length 6, 9 or 14 (LRA used 14). Like the original, most target pairs
do not fit and are redrawn: about 25 ms per 32 px image on one core, seconds per 64-256 px
image at 14 dashes, so examples are drawn lazily by default (grain's ``worker_count`` spreads
them over cores) and ``cache=True`` renders each split once into the data directory on all
cores (like grain's workers, this starts processes: call it under
``if __name__ == "__main__":`` in scripts).

Reader: LRA's released ``pathfinder{R}/{curv_baseline | curv_contour_length_9 |
curv_contour_length_14}/`` folders: ``metadata/<n>.npy`` are text files whose lines read
``<subdir> <file> <n> <label> ...``, images are grayscale PNGs at ``<subdir>/<file>``. Splits
are LRA's 80/10/10 in metadata order; empty image files are skipped, as LRA's pipeline did.

Examples carry ``"markers"``: int32 [2, 2], the (row, col) marker centres (generator only).
"""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
import os
from pathlib import Path
from typing import Any

import numpy as np

from memjax.tasks import pathfinder_draw, storage
from memjax.tasks.checks import check_choice, check_int
from memjax.tasks.generated import example_rng, split_sizes
from memjax.tasks.pixels import encode_pixels, pixel_spec_fields
from memjax.tasks.spec import Task, TaskSpec, build_splits_together
from memjax.tasks.vocab import PixelDecoder

LRA_FOLDERS = {6: "curv_baseline", 9: "curv_contour_length_9", 14: "curv_contour_length_14"}
CACHE_CHUNK = 256  # examples per task handed to a worker process when filling the cache


def render_example(
    seed: int, split: str, index: int, resolution: int, contour_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image uint8 [R, R] and marker centres int32 [2, 2] of example ``index`` (label index % 2)."""
    rng = example_rng(seed, split, index)
    return pathfinder_draw.render(rng, index % 2, resolution, contour_length)


def render_range(
    seed: int, split: str, start: int, stop: int, resolution: int, contour_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Examples [start, stop): images uint8 [k, R, R], markers int32 [k, 2, 2]."""
    pairs = [render_example(seed, split, i, resolution, contour_length) for i in range(start, stop)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def write_split(
    folder: Path, seed: int, split: str, size: int, resolution: int, contour_length: int
) -> None:
    """Renders a whole split into ``folder/{images,markers}.npy``, on every CPU core."""
    images = np.lib.format.open_memmap(
        folder / "images.npy", "w+", np.uint8, (size, resolution, resolution)
    )
    markers = np.lib.format.open_memmap(folder / "markers.npy", "w+", np.int32, (size, 2, 2))
    starts = list(range(0, size, CACHE_CHUNK))
    stops = [min(start + CACHE_CHUNK, size) for start in starts]
    workers = min(os.cpu_count() or 1, len(starts))
    context = multiprocessing.get_context("spawn")  # never fork a (possibly threaded) parent
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        chunks = pool.map(
            functools.partial(
                render_range, seed, split, resolution=resolution, contour_length=contour_length
            ),
            starts,
            stops,
        )
        for start, stop, (chunk_images, chunk_markers) in zip(starts, stops, chunks, strict=True):
            images[start:stop], markers[start:stop] = chunk_images, chunk_markers
    images.flush()
    markers.flush()


class GeneratedPathfinder:
    """Generated Pathfinder split; example i has label i % 2.

    Examples are drawn on access, or read from ``cache`` (a folder ``write_split`` filled with
    the same images) when given.
    """

    def __init__(
        self,
        split: str,
        size: int,
        seed: int,
        resolution: int,
        contour_length: int,
        pixels: str,
        cache: Path | None = None,
    ):
        self.split, self.size, self.seed = split, size, seed
        self.resolution, self.contour_length, self.pixels = resolution, contour_length, pixels
        self.cache = cache
        self._arrays: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self!r}")
        if self.cache is None:
            image, markers = render_example(
                self.seed, self.split, index, self.resolution, self.contour_length
            )
        else:
            if self._arrays is None:
                self._arrays = storage.load_arrays(self.cache)
            image, markers = self._arrays["images"][index], self._arrays["markers"][index]
        return {
            "inputs": encode_pixels(image, self.pixels),
            "label": index % 2,
            "markers": np.asarray(markers),
            "id": f"pathfinder{self.resolution}/{self.split}/{index}",
        }

    def __repr__(self) -> str:
        return (
            f"GeneratedPathfinder(split={self.split}, size={self.size}, seed={self.seed}, "
            f"resolution={self.resolution}, contour_length={self.contour_length}, "
            f"pixels={self.pixels}, cached={self.cache is not None})"
        )


def read_metadata(folder: Path) -> list[tuple[str, str, int, str]]:
    """All rows of ``folder/metadata/*.npy`` in numeric file order: (subdir, file, label, where)."""
    meta = folder / "metadata"
    files = sorted(meta.glob("*.npy"), key=lambda p: (len(p.stem), p.stem))
    if not files:
        raise storage.missing_lra_file(meta / "*.npy", "LRA Pathfinder metadata")
    rows = []
    for path in files:
        for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"{path}:{number}: metadata line is not UTF-8 text ({e.reason} at byte "
                    f"{e.start}: {raw[:80]!r})"
                ) from None
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise ValueError(
                    f"{path}:{number}: malformed metadata line {line[:80]!r}; expected "
                    "'<subdir> <file> <index> <label 0|1> ...'"
                )
            rows.append((fields[0], fields[1], int(fields[3]), f"{path}:{number}"))
    return rows


class LraPathfinder:
    """One split (80/10/10 in metadata order) of an LRA Pathfinder folder."""

    def __init__(
        self,
        folder: Path,
        split: str,
        resolution: int,
        pixels: str,
        metadata: list[tuple[str, str, int, str]] | None = None,
    ):
        """``metadata``: ``read_metadata(folder)``, when already read (for another split)."""
        self.folder, self.split, self.resolution, self.pixels = folder, split, resolution, pixels
        rows = read_metadata(folder) if metadata is None else metadata
        n = len(rows)
        bounds = {
            "train": (0, n * 8 // 10),
            "validation": (n * 8 // 10, n * 9 // 10),
            "test": (n * 9 // 10, n),
        }[split]
        self.rows = []
        for subdir, name, label, where in rows[slice(*bounds)]:
            path = folder / subdir / name
            if not path.exists():
                raise FileNotFoundError(f"{where}: image {path} listed in metadata is missing")
            if path.stat().st_size > 0:
                self.rows.append((path, label, where))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from PIL import Image

        path, label, where = self.rows[int(index)]
        try:
            with Image.open(path) as image:
                gray = np.asarray(image.convert("L"))
        except (OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"{path} (listed at {where}): unreadable image: {e}") from e
        if gray.shape != (self.resolution, self.resolution):
            raise ValueError(
                f"{path} (listed at {where}): image is {gray.shape[1]}x{gray.shape[0]}; "
                f"expected {self.resolution}x{self.resolution}"
            )
        return {"inputs": encode_pixels(gray, self.pixels), "label": label, "id": str(path)}

    def __repr__(self) -> str:
        return f"LraPathfinder({self.folder}, split={self.split}, pixels={self.pixels})"


def make(
    *,
    resolution: int = 32,
    contour_length: int = 14,
    source: str = "generate",
    pixels: str = "tokens",
    seed: int = 0,
    num_train: int = 160_000,
    num_validation: int = 20_000,
    num_test: int = 20_000,
    cache: bool = False,
    data_dir: str | None = None,
    lra_dir: str | None = None,
) -> Task:
    """Pathfinder at ``resolution`` (32, 64, 128 = Path-X, 256) and ``contour_length`` (6, 9, 14).

    Split sizes default to LRA's 80/10/10 of 200,000 images; they apply to the generator only.
    The generator draws each example when it is read; ``cache=True`` instead renders each split
    once, on all CPU cores, into ``<data_dir>/pathfinder/<hash>/`` (uint8, R*R bytes per
    image) and reads it from there, which pays off from the second epoch.
    """
    check_choice("resolution", resolution, tuple(pathfinder_draw.GEOMETRY))
    check_choice("contour_length", contour_length, tuple(LRA_FOLDERS))
    check_choice("source", source, ("generate", "lra"))
    fields = pixel_spec_fields(pixels)
    spec = TaskSpec(
        name="pathfinder" if resolution != 128 else "pathx",
        max_length=resolution * resolution,
        num_classes=2,
        target="class",
        metric="accuracy",
        decode=PixelDecoder(resolution),
        **fields,
    )
    if source == "lra":
        folder = storage.lra_dir(lra_dir) / f"pathfinder{resolution}" / LRA_FOLDERS[contour_length]
        if not folder.exists():
            raise storage.missing_lra_file(folder, "LRA Pathfinder folder")
        metadata: list[tuple[str, str, int, str]] = []

        def make_lra_source(split: str) -> LraPathfinder:
            if not metadata:  # read once for the three splits
                metadata.extend(read_metadata(folder))
            return LraPathfinder(folder, split, resolution, pixels, metadata)

        return Task(spec, build_splits_together(make_lra_source))
    check_int("seed", seed, 0)
    if not isinstance(cache, bool):
        raise ValueError(f"cache={cache!r}; expected True or False")
    sizes = split_sizes(num_train, num_validation, num_test)

    def make_source(split: str) -> GeneratedPathfinder:
        size = sizes[split]
        if not cache:
            return GeneratedPathfinder(split, size, seed, resolution, contour_length, pixels)
        params = {
            "generator": pathfinder_draw.VERSION,
            "split": split,
            "size": size,
            "seed": seed,
            "resolution": resolution,
            "contour_length": contour_length,
        }
        folder = storage.data_dir(data_dir) / "pathfinder" / storage.cache_key(params)
        storage.ensure_cached(
            folder,
            lambda tmp: write_split(tmp, seed, split, size, resolution, contour_length),
            params,
            f"Pathfinder {resolution}x{resolution} {split} split ({size} images)",
        )
        return GeneratedPathfinder(
            split, size, seed, resolution, contour_length, pixels, cache=folder
        )

    return Task(spec, make_source)

"""Dash ("paddle") and marker drawings of Pathfinder, rendered the way the original renders them.

A dash of length L, width w and margin m in direction phi (radians; row = sin, col = cos)
starts at an integer pixel s. It is drawn supersampled by a = ``antialias``: on a
(2Ka + 1)^2 canvas (K = L + ceil(w) + m) a line of width round(w a) runs from the centre Ka
to ceil(Ka + L a (sin phi, cos phi)); the canvas is shrunk to (2K + 1)^2 with Lanczos
filtering in 8 bits and centred on s. Its *footprint* is the same line dilated by a disc of
radius m a before shrinking: the dash grown by its margin. The footprint's *core* (pixels at
full value) is what a new dash may not put on ground that is already taken.

A marker is a disc of radius r drawn at a x scale and shrunk by a with Lanczos filtering.
(``snakes.draw_line_n_mask`` and ``snakes2.draw_circle`` of drewlinsley/pathfinder; 8-bit
shrinking is what scipy.misc.imresize did when LRA's images were made.)

Stamps depend on the direction only, and directions come from a finite set (whole degrees
for contour starts, directions between pixels for extensions), so each is rendered once per
process and cached.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from PIL import Image, ImageDraw


@dataclasses.dataclass(frozen=True)
class Stamp:
    """A drawing on a (2K + 1)^2 patch whose centre K goes on the anchor pixel.

    Attributes:
      half: K.
      ink: intensities at contrast 1, float32 [2K + 1, 2K + 1] in [0, 1].
      footprint: the margin-grown dash, float32 like ``ink`` (zeros for markers).
      core: (row, col) offsets from the anchor of the footprint's full-value pixels, int [n, 2].
      probe: the offsets at which the original tests a start pixel: ``core`` shifted by (1, 1)
        and cut to [-(L + m), L + m] (its dilation kernel is the footprint cropped to
        (2(L + m) + 1)^2 with the dash starting one pixel past the kernel's centre), int [k, 2].
    """

    half: int
    ink: np.ndarray
    footprint: np.ndarray
    core: np.ndarray
    probe: np.ndarray


def shrink(big: np.ndarray, side: int) -> np.ndarray:
    """An 8-bit 0/255 supersampled array shrunk to ``side`` x ``side`` (Lanczos), in [0, 1]."""
    image = Image.fromarray(big.astype(np.uint8)).resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.float32) / 255.0


def dilate(big: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``big`` (bool) by a disc of ``radius`` pixels."""
    out = big.copy()
    h, w = big.shape
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            if dr * dr + dc * dc > radius * radius:
                continue
            out[max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] |= big[
                max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
            ]
    return out


@functools.cache
def dash(length: int, thickness: float, margin: int, antialias: int, orientation: float) -> Stamp:
    """The dash of ``length`` pixels from the anchor in direction ``orientation`` (radians)."""
    half = length + math.ceil(thickness) + margin
    centre, side = half * antialias, 2 * half * antialias + 1
    head_row = math.ceil(centre + length * antialias * math.sin(orientation))
    head_col = math.ceil(centre + length * antialias * math.cos(orientation))
    canvas = Image.new("L", (side, side), 0)
    width = round(thickness * antialias)
    ImageDraw.Draw(canvas).line([(centre, centre), (head_col, head_row)], fill=255, width=width)
    line = np.asarray(canvas) > 0
    grown = dilate(line, margin * antialias)
    ink = shrink(line * 255, 2 * half + 1)
    footprint = shrink(grown * 255, 2 * half + 1)
    core = np.argwhere(footprint >= 1.0) - half
    probe = core + 1
    reach = length + margin
    probe = probe[np.all(np.abs(probe) <= reach, axis=1)]
    return Stamp(half, ink, footprint, core, probe)


@functools.cache
def marker(radius: float, antialias: int) -> Stamp:
    """The marker disc of ``radius`` pixels centred on the anchor."""
    half = math.ceil(radius) + 4  # room for the Lanczos kernel (3 pixels) around the disc
    side = 2 * half + 1
    grid = np.arange(side * antialias) - half * antialias
    disc = grid[:, None] ** 2 + grid[None, :] ** 2 <= (radius * antialias) ** 2
    ink = shrink(disc * 255, side)
    none = np.zeros((0, 2), dtype=np.int64)
    return Stamp(half, ink, np.zeros_like(ink), none, none)


@functools.cache
def exposed(
    length: int, thickness: float, margin: int, antialias: int, orientation: float, size: int
) -> bool:
    """Whether some pixel of a ``size`` canvas has every ``probe`` offset of the ``dash`` of
    these arguments off the canvas.

    The original then finds no start at all: OpenCV's dilation leaves such a pixel at
    -DBL_MAX and ``snakes.find_available_coordinates`` returns nothing for a negative mask.
    This holds for most directions (the kernel reaches up-left of its centre only for dashes
    heading up and left), so contour starts head up-left and many distractors fail.
    """
    covered = np.zeros((size, size), dtype=bool)
    for dr, dc in dash(length, thickness, margin, antialias, orientation).probe:
        rows = slice(max(-dr, 0), min(size - dr, size))
        cols = slice(max(-dc, 0), min(size - dc, size))
        covered[rows, cols] = True
    return not covered.all()


@functools.cache
def start_degrees(
    length: int, thickness: float, margin: int, antialias: int, size: int
) -> np.ndarray:
    """The whole-degree directions in [-180, 180) whose dash is not ``exposed``."""
    degrees = [
        d
        for d in range(-180, 180)
        if not exposed(length, thickness, margin, antialias, math.radians(d), size)
    ]
    return np.array(degrees, dtype=np.int64)

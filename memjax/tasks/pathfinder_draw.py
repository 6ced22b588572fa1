"""Drawing Pathfinder images: contours of short segments, distractors and markers on a canvas.

After the procedure of ``drewlinsley/pathfinder`` (``snakes2.py``) that LRA used, redone so that
it stays fast in numpy and guarantees what the label says: contours keep ``clearance`` pixels
from one another, so two markers are joined by inked pixels exactly when they sit on the same
contour.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

VERSION = 1  # part of the cache key: bump when the drawing changes
MAX_TURN = np.pi / 3  # bound on the change of direction between consecutive segments
SEGMENT_TRIES = 12  # turns tried per step
CANDIDATE_GROUP = 4  # turns drawn and tested at once
BACKTRACKS = 8  # dead ends a contour may back out of before it is abandoned
CONTOUR_TRIES = 20  # starts tried for each of the two long contours
DISTRACTOR_TRIES = 4  # starts tried for each distractor (best effort, as in the original)
IMAGE_TRIES = 200  # fresh canvases tried before giving up (never reached at these sizes)


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Drawing sizes of one resolution, in pixels.

    Attributes:
      segment: length of one straight segment.
      half_width: half the stroke width (antialiased beyond it over one pixel).
      marker: marker disc radius.
      clearance: pixels kept free between different contours.
      seed_distance: distance between the two long contours' starts.
      distractor_budget: segments spent on distractor contours (LRA's 20 / 22 / 35 / 30).
      paddles: single-segment distractors.
    """

    segment: float
    half_width: float
    marker: float
    clearance: int
    seed_distance: float
    distractor_budget: int
    paddles: int


GEOMETRY = {
    32: Geometry(2.0, 0.5, 1.5, 1, 7.0, 20, 8),
    64: Geometry(4.0, 0.75, 2.5, 1, 12.0, 22, 12),
    128: Geometry(7.5, 1.0, 3.0, 2, 20.0, 35, 20),
    256: Geometry(14.0, 1.5, 5.0, 3, 40.0, 30, 30),
}


class Canvas:
    """Grayscale intensities plus which contour owns each inked pixel.

    Points are (row, col) float pairs; pixel (r, c) has its centre at (r, c).
    """

    def __init__(self, size: int, geometry: Geometry):
        self.size, self.g = size, geometry
        self.intensity = np.zeros((size, size), dtype=np.float32)
        self.owner = np.zeros((size, size), dtype=np.int32)  # 0 free, k: contour k
        self.segment = np.full((size, size), -1, dtype=np.int32)  # index within its contour
        self.blocked = np.zeros((size, size), dtype=bool)  # within clearance of earlier contours

    def block(self, records: list[tuple]) -> None:
        """Blocks the pixels within ``clearance`` of the ink drawn by ``records`` (a finished
        contour), so later contours keep clear of it."""
        c, n = self.g.clearance, self.size
        top = max(min(r[0][0].start for r in records) - c, 0)
        left = max(min(r[0][1].start for r in records) - c, 0)
        bottom = min(max(r[0][0].stop for r in records) + c, n)
        right = min(max(r[0][1].stop for r in records) + c, n)
        ink = np.pad(self.owner[top:bottom, left:right] != 0, c)
        h, w = bottom - top, right - left
        region = self.blocked[top:bottom, left:right]
        for dr in range(2 * c + 1):
            for dc in range(2 * c + 1):
                region |= ink[dr : dr + h, dc : dc + w]

    def _patch(self, r0: float, c0: float, r1: float, c1: float):
        top, left = max(math.floor(r0), 0), max(math.floor(c0), 0)
        bottom, right = min(math.ceil(r1) + 1, self.size), min(math.ceil(c1) + 1, self.size)
        rows = np.arange(top, bottom, dtype=np.float64)[:, None]
        cols = np.arange(left, right, dtype=np.float64)[None, :]
        return (slice(top, bottom), slice(left, right)), rows, cols

    def strokes(self, a: tuple[float, float], ends: np.ndarray):
        """Antialiased intensities of the segments from ``a`` to each of ``ends`` [K, 2].

        Returns (slices of the common patch around ``a``, float64 [K, rows, cols]).
        """
        reach = self.g.half_width + 0.5
        radius = self.g.segment + reach
        where, rows, cols = self._patch(a[0] - radius, a[1] - radius, a[0] + radius, a[1] + radius)
        dr = (ends[:, 0] - a[0])[:, None, None]
        dc = (ends[:, 1] - a[1])[:, None, None]
        pr, pc = rows - a[0], cols - a[1]
        t = np.minimum(np.maximum((pr * dr + pc * dc) / (dr * dr + dc * dc), 0.0), 1.0)
        er, ec = pr - t * dr, pc - t * dc
        return where, np.minimum(np.maximum(reach - np.sqrt(er * er + ec * ec), 0.0), 1.0)

    def disc(self, centre: tuple[float, float], radius: float):
        """Antialiased intensity of a disc: (slices, float64 patch)."""
        reach = radius + 0.5
        r, c = centre
        where, rows, cols = self._patch(r - reach, c - reach, r + reach, c + reach)
        dist = np.sqrt((rows - r) ** 2 + (cols - c) ** 2)
        return where, np.minimum(np.maximum(reach - dist, 0.0), 1.0)

    def first_fit(self, where, inks: np.ndarray, owner: int, segment: int) -> int | None:
        """Index of the first of ``inks`` [K, ...] that avoids blocked pixels and its own
        contour's older segments, or None."""
        inked = inks > 0
        own_old = (self.owner[where] == owner) & (self.segment[where] < segment - 1)
        clash = inked & (self.blocked[where] | own_old)
        ok = np.flatnonzero(~clash.any(axis=(1, 2)))
        return int(ok[0]) if len(ok) else None

    def draw(self, where, ink: np.ndarray, owner: int, segment: int) -> tuple:
        """Draws ``ink`` on the patch ``where``; returns the record that ``undo`` takes."""
        record = (
            where,
            self.intensity[where].copy(),
            self.owner[where].copy(),
            self.segment[where].copy(),
        )
        inked = ink > 0
        self.intensity[where] = np.maximum(self.intensity[where], ink)
        self.owner[where][inked] = owner
        self.segment[where][inked] = segment
        return record

    def undo(self, record: tuple) -> None:
        """Restores the patch a ``draw`` changed."""
        where, intensity, owner, segment = record
        self.intensity[where], self.owner[where], self.segment[where] = intensity, owner, segment

    def undo_all(self, records: list[tuple]) -> None:
        """Undoes ``draw`` records given in drawing order."""
        for record in reversed(records):
            self.undo(record)

    def mark(self, centre: tuple[float, float], owner: int) -> tuple | None:
        """Draws a marker disc on contour ``owner`` unless it would touch a blocked pixel.

        Returns the undo record, or None (nothing drawn).
        """
        where, ink = self.disc(centre, self.g.marker)
        if np.any((ink > 0) & self.blocked[where]):
            return None
        return self.draw(where, ink, owner, -1)

    def inside(self, points: np.ndarray) -> np.ndarray:
        """Which of ``points`` [..., 2] keep a stroke off the image border: bool [...]."""
        low, high = self.g.half_width + 1.0, self.size - 2.0 - self.g.half_width
        return np.all((points >= low) & (points <= high), axis=-1)


def grow_contour(
    canvas: Canvas, rng: np.random.Generator, owner: int, start: tuple[float, float], length: int
) -> tuple[tuple[float, float], list[tuple]] | None:
    """Draws a contour of ``length`` segments from ``start``.

    Each step tries ``SEGMENT_TRIES`` turns, peaked at 0 (a Beta(2, 2) bump over
    [-MAX_TURN, MAX_TURN], like the original's cos^2 continuity weighting; the first segment
    takes any direction). At a dead end the last segment is undone and redrawn, up to
    ``BACKTRACKS`` times.

    Returns (end point, undo records in drawing order), or None with nothing left drawn.
    """
    point, angle = start, 0.0
    drawn: list[tuple] = []  # per segment: (undo record, point and angle before it)
    backtracks = 0
    while len(drawn) < length:
        index = len(drawn)
        if index == 0:
            turns = rng.uniform(-np.pi, np.pi, size=SEGMENT_TRIES)
        else:
            turns = MAX_TURN * (2 * rng.beta(2.0, 2.0, size=SEGMENT_TRIES) - 1)
        angles = angle + turns
        ends = np.stack([np.sin(angles), np.cos(angles)], axis=-1) * canvas.g.segment + point
        inside = canvas.inside(ends)
        ends, angles = ends[inside], angles[inside]
        fit = None
        for group in range(0, len(ends), CANDIDATE_GROUP):  # most steps fit a first candidate
            where, inks = canvas.strokes(point, ends[group : group + CANDIDATE_GROUP])
            k = canvas.first_fit(where, inks, owner, index)
            if k is not None:
                fit = group + k, where, inks[k]
                break
        if fit is None:
            if not drawn or backtracks == BACKTRACKS:
                canvas.undo_all([record for record, _, _ in drawn])
                return None
            backtracks += 1
            record, point, angle = drawn.pop()
            canvas.undo(record)
            continue
        choice, where, ink = fit
        drawn.append((canvas.draw(where, ink, owner, index), point, angle))
        point, angle = tuple(ends[choice]), float(angles[choice])
    return point, [record for record, _, _ in drawn]


def place_contour(
    canvas: Canvas,
    rng: np.random.Generator,
    owner: int,
    length: int,
    tries: int,
    near: tuple[float, float] | None = None,
    marked: tuple[bool, bool] = (False, False),
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Draws a contour at a random start (``seed_distance`` from ``near`` when given), with
    marker discs on its start and/or end as ``marked`` says.

    Returns (start, end), or None (nothing drawn) after ``tries`` failed attempts.
    """
    for _ in range(tries):
        if near is None:
            start = tuple(rng.uniform(0, canvas.size - 1, size=2))
        else:
            angle = rng.uniform(-np.pi, np.pi)
            distance = canvas.g.seed_distance
            start = (near[0] + distance * math.sin(angle), near[1] + distance * math.cos(angle))
        pixel = int(round(start[0])), int(round(start[1]))
        if not canvas.inside(np.asarray(start)) or canvas.blocked[pixel]:
            continue
        grown = grow_contour(canvas, rng, owner, start, length)
        if grown is None:
            continue
        end, records = grown
        for tip in [tip for tip, wanted in zip((start, end), marked, strict=True) if wanted]:
            record = canvas.mark(tip, owner)
            if record is None:
                break
            records.append(record)
        else:
            canvas.block(records)
            return start, end
        canvas.undo_all(records)
    return None


def render(
    rng: np.random.Generator, label: int, size: int, contour_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """One Pathfinder image: (uint8 [size, size], marker centres int32 [2, 2] as (row, col))."""
    g = GEOMETRY[size]
    distractor_length = max(contour_length // 3, 1)
    for _ in range(IMAGE_TRIES):
        canvas = Canvas(size, g)
        first = place_contour(canvas, rng, 1, contour_length, CONTOUR_TRIES, marked=(True, label))
        if first is None:
            continue
        second = place_contour(
            canvas, rng, 2, contour_length, CONTOUR_TRIES, near=first[0], marked=(False, not label)
        )
        if second is None:
            continue
        owner = 3
        for _ in range(g.distractor_budget // distractor_length):
            owner += (
                place_contour(canvas, rng, owner, distractor_length, DISTRACTOR_TRIES) is not None
            )
        for _ in range(g.paddles):
            owner += place_contour(canvas, rng, owner, 1, DISTRACTOR_TRIES) is not None
        image = np.round(canvas.intensity * 255).astype(np.uint8)
        markers = np.round([first[0], first[1] if label else second[1]]).astype(np.int32)
        return image, markers
    raise RuntimeError(f"no Pathfinder image fitted in {IMAGE_TRIES} attempts (size {size})")

"""Drawing Pathfinder images as drewlinsley/pathfinder's ``snakes2.py`` draws them for LRA.

Every stroke is a chain of separate dashes ("paddles", ``pathfinder_stamps``) of length L with
margin m (sizes per resolution in ``pathfinder_geometry``). A contour starts with a dash from
a free pixel t in a whole-degree direction theta; its *pivot* p = ceil(head - (L + m) u(theta))
sits m behind t (u(a) = (sin a, cos a), rows first). Each further dash:

* the next pivot is p' = ceil(p + (L + 2m) u(theta)), m past the last dash's end;
* candidate ends are the distinct pixels floor(p' + (L + m) u(a)), a stepping by one pixel of
  arc, inside the canvas; a candidate's turn delta from theta weighs cos^2(min(c delta, pi/2))
  (c = continuity: turns stay under pi / (2c)) times 1 - the occupancy within m of it;
* the drawn end h gives the dash from h back towards p' (so it spans [m, L + m] from p' and
  consecutive dashes leave a gap of 2m); it is kept if its footprint plus the occupancy stays
  below 1.8 everywhere, else redrawn, 3 draws in all, then the contour fails.

The occupancy holds the padding band and the footprints of all dashes but the contour's own
last one. Contour starts take a pixel uniformly among those where the dash's footprint core
meets no occupancy above 0.3. An image: the two target contours (``contour_length`` dashes,
the first starting in the centre, 2 * seed_distance from the border, the second seed_distance
from it, grown in turn, redrawn together until both complete); distractor contours of
``contour_length // 3`` dashes (5 tries each, skipped when none fits or when under 1% of the
canvas is free); single-dash distractors when asked; then the two markers: on the start of a
target contour chosen at random and on the end of the same contour (label 1) or of the other
(label 0). The image is scaled to 0..255 by its maximum.

Label rule (the original's continuity): dashes join only as consecutive dashes of one contour,
so the markers are joined exactly when label is 1; pixels of consecutive dashes need not
touch. Where the original is looser this module keeps the rule: the original leaves both
targets' newest dashes and the first target's last dash out of the occupancy (so a distractor
or the other target may land on them) and never tests the second start against the first.
Seeds test the footprint core where the dash is drawn (the original tests it one pixel down
and right of it, within a crop of the footprint).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from memjax.tasks import pathfinder_stamps as stamps
from memjax.tasks.checks import check_choice
from memjax.tasks.pathfinder_geometry import (
    CONTOUR_TRIES,
    GEOMETRY,
    PADDLE_TRIES,
    STOP_AVAILABILITY,
    Geometry,
    distractor_contours,
    distractor_length,
    geometry,
    single_paddles,
)

__all__ = ["GEOMETRY", "VERSION", "Contour", "Dash", "Drawing", "draw", "render"]

VERSION = 2  # part of the cache key: bump when the drawing changes
COLLISION = 1.8  # a dash is refused where footprint + occupancy reaches this
FREE = 0.3  # a start pixel's footprint core must meet occupancy <= this
START_BATCH = 64  # random pixels tested at once when looking for a free start
START_BATCHES = 4  # batches tried before every pixel is tested
IMAGE_TRIES = 100_000  # target pairs tried before giving up (64 px, 14 dashes: ~1 in 2000 fits)


@dataclasses.dataclass(frozen=True)
class Dash:
    """One dash of a contour, in pixel coordinates (row, col).

    Attributes:
      first: where the dash begins along its contour.
      last: where it ends (the contour's end for its last dash).
      direction: direction of travel (radians; row = sin, col = cos).
      pivot: the integer pivot it was drawn from (see module doc).
    """

    first: tuple[float, float]
    last: tuple[float, float]
    direction: float
    pivot: tuple[int, int]


@dataclasses.dataclass
class Contour:
    """A chain of dashes: ``kind`` "target", "distractor" or "paddle" (single dash)."""

    kind: str
    start: tuple[int, int]
    dashes: list[Dash] = dataclasses.field(default_factory=list)
    pending: tuple | None = None  # (image slices, footprint) of the last dash, not yet occupied

    @property
    def end(self) -> tuple[int, int]:
        """The last dash's far end, an integer pixel for extended contours."""
        last = self.dashes[-1].last
        return round(last[0]), round(last[1])


@dataclasses.dataclass(frozen=True)
class Drawing:
    """An image and how it was drawn.

    Attributes:
      image: uint8 [R, R].
      markers: int32 [2, 2] marker centres (row, col): a target's start, then a target's end.
      label: 1 when both markers sit on one contour.
      margin: the dash margin m of this image.
      contours: the two targets (the origin marker's first), then the distractors.
    """

    image: np.ndarray
    markers: np.ndarray
    label: int
    margin: int
    contours: list[Contour]


def flip(angle: float) -> float:
    """``angle`` turned by pi, kept in [-pi, pi]."""
    return angle + math.pi if angle < 0 else angle - math.pi


def step(point: tuple[int, int], angle: float, distance: float) -> tuple[int, int]:
    """The pixel ceil(point + distance u(angle))."""
    return (
        math.ceil(point[0] + distance * math.sin(angle)),
        math.ceil(point[1] + distance * math.cos(angle)),
    )


@functools.cache
def disc(radius: int) -> np.ndarray:
    """Offsets int [k, 2] within ``radius`` of the origin."""
    r = np.arange(-radius, radius + 1)
    rows, cols = np.meshgrid(r, r, indexing="ij")
    keep = rows**2 + cols**2 <= radius**2
    return np.stack([rows[keep], cols[keep]], axis=-1)


@functools.cache
def candidates(radius: int, margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate ends around a pivot: (offsets int [k, 2] in (row, col) order, their
    directions [k], offsets within ``margin`` of each int [k, d, 2]).

    The original samples floor(p + radius u(a)) for a one pixel of arc apart; for an integer
    pivot p this is p + floor(radius u(a)), so the distinct offsets and their directions are
    the same around every pivot.
    """
    angles = np.arange(0.0, 360.0, 360.0 / (2 * radius * math.pi)) * np.pi / 180
    offsets = np.floor(np.stack([radius * np.sin(angles), radius * np.cos(angles)], axis=-1))
    offsets = np.unique(offsets.astype(np.int64), axis=0)
    directions = np.arctan2(offsets[:, 0], offsets[:, 1])
    return offsets, directions, offsets[:, None, :] + disc(margin)[None]


class Canvas:
    """The intensities drawn so far and the occupancy (padding band and dash footprints)."""

    def __init__(self, g: Geometry, margin: int):
        n, p = g.size, g.padding
        self.g, self.margin, self.n = g, margin, n
        self.image = np.zeros((n, n), dtype=np.float32)
        self.taken = np.zeros((n, n), dtype=np.float32)
        self.taken[:p], self.taken[n - p :], self.taken[:, :p], self.taken[:, n - p :] = 1, 1, 1, 1

    def dash(self, orientation: float) -> stamps.Stamp:
        g = self.g
        return stamps.dash(
            g.paddle_length, g.paddle_thickness, self.margin, g.antialias, orientation
        )

    def inside(self, point: tuple[int, int]) -> bool:
        return 0 <= point[0] < self.n and 0 <= point[1] < self.n

    def window(self, anchor: tuple[int, int], half: int) -> tuple[tuple, tuple]:
        """(image slices, patch slices) of the (2 half + 1)^2 patch centred on ``anchor``."""
        out, inner = [], []
        for a in anchor:
            low, high = a - half, a + half + 1
            out.append(slice(max(low, 0), min(high, self.n)))
            inner.append(slice(max(low, 0) - low, min(high, self.n) - low))
        return tuple(out), tuple(inner)

    def ink(self, anchor: tuple[int, int], stamp: stamps.Stamp, contrast: float) -> tuple:
        """Draws ``stamp`` at ``anchor``; returns its (image slices, clipped footprint)."""
        where, inner = self.window(anchor, stamp.half)
        self.image[where] = np.maximum(self.image[where], contrast * stamp.ink[inner])
        return where, stamp.footprint[inner]

    def occupy(self, contour: Contour) -> None:
        """Adds ``contour``'s pending dash to the occupancy."""
        if contour.pending is not None:
            where, footprint = contour.pending
            self.taken[where] = np.maximum(self.taken[where], footprint)
            contour.pending = None

    def exposed(self, orientation: float) -> bool:
        """Whether the original finds no start at all for a dash in ``orientation``."""
        g = self.g
        return stamps.exposed(
            g.paddle_length, g.paddle_thickness, self.margin, g.antialias, orientation, self.n
        )

    def start_degrees(self) -> np.ndarray:
        """The whole-degree directions in [-180, 180) that are not ``exposed``."""
        g = self.g
        return stamps.start_degrees(
            g.paddle_length, g.paddle_thickness, self.margin, g.antialias, self.n
        )

    def free_start(
        self, lined: np.ndarray, stamp: stamps.Stamp, rng: np.random.Generator
    ) -> tuple[int, int] | None:
        """A pixel drawn uniformly among the free starts of ``stamp``, or None.

        A start p is free when ``lined`` <= FREE at p + each ``probe`` offset on the canvas
        (the original's test) and at p + each ``core`` offset, all on the canvas (so the dash
        drawn at p meets nothing either). Random pixels are tested in batches first (the first
        free one is uniform among the free ones); after START_BATCHES misses all are tested.
        """
        n = self.n
        for _ in range(START_BATCHES):
            starts = rng.integers(0, n, size=(START_BATCH, 1, 2))
            free = self._probe_free(lined, starts + stamp.probe[None]) & self._core_free(
                lined, starts + stamp.core[None]
            )
            hits = np.flatnonzero(free)
            if len(hits):
                return int(starts[hits[0], 0, 0]), int(starts[hits[0], 0, 1])
        choices = self.free_starts(lined, stamp)
        if not len(choices):
            return None
        r, c = choices[rng.integers(len(choices))]
        return int(r), int(c)

    def free_starts(self, lined: np.ndarray, stamp: stamps.Stamp) -> np.ndarray:
        """All free starts of ``stamp`` (see ``free_start``), int [k, 2] in (row, col) order."""
        n = self.n
        free = np.ones((n, n), dtype=bool)
        padded = np.pad(lined > FREE, 1, constant_values=False)
        for offsets, off_canvas in ((stamp.probe, False), (stamp.core, True)):
            padded[0], padded[-1], padded[:, 0], padded[:, -1] = (off_canvas,) * 4
            for dr, dc in offsets:
                rows = np.clip(np.arange(n) + dr, -1, n) + 1
                cols = np.clip(np.arange(n) + dc, -1, n) + 1
                free &= ~padded[rows[:, None], cols[None, :]]
        return np.argwhere(free)

    def _probe_free(self, lined: np.ndarray, points: np.ndarray) -> np.ndarray:
        inside = np.all((points >= 0) & (points < self.n), axis=-1)
        clipped = np.clip(points, 0, self.n - 1)
        return np.all(~inside | (lined[clipped[..., 0], clipped[..., 1]] <= FREE), axis=1)

    def _core_free(self, lined: np.ndarray, points: np.ndarray) -> np.ndarray:
        inside = np.all((points >= 0) & (points < self.n), axis=-1)
        clipped = np.clip(points, 0, self.n - 1)
        return np.all(inside & (lined[clipped[..., 0], clipped[..., 1]] <= FREE), axis=1)


def seed(
    canvas: Canvas,
    rng: np.random.Generator,
    kind: str,
    contrast: float,
    lined: np.ndarray,
    stop: bool,
) -> Contour | None:
    """Starts a contour: a dash at a free pixel in a random whole-degree direction.

    ``lined``: the occupancy a start must keep clear of. ``stop``: give up when under 1% of
    the canvas is unoccupied. Up to PADDLE_TRIES directions are tried when the dash's head or
    pivot falls off the canvas. Returns the contour (its dash pending), or None.
    """
    g, m = canvas.g, canvas.margin
    for _ in range(PADDLE_TRIES):
        theta = int(rng.integers(-180, 180)) * math.pi / 180
        if stop and np.mean(canvas.taken <= FREE) < STOP_AVAILABILITY:
            return None
        stamp = canvas.dash(theta)
        tail = None if canvas.exposed(theta) else canvas.free_start(lined, stamp, rng)
        if tail is None:
            return None
        head = step(tail, theta, g.paddle_length)
        pivot = step(head, flip(theta), g.paddle_length + m)
        if not (canvas.inside(head) and canvas.inside(pivot)):
            continue
        return start_contour(canvas, kind, tail, theta, pivot, stamp, contrast)
    return None


def start_contour(
    canvas: Canvas,
    kind: str,
    tail: tuple[int, int],
    theta: float,
    pivot: tuple[int, int],
    stamp: stamps.Stamp,
    contrast: float,
) -> Contour:
    """Draws a contour's first dash from ``tail`` in direction ``theta``."""
    length = canvas.g.paddle_length
    last = (tail[0] + length * math.sin(theta), tail[1] + length * math.cos(theta))
    contour = Contour(kind, tail, [Dash((float(tail[0]), float(tail[1])), last, theta, pivot)])
    contour.pending = canvas.ink(tail, stamp, contrast)
    return contour


def extend(
    canvas: Canvas, rng: np.random.Generator, contour: Contour, taken: np.ndarray, contrast: float
) -> bool:
    """Adds one dash to ``contour`` (module doc), tested against ``taken``; False if none fits."""
    g, m, n = canvas.g, canvas.margin, canvas.n
    previous = contour.dashes[-1]
    theta = previous.direction
    pivot = step(previous.pivot, theta, g.paddle_length + 2 * m)
    offsets, directions, near = candidates(g.paddle_length + m, m)
    ends = offsets + pivot
    keep = np.all((ends >= 0) & (ends < n), axis=1)
    if not keep.all():
        ends, directions, near = ends[keep], directions[keep], near[keep]
    if not len(ends):
        return False
    turn = np.abs(directions - theta)
    turn = np.minimum(turn, 2 * np.pi - turn)
    weight = np.cos(np.minimum(turn * g.continuity, np.pi / 2)) ** 2
    # neighbours off the canvas clip onto the padding band, which is occupied like them
    near = np.clip(near + pivot, 0, n - 1)
    weight = weight * (1.0 - taken[near[..., 0], near[..., 1]].max(axis=1))
    total = weight.sum()
    if total < 1e-4:
        return False
    cmf = np.cumsum(weight / total)
    last_possible = int(np.flatnonzero(weight > 0)[-1])
    for _ in range(PADDLE_TRIES):
        k = min(int(np.searchsorted(cmf, rng.random(), side="right")), last_possible)
        head = (int(ends[k, 0]), int(ends[k, 1]))
        direction = float(directions[k])
        stamp = canvas.dash(flip(direction))
        where, inner = canvas.window(head, stamp.half)
        if np.max(taken[where] + stamp.footprint[inner]) >= COLLISION:
            continue
        canvas.occupy(contour)
        contour.pending = canvas.ink(head, stamp, contrast)
        first = (
            head[0] - g.paddle_length * math.sin(direction),
            head[1] - g.paddle_length * math.cos(direction),
        )
        contour.dashes.append(Dash(first, (float(head[0]), float(head[1])), direction, pivot))
        return True
    return False


def with_pending(taken: np.ndarray, contour: Contour) -> np.ndarray:
    """``taken`` plus ``contour``'s pending dash (a copy)."""
    out = taken.copy()
    if contour.pending is not None:
        where, footprint = contour.pending
        out[where] = np.maximum(out[where], footprint)
    return out


@functools.cache
def first_starts(size: int, margin: int, degree: int) -> np.ndarray:
    """The free starts int [k, 2] of the first target dash heading ``degree``: on the empty
    canvas, clear of the padding and of a band 2 * seed_distance wide along the border."""
    canvas = Canvas(GEOMETRY[size], margin)
    band = 2 * canvas.g.seed_distance
    lined = canvas.taken.copy()
    lined[:band], lined[-band:], lined[:, :band], lined[:, -band:] = 1, 1, 1, 1
    return canvas.free_starts(lined, canvas.dash(degree * math.pi / 180))


def seed_targets(canvas: Canvas, rng: np.random.Generator) -> list[Contour] | None:
    """The two target contours' first dashes, seed_distance apart, the first in the centre.

    The first takes a direction among those that are not ``exposed``: the original redraws
    the whole pair until it gets one, which draws the same distribution far slower.
    """
    g, m = canvas.g, canvas.margin
    degrees = canvas.start_degrees()
    for _ in range(PADDLE_TRIES):
        degree = int(degrees[rng.integers(len(degrees))])
        theta = degree * math.pi / 180
        stamp = canvas.dash(theta)
        starts = first_starts(g.size, m, degree)
        if not len(starts):
            return None
        row, col = starts[rng.integers(len(starts))]
        tail = (int(row), int(col))
        head = step(tail, theta, g.paddle_length)
        pivot = step(head, flip(theta), g.paddle_length + m)
        if canvas.inside(head) and canvas.inside(pivot):
            break
    else:
        return None
    first = start_contour(canvas, "target", tail, theta, pivot, stamp, g.target_contrast)
    taken = with_pending(canvas.taken, first)
    for _ in range(PADDLE_TRIES):
        theta = int(rng.integers(-180, 180)) * math.pi / 180
        around = int(rng.integers(0, 360)) * math.pi / 180
        tail = (
            round(first.start[0] + g.seed_distance * math.sin(around)),
            round(first.start[1] + g.seed_distance * math.cos(around)),
        )
        head = step(tail, theta, g.paddle_length)
        pivot = step(head, flip(theta), g.paddle_length + m)
        if not (canvas.inside(tail) and canvas.inside(head) and canvas.inside(pivot)):
            continue
        stamp = canvas.dash(theta)
        where, inner = canvas.window(tail, stamp.half)
        if np.max(taken[where] + stamp.footprint[inner]) >= COLLISION:
            continue
        second = start_contour(canvas, "target", tail, theta, pivot, stamp, g.target_contrast)
        return [first, second]
    return None


def grow_targets(
    canvas: Canvas, rng: np.random.Generator, contour_length: int
) -> list[Contour] | None:
    """The two target contours of ``contour_length`` dashes, grown a dash each in turn."""
    targets = seed_targets(canvas, rng)
    if targets is None:
        return None
    for _ in range(contour_length - 1):
        for k in (0, 1):
            taken = with_pending(canvas.taken, targets[1 - k])
            if not extend(canvas, rng, targets[k], taken, canvas.g.target_contrast):
                return None
    for target in targets:
        canvas.occupy(target)
    return targets


def add_distractors(canvas: Canvas, rng: np.random.Generator, count: int, length: int) -> list:
    """Up to ``count`` distractor contours of ``length`` dashes (CONTOUR_TRIES tries each)."""
    lined = canvas.taken.copy()
    contours = []
    for _ in range(count):
        for _ in range(CONTOUR_TRIES):
            image, taken = canvas.image.copy(), canvas.taken.copy()
            lined[:] = canvas.taken
            lined[0], lined[-1], lined[:, 0], lined[:, -1] = 1, 1, 1, 1
            kind = "distractor" if length > 1 else "paddle"
            contour = seed(canvas, rng, kind, canvas.g.distractor_contrast, lined, stop=True)
            contrast = canvas.g.distractor_contrast
            if contour is not None and all(
                extend(canvas, rng, contour, canvas.taken, contrast) for _ in range(length - 1)
            ):
                canvas.occupy(contour)
                contours.append(contour)
                break
            canvas.image, canvas.taken = image, taken
    return contours


def add_paddles(canvas: Canvas, rng: np.random.Generator, count: int) -> list[Contour]:
    """Up to ``count`` single-dash distractors (PADDLE_TRIES tries each)."""
    lined = np.empty_like(canvas.taken)
    paddles = []
    for _ in range(count):
        for _ in range(PADDLE_TRIES):
            lined[:] = canvas.taken
            lined[0], lined[-1], lined[:, 0], lined[:, -1] = 1, 1, 1, 1
            contour = seed(canvas, rng, "paddle", canvas.g.distractor_contrast, lined, stop=True)
            if contour is not None:
                canvas.occupy(contour)
                paddles.append(contour)
                break
    return paddles


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``image`` scaled from its minimum and maximum to 0..255 and rounded (as bytescale)."""
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) * (255.0 / ((high - low) or 1.0))
    return np.floor(np.clip(scaled, 0, 255) + 0.5).astype(np.uint8)


def draw(
    rng: np.random.Generator,
    label: int,
    size: int,
    contour_length: int,
    single_dashes: bool = False,
) -> Drawing:
    """One Pathfinder image at resolution ``size`` with target contours of ``contour_length``
    dashes, single-dash distractors when ``single_dashes`` (see module doc)."""
    g = geometry(size)
    check_choice("label", label, (0, 1))
    length = distractor_length(contour_length)
    margin = g.margins[int(rng.integers(len(g.margins)))]
    for _ in range(IMAGE_TRIES):
        canvas = Canvas(g, margin)
        targets = grow_targets(canvas, rng, contour_length)
        if targets is not None:
            break
    else:
        raise RuntimeError(f"no Pathfinder target pair fitted in {IMAGE_TRIES} tries (size {size})")
    contours = add_distractors(canvas, rng, distractor_contours(g, contour_length), length)
    if single_dashes:
        contours += add_paddles(canvas, rng, single_paddles(g, margin, contour_length))
    origin = int(rng.integers(2))
    targets = [targets[origin], targets[1 - origin]]
    markers = np.array([targets[0].start, targets[0 if label else 1].end], dtype=np.int32)
    ring = stamps.marker(g.marker_radius, g.antialias)
    for point in markers:
        canvas.ink((int(point[0]), int(point[1])), ring, 1.0)
    return Drawing(to_uint8(canvas.image), markers, label, margin, targets + contours)


def render(
    rng: np.random.Generator,
    label: int,
    size: int,
    contour_length: int,
    single_dashes: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One Pathfinder image: (uint8 [size, size], marker centres int32 [2, 2] as (row, col))."""
    drawing = draw(rng, label, size, contour_length, single_dashes)
    return drawing.image, drawing.markers

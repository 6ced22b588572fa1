"""LRA's Pathfinder drawing parameters per resolution, as the original generator takes them.

The original is ``snakes2.py`` (with ``snakes.py``) of drewlinsley/pathfinder (commit
7b53886). LRA generated its four resolutions with that code's defaults (``snakes2_wrapper.py``,
class ``Args``, lines 8-15) overridden as listed in the docstrings of
google-research/long-range-arena ``lra_benchmarks/data/pathfinder.py`` (commit cd31e5c):
Pathfinder32 lines 30-43, Pathfinder64 lines 118-130, Pathfinder128 lines 205-217,
Pathfinder256 lines 292-302. Where a list sets ``antialias_scale`` twice, the later 2 holds.

==========================  ======  ======  ========  ======  ===========================
parameter                   32      64      128       256     source
==========================  ======  ======  ========  ======  ===========================
paddle_length (px)          2       5       5         5       LRA 32 l.33; Args default
paddle_thickness (px)       0.5     1       1.5       2       LRA l.36 / 125 / 212 / 297
paddle_margin (px)          1       1       2 or 3    3       LRA l.30 / 120 / 207 / 293
continuity                  1.0     1.8     1.8       1.8     LRA l.39 / 127 / 214 / 299
seed_distance (px)          7       12      20        27      LRA l.38 / 121 / 208; default
padding (px)                1       1       1         22      LRA l.32 / 118 / 205; default
marker_radius (px)          1.5     2.5     3         5       LRA l.34 / 123 / 210 / 295
snake contrast              2       0.8     0.9       1.0     LRA l.42 / 130 / 217 / 302
paddle contrast             0.75    1       1         1       LRA l.43; Args default
distractor budget           20      22      35        30      LRA l.41 / 129 / 216 / 301
antialias_scale             2       2       2         2       LRA l.37 / 126 / 213 / 298
==========================  ======  ======  ========  ======  ===========================

The 128 px margin is drawn per image from (2, 3), as ``snakes2.from_wrapper`` samples
``paddle_margin_list``. Target contours are inked at paddle contrast x snake contrast
(``snakes2.two_snakes``), distractors at snake contrast alone (``make_many_snakes`` gets
``snake_contrast_list``), markers at 1; the saved image is scaled to 0..255 by its maximum
(scipy.misc's bytescale, which ``imsave`` applied in 2020).
"""

from __future__ import annotations

import dataclasses
import math

from memjax.tasks.checks import check_choice, check_int

PADDLE_TRIES = 3  # Args.max_paddle_retrial = 2: a dash is sampled up to 3 times
CONTOUR_TRIES = 5  # Args.max_distractor_contour_retrial = 4: a distractor is tried 5 times
STOP_AVAILABILITY = 0.01  # distractors stop when under 1% of the canvas is free
BASE_PADDLES = 150  # snakes2.from_wrapper line 288: single-paddle count before margin scaling


@dataclasses.dataclass(frozen=True)
class Geometry:
    """The original generator's drawing arguments at one resolution (table in module doc).

    Attributes:
      size: canvas side in pixels.
      paddle_length: length L of one dash ("paddle"), in pixels.
      paddle_thickness: dash stroke width, in pixels.
      margins: the dash margin m to draw per image; consecutive dashes of a contour leave a
        gap of 2m along the path, and different dashes keep about 2m apart.
      continuity: c; the turn between consecutive dashes is weighted cos^2(c * turn) and
        bounded by pi / (2c) (90 degrees at c = 1, 50 degrees at c = 1.8).
      seed_distance: distance of the second target contour's start from the first's.
      padding: border band no dash footprint may cover.
      marker_radius: marker disc radius.
      target_contrast: ink of the target contours' dashes.
      distractor_contrast: ink of the distractor contours' and single dashes.
      distractor_budget: distractor dashes LRA asked for; ``budget // distractor_length``
        distractor contours are drawn.
      antialias: supersampling factor of the dash and marker drawings.
    """

    size: int
    paddle_length: int
    paddle_thickness: float
    margins: tuple[int, ...]
    continuity: float
    seed_distance: int
    padding: int
    marker_radius: float
    target_contrast: float
    distractor_contrast: float
    distractor_budget: int
    antialias: int = 2

    @property
    def max_turn(self) -> float:
        """The largest turn (radians) between consecutive dashes of a contour."""
        return math.pi / (2 * self.continuity)


GEOMETRY = {
    32: Geometry(32, 2, 0.5, (1,), 1.0, 7, 1, 1.5, 0.75 * 2, 2.0, 20),
    64: Geometry(64, 5, 1.0, (1,), 1.8, 12, 1, 2.5, 0.8, 0.8, 22),
    128: Geometry(128, 5, 1.5, (2, 3), 1.8, 20, 1, 3.0, 0.9, 0.9, 35),
    256: Geometry(256, 5, 2.0, (3,), 1.8, 27, 22, 5.0, 1.0, 1.0, 30),
}


def geometry(size: int) -> Geometry:
    """The geometry of resolution ``size``; ValueError for a resolution LRA did not use."""
    check_choice("resolution", size, tuple(GEOMETRY))
    return GEOMETRY[size]


def distractor_length(contour_length: int) -> int:
    """Dashes per distractor contour: ``contour_length // 3`` (LRA l.40)."""
    check_int("contour_length", contour_length, 3)
    return contour_length // 3


def distractor_contours(g: Geometry, contour_length: int) -> int:
    """Distractor contours per image: LRA's budget // distractor length (LRA l.41)."""
    return g.distractor_budget // distractor_length(contour_length)


def single_paddles(g: Geometry, margin: int, contour_length: int) -> int:
    """Single-dash distractors asked for (``snakes2.from_wrapper`` lines 288-290, 327): 150
    scaled by 123.5 / (7.5 + 13m + 4m^2), less the dashes already in the contours."""
    total = int(BASE_PADDLES * 123.5 / (7.5 + 13 * margin + 4 * margin * margin))
    n = distractor_contours(g, contour_length)
    return max(total - 2 * contour_length - n * distractor_length(contour_length), 0)

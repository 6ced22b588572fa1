"""Linear recurrent unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences").

A complex diagonal recurrence parametrised directly in discrete time (no discretisation)::

    lambda = exp(-exp(nu_log) + i exp(theta_log))            [N], |lambda| < 1 always
    gamma = exp(gamma_log)                                   [N], real
    h_t = lambda * h_{t-1} + gamma * (x_t B)                 [*batch, N] complex64
    y_t = Re(h_t C) + skip(x_t)                              [*batch, hidden]

with ``B = B_re + i B_im [d_in, N]``, ``C = C_re + i C_im [N, hidden]`` (the paper's ``B [N, H]``
and ``C [H, N]`` transposed to memjax's ``x @ W`` convention). Initialisation as in the paper:
``lambda`` uniform on the ring ``r_min <= |lambda| <= r_max`` with phase in ``[0, max_phase]``
(``|lambda|^2 ~ U[r_min^2, r_max^2]``, ``nu_log = log(-log|lambda|)``,
``theta_log = log(phase)``); ``gamma_log = log sqrt(1 - |lambda|^2)`` (trainable afterwards), so
that for white-noise input the stationary ``E|h|^2`` equals ``E|x B|^2``;
``B_re, B_im ~ N(0, 1 / (2 d_in))``, ``C_re, C_im ~ N(0, 1 / N)``.

The skip ``D`` is the paper's diagonal ``D * x`` (``D [hidden] ~ N(0, 1)``) when
``d_in == hidden``; for ``d_in != hidden`` there is no diagonal, and a dense ``x @ D`` with
LeCun-normal ``D [d_in, hidden]`` takes its place (see ``ssm.py``, whose
:class:`~memjax.cells.ssm.DiagonalSSM` this cell shares with S5).

Defaults ``r_min=0.9, r_max=0.999, max_phase=2 pi``: the paper initialises ``|lambda|`` close
to 1 for its long-range (LRA) tasks, which is what lets the LRU reach far back, and shrinks the
phase range (down to ``pi / 10``) for the hardest ones; its reference code's generic defaults are
``r_min=0, r_max=1``. Here ``r_max < 1`` is required so that ``gamma`` is finite.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from memjax.cells.base import Array, Params
from memjax.cells.registry import register
from memjax.cells.ssm import DiagonalSSM


@register
@dataclasses.dataclass(frozen=True)
class LRU(DiagonalSSM):
    """Linear recurrent unit (see module docstring).

    Attributes:
      state_size: number of complex modes ``N`` (default ``hidden``).
      r_min, r_max: radii of the ring the initial ``lambda`` is drawn from,
        ``0 <= r_min <= r_max < 1``.
      max_phase: largest initial phase of ``lambda``, in radians.
    """

    r_min: float = 0.9
    r_max: float = 0.999
    max_phase: float = 2 * math.pi
    name = "lru"
    recurrence_params = ("nu_log", "theta_log", "gamma_log")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.r_min <= self.r_max < 1.0:
            raise ValueError(
                f"need 0 <= r_min <= r_max < 1, got r_min={self.r_min}, r_max={self.r_max}"
            )
        if not self.max_phase > 0.0:
            raise ValueError(f"max_phase must be positive, got {self.max_phase}")

    def init_diagonal(self, key: Array) -> Params:
        k_radius, k_phase = jax.random.split(key)
        n = self.modes
        radius_sq = jax.random.uniform(k_radius, (n,), minval=self.r_min**2, maxval=self.r_max**2)
        nu_log = jnp.log(-0.5 * jnp.log(radius_sq))
        return {
            "nu_log": nu_log,
            "theta_log": jnp.log(self.max_phase * jax.random.uniform(k_phase, (n,))),
            "gamma_log": 0.5 * jnp.log1p(-radius_sq),
        }

    def diagonal(self, params: Params) -> tuple[Array, Array]:
        lam = jnp.exp(jax.lax.complex(-jnp.exp(params["nu_log"]), jnp.exp(params["theta_log"])))
        return lam, jnp.exp(params["gamma_log"])

"""Diagonal state-space cells: a shared complex diagonal base and S5 (S4D initialisation).

A diagonal SSM keeps ``N`` independent complex modes and reads them out linearly::

    h_t = lambda * h_{t-1} + scale * (x_t B)        (elementwise over the N modes)
    y_t = Re(h_t C) + skip(x_t)

with ``lambda [N]`` complex, ``scale [N]`` (complex or real), ``B = B_re + i B_im [d_in, N]`` and
``C = C_re + i C_im [N, hidden]`` (the papers' ``B [N, d_in]`` and ``C [hidden, N]``, transposed
to memjax's ``x @ W`` convention) and ``h_t [*batch, N]`` complex64 (complex128 for float64
inputs, which compute in float64 throughout). Subclasses differ only in
how ``lambda`` and ``scale`` are parametrised (:meth:`DiagonalSSM.diagonal`); ``lru.py`` is the
other one. ``Re(h C) = [Re h, Im h] @ [C_re; -C_im]`` is one real matmul over all steps.

The skip is ``skip(x) = D * x`` with ``D [hidden] ~ N(0, 1)`` when ``d_in == hidden`` (the
papers' diagonal ``D``); otherwise it is a dense ``x @ D`` with ``D [d_in, hidden]`` drawn
LeCun-normal, which gives each output the same unit variance for unit-variance inputs.
Initialisation of ``B`` and ``C`` follows the LRU: ``B_re, B_im ~ N(0, 1 / (2 d_in))`` (so
``E|x B|^2 = 1`` per mode for unit-variance ``x``) and ``C_re, C_im ~ N(0, 1 / N)``.

S5 (Smith et al. 2023, "Simplified State Space Layers for Sequence Modeling") is the MIMO
diagonal SSM ``h' = Lambda h + B x`` in continuous time, discretised by zero-order hold with a
learnable step ``Delta [N]`` per mode::

    Lambda = -exp(lambda_re_log) + i lambda_im                       (Re Lambda < 0 always)
    Delta = exp(log_step),  log_step ~ U[log dt_min, log dt_max] at init
    lambda = exp(Lambda Delta),   scale = (lambda - 1) / Lambda     (i.e. B_bar = scale * B)

``Lambda`` starts at S4D-Lin (Gu et al. 2022, "On the Parameterization and Initialization of
Diagonal State Space Models"): ``Lambda_n = -1/2 + i pi n``, ``n = 0..N-1``, the
linear-frequency approximation of the diagonalised HiPPO-LegS matrix; ``lambda_init="inv"``
selects S4D-Inv, ``Lambda_n = -1/2 + i (N / pi) (N / (2n + 1) - 1)``. The modes are one half of
conjugate pairs (S5's ``conj_sym``): a real system of ``2N`` states reads ``2 Re(h C')``, and
the factor 2 is absorbed into ``C``. ``scale`` is computed with ``expm1`` so that it stays
accurate for small ``|Lambda Delta|``.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from memjax.cells.base import Array, LinearCell, Params, matmul
from memjax.cells.registry import register

COMPLEX_STATE_DTYPE = jnp.complex64


def skip_init(key: Array, d_in: int, hidden: int) -> Array:
    """The skip: ``D [hidden] ~ N(0, 1)`` if ``d_in == hidden``, else LeCun ``D [d_in, hidden]``."""
    if d_in == hidden:
        return jax.random.normal(key, (hidden,))
    return jax.nn.initializers.lecun_normal()(key, (d_in, hidden))


def skip_apply(d: Array, x: Array) -> Array:
    """``D * x`` (diagonal ``D``) or ``x @ D`` (dense ``D``), returned in ``x``'s dtype; the
    product is float32 for half-precision ``x`` and in ``x``'s dtype for float32 and float64."""
    if d.ndim == 1:
        return (x.astype(jnp.promote_types(x.dtype, jnp.float32)) * d).astype(x.dtype)
    return matmul(x, d).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class DiagonalSSM(LinearCell):
    """Complex diagonal linear recurrence with a real read-out (see module docstring).

    Attributes:
      state_size: number of complex modes ``N`` (default ``hidden``).
    """

    state_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.state_size
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ValueError(f"state_size must be a positive int or None, got {self.state_size!r}")

    @property
    def modes(self) -> int:
        """``N``, the number of complex modes."""
        return self.hidden if self.state_size is None else self.state_size

    @abc.abstractmethod
    def init_diagonal(self, key: Array) -> Params:
        """The parameters of ``lambda`` and ``scale``, each leaf ``[N]``."""

    @abc.abstractmethod
    def diagonal(self, params: Params) -> tuple[Array, Array]:
        """``(lambda, scale)``, both ``[N]``: ``h_t = lambda h_{t-1} + scale (x_t B)``."""

    def init(self, key: Array, d_in: int) -> Params:
        k_diag, k_bre, k_bim, k_cre, k_cim, k_d = jax.random.split(key, 6)
        n = self.modes
        return {
            **self.init_diagonal(k_diag),
            "b_re": jax.random.normal(k_bre, (d_in, n)) / math.sqrt(2 * d_in),
            "b_im": jax.random.normal(k_bim, (d_in, n)) / math.sqrt(2 * d_in),
            "c_re": jax.random.normal(k_cre, (n, self.hidden)) / math.sqrt(n),
            "c_im": jax.random.normal(k_cim, (n, self.hidden)) / math.sqrt(n),
            "d": skip_init(k_d, d_in, self.hidden),
        }

    def input_features(self, params: Params) -> int:
        return params["b_re"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> Array:
        return jnp.zeros((*batch_shape, self.modes), COMPLEX_STATE_DTYPE)

    def prepare(self, params: Params, x: Array) -> dict[str, Array]:
        """``{"bx": scale * (x B) [..., N] complex64 (complex128 for float64 x),
        "skip": skip(x) [..., hidden]}``."""
        xb = matmul(x, jnp.concatenate([params["b_re"], params["b_im"]], axis=1))
        re, im = jnp.split(xb, 2, axis=-1)
        _, scale = self.diagonal(params)
        return {"bx": jax.lax.complex(re, im) * scale, "skip": skip_apply(params["d"], x)}

    def elements(self, params: Params, pre: dict[str, Array]) -> tuple[Array, Array]:
        lam, _ = self.diagonal(params)
        return jnp.broadcast_to(lam, pre["bx"].shape), pre["bx"]

    def emit(self, params: Params, state: Array, pre: dict[str, Array]) -> Array:
        """``[Re h, Im h]``, ``[..., 2N]`` float32 (float64 for a complex128 state)."""
        return jnp.concatenate([state.real, state.imag], axis=-1)

    def readout(self, params: Params, h: Array, pre: dict[str, Array]) -> Array:
        skip = pre["skip"]
        c = jnp.concatenate([params["c_re"], -params["c_im"]], axis=0)
        return matmul(h.astype(skip.dtype), c) + skip


def s4d_lin(n: int) -> Array:
    """S4D-Lin eigenvalues ``-1/2 + i pi k``, ``k = 0..n-1``."""
    return -0.5 + 1j * jnp.pi * jnp.arange(n)


def s4d_inv(n: int) -> Array:
    """S4D-Inv eigenvalues ``-1/2 + i (n / pi) (n / (2k + 1) - 1)``, ``k = 0..n-1``."""
    return -0.5 + 1j * (n / jnp.pi) * (n / (2 * jnp.arange(n) + 1) - 1)


S4D_INITS = {"lin": s4d_lin, "inv": s4d_inv}


@register
@dataclasses.dataclass(frozen=True)
class S5(DiagonalSSM):
    """S5: MIMO diagonal SSM, ZOH-discretised with a learnable step per mode (module docstring).

    Attributes:
      dt_min, dt_max: range of the log-uniform initial step sizes ``Delta``.
      lambda_init: "lin" (S4D-Lin) or "inv" (S4D-Inv) initial eigenvalues ``Lambda``.
    """

    dt_min: float = 0.001
    dt_max: float = 0.1
    lambda_init: str = "lin"
    name = "s5"
    recurrence_params = ("lambda_re_log", "lambda_im", "log_step")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lambda_init not in S4D_INITS:
            raise ValueError(
                f"lambda_init must be one of {sorted(S4D_INITS)}, got {self.lambda_init!r}"
            )
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(
                f"need 0 < dt_min <= dt_max, got dt_min={self.dt_min}, dt_max={self.dt_max}"
            )

    def init_diagonal(self, key: Array) -> Params:
        lam = S4D_INITS[self.lambda_init](self.modes)
        log_step = jax.random.uniform(
            key, (self.modes,), minval=math.log(self.dt_min), maxval=math.log(self.dt_max)
        )
        return {
            "lambda_re_log": jnp.log(-lam.real).astype(jnp.float32),
            "lambda_im": lam.imag.astype(jnp.float32),
            "log_step": log_step,
        }

    def diagonal(self, params: Params) -> tuple[Array, Array]:
        lam = jax.lax.complex(-jnp.exp(params["lambda_re_log"]), params["lambda_im"])
        lam_dt = lam * jnp.exp(params["log_step"])
        return jnp.exp(lam_dt), jnp.expm1(lam_dt) / lam

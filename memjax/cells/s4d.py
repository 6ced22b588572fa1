"""S4D (Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State Space
Models"): ``H`` independent single-input single-output diagonal SSMs, one per channel.

Channel ``h`` of the input ``u_t [*batch, H]`` drives its own ``N / 2`` complex modes, the upper
halves of ``N / 2`` conjugate pairs of a real state of size ``N``, so its output is twice the
real part::

    A = -exp(a_re_log) + i a_im                                   [H, N/2]
    Delta = exp(log_dt)                                           [H]
    zoh (default):  A_bar = exp(Delta A),   B_bar = (A_bar - 1) / A * B
    bilinear:       A_bar = (1 + Delta A / 2) / (1 - Delta A / 2),
                    B_bar = Delta / (1 - Delta A / 2) * B
    h_t = A_bar * h_{t-1} + B_bar * u_t                           [*batch, H, N/2] complex64
    y_t = 2 Re(sum_n C_n h_t,n) + D * u_t                         [*batch, H]

with ``B = b_re + i b_im``, ``C = c_re + i c_im`` (each ``[H, N/2]``) and ``D [H]``; nothing is
shared between channels. Unrolled, ``y = K * u + D u`` is a causal convolution with the kernel
``K_l = 2 Re(sum_n C_n B_bar_n A_bar_n^l)`` (the paper's Vandermonde form); memjax runs it as
the recurrence, sequentially or as an associative scan. ``(A_bar - 1) / A`` is computed with
``expm1`` so that it stays accurate for small ``|Delta A|``.

Initialisation as S4D's: S4D-Lin ``A_n = -1/2 + i pi n`` (``n = 0 .. N/2 - 1``) in every channel,
``log_dt ~ U[log dt_min, log dt_max]`` per channel, ``B = 1`` (S4D's "ones"), ``C`` complex
normal (real and imaginary parts ``N(0, 1/2)``, ``torch.randn`` of a complex dtype) and
``D ~ N(0, 1)``. ``A`` (``a_re_log``, ``a_im``), ``log_dt`` and ``B`` are the recurrence
parameters (their own learning rate, no weight decay), as in S4D's kernels, which register
``(A, B, dt)`` with the SSM learning rate and weight decay 0 (``C`` and ``D`` are ordinary).

Input width: S4D is channel-wise, so it maps ``d_in = H`` inputs as they are (a model's
``Block`` always does). For ``d_in != H`` the input is first projected, ``u = x W_in`` with a
LeCun-uniform ``W_in [d_in, H]``, and the skip reads the projected ``u``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from memjax.cells.base import Array, LinearCell, Params, linear_init, matmul
from memjax.cells.registry import register
from memjax.cells.ssm import COMPLEX_STATE_DTYPE, DISCRETIZATIONS, skip_apply

RECURRENCE_PARAMS = ("a_re_log", "a_im", "log_dt", "b_re", "b_im")


def check_state_size(state_size: object) -> None:
    """ValueError unless ``state_size`` (``N``, two real states per complex mode) is an even
    positive int."""
    n = state_size
    if not isinstance(n, int) or isinstance(n, bool) or n < 2 or n % 2:
        raise ValueError(
            f"state_size must be an even positive int (N: N/2 complex modes, each one of a "
            f"conjugate pair), got {state_size!r}"
        )


def check_steps(dt_min: object, dt_max: object) -> None:
    """ValueError unless ``0 < dt_min <= dt_max``."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (dt_min, dt_max))
    if not (numbers and 0 < dt_min <= dt_max):
        raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min!r}, dt_max={dt_max!r}")


def check_discretization(discretization: object) -> None:
    if discretization not in DISCRETIZATIONS:
        raise ValueError(
            f"discretization must be one of {list(DISCRETIZATIONS)}, got {discretization!r}"
        )


@register
@dataclasses.dataclass(frozen=True)
class S4D(LinearCell):
    """S4D: per-channel diagonal SSMs with S4D-Lin initialisation (see module docstring).

    Attributes:
      hidden: number of channels ``H`` (the input and output width).
      state_size: ``N``, the real state size per channel; ``N / 2`` complex modes are stored.
      dt_min, dt_max: range of the log-uniform initial step ``Delta`` of each channel.
      discretization: "zoh" (S4D's) or "bilinear".
    """

    state_size: int = 64
    dt_min: float = 0.001
    dt_max: float = 0.1
    discretization: str = "zoh"
    name = "s4d"
    recurrence_params = RECURRENCE_PARAMS

    def __post_init__(self) -> None:
        super().__post_init__()
        check_state_size(self.state_size)
        check_steps(self.dt_min, self.dt_max)
        check_discretization(self.discretization)

    @property
    def modes(self) -> int:
        """``N / 2``, the complex modes per channel."""
        return self.state_size // 2

    def init(self, key: Array, d_in: int) -> Params:
        k_dt, k_c, k_d, k_in = jax.random.split(key, 4)
        shape = (self.hidden, self.modes)
        c = math.sqrt(0.5) * jax.random.normal(k_c, (2, *shape))
        params = {
            "a_re_log": jnp.full(shape, math.log(0.5)),
            "a_im": jnp.broadcast_to(math.pi * jnp.arange(self.modes, dtype=jnp.float32), shape),
            "log_dt": jax.random.uniform(
                k_dt, (self.hidden,), minval=math.log(self.dt_min), maxval=math.log(self.dt_max)
            ),
            "b_re": jnp.ones(shape),
            "b_im": jnp.zeros(shape),
            "c_re": c[0],
            "c_im": c[1],
            "d": jax.random.normal(k_d, (self.hidden,)),
        }
        if d_in != self.hidden:
            params["w_in"] = linear_init(k_in, d_in, self.hidden)
        return params

    def input_features(self, params: Params) -> int:
        return params["w_in"].shape[0] if "w_in" in params else params["log_dt"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> Array:
        return jnp.zeros((*batch_shape, self.hidden, self.modes), COMPLEX_STATE_DTYPE)

    def discretize(self, params: Params) -> tuple[Array, Array]:
        """``(A_bar, B_bar)``, both ``[H, N/2]`` complex."""
        a = jax.lax.complex(-jnp.exp(params["a_re_log"]), params["a_im"])
        b = jax.lax.complex(params["b_re"], params["b_im"])
        dt = jnp.exp(params["log_dt"])[:, None]
        dt_a = dt * a
        if self.discretization == "bilinear":
            inv = 1.0 / (1.0 - dt_a / 2)
            return inv * (1.0 + dt_a / 2), inv * dt * b
        return jnp.exp(dt_a), jnp.expm1(dt_a) / a * b

    def prepare(self, params: Params, x: Array) -> dict[str, Array]:
        """``{"u": u [..., H], "skip": D * u [..., H]}``, in ``x``'s dtype."""
        u = matmul(x, params["w_in"]).astype(x.dtype) if "w_in" in params else x
        return {"u": u, "skip": skip_apply(params["d"], u)}

    def elements(self, params: Params, pre: dict[str, Array]) -> tuple[Array, Array]:
        """``(A_bar, B_bar * u)``, each ``[..., H, N/2]``."""
        a_bar, b_bar = self.discretize(params)
        b = b_bar * pre["u"][..., None]
        return jnp.broadcast_to(a_bar, b.shape), b

    def emit(self, params: Params, state: Array, pre: dict[str, Array]) -> Array:
        """``2 Re(sum_n C_n h_n)``, ``[..., H]`` float32 (float64 for a complex128 state)."""
        re = params["c_re"] * state.real - params["c_im"] * state.imag
        return 2.0 * jnp.sum(re, axis=-1)

    def readout(self, params: Params, h: Array, pre: dict[str, Array]) -> Array:
        return h + pre["skip"]

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
diagonal SSM ``h' = Lambda h + B x`` in continuous time, discretised with a learnable step
``Delta [N]`` per mode, ``Delta = exp(log_step)``, ``log_step ~ U[log dt_min, log dt_max]``::

    zoh (default):  lambda = exp(Lambda Delta),   scale = (lambda - 1) / Lambda
    bilinear:       lambda = (1 + Lambda Delta / 2) / (1 - Lambda Delta / 2),
                    scale = Delta / (1 - Lambda Delta / 2)               (B_bar = scale * B)

``scale`` of zoh is computed with ``expm1`` so that it stays accurate for small
``|Lambda Delta|``. Options, each one of the released S5's (``s5/ssm.py``, ``s5/ssm_init.py``,
``run_train.py``); the defaults are memjax's earlier "S5-style" cell, which S5's setup is a
choice of options away from (``configs/*.py`` select S5's at paper scale):

* ``lambda_init``: "lin" (default; S4D-Lin, Gu et al. 2022, ``Lambda_n = -1/2 + i pi n``), "inv"
  (S4D-Inv, ``-1/2 + i (N / pi) (N / (2n + 1) - 1)``), both the upper halves of conjugate
  pairs, or "hippo" (S5's: the eigenvalues of the normal part of HiPPO-LegS, in ``blocks``
  diagonal blocks, see :mod:`memjax.cells.hippo`);
* ``lambda_re_param``: "log" (default, ``Re Lambda = -exp(lambda_re_log)``, negative always) or
  "linear" (S5's: ``Re Lambda = lambda_re``, free; ``clip_eigs=True`` clips it to ``<= -1e-4``
  in the forward pass, S5's ``np.clip(Lambda_re, None, -1e-4)``); ``Im Lambda = lambda_im``;
* ``bc_init``: "lru" (default; see above) or "s5" (``lambda_init="hippo"`` only): ``B`` drawn
  LeCun-normal over S5's ``[P, d_in]`` (``P = 2N`` with ``conj_sym``, else ``N``) and stored as
  ``B~ = V^-1 B``; ``C`` drawn by ``c_init`` over ``[hidden, P]`` and stored as ``C~ = C V``
  ("trunc_standard_normal": LeCun-normal per output row, i.e. std ``1/sqrt(P)``;
  "lecun_normal": LeCun-normal over the whole ``[hidden, P, 2]``, std ``1/sqrt(P hidden)``), or
  "complex_normal": ``C~`` itself ``N(0, 1/2)`` per real and imaginary part, not multiplied by
  ``V``; ``D ~ N(0, 1)``;
* ``conj_sym``: the ``N`` stored modes are one of each conjugate pair of a real system of
  ``2N`` states, whose output is ``2 Re(h C~)``. With ``bc_init="s5"`` the factor 2 is applied
  in the read-out, as S5 does; with ``bc_init="lru"`` it is absorbed into ``C`` (the read-out is
  ``Re(h C)``). ``conj_sym=False`` (``lambda_init="hippo"`` only) keeps every eigenvalue of each
  HiPPO-N block and reads out ``Re(h C~)``;
* ``blocks``: the number of HiPPO-N blocks ``J``; it must divide ``N``. S5's ``ssm_size_base``
  ``P`` is ``2N`` with ``conj_sym`` (``N = P / 2`` modes are stored), ``N`` without.

``state_size`` is always the number ``N`` of complex modes stored (and scanned).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from memjax.cells import hippo
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

    def init_bc(self, keys: Sequence[Array], d_in: int) -> Params:
        """``B`` and ``C`` from four keys, as in the LRU: ``b_re, b_im ~ N(0, 1 / (2 d_in))``,
        ``c_re, c_im ~ N(0, 1 / N)``."""
        k_bre, k_bim, k_cre, k_cim = keys
        n = self.modes
        return {
            "b_re": jax.random.normal(k_bre, (d_in, n)) / math.sqrt(2 * d_in),
            "b_im": jax.random.normal(k_bim, (d_in, n)) / math.sqrt(2 * d_in),
            "c_re": jax.random.normal(k_cre, (n, self.hidden)) / math.sqrt(n),
            "c_im": jax.random.normal(k_cim, (n, self.hidden)) / math.sqrt(n),
        }

    def init(self, key: Array, d_in: int) -> Params:
        k_diag, *k_bc, k_d = jax.random.split(key, 6)
        return {
            **self.init_diagonal(k_diag),
            **self.init_bc(k_bc, d_in),
            "d": skip_init(k_d, d_in, self.hidden),
        }

    @property
    def out_scale(self) -> float:
        """The factor of the read-out, ``y = out_scale * Re(h C) + skip(x)`` (1 here)."""
        return 1.0

    def param_roles(self) -> dict[str, str]:
        """Each top-level parameter key's role in S5's optimiser groups (``s5/train_helpers.py``):
        "Lambda" (the recurrence), "log_step", "B", "C" and "D"."""
        roles = {"b_re": "B", "b_im": "B", "c_re": "C", "c_im": "C", "d": "D"}
        for key in self.recurrence_params:
            roles[key] = "log_step" if key == "log_step" else "Lambda"
        return roles

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
        if self.out_scale != 1.0:
            c = self.out_scale * c
        return matmul(h.astype(skip.dtype), c) + skip


def s4d_lin(n: int) -> Array:
    """S4D-Lin eigenvalues ``-1/2 + i pi k``, ``k = 0..n-1``."""
    return -0.5 + 1j * jnp.pi * jnp.arange(n)


def s4d_inv(n: int) -> Array:
    """S4D-Inv eigenvalues ``-1/2 + i (n / pi) (n / (2k + 1) - 1)``, ``k = 0..n-1``."""
    return -0.5 + 1j * (n / jnp.pi) * (n / (2 * jnp.arange(n) + 1) - 1)


S4D_INITS = {"lin": s4d_lin, "inv": s4d_inv}
LAMBDA_INITS = ("hippo", "inv", "lin")
BC_INITS = ("lru", "s5")
C_INITS = ("trunc_standard_normal", "lecun_normal", "complex_normal")
DISCRETIZATIONS = ("zoh", "bilinear")
LAMBDA_RE_PARAMS = ("log", "linear")
CLIP_EIGS_MAX = -1e-4
"""S5's ``clip_eigs`` bound on ``Re Lambda`` (``s5/ssm.py``)."""


def _choice(argument: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{argument} must be one of {sorted(choices)}, got {value!r}")


@register
@dataclasses.dataclass(frozen=True)
class S5(DiagonalSSM):
    """S5: MIMO diagonal SSM with a learnable step per mode (module docstring).

    Attributes:
      state_size: number ``N`` of complex modes stored (S5's ``P / 2`` with ``conj_sym``).
      dt_min, dt_max: range of the log-uniform initial step sizes ``Delta``.
      lambda_init: "lin" (S4D-Lin), "inv" (S4D-Inv) or "hippo" (S5's HiPPO-N blocks).
      blocks: number of HiPPO-N diagonal blocks (``lambda_init="hippo"``); divides ``N``.
      conj_sym: the modes are one of each conjugate pair (see the module docstring).
      bc_init: "lru" or "s5" (``B~ = V^-1 B``, ``C~ = C V``; needs ``lambda_init="hippo"``).
      c_init: S5's ``C_init`` for ``bc_init="s5"``.
      discretization: "zoh" or "bilinear".
      lambda_re_param: "log" (``Re Lambda = -exp(.)``) or "linear" (S5's, free).
      clip_eigs: clip ``Re Lambda <= -1e-4`` (``lambda_re_param="linear"`` only).
    """

    dt_min: float = 0.001
    dt_max: float = 0.1
    lambda_init: str = "lin"
    blocks: int = 1
    conj_sym: bool = True
    bc_init: str = "lru"
    c_init: str = "trunc_standard_normal"
    discretization: str = "zoh"
    lambda_re_param: str = "log"
    clip_eigs: bool = False
    name = "s5"

    @property
    def recurrence_params(self) -> tuple[str, ...]:  # type: ignore[override]
        """``lambda_re_log`` (or ``lambda_re``), ``lambda_im`` and ``log_step``."""
        real = "lambda_re_log" if self.lambda_re_param == "log" else "lambda_re"
        return (real, "lambda_im", "log_step")

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("lambda_init", self.lambda_init, LAMBDA_INITS)
        _choice("bc_init", self.bc_init, BC_INITS)
        _choice("c_init", self.c_init, C_INITS)
        _choice("discretization", self.discretization, DISCRETIZATIONS)
        _choice("lambda_re_param", self.lambda_re_param, LAMBDA_RE_PARAMS)
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(
                f"need 0 < dt_min <= dt_max, got dt_min={self.dt_min}, dt_max={self.dt_max}"
            )
        b = self.blocks
        if not isinstance(b, int) or isinstance(b, bool) or b < 1 or self.modes % b:
            raise ValueError(
                f"blocks must be a positive int dividing the {self.modes} modes, got {b!r}"
            )
        hippo_only = {
            "blocks > 1": b > 1,
            "conj_sym=False": not self.conj_sym,
            "bc_init='s5'": self.bc_init == "s5",
        }
        for what, asked in hippo_only.items():
            if asked and self.lambda_init != "hippo":
                raise ValueError(f"{what} needs lambda_init='hippo', got {self.lambda_init!r}")
        if self.clip_eigs and self.lambda_re_param != "linear":
            raise ValueError(
                "clip_eigs=True clips a free Re(Lambda): it needs lambda_re_param='linear' "
                "(with 'log', Re(Lambda) = -exp(.) is negative already)"
            )

    def _hippo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Lambda [N], V [P, N], V^-1 [N, P])`` of :func:`memjax.cells.hippo.block_init`."""
        return hippo.block_init(self.modes, self.blocks, self.conj_sym)

    def init_diagonal(self, key: Array) -> Params:
        if self.lambda_init == "hippo":
            lam = jnp.asarray(self._hippo()[0])
        else:
            lam = S4D_INITS[self.lambda_init](self.modes)
        log_step = jax.random.uniform(
            key, (self.modes,), minval=math.log(self.dt_min), maxval=math.log(self.dt_max)
        )
        if self.lambda_re_param == "log":
            real = {"lambda_re_log": jnp.log(-lam.real).astype(jnp.float32)}
        else:
            real = {"lambda_re": lam.real.astype(jnp.float32)}
        return {**real, "lambda_im": lam.imag.astype(jnp.float32), "log_step": log_step}

    def init_bc(self, keys: Sequence[Array], d_in: int) -> Params:
        if self.bc_init == "lru":
            return super().init_bc(keys, d_in)
        _, v_np, v_inv_np = self._hippo()
        v, v_inv = jnp.asarray(v_np, jnp.complex64), jnp.asarray(v_inv_np, jnp.complex64)
        size, hidden = v.shape[0], self.hidden
        k_b, k_c = keys[0], keys[1]
        lecun = jax.nn.initializers.lecun_normal
        # B [P, d_in] (S5's shape), fan-in P; stored transposed as B~^T = (V^-1 B)^T.
        b_tilde = (v_inv @ lecun()(k_b, (size, d_in))).T
        if self.c_init == "complex_normal":
            c = jax.random.normal(k_c, (hidden, self.modes, 2))
            c_tilde = math.sqrt(0.5) * jax.lax.complex(c[..., 0], c[..., 1])
        else:
            batch = (0,) if self.c_init == "trunc_standard_normal" else ()
            c = lecun(batch_axis=batch)(k_c, (hidden, size, 2))
            c_tilde = jax.lax.complex(c[..., 0], c[..., 1]) @ v
        as_f32 = lambda a: jnp.asarray(a, jnp.float32)
        return {
            "b_re": as_f32(b_tilde.real),
            "b_im": as_f32(b_tilde.imag),
            "c_re": as_f32(c_tilde.T.real),
            "c_im": as_f32(c_tilde.T.imag),
        }

    @property
    def out_scale(self) -> float:
        return 2.0 if self.bc_init == "s5" and self.conj_sym else 1.0

    def continuous(self, params: Params) -> Array:
        """``Lambda [N]``, complex, as the forward pass uses it (clipped with ``clip_eigs``)."""
        if self.lambda_re_param == "log":
            real = -jnp.exp(params["lambda_re_log"])
        else:
            real = params["lambda_re"]
            if self.clip_eigs:
                real = jnp.minimum(real, CLIP_EIGS_MAX)
        return jax.lax.complex(real, params["lambda_im"])

    def diagonal(self, params: Params) -> tuple[Array, Array]:
        lam = self.continuous(params)
        step = jnp.exp(params["log_step"])
        lam_dt = lam * step
        if self.discretization == "bilinear":
            inv = 1.0 / (1.0 - lam_dt / 2)
            return inv * (1.0 + lam_dt / 2), inv * step
        return jnp.exp(lam_dt), jnp.expm1(lam_dt) / lam

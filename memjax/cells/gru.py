"""Gated recurrent unit (Cho et al. 2014), in the cuDNN / flax form with the reset gate
applied after the recurrent matmul.

    [r_i, z_i, n_i] = x_t W_i + b_i,   [r_h, z_h, n_h] = h_{t-1} W_h
    r = sigmoid(r_i + r_h),   z = sigmoid(z_i + z_h)
    n = tanh(n_i + r * (n_h + b_hn))
    h_t = (1 - z) * n + z * h_{t-1},   y_t = h_t

Shapes: ``W_i [d_in, 3 hidden]``, ``b_i [3 hidden]``, ``W_h [hidden, 3 hidden]``,
``b_hn [hidden]``; ``h_t [*batch, hidden]``. Same equations as ``flax.linen.GRUCell``.

With ``bptt=True`` (the default) a whole sequence runs through
:func:`memjax.cells.bptt.recurrence` with the hand-derived backward below, which keeps the
``W_h`` gradient out of the time loop; ``bptt=False`` lets JAX differentiate the scan (same
numbers). With ``u = h_{t-1} W_h + [0, 0, b_hn]`` and ``dh`` arriving from step ``t + 1``::

    dn = dh (1 - z),   dz = dh (h_{t-1} - n),   dh_{t-1} = dh z + du W_h^T
    dn_pre = dn (1 - n^2),   dr = dn_pre (n_h + b_hn)
    d pre = [dr r(1-r), dz z(1-z), dn_pre],   du = [dr r(1-r), dz z(1-z), dn_pre r]

``r`` and ``z`` come from one ``tanh`` over the contiguous ``[B, 2H]`` block
(``sigmoid(x) = (1 + tanh(x / 2)) / 2``; see :func:`memjax.cells.lstm_bptt.gate_activations`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from memjax.cells.base import STATE_DTYPE, Array, Cell, Params, matmul
from memjax.cells.bptt import Recurrence, recurrence
from memjax.cells.registry import register


def _sigmoid(x: Array) -> Array:
    """``sigmoid(x)`` as ``(1 + tanh(x / 2)) / 2`` (absolute error below 2e-7 in float32)."""
    return 0.5 * jnp.tanh(0.5 * x) + 0.5


def _step(pre_t: Array, u: Array, h: Array, rest: tuple):
    hidden = h.shape[-1]
    rz = _sigmoid(pre_t[..., : 2 * hidden] + u[..., : 2 * hidden])
    r, z = jnp.split(rz, 2, axis=-1)
    u_n = u[..., 2 * hidden :]
    n = jnp.tanh(pre_t[..., 2 * hidden :] + r * u_n)
    return n + z * (h - n), rest, (rz, n, u_n, h)


def _step_backward(residual, dh: Array, rest: tuple):
    rz, n, u_n, h_prev = residual
    r, z = jnp.split(rz, 2, axis=-1)
    dn_pre = dh * (1.0 - z) * (1.0 - n**2)
    d_rz = jnp.concatenate([dn_pre * u_n, dh * (h_prev - n)], axis=-1) * rz * (1.0 - rz)
    d_pre = jnp.concatenate([d_rz, dn_pre], axis=-1)
    d_u = jnp.concatenate([d_rz, dn_pre * r], axis=-1)
    return d_pre, d_u, dh * z, rest


GRU_RECURRENCE = Recurrence(_step, _step_backward)
"""The GRU as a :class:`memjax.cells.bptt.Recurrence` (carry ``h``, no other state)."""


@register
@dataclasses.dataclass(frozen=True)
class GRU(Cell):
    """GRU with fused gate matmuls (see module docstring)."""

    bptt: bool = True
    name = "gru"

    def init(self, key: Array, d_in: int) -> Params:
        k_i, k_h = jax.random.split(key)
        h = self.hidden
        orthogonal = jax.nn.initializers.orthogonal()
        w_h = jnp.concatenate([orthogonal(k, (h, h)) for k in jax.random.split(k_h, 3)], axis=1)
        return {
            "w_i": jax.nn.initializers.lecun_normal()(k_i, (d_in, 3 * h)),
            "b_i": jnp.zeros((3 * h,)),
            "w_h": w_h,
            "b_hn": jnp.zeros((h,)),
        }

    def input_features(self, params: Params) -> int:
        return params["w_i"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> Array:
        return jnp.zeros((*batch_shape, self.hidden), STATE_DTYPE)

    def prepare(self, params: Params, x: Array) -> Array:
        return matmul(x, params["w_i"]).astype(x.dtype)

    def recur(self, params: Params, carry: Array, pre: Array) -> tuple[Array, Array]:
        r_i, z_i, n_i = jnp.split(pre.astype(carry.dtype) + params["b_i"], 3, axis=-1)
        r_h, z_h, n_h = jnp.split(matmul(carry.astype(pre.dtype), params["w_h"]), 3, axis=-1)
        r = jax.nn.sigmoid(r_i + r_h)
        z = jax.nn.sigmoid(z_i + z_h)
        n = jnp.tanh(n_i + r * (n_h + params["b_hn"]))
        h = (1.0 - z) * n + z * carry
        return h, h

    def fused_recurrence(
        self, params: Params, carry: Array, pre: Array, mask: Array | None, unroll: int
    ) -> tuple[Array, Array] | None:
        if not self.bptt:
            return None
        b_hn = params["b_hn"].astype(carry.dtype)
        b_u = jnp.concatenate([jnp.zeros((2 * self.hidden,), b_hn.dtype), b_hn])
        b_i, w_h = params["b_i"], params["w_h"]
        hs, h, _ = recurrence(GRU_RECURRENCE, pre, b_i, w_h, b_u, carry, (), mask, unroll)
        return hs, h

"""Gated recurrent unit (Cho et al. 2014), in the cuDNN / flax form with the reset gate
applied after the recurrent matmul.

    [r_i, z_i, n_i] = x_t W_i + b_i,   [r_h, z_h, n_h] = h_{t-1} W_h
    r = sigmoid(r_i + r_h),   z = sigmoid(z_i + z_h)
    n = tanh(n_i + r * (n_h + b_hn))
    h_t = (1 - z) * n + z * h_{t-1},   y_t = h_t

Shapes: ``W_i [d_in, 3 hidden]``, ``b_i [3 hidden]``, ``W_h [hidden, 3 hidden]``,
``b_hn [hidden]``; ``h_t [*batch, hidden]``. Same equations as ``flax.linen.GRUCell``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from memjax.cells.base import STATE_DTYPE, Array, Cell, Params, matmul
from memjax.cells.registry import register


@register
@dataclasses.dataclass(frozen=True)
class GRU(Cell):
    """GRU with fused gate matmuls (see module docstring)."""

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
        return (matmul(x, params["w_i"]) + params["b_i"]).astype(x.dtype)

    def recur(self, params: Params, carry: Array, pre: Array) -> tuple[Array, Array]:
        r_i, z_i, n_i = jnp.split(pre.astype(carry.dtype), 3, axis=-1)
        r_h, z_h, n_h = jnp.split(matmul(carry.astype(pre.dtype), params["w_h"]), 3, axis=-1)
        r = jax.nn.sigmoid(r_i + r_h)
        z = jax.nn.sigmoid(z_i + z_h)
        n = jnp.tanh(n_i + r * (n_h + params["b_hn"]))
        h = (1.0 - z) * n + z * carry
        return h, h

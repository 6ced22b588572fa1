"""Long short-term memory (Hochreiter & Schmidhuber 1997, with a forget gate).

    [i, f, g, o] = x_t W_i + b + h_{t-1} W_h             (each [*batch, hidden])
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t),        y_t = h_t

Shapes: ``W_i [d_in, 4 hidden]``, ``W_h [hidden, 4 hidden]``, ``b [4 hidden]`` with the forget
slice initialised to ``forget_bias`` (1 by default, Jozefowicz et al. 2015). The carry is
``{"c": [*batch, hidden], "h": [*batch, hidden]}``. Same equations as
``flax.linen.LSTMCell``; the four gate matmuls are fused into one. With ``bptt=True`` (the
default) a whole sequence runs through :func:`memjax.cells.bptt.recurrence` with the step of
:mod:`memjax.cells.lstm_bptt`, whose hand-written backward pass keeps the ``W_h`` gradient out
of the time loop; ``bptt=False`` lets JAX differentiate the scan (same numbers, slower).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from memjax.cells.base import STATE_DTYPE, Array, Cell, Params, matmul
from memjax.cells.bptt import recurrence
from memjax.cells.lstm_bptt import LSTM_RECURRENCE, gate_activations
from memjax.cells.registry import register


@register
@dataclasses.dataclass(frozen=True)
class LSTM(Cell):
    """LSTM with fused gates and forget-gate bias (see module docstring)."""

    forget_bias: float = 1.0
    bptt: bool = True
    name = "lstm"

    def init(self, key: Array, d_in: int) -> Params:
        k_i, k_h = jax.random.split(key)
        h = self.hidden
        orthogonal = jax.nn.initializers.orthogonal()
        w_h = jnp.concatenate([orthogonal(k, (h, h)) for k in jax.random.split(k_h, 4)], axis=1)
        return {
            "w_i": jax.nn.initializers.lecun_normal()(k_i, (d_in, 4 * h)),
            "w_h": w_h,
            "b": jnp.zeros((4 * h,)).at[h : 2 * h].set(self.forget_bias),
        }

    def input_features(self, params: Params) -> int:
        return params["w_i"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> dict[str, Array]:
        zeros = jnp.zeros((*batch_shape, self.hidden), STATE_DTYPE)
        return {"c": zeros, "h": zeros}

    def prepare(self, params: Params, x: Array) -> Array:
        return matmul(x, params["w_i"]).astype(x.dtype)

    def recur(self, params: Params, carry: dict, pre: Array) -> tuple[dict, Array]:
        h = carry["h"]
        gates = pre.astype(h.dtype) + params["b"] + matmul(h.astype(pre.dtype), params["w_h"])
        i, f, g, o = jnp.split(gate_activations(gates), 4, axis=-1)
        c = f * carry["c"] + i * g
        h = o * jnp.tanh(c)
        return {"c": c, "h": h}, h

    def fused_recurrence(
        self, params: Params, carry: dict, pre: Array, mask: Array | None, unroll: int
    ) -> tuple[Array, dict] | None:
        if not self.bptt:
            return None
        hs, h, c = recurrence(
            LSTM_RECURRENCE,
            pre,
            params["b"],
            params["w_h"],
            None,
            carry["h"],
            carry["c"],
            mask,
            unroll,
        )
        return hs, {"c": c, "h": h}

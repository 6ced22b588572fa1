"""Elman recurrent cell.

    h_t = act(x_t W_i + b + h_{t-1} W_h)          act in {tanh, relu}
    y_t = h_t

Shapes: ``x_t [*batch, d_in]``, ``h_t [*batch, hidden]``; ``W_i [d_in, hidden]``,
``W_h [hidden, hidden]``, ``b [hidden]``. Same equations as ``flax.linen.SimpleCell``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from memjax.cells.base import STATE_DTYPE, Array, Cell, Params, matmul
from memjax.cells.registry import register

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


@register
@dataclasses.dataclass(frozen=True)
class RNN(Cell):
    """Elman RNN with a tanh or relu nonlinearity (see module docstring)."""

    activation: str = "tanh"
    name = "rnn"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )

    def init(self, key: Array, d_in: int) -> Params:
        k_i, k_h = jax.random.split(key)
        return {
            "w_i": jax.nn.initializers.lecun_normal()(k_i, (d_in, self.hidden)),
            "w_h": jax.nn.initializers.orthogonal()(k_h, (self.hidden, self.hidden)),
            "b": jnp.zeros((self.hidden,)),
        }

    def input_features(self, params: Params) -> int:
        return params["w_i"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> Array:
        return jnp.zeros((*batch_shape, self.hidden), STATE_DTYPE)

    def prepare(self, params: Params, x: Array) -> Array:
        return (matmul(x, params["w_i"]) + params["b"]).astype(x.dtype)

    def recur(self, params: Params, carry: Array, pre: Array) -> tuple[Array, Array]:
        h = ACTIVATIONS[self.activation](pre + matmul(carry.astype(pre.dtype), params["w_h"]))
        return h, h

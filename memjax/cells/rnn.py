"""Elman recurrent cell.

    h_t = act(x_t W_i + b + h_{t-1} W_h)          act in {tanh, relu}
    y_t = h_t

Shapes: ``x_t [*batch, d_in]``, ``h_t [*batch, hidden]``; ``W_i [d_in, hidden]``,
``W_h [hidden, hidden]``, ``b [hidden]``. Same equations as ``flax.linen.SimpleCell``.

With ``bptt=True`` (the default) a whole sequence runs through
:func:`memjax.cells.bptt.recurrence`, whose backward keeps the ``W_h`` gradient out of the time
loop: ``dz = dh (1 - h_t^2)`` for tanh, ``dz = dh [h_t > 0]`` for relu, ``dh_{t-1} = dz W_h^T``.
``bptt=False`` lets JAX differentiate the scan (same numbers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from memjax.cells.base import STATE_DTYPE, Array, Cell, Params, matmul
from memjax.cells.bptt import Recurrence, recurrence
from memjax.cells.registry import register

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}
DERIVATIVES = {"tanh": lambda h: 1.0 - h**2, "relu": lambda h: (h > 0).astype(h.dtype)}
"""Each activation's derivative written in terms of its output ``h = act(z)``."""


def elman_recurrence(activation: str) -> Recurrence:
    """``h_t = act(pre_t + u_t)`` as a :class:`memjax.cells.bptt.Recurrence`."""
    act, derivative = ACTIVATIONS[activation], DERIVATIVES[activation]

    def step(pre_t, u, h, rest):
        del h
        h_new = act(pre_t + u)
        return h_new, rest, h_new

    def step_backward(h_new, dh, rest):
        return dh * derivative(h_new), None, None, rest

    return Recurrence(step, step_backward)


RECURRENCES = {name: elman_recurrence(name) for name in ACTIVATIONS}


@register
@dataclasses.dataclass(frozen=True)
class RNN(Cell):
    """Elman RNN with a tanh or relu nonlinearity (see module docstring)."""

    activation: str = "tanh"
    bptt: bool = True
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
        return matmul(x, params["w_i"]).astype(x.dtype)

    def recur(self, params: Params, carry: Array, pre: Array) -> tuple[Array, Array]:
        u = pre.astype(carry.dtype) + params["b"] + matmul(carry.astype(pre.dtype), params["w_h"])
        h = ACTIVATIONS[self.activation](u)
        return h, h

    def fused_recurrence(
        self, params: Params, carry: Array, pre: Array, mask: Array | None, unroll: int
    ) -> tuple[Array, Array] | None:
        if not self.bptt:
            return None
        elman = RECURRENCES[self.activation]
        hs, h, _ = recurrence(elman, pre, params["b"], params["w_h"], None, carry, (), mask, unroll)
        return hs, h

"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

Both drop the state from the gates, so every gate is input-only and the update is linear::

    minGRU:   [k_z, k_h] = x_t W + b
              z = sigmoid(k_z),   h~ = k_h
              h_t = (1 - z) * h_{t-1} + z * h~
    minLSTM:  [k_f, k_i, k_h] = x_t W + b
              f = sigmoid(k_f),   i = sigmoid(k_i),   h~ = k_h
              f' = f / (f + i),   i' = i / (f + i)
              h_t = f' * h_{t-1} + i' * h~
    y_t = h_t

Shapes: ``W [d_in, G hidden]``, ``b [G hidden]`` (``G`` = 2 or 3 gate blocks, in the order
above), ``h_t [*batch, hidden]`` float32 (float64 for float64 inputs). Both cells are
``h_t = a_t * h_{t-1} + b_t`` with ``a_t = sigmoid(l_t)`` and ``b_t = sigmoid(-l_t) * h~`` for a
forget logit ``l_t``: ``-k_z`` for minGRU and ``log f - log i = log_sigmoid(k_f) -
log_sigmoid(k_i)`` for minLSTM, so the normalised gates are computed without dividing and sum
to one. Gates are kept in float32
for half-precision inputs (float64 for float64 inputs): a decay rounded to bfloat16 forgets far
too fast.

The candidate is the paper's plain linear ``h~ = x W_h + b_h``. The paper's ``g(.)``
(``x + 1/2`` for ``x >= 0``, ``sigmoid(x)`` otherwise) only makes ``h~`` positive so that its
log-space scan can take logarithms; memjax scans the values themselves in float32 (the decays
lie in (0, 1), so products underflow gracefully to zero), which needs no such constraint.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp

from memjax.cells.base import STATE_DTYPE, Array, LinearCell, Params, matmul
from memjax.cells.registry import register


@dataclasses.dataclass(frozen=True)
class MinimalRNN(LinearCell):
    """Shared body of minGRU and minLSTM; subclasses define the forget logit."""

    blocks: ClassVar[int] = 2

    @abc.abstractmethod
    def forget_logit(self, gates: Sequence[Array]) -> Array:
        """``l_t`` from the gate pre-activations (all blocks but the candidate)."""

    def init(self, key: Array, d_in: int) -> Params:
        width = self.blocks * self.hidden
        return {
            "w_i": jax.nn.initializers.lecun_normal()(key, (d_in, width)),
            "b": jnp.zeros((width,)),
        }

    def input_features(self, params: Params) -> int:
        return params["w_i"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> Array:
        return jnp.zeros((*batch_shape, self.hidden), STATE_DTYPE)

    def gates(self, params: Params, x: Array) -> tuple[Array, Array, Array]:
        """``(forget, input, candidate)``, each ``[..., hidden]`` in the state dtype (float32, or
        float64 for float64 inputs); forget + input = 1."""
        *gates, candidate = jnp.split(matmul(x, params["w_i"]) + params["b"], self.blocks, -1)
        logit = self.forget_logit(gates)
        return jax.nn.sigmoid(logit), jax.nn.sigmoid(-logit), candidate

    def prepare(self, params: Params, x: Array) -> tuple[Array, Array]:
        """The affine elements ``(a_t, b_t)`` themselves: everything here is input-only."""
        forget, input_gate, candidate = self.gates(params, x)
        return forget, input_gate * candidate

    def elements(self, params: Params, pre: tuple[Array, Array]) -> tuple[Array, Array]:
        return pre

    def emit(self, params: Params, state: Array, pre: tuple[Array, Array]) -> Array:
        return state


@register
@dataclasses.dataclass(frozen=True)
class MinGRU(MinimalRNN):
    """minGRU: ``h_t = (1 - z) h_{t-1} + z h~`` (see module docstring)."""

    name = "mingru"

    def forget_logit(self, gates: Sequence[Array]) -> Array:
        (k_z,) = gates
        return -k_z


@register
@dataclasses.dataclass(frozen=True)
class MinLSTM(MinimalRNN):
    """minLSTM: ``h_t = f' h_{t-1} + i' h~`` with normalised gates (see module docstring)."""

    blocks: ClassVar[int] = 3
    name = "minlstm"

    def forget_logit(self, gates: Sequence[Array]) -> Array:
        k_f, k_i = gates
        return jax.nn.log_sigmoid(k_f) - jax.nn.log_sigmoid(k_i)

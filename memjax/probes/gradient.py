"""Gradient flow against lag: how strongly the last output depends on each earlier input and state.

For inputs ``x [B, T, D]`` and outputs ``y = f(x) [B, T, F]`` (one memory layer, or a whole
model from its embedded inputs to its final features), the input gradient flow at lag ``k`` is

    g_x(k) = mean_b || d y_{b, T-1} / d x_{b, T-1-k} ||_F,        k = 0 .. T-1,

the Frobenius norm of one ``F x D`` block of the Jacobian. For a recurrent cell with state
``s_t`` (the state after step ``t``, ``s_{-1}`` the initial state) the state gradient flow is

    g_s(k) = mean_b || d y_{b, T-1} / d s_{b, T-1-k} ||_F,        k = 1 .. T,

measured by adding a zero perturbation ``delta_t`` to the state entering each step and
differentiating with respect to it. Since ``||J||_F^2 = E_u ||u^T J||^2`` for ``u ~ N(0, I_F)``,
``g_s(k)`` is the root-mean-square over random loss directions of ``||dL/ds_t||`` for the loss
``L = u . y_{T-1}``: the vanishing (or exploding) gradient of backpropagation through time.

Both are computed exactly from one ``jax.vjp`` of ``sum_b y_{b, T-1}`` with respect to the whole
sequence, pulled back through the ``F`` rows of the Jacobian: one pass gives every lag at once,
and since examples do not interact it gives every example's blocks. For a linear recurrence
``s_t = a s_{t-1} + x_t``, ``y_t = s_t`` both flows are ``a^k``.

``relative`` divides a flow by its value at lag 1 (lag 0 of the input flow also holds paths
that bypass the memory: skip connections, attention's query, the read-out), and ``decay_lag``
is the first lag >= 1 at which the relative flow drops below ``1/e`` (None: never).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memjax.cells.base import Array, Carry, Cell, Params
from memjax.probes.subjects import Subject

ROW_CHUNK = 16


def block_norms(fn: Any, arg: Any, chunk: int = ROW_CHUNK) -> Array:
    """``[B, T]`` Frobenius norms of the blocks ``d fn / d arg[b, t]`` for ``fn(arg) [F]``.

    One ``jax.vjp`` is pulled back through the ``F`` unit cotangents (the Jacobian's rows),
    ``chunk`` at a time, and each row is reduced to its ``[B, T]`` squared norms at once, so the
    Jacobian itself is never held in memory.
    """
    out, pullback = jax.vjp(fn, arg)

    def row(cotangent: Array) -> Array:
        (grad,) = pullback(cotangent)
        return sum(
            jnp.sum(jnp.abs(g) ** 2, axis=tuple(range(2, g.ndim))) for g in jax.tree.leaves(grad)
        )

    rows = jnp.eye(out.shape[0], dtype=out.dtype)
    return jnp.sqrt(jax.lax.map(row, rows, batch_size=chunk).sum(axis=0))


def input_flow(subject: Subject, params: Any, tokens: Array) -> Array:
    """``g_x(k)`` for ``k = 0 .. T-1`` with ``x = embed(tokens)`` (module docstring)."""
    last = lambda inputs: subject.apply(params, inputs)[:, -1].sum(axis=0)
    return block_norms(last, subject.embed(params, tokens)).mean(axis=0)[::-1]


def perturbed_last_output(cell: Cell, params: Params, u: Array, deltas: Carry) -> Array:
    """``y_{T-1}`` with ``deltas[:, t]`` added to the state entering step ``t``: ``[B, F]``.

    ``u [B, T, d]`` are the cell's inputs and ``deltas`` a pytree shaped like the carry with a
    ``[B, T]`` lead; at ``deltas = 0`` this is ``memjax.scan``'s last output.
    """
    pre = cell.prepare(params, u)

    def body(carry: Carry, inputs: tuple[Any, Carry]) -> tuple[Carry, Array]:
        pre_t, delta_t = inputs
        carry = jax.tree.map(jnp.add, carry, delta_t)
        return cell.recur(params, carry, pre_t)

    time_major = lambda tree: jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), tree)
    carry = cell.initial_carry(params, (u.shape[0],))
    _, hs = jax.lax.scan(body, carry, (time_major(pre), time_major(deltas)))
    last_pre = jax.tree.map(lambda a: a[:, -1], pre)
    return cell.readout(params, hs[-1], last_pre)


def first_cell(subject: Subject, params: Any, x: Array) -> tuple[Cell, Params, Array] | None:
    """The subject's first recurrent layer with its input, or None (attention only)."""
    for memory, memory_params, u in subject.layers(params, x):
        if isinstance(memory, Cell):
            return memory, memory_params, u
    return None


def state_flow(subject: Subject, params: Any, tokens: Array) -> Array | None:
    """``g_s(k)`` for ``k = 1 .. T`` of the first recurrent layer (module docstring)."""
    found = first_cell(subject, params, subject.embed(params, tokens))
    if found is None:
        return None
    cell, memory_params, u = found
    batch, time = u.shape[:2]
    carry = cell.initial_carry(memory_params, (batch,))
    zeros = jax.tree.map(lambda c: jnp.zeros((batch, time, *c.shape[1:]), c.dtype), carry)
    last = lambda deltas: perturbed_last_output(cell, memory_params, u, deltas).sum(axis=0)
    return block_norms(last, zeros).mean(axis=0)[::-1]


def decay_lag(lags: np.ndarray, relative: np.ndarray) -> int | None:
    """The first lag >= 1 at which ``relative`` drops below ``1/e``; None if it never does."""
    below = np.flatnonzero((relative < 1.0 / math.e) & (lags >= 1))
    return int(lags[below[0]]) if below.size else None


def summary(lags: np.ndarray, norms: Array) -> dict[str, Any]:
    """JSON record of one flow: lags, norms, norms relative to lag 1, decay lag."""
    norms = np.asarray(norms, np.float64)
    reference = norms[lags == 1][0]
    relative = norms / reference if reference > 0 else np.zeros_like(norms)
    return {
        "lags": lags.tolist(),
        "norm": norms.tolist(),
        "relative": relative.tolist(),
        "decay_lag": decay_lag(lags, relative),
    }


def gradient_flow(subject: Subject, tokens: np.ndarray) -> dict[str, Any]:
    """Input and state gradient flow of ``subject`` on ``tokens int [B, T]``.

    ``"state"`` is measured on the first recurrent layer with the inputs it sees inside the
    subject, from that layer's input to its output; it is None when no layer is a recurrence.
    Each flow is one compiled program.
    """
    ids = jnp.asarray(tokens)
    lags = np.arange(ids.shape[1])
    flows = {
        "input": jax.jit(functools.partial(input_flow, subject))(subject.params, ids),
        "state": jax.jit(functools.partial(state_flow, subject))(subject.params, ids),
    }
    return {
        "input": summary(lags, flows["input"]),
        "state": None if flows["state"] is None else summary(lags + 1, flows["state"]),
    }

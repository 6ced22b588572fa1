"""Backpropagation through time for recurrences whose only state matmul is ``h_{t-1} W_h``.

The LSTM, GRU and Elman cells all step as::

    u_t = h_{t-1} W_h + b_u                      (the one matmul that needs the state)
    (h_t, rest_t), residual_t = step(pre_t + b, u_t, h_{t-1}, rest_{t-1})
    y_t = h_t

with ``pre_t = x_t W_i`` computed for all steps before the loop by one matmul and the input
bias ``b`` added inside the loop, where it fuses into the step's elementwise work (adding it to
``pre`` before the loop was one more pass over ``[T, B, P]``; with a second stack of ``du`` it made
the LSTM's forward+backward 1.3x slower on the 2-core CPU, 1.5x on one thread,
``results/bench/README.md``). Differentiating such a
``lax.scan`` with JAX accumulates ``dW_h += h_{t-1}^T du_t`` with a small matmul inside the
backward loop and saves every intermediate of ``step``; both made memjax's GRU 1.1-1.6x slower
than memax's and its LSTM slower than torch's on the CPU (``results/bench/README.md``). Here the
backward loop runs only what is sequential, for ``t = T..1``::

    d_pre_t, du_t, dh^direct, drest_{t-1} = step_backward(residual_t, dy_t + dh_t, drest_t)
    dh_{t-1} = dh^direct + du_t W_h^T

and ``dW_h = sum_t h_{t-1}^T du_t`` (``[T B, H]^T [T B, N]``), ``db_u = sum_t du_t`` and
``db = sum_t d_pre_t`` are one batched matmul and two sums after it. At a padded step (``mask``
False) the state is carried unchanged, ``d_pre_t = du_t = 0`` and the state's cotangent passes
through. ``mask=None`` promises every step valid and skips those selects.

Shapes, time-major: ``pre [T, B, P]``, ``b [P]`` or None (no input bias), ``w_h [H, N]``,
``b_u [N]`` or None (no recurrent bias), ``h0 [B, H]``, ``rest0`` any pytree of ``[B, ...]``,
``mask [T, B]`` or None; returns ``(hs [T, B, H], h_T, rest_T)``.
The state and the step's arithmetic are in the state's dtype; ``pre`` and ``w_h`` may be
narrower (the matmuls run in ``pre``'s dtype, as :func:`memjax.cells.base.matmul` does).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from memjax.cells.base import Array, matmul

Step = Callable[[Array, Array, Array, Any], tuple[Array, Any, Any]]
StepBackward = Callable[[Any, Array, Any], tuple[Array, Array | None, Array, Any]]


@dataclasses.dataclass(frozen=True)
class Recurrence:
    """A cell's step and its hand-derived backward.

    ``step(pre_t, u_t, h, rest) -> (h', rest', residual)`` and
    ``backward(residual, dh', drest') -> (d_pre_t, du_t, dh^direct, drest)``, all ``[B, ...]``;
    ``du_t`` None means it equals ``d_pre_t`` (``u_t`` enters only through ``pre_t + u_t``) and
    ``dh^direct`` None means zero (``h_{t-1}`` enters only through ``u_t``).
    """

    step: Step
    backward: StepBackward


def _select(keep: Array, new: Any, old: Any) -> Any:
    """``new`` where ``keep [B]`` is True, ``old`` elsewhere, leaf by leaf."""
    return jax.tree.map(
        lambda a, b: jnp.where(keep.reshape(keep.shape + (1,) * (a.ndim - 1)), a, b), new, old
    )


def _forward_loop(
    cell: Recurrence, pre, b, w_h, b_u, h0, rest0, mask, unroll: int, residuals: bool
) -> tuple[Any, ...]:
    """The forward scan; ``(hs, h_T, rest_T)``, with the stacked residuals first if asked."""

    def body(state, inputs):
        h, rest = state
        pre_t, valid = inputs
        u = matmul(h.astype(pre.dtype), w_h).astype(h.dtype)
        u = u if b_u is None else u + b_u
        pre_t = pre_t.astype(h.dtype)
        pre_t = pre_t if b is None else pre_t + b
        h_new, rest_new, residual = cell.step(pre_t, u, h, rest)
        if valid is not None:
            h_new, rest_new = _select(valid, (h_new, rest_new), (h, rest))
        return (h_new, rest_new), ((h_new, residual) if residuals else h_new)

    (h, rest), out = jax.lax.scan(body, (h0, rest0), (pre, mask), unroll=unroll)
    if residuals:
        hs, stacked = out
        return stacked, hs, h, rest
    return out, h, rest


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 8))
def recurrence(cell: Recurrence, pre, b, w_h, b_u, h0, rest0, mask, unroll: int):
    """Run ``cell`` over time-major ``pre`` plus ``b``; see the module docstring for shapes."""
    return _forward_loop(cell, pre, b, w_h, b_u, h0, rest0, mask, unroll, residuals=False)


def _forward(cell, pre, b, w_h, b_u, h0, rest0, mask, unroll):
    stacked, hs, h, rest = _forward_loop(cell, pre, b, w_h, b_u, h0, rest0, mask, unroll, True)
    return (hs, h, rest), (pre, b, w_h, b_u, h0, mask, hs, stacked)


def _backward(cell, unroll, saved, cotangents):
    pre, b, w_h, b_u, h0, mask, hs, stacked = saved
    d_hs, d_h, d_rest = cotangents
    w_t = w_h.astype(pre.dtype).T

    def body(state, inputs):
        dh_next, drest_next = state
        dy, residual, valid = inputs
        dh = dy + dh_next
        d_pre, d_u, dh_direct, drest = cell.backward(residual, dh, drest_next)
        if valid is not None:
            keep = lambda d: None if d is None else jnp.where(valid[:, None], d, 0.0)
            d_pre, d_u = keep(d_pre), keep(d_u)
        d_matmul = d_pre if d_u is None else d_u
        dh_prev = matmul(d_matmul.astype(pre.dtype), w_t).astype(dh.dtype)
        dh_prev = dh_prev if dh_direct is None else dh_prev + dh_direct
        if valid is not None:
            dh_prev, drest = _select(valid, (dh_prev, drest), (dh, drest_next))
        return (dh_prev, drest), (d_pre, d_u)

    (dh0, drest0), (d_pre, d_u) = jax.lax.scan(
        body, (d_h, d_rest), (d_hs, stacked, mask), reverse=True, unroll=unroll
    )
    d_u = d_pre if d_u is None else d_u
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    flat = lambda a: a.reshape(-1, a.shape[-1])
    d_w = matmul(flat(h_prev).astype(pre.dtype).T, flat(d_u).astype(pre.dtype))
    d_b = None if b is None else jnp.sum(flat(d_pre), axis=0).astype(b.dtype)
    d_b_u = None if b_u is None else jnp.sum(flat(d_u), axis=0).astype(b_u.dtype)
    return (
        d_pre.astype(pre.dtype),
        d_b,
        d_w.astype(w_h.dtype),
        d_b_u,
        dh0,
        drest0,
        None,
    )


recurrence.defvjp(_forward, _backward)

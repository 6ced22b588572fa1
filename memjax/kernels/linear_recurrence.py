"""Pallas kernel for the diagonal linear recurrence ``s_t = a_t * s_{t-1} + b_t``, with its VJP.

Equations, elementwise over the state lanes. Forward (``reverse=False``)::

    s_t = a_t * s_{t-1} + b_t,    t = 1..T,    s_0 given,

and with ``reverse=True`` the same recurrence run from the end::

    s_t = a_t * s_{t+1} + b_t,    t = T..1,    s_{T+1} = s_0.

Shapes: ``a, b: [batch, time, width]`` and ``s0: [batch, width]``, all float32 or all complex64;
the result is every state ``s_1..s_T`` as ``[batch, time, width]``.

Backward, in JAX's convention (the transpose of the linear map, no complex conjugation): given
the cotangent ``ds_t`` of every state, ``g_t = ds_t + a_{t+1} g_{t+1}`` with ``g_{T+1} = 0`` is
the same recurrence run the other way with the coefficients shifted by one step, and then
``db_t = g_t``, ``da_t = g_t * s_{t-1}``, ``ds_0 = a_1 g_1``. ``reverse=True`` mirrors it:
``g_t = ds_t + a_{t-1} g_{t-1}`` (``g_0 = 0``), ``da_t = g_t * s_{t+1}``, ``ds_0 = a_T g_T``.

Kernel layout. The grid is ``(batch, width / block)``; program ``(i, j)`` owns lanes
``[j * block, (j + 1) * block)`` of sequence ``i``. A ``fori_loop`` over time loads row ``t`` of
its ``[time, block]`` slabs of ``a`` and ``b``, updates the state held in registers and stores row
``t`` of the output slab. Time is the only dependency, so every (sequence, lane block) is an
independent program, and each element of ``a`` and ``b`` is read once and each state written
once: the minimum memory traffic for a memory-bound recurrence. Triton has no complex type, so
complex64 runs as separate real and imaginary float32 planes with the product
``(ar + i ai)(sr + i si)`` expanded in the kernel. Triton needs power-of-two rows, so the block
is a power of two, shrunk to the next power of two at or above a narrow width, and a width that
is not a multiple of it is zero-padded in the wrapper and sliced back. The compiled path goes
through Pallas' Triton backend (GPUs); on the CPU the same kernel body runs in interpret mode.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton

Array = jax.Array

DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.complex64))
DEFAULT_BLOCK = 64


def linear_recurrence(
    a: Array,
    b: Array,
    s0: Array,
    *,
    reverse: bool = False,
    block: int = DEFAULT_BLOCK,
    interpret: bool | None = None,
) -> Array:
    """All states of ``s_t = a_t * s_{t-1} + b_t`` (or of its reverse) through a Pallas kernel.

    Args:
      a: ``[batch, time, width]`` coefficients, float32 or complex64.
      b: ``[batch, time, width]`` inputs, same shape and dtype as ``a``.
      s0: ``[batch, width]`` initial state ``s_0`` (``s_{T+1}`` when ``reverse``), same dtype.
      reverse: run ``t = T..1`` with ``s_t = a_t * s_{t+1} + b_t`` instead.
      block: state lanes per kernel program, a power of two (shrunk for narrower states).
      interpret: run the kernel in Pallas interpret mode; ``None`` means interpret on the CPU
        backend and compile (Triton, GPUs only) elsewhere.

    Returns:
      ``[batch, time, width]``: ``s_1..s_T`` in time order whatever the direction.

    Differentiable in ``a``, ``b`` and ``s0`` (reverse mode only) through a hand-written VJP
    that runs the same kernel in the other direction. Raises ValueError on mismatched shapes or
    dtypes and on a bad ``block``.
    """
    a, b, s0 = jnp.asarray(a), jnp.asarray(b), jnp.asarray(s0)
    _check_inputs(a, b, s0, block)
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    return _recurrence(a, b, s0, bool(reverse), block, bool(interpret))


def _check_inputs(a: Array, b: Array, s0: Array, block: int) -> None:
    """Raise ValueError unless shapes, dtypes and ``block`` are as ``linear_recurrence`` needs."""
    if a.ndim != 3:
        raise ValueError(f"a must have shape [batch, time, width], got shape {a.shape}")
    if a.dtype not in DTYPES:
        raise ValueError(f"a must be float32 or complex64, got dtype {a.dtype}")
    if b.shape != a.shape or b.dtype != a.dtype:
        raise ValueError(
            f"b must have the shape and dtype of a, {a.shape} {a.dtype}; "
            f"got shape {b.shape} dtype {b.dtype}"
        )
    batch, _, width = a.shape
    if s0.shape != (batch, width) or s0.dtype != a.dtype:
        raise ValueError(
            f"s0 must have shape [batch, width] = {(batch, width)} and dtype {a.dtype}; "
            f"got shape {s0.shape} dtype {s0.dtype}"
        )
    if isinstance(block, bool) or not isinstance(block, int) or block < 1 or block & (block - 1):
        raise ValueError(f"block must be a positive power of two, got {block!r}")


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _recurrence(a: Array, b: Array, s0: Array, reverse: bool, block: int, interpret: bool) -> Array:
    return _run(a, b, s0, reverse, block, interpret)


def _recurrence_fwd(
    a: Array, b: Array, s0: Array, reverse: bool, block: int, interpret: bool
) -> tuple[Array, tuple[Array, Array, Array]]:
    states = _run(a, b, s0, reverse, block, interpret)
    return states, (a, s0, states)


def _recurrence_bwd(
    reverse: bool, block: int, interpret: bool, residuals: tuple[Array, Array, Array], ds: Array
) -> tuple[Array, Array, Array]:
    a, s0, states = residuals
    edge = jnp.zeros_like(a[:, :1])
    if reverse:
        coeffs = jnp.concatenate([edge, a[:, :-1]], axis=1)
        neighbours = jnp.concatenate([states[:, 1:], s0[:, None]], axis=1)
        first = -1
    else:
        coeffs = jnp.concatenate([a[:, 1:], edge], axis=1)
        neighbours = jnp.concatenate([s0[:, None], states[:, :-1]], axis=1)
        first = 0
    g = _run(coeffs, ds, jnp.zeros_like(s0), not reverse, block, interpret)
    return g * neighbours, g, a[:, first] * g[:, first]


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def _run(a: Array, b: Array, s0: Array, reverse: bool, block: int, interpret: bool) -> Array:
    """The kernel launch: pad the width, split complex planes, call, reassemble, slice."""
    batch, time, width = a.shape
    if a.size == 0:
        return jnp.zeros(a.shape, a.dtype)
    block = min(block, pl.next_power_of_2(width))
    padded = pl.cdiv(width, block) * block
    if padded != width:
        a, b = (jnp.pad(x, ((0, 0), (0, 0), (0, padded - width))) for x in (a, b))
        s0 = jnp.pad(s0, ((0, 0), (0, padded - width)))
    is_complex = jnp.iscomplexobj(a)
    parts = 2 if is_complex else 1
    planes = [p for x in (a, b, s0) for p in ((x.real, x.imag) if is_complex else (x,))]
    rows = pl.BlockSpec((None, time, block), lambda i, j: (i, 0, j))
    lanes = pl.BlockSpec((None, block), lambda i, j: (i, j))
    out = pl.pallas_call(
        functools.partial(_kernel, parts=parts, time=time, reverse=reverse),
        grid=(batch, padded // block),
        in_specs=[rows] * (2 * parts) + [lanes] * parts,
        out_specs=[rows] * parts,
        out_shape=[jax.ShapeDtypeStruct((batch, time, padded), jnp.float32)] * parts,
        interpret=interpret,
        compiler_params=pl_triton.CompilerParams(num_warps=min(8, max(1, block // 32))),
        name="linear_recurrence",
    )(*planes)
    states = jax.lax.complex(*out) if is_complex else out[0]
    return states[..., :width]


def _kernel(*refs: Any, parts: int, time: int, reverse: bool) -> None:
    """One program: walk time over a ``[time, block]`` slab, the state in registers.

    ``refs`` are the ``a`` planes, the ``b`` planes, the ``s0`` planes and the output planes,
    ``parts`` of each (1 for float32, 2 for complex64 as real and imaginary parts).
    """
    a_refs, b_refs, s0_refs, out_refs = (refs[k * parts : (k + 1) * parts] for k in range(4))

    def step(i: Array, state: tuple[Array, ...]) -> tuple[Array, ...]:
        t = time - 1 - i if reverse else i
        a = [r[t, :] for r in a_refs]
        b = [r[t, :] for r in b_refs]
        if parts == 1:
            state = (a[0] * state[0] + b[0],)
        else:
            (ar, ai), (sr, si) = a, state
            state = (ar * sr - ai * si + b[0], ar * si + ai * sr + b[1])
        for r, s in zip(out_refs, state, strict=True):
            r[t, :] = s
        return state

    jax.lax.fori_loop(0, time, step, tuple(r[...] for r in s0_refs))

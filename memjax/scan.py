"""Run any memory over a whole sequence: sequential, parallel (associative) or its own full pass.

``ys, carry = scan(cell, params, xs)`` with ``xs [batch, time, d_in]`` and ``ys [batch, time,
hidden]``. For a recurrent :class:`~memjax.cells.base.Cell` the work is split as cuDNN splits it:

1. ``pre = cell.prepare(params, xs)``: all input projections in one batched matmul;
2. the state recurrence over time, either ``jax.lax.scan`` over ``cell.recur`` ("sequential") or,
   for a :class:`~memjax.cells.base.LinearCell`, ``jax.lax.associative_scan`` over the affine
   elements ``s_t = a_t * s_{t-1} + b_t`` ("parallel"): ``s_t = A_t * s_0 + B_t`` with
   ``(A_t, B_t) = (a_t, b_t) . ... . (a_1, b_1)``, or the same recurrence walked by a Pallas
   kernel (``"pallas"``, :mod:`memjax.kernels.linear_recurrence`);
3. ``ys = cell.readout(params, hs, pre)`` for all steps at once.

Masks mark valid steps (True) with padding at the end. A padded step leaves the state unchanged
(for the parallel form its element becomes the identity ``(1, 0)``) and outputs exactly zero, so
the returned carry is each sequence's state at its last valid step.

Memories that are not recurrences (attention) provide their own ``sequence`` method, which this
function calls with the same arguments.

Float64 inputs (under ``jax_enable_x64``) are computed in float64 end to end in the sequential,
parallel and chunked modes and by attention: the parameters are promoted to float64 and the
state is float64 (complex128), whatever dtype the carry passed in has. The Pallas kernel is
float32-only, so ``mode="pallas"`` refuses float64 inputs with a ValueError. float32, bfloat16
and float16 inputs keep a float32 (complex64) state (:func:`memjax.cells.base.state_dtype`).
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp

from memjax.cells.base import (
    Array,
    Carry,
    Cell,
    LinearCell,
    Memory,
    Params,
    cast_carry,
    check_carry,
    compute_params,
    state_dtype,
)
from memjax.cells.base import check_input as _check_input
from memjax.cells.base import combine as _combine
from memjax.kernels import linear_recurrence

Mode = Literal["auto", "sequential", "parallel", "chunked", "pallas"]
MODES = ("auto", "sequential", "parallel", "chunked", "pallas")
Unroll = int | Literal["auto"]
DEFAULT_CHUNK = 64
"""Steps per chunk of ``mode="chunked"`` when ``chunk`` is not given."""
SEQUENTIAL_OPTIONS = ("unroll", "remat")
"""The options only ``mode="sequential"`` uses (``chunk`` is ``mode="chunked"``'s only one)."""
ACCELERATOR_UNROLL = 8
"""``unroll="auto"`` off the CPU. Published by issue 7 for an H200 (not yet measured here): an
empty ``lax.scan`` step costs 7.0 us at unroll 1 and 1.0 us at unroll 8, and a hoisted-input
LSTM forward+backward at B=64, T=1024, H=256 takes 33.9 ms at unroll 1 and 17.3 ms at 8."""


def resolve_mode(cell: Memory, mode: str) -> str:
    """The concrete mode ``mode`` means for ``cell`` on the default backend.

    ``"auto"`` picks the associative scan for linear cells on accelerators, where its
    ``O(log T)`` depth wins, and the sequential scan elsewhere: on a CPU the loop is not
    latency-bound and the associative scan's extra work loses (1.5-4x slower forward+backward
    for lru, mingru and s5 at lengths 256 and 1024, ``results/bench/cpu-scan-modes.md``).
    Cells with a matrix state (``prefers_parallel = False``) never take the associative scan;
    linear attention with one decay per head takes its chunked form (about 2x faster than the
    sequential scan forward+backward at lengths 256 and 1024 on the CPU), with per-key gates
    the sequential scan (the chunked form is 2.3x slower there on the CPU).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode in ("parallel", "pallas") and not isinstance(cell, LinearCell):
        raise ValueError(
            f"mode={mode!r} needs a cell whose update is linear in its state; "
            f"{type(cell).__name__} ({cell.name!r}) is not. Use mode='sequential' or 'auto'."
        )
    if mode == "chunked" and not has_chunked_form(cell):
        raise ValueError(
            f"mode='chunked' needs a cell with a chunked form (linear_attention); "
            f"{type(cell).__name__} ({cell.name!r}) has none. "
            "Use 'sequential', 'parallel' or 'auto'."
        )
    if mode == "auto" and has_chunked_form(cell) and cell.prefers_chunked:
        return "chunked"
    if mode == "auto":
        parallel = (
            isinstance(cell, LinearCell)
            and cell.prefers_parallel
            and jax.default_backend() != "cpu"
        )
        return "parallel" if parallel else "sequential"
    return mode


def resolve_unroll(unroll: Unroll) -> int:
    """The ``lax.scan`` unroll factor ``unroll`` means on the default backend.

    ``"auto"`` is 1 on the CPU, where a step's overhead is small beside its work (``memjax bench
    --mixers "lstm;gru" --unroll 1,2,4,8`` on the 2-core CPU: no factor changed either time),
    and :data:`ACCELERATOR_UNROLL` on GPUs and TPUs, where the per-step launch latency
    dominates small steps.
    """
    if unroll == "auto":
        return 1 if jax.default_backend() == "cpu" else ACCELERATOR_UNROLL
    if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
        raise ValueError(f"unroll must be a positive int or 'auto', got {unroll!r}")
    return unroll


def resolve_options(
    cell: Memory, mode: str, *, unroll: Unroll, remat: bool | int, chunk: int | None
) -> str:
    """The concrete mode of a :func:`scan` call; ValueError for an option it would ignore.

    ``unroll`` and ``remat`` apply only to ``mode="sequential"`` and ``chunk`` only to
    ``mode="chunked"``; attention uses none of them. Their defaults (``unroll="auto"``,
    ``remat=False`` or ``0``, ``chunk=None``) are accepted with every mode and memory, since a
    model passes them on every call; any other value in a mode that does not use it is refused,
    naming the argument, its value and the mode it needs. ``mode="auto"`` follows the options
    it is given: an explicit ``unroll`` or ``remat`` selects "sequential", an explicit
    ``chunk`` selects "chunked" (refused for a cell without a chunked form, or together with
    ``unroll`` / ``remat``); otherwise it resolves as :func:`resolve_mode` says.
    """
    explicit = {}
    if unroll != "auto":
        explicit["unroll"] = unroll
    if remat:  # True or a positive number of steps; False and 0 mean off
        explicit["remat"] = remat
    if chunk is not None:
        explicit["chunk"] = chunk
    given = lambda name: f"{name}={explicit[name]!r}"
    if not isinstance(cell, Cell):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        for name in explicit:
            default = {"unroll": "'auto'", "remat": "False", "chunk": "None"}[name]
            raise ValueError(
                f"{given(name)} applies only to recurrent cells; {type(cell).__name__} "
                f"({cell.name!r}) runs its own full pass and uses no {name}. Expected "
                f"{name}={default} (the default)."
            )
        return mode
    sequential = [name for name in SEQUENTIAL_OPTIONS if name in explicit]
    if mode == "auto" and sequential and "chunk" in explicit:
        raise ValueError(
            f"{given(sequential[0])} applies only to mode='sequential' and {given('chunk')} "
            "only to mode='chunked'; got both with mode='auto'. Expected one of them."
        )
    if mode == "auto" and "chunk" in explicit and not has_chunked_form(cell):
        raise ValueError(
            f"{given('chunk')} applies only to mode='chunked', and {type(cell).__name__} "
            f"({cell.name!r}) has no chunked form; expected chunk=None (the default)"
        )
    if mode == "auto" and sequential:
        mode = "sequential"
    elif mode == "auto" and "chunk" in explicit:
        mode = "chunked"
    concrete = resolve_mode(cell, mode)
    for name in explicit:
        needs = "chunked" if name == "chunk" else "sequential"
        if concrete != needs:
            raise ValueError(f"{given(name)} applies only to mode={needs!r}; got mode={mode!r}")
    return concrete


def has_chunked_form(cell: Memory) -> bool:
    """Whether ``cell`` computes whole sequences chunk by chunk (``cell.chunked``)."""
    return callable(getattr(cell, "chunked", None))


def check_mask(mask: Array | None, batch: int, time: int) -> Array | None:
    """Validate a ``[batch, time]`` mask and return it as bool; ValueError otherwise."""
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.shape != (batch, time):
        raise ValueError(f"mask must have shape (batch, time) = {(batch, time)}, got {mask.shape}")
    if jnp.issubdtype(mask.dtype, jnp.floating):
        raise ValueError(f"mask must be boolean or integer 0/1, got dtype {mask.dtype}")
    return mask.astype(bool)


def reverse_valid(xs: Array, mask: Array | None) -> Array:
    """Reverse each sequence within its valid prefix; padding stays at the end.

    ``out[b, t] = xs[b, n_b - 1 - t]`` for ``t < n_b = sum(mask[b])`` and ``xs[b, t]`` otherwise.
    Applying it twice is the identity.
    """
    if mask is None:
        return jnp.flip(xs, axis=1)
    time = xs.shape[1]
    lengths = mask.sum(axis=1, keepdims=True)
    t = jnp.arange(time)[None, :]
    index = jnp.where(t < lengths, lengths - 1 - t, t)
    index = index.reshape(index.shape + (1,) * (xs.ndim - 2))
    return jnp.take_along_axis(xs, index, axis=1)


def _broadcast_time_mask(mask: Array, like: Array) -> Array:
    """``mask [batch, time]`` reshaped to broadcast against ``like [batch, time, ...]``."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 2))


def _recurrence(cell: Cell, params: Params, carry: Carry, pre, valid, masked: bool, unroll):
    """The state recurrence over time-major ``pre`` and ``valid [T, B]``: ``(hs, carry)``.

    The cell's own fused loop when it has one, else ``lax.scan`` over ``cell.recur``;
    ``masked=False`` promises every step valid and skips the per-step select.
    """
    fused = cell.fused_recurrence(params, carry, pre, valid if masked else None, unroll)
    if fused is not None:
        return fused

    def body(state, inputs):
        pre_t, valid_t = inputs
        new_state, h = cell.recur(params, state, pre_t)
        if masked:
            keep = lambda new, old: jnp.where(
                valid_t.reshape(valid_t.shape + (1,) * (new.ndim - 1)), new, old
            )
            new_state = jax.tree.map(keep, new_state, state)
        return new_state, h

    carry, hs = jax.lax.scan(body, carry, (pre, valid), unroll=unroll)
    return hs, carry


def _segmented(cell: Cell, params: Params, carry: Carry, xs, valid, unroll, segment: int):
    """Prepare, recur and read out time-major ``xs [T, B, d_in]`` in segments of ``segment``
    steps, each segment under ``jax.checkpoint``; returns time-major outputs and the carry.

    The backward pass keeps only the inputs and the state at each segment boundary, and
    recomputes a segment (its input projections included) when it reaches it: the memory of
    the per-step activations falls from ``O(T)`` to ``O(T / segment + segment)`` for about one
    more forward pass. ``T`` is padded with masked steps to a multiple of ``segment``.
    """
    time = valid.shape[0]
    segments = -(-time // segment)
    pad = segments * segment - time
    pad_time = lambda a, value: jnp.concatenate(
        [a, jnp.full((pad, *a.shape[1:]), value, a.dtype)], axis=0
    )
    split = lambda a: a.reshape(segments, segment, *a.shape[1:])

    @jax.checkpoint
    def run_segment(state, inputs):
        x_k, valid_k = inputs
        pre_k = cell.prepare(params, x_k)
        hs_k, state = _recurrence(cell, params, state, pre_k, valid_k, True, unroll)
        return state, cell.readout(params, hs_k, pre_k)

    inputs = (split(pad_time(xs, 0)), split(pad_time(valid, False)))
    carry, ys = jax.lax.scan(run_segment, carry, inputs)
    return ys.reshape(segments * segment, *ys.shape[2:])[:time], carry


def _sequential(cell: Cell, params: Params, xs, carry: Carry, mask, unroll, remat):
    """Prepare, recur and read out in time-major layout; returns batch-major ``ys`` and the carry.

    Only ``xs`` and ``ys`` are transposed; the (usually wider) projections ``pre`` come out of
    the input matmul already time-major.
    """
    xs = jnp.swapaxes(xs, 0, 1)
    time, batch = xs.shape[:2]
    valid = jnp.ones((time, batch), bool) if mask is None else jnp.swapaxes(mask, 0, 1)
    if remat:
        segment = math.isqrt(max(time, 1) - 1) + 1 if remat is True else remat
        ys, carry = _segmented(cell, params, carry, xs, valid, unroll, segment)
    else:
        pre = cell.prepare(params, xs)
        hs, carry = _recurrence(cell, params, carry, pre, valid, mask is not None, unroll)
        ys = cell.readout(params, hs, pre)
    return jnp.swapaxes(ys, 0, 1), carry


def _elements(cell: LinearCell, params: Params, pre, mask):
    """The cell's affine elements ``(a, b)``, the identity ``(1, 0)`` at padded steps."""
    a, b = cell.elements(params, pre)
    if mask is not None:
        a = jax.tree.map(lambda x: jnp.where(_broadcast_time_mask(mask, x), x, 1), a)
        b = jax.tree.map(lambda x: jnp.where(_broadcast_time_mask(mask, x), x, 0), b)
    return a, b


def _parallel(cell: LinearCell, params: Params, pre, carry: Carry, mask):
    a, b = _elements(cell, params, pre, mask)
    a_cum, b_cum = jax.lax.associative_scan(_combine, (a, b), axis=1)
    states = jax.tree.map(lambda ac, bc, s0: ac * s0[:, None] + bc, a_cum, b_cum, carry)
    final = jax.tree.map(lambda s: s[:, -1], states)
    return cell.emit(params, states, pre), final


def _pallas(cell: LinearCell, params: Params, pre, carry: Carry, mask):
    """All states from :func:`memjax.kernels.linear_recurrence`, one launch per state leaf.

    Each leaf ``[batch, time, *state]`` is flattened to ``[batch, time, prod(state)]`` (``a``
    broadcast to ``b``'s shape first); padded steps become the identity ``(1, 0)``.
    """
    a, b = _elements(cell, params, pre, mask)

    def leaf_states(a_leaf: Array, b_leaf: Array, s0: Array) -> Array:
        batch, time = b_leaf.shape[:2]
        flat = lambda x: x.astype(s0.dtype).reshape(batch, time, -1)
        states = linear_recurrence(
            flat(jnp.broadcast_to(a_leaf, b_leaf.shape)), flat(b_leaf), s0.reshape(batch, -1)
        )
        return states.reshape(b_leaf.shape)

    states = jax.tree.map(leaf_states, a, b, carry)
    final = jax.tree.map(lambda s: s[:, -1], states)
    return cell.emit(params, states, pre), final


def scan(
    cell: Memory,
    params: Params,
    xs: Array,
    *,
    mode: Mode = "auto",
    mask: Array | None = None,
    carry: Carry | None = None,
    reverse: bool = False,
    unroll: Unroll = "auto",
    remat: bool | int = False,
    chunk: int | None = None,
) -> tuple[Array, Carry]:
    """Run ``cell`` over ``xs [batch, time, d_in]``; returns ``(ys [batch, time, hidden], carry)``.

    Args:
      cell: any registered memory.
      params: the cell's parameter pytree.
      xs: inputs, floating point, ``[batch, time, d_in]``. Float64 inputs compute in float64
        throughout (state float64 / complex128, parameters promoted); any other float keeps a
        float32 (complex64) state.
      mode: "sequential" (``lax.scan``), "parallel" (``lax.associative_scan``, linear cells
        only), "pallas" (the Pallas kernel :func:`memjax.kernels.linear_recurrence`, linear
        cells only; Triton on GPUs, interpret mode elsewhere; float32 only: float64 inputs
        raise ValueError), "chunked" or "auto" (see :func:`resolve_mode`; it never picks
        "pallas" until the kernel is measured on a GPU).
      mask: ``[batch, time]`` bool, True on valid steps, padding at the end. Padded outputs are
        zero and the returned carry is the state at each sequence's last valid step.
      carry: state to continue from (default ``cell.initial_carry``); running a sequence in two
        halves with the first half's carry equals running it whole. Its floating leaves are cast
        to the state dtype of ``xs``, and the returned carry has that dtype.
      reverse: run from each sequence's last valid step back to its first; outputs are returned
        in the original time order.
      unroll: ``lax.scan`` unroll factor (sequential mode only), or "auto" (see
        :func:`resolve_unroll`).
      remat: rematerialise in the backward pass to save memory (sequential mode only): an int
        ``K`` keeps the state every ``K`` steps and recomputes the steps in between
        (``jax.checkpoint`` over segments of ``K`` steps), True means ``K = ceil(sqrt(time))``,
        False (or 0) keeps every step's residuals.
      chunk: steps per chunk in "chunked" mode only (cells with a chunked form, linear
        attention: quadratic inside a chunk, recurrent across chunks); None means
        :data:`DEFAULT_CHUNK`.

    Valid combinations (see :func:`resolve_options`); a non-default option in a mode that does
    not use it raises ValueError instead of being ignored::

        mode            unroll    remat    chunk    memories
        "sequential"    yes       yes      -        every recurrent cell
        "parallel"      -         -        -        linear cells
        "pallas"        -         -        -        linear cells
        "chunked"       -         -        yes      cells with a chunked form (linear attention)
        "auto"          -> "sequential" if unroll or remat is given, -> "chunked" if chunk is
                        given, else :func:`resolve_mode`
        any mode        -         -        -        attention (one full pass; mode is ignored)

    The defaults ``unroll="auto"``, ``remat=False`` / ``0`` and ``chunk=None`` are accepted in
    every row, so a model may pass them on every call.
    """
    if jnp.ndim(xs) != 3:
        raise ValueError(f"xs must have shape [batch, time, features], got shape {jnp.shape(xs)}")
    _check_input(cell, params, xs, name="xs", min_rank=3)
    batch, time, _ = xs.shape
    mask = check_mask(mask, batch, time)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"chunk must be a positive int or None, got {chunk!r}")
    resolve_unroll(unroll)
    if not isinstance(remat, int) or (not isinstance(remat, bool) and remat < 0):
        raise ValueError(f"remat must be a bool or a non-negative int of steps, got {remat!r}")
    if carry is not None:
        check_carry(cell, params, carry, (batch,))
    concrete_mode = resolve_options(cell, mode, unroll=unroll, remat=remat, chunk=chunk)
    if concrete_mode == "pallas" and state_dtype(xs.dtype) == jnp.float64:
        raise ValueError(
            "mode='pallas' runs the Pallas kernel memjax.kernels.linear_recurrence, which "
            "computes in float32 / complex64 only; got float64 xs. Expected mode='parallel' "
            "or 'sequential' (both compute float64 inputs in float64), or float32 xs."
        )
    unroll = resolve_unroll(unroll)
    chunk = DEFAULT_CHUNK if chunk is None else chunk
    params = compute_params(params, xs.dtype)
    if carry is not None:
        carry = cast_carry(carry, xs.dtype)
    if not isinstance(cell, Cell):
        return cell.sequence(params, xs, mask=mask, carry=carry, reverse=reverse, mode=mode)

    if carry is None:
        carry = cast_carry(cell.initial_carry(params, (batch,)), xs.dtype)
    if reverse:
        xs = reverse_valid(xs, mask)
    if concrete_mode == "sequential":
        ys, carry = _sequential(cell, params, xs, carry, mask, unroll, remat)
    else:
        pre = cell.prepare(params, xs)
        if concrete_mode == "chunked":
            valid = jnp.ones((batch, time), bool) if mask is None else mask
            hs, carry = cell.chunked(params, carry, pre, valid, chunk)
        elif concrete_mode == "pallas":
            hs, carry = _pallas(cell, params, pre, carry, mask)
        else:
            hs, carry = _parallel(cell, params, pre, carry, mask)
        ys = cell.readout(params, hs, pre)
    ys = ys.astype(xs.dtype)
    if mask is not None:
        ys = jnp.where(mask[..., None], ys, jnp.zeros((), ys.dtype))
    if reverse:
        ys = reverse_valid(ys, mask)
    return ys, carry


BIDIRECTIONAL_COMBINES = ("concat", "sum")


def bidirectional(
    forward: Memory,
    forward_params: Params,
    backward: Memory,
    backward_params: Params,
    xs: Array,
    *,
    mask: Array | None = None,
    mode: Mode = "auto",
    combine: str = "concat",
    unroll: Unroll = "auto",
    remat: bool | int = False,
) -> Array:
    """A bidirectional pass: ``forward`` reads each sequence from its first step, ``backward``
    from its last valid step back to its first (``scan(..., reverse=True)``), and their outputs
    are combined step by step.

    This is memjax's one meaning of "bidirectional": the two output streams
    ``y_fwd = scan(forward, forward_params, xs)`` and ``y_bwd = scan(backward, backward_params,
    xs, reverse=True)``, side by side (``combine="concat"``, ``[batch, time, h_fwd + h_bwd]``) or
    added (``combine="sum"``, ``[batch, time, h]``, which needs ``h_fwd == h_bwd``; the sum is
    the concatenation followed by the fixed map ``[I; I]``). :class:`memjax.models.Mixer` uses
    the sum. S5's bidirectional SSM is the sum with tied parameters: the same ``Lambda`` and
    ``B`` in both directions, each its own ``C``, and ``D`` counted once (the backward params'
    ``D`` zero); see ``Mixer(bidirectional="shared")``. Padded outputs are zero.
    ``mode``, ``unroll`` and ``remat`` apply to both passes, as in :func:`scan`.
    """
    if combine not in BIDIRECTIONAL_COMBINES:
        raise ValueError(f"combine must be one of {BIDIRECTIONAL_COMBINES}, got {combine!r}")
    options = dict(mask=mask, mode=mode, unroll=unroll, remat=remat)
    ys_forward, _ = scan(forward, forward_params, xs, **options)
    ys_backward, _ = scan(backward, backward_params, xs, reverse=True, **options)
    if combine == "sum":
        if ys_forward.shape != ys_backward.shape:
            raise ValueError(
                f"combine='sum' adds outputs of the same width; got {ys_forward.shape[-1]} "
                f"(forward) and {ys_backward.shape[-1]} (backward)"
            )
        return ys_forward + ys_backward
    return jnp.concatenate([ys_forward, ys_backward], axis=-1)

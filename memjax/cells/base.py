"""The interface every memory in memjax shares.

A memory is a frozen dataclass of hyperparameters plus pure functions over a plain parameter
pytree. It has two faces:

* the streaming face, ``carry, y_t = memory.step(params, carry, x_t)`` with ``x_t`` of shape
  ``[*batch, d_in]`` and ``y_t`` of shape ``[*batch, hidden]``;
* the training face, ``ys, carry = memjax.scan(memory, params, xs)`` over ``[batch, time, d_in]``.

Recurrent cells (:class:`Cell`) split a step into three parts so that the scan engine can batch
everything that does not depend on the state, the way cuDNN does::

    pre_t        = prepare(params, x_t)         # input-only work, any leading shape
    carry', h_t  = recur(params, carry, pre_t)  # the only sequential work
    y_t          = readout(params, h_t, pre_t)  # output map, any leading shape

Cells whose update is linear in the state (:class:`LinearCell`) express it as the affine map
``s_t = a_t * s_{t-1} + b_t`` (elementwise, ``a_t`` broadcastable to ``s_t``), which composes
associatively and so also runs as a parallel scan.

The recurrent state is kept in float32 (complex64 for complex recurrences) for float32,
bfloat16 and float16 inputs; inputs and parameters are cast to the dtype of ``x`` for the
matmuls. Float64 inputs (with ``jax_enable_x64``) are computed in float64 end to end: the state
is float64 (complex128), the parameters are promoted to float64 and the matmuls run in float64
(:func:`state_dtype`, :func:`compute_params`, :func:`cast_carry`). ``initial_carry`` always
builds the float32 state; :func:`memjax.scan` and ``step`` cast it to the inputs' state dtype.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

Params = Any
Carry = Any
Pre = Any
Array = jax.Array

STATE_DTYPE = jnp.float32
"""The state dtype of float32, bfloat16 and float16 inputs (see :func:`state_dtype`)."""


def state_dtype(dtype: Any) -> jnp.dtype:
    """The real state (and accumulation) dtype for inputs of ``dtype``: float64 for float64
    inputs, float32 (:data:`STATE_DTYPE`) for every narrower float."""
    return jnp.dtype(jnp.float64 if jnp.dtype(dtype) == jnp.float64 else STATE_DTYPE)


def complex_state_dtype(dtype: Any) -> jnp.dtype:
    """The complex state dtype for inputs of ``dtype``: complex128 for float64, else complex64."""
    return jnp.dtype(jnp.complex128 if state_dtype(dtype) == jnp.float64 else jnp.complex64)


def _cast_leaf(leaf: Any, dtype: Any) -> Any:
    """A floating (complex) leaf cast to the real (complex) state dtype of ``dtype``; any other
    leaf (integers, e.g. a cache position) as it is."""
    leaf_dtype = jnp.result_type(leaf)
    if jnp.issubdtype(leaf_dtype, jnp.complexfloating):
        return jnp.asarray(leaf, complex_state_dtype(dtype))
    if jnp.issubdtype(leaf_dtype, jnp.floating):
        return jnp.asarray(leaf, state_dtype(dtype))
    return leaf


def cast_carry(carry: Carry, dtype: Any) -> Carry:
    """``carry`` with every floating leaf in the state dtype of inputs of ``dtype`` (float64 /
    complex128 for float64 inputs, float32 / complex64 otherwise)."""
    return jax.tree.map(lambda leaf: _cast_leaf(leaf, dtype), carry)


def compute_params(params: Params, dtype: Any) -> Params:
    """The parameters a memory computes with for inputs of ``dtype``.

    Float64 inputs promote every floating leaf to float64 (complex to complex128), so that
    nothing in the pass rounds to float32. For narrower inputs float64 leaves (``init`` under
    ``jax_enable_x64``) come down to float32 and the rest stay as they are: the float32 path of
    the default configuration is unchanged.
    """
    if state_dtype(dtype) == jnp.float64:
        return cast_carry(params, dtype)

    def narrow(leaf: Any) -> Any:
        leaf_dtype = jnp.result_type(leaf)
        if leaf_dtype in (jnp.dtype(jnp.float64), jnp.dtype(jnp.complex128)):
            return _cast_leaf(leaf, dtype)
        return leaf

    return jax.tree.map(narrow, params)


def check_input(memory: Memory, params: Params, x: Array, *, name: str, min_rank: int) -> None:
    """Raise ValueError unless ``x`` has rank >= ``min_rank`` and the memory's input width."""
    d_in = memory.input_features(params)
    if x.ndim < min_rank:
        raise ValueError(
            f"{name} must have rank >= {min_rank} with features last, got shape {x.shape}"
        )
    if x.shape[-1] != d_in:
        raise ValueError(
            f"{name} has {x.shape[-1]} features (shape {x.shape}) but {type(memory).__name__} "
            f"was initialised for d_in={d_in}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating-point array, got dtype {x.dtype}")


def check_carry(memory: Memory, params: Params, carry: Carry, batch_shape: Sequence[int]) -> None:
    """Raise ValueError unless ``carry`` has the structure and shapes of an initial carry."""
    expected = jax.eval_shape(lambda: memory.initial_carry(params, tuple(batch_shape)))
    got_shapes = jax.tree.map(lambda a: tuple(jnp.shape(a)), carry)
    want_shapes = jax.tree.map(lambda a: tuple(a.shape), expected)
    if jax.tree.structure(carry) != jax.tree.structure(expected) or got_shapes != want_shapes:
        raise ValueError(
            f"carry must match {type(memory).__name__}.initial_carry(params, {tuple(batch_shape)})"
            f" with shapes {want_shapes}, got {got_shapes}"
        )


def linear_init(key: Array, d_in: int, d_out: int, scale: float = 1.0) -> Array:
    """LeCun-uniform weights ``[d_in, d_out]`` with bound ``scale * sqrt(3 / d_in)``."""
    bound = scale * math.sqrt(3.0 / d_in)
    return jax.random.uniform(key, (d_in, d_out), jnp.float32, -bound, bound)


def matmul(x: Array, w: Array) -> Array:
    """``x @ w`` computed in ``x``'s dtype (weights cast to it), accumulated in float32 for
    half-precision ``x`` and in ``x``'s own dtype for float32 and float64.

    A float32 product is left as a plain matmul: asking XLA's CPU backend for an explicit
    float32 accumulator makes it leave its fast matmul kernel. A float64 product stays float64.
    """
    if x.dtype in (jnp.float32, jnp.float64):
        return jnp.matmul(x, w.astype(x.dtype))
    return jnp.matmul(x, w.astype(x.dtype), preferred_element_type=jnp.float32)


@dataclasses.dataclass(frozen=True)
class Memory(abc.ABC):
    """Anything that mixes information across time: a recurrent cell or attention.

    Attributes:
      hidden: width of the memory's output ``y_t`` (and of its state for the classic cells).
    """

    hidden: int
    name: ClassVar[str] = ""
    recurrence_params: ClassVar[tuple[str, ...]] = ()
    """Top-level parameter keys that set the recurrence itself (eigenvalues, step sizes); the
    trainer gives them their own learning rate and no weight decay, as S5 and LRU do."""
    table_params: ClassVar[tuple[str, ...]] = ()
    """Top-level parameter keys that are lookup tables (learned positions): no weight decay,
    like the token embedding."""

    @classmethod
    def width_multiple(cls, **options: Any) -> int:
        """``hidden`` must be a multiple of this under ``options`` (1: any width will do).

        Budget searches (:func:`memjax.budget.width_for_budget`) probe only such widths.
        """
        del options
        return 1

    def __post_init__(self) -> None:
        if not isinstance(self.hidden, int) or isinstance(self.hidden, bool) or self.hidden < 1:
            raise ValueError(f"hidden must be a positive int, got {self.hidden!r}")

    @abc.abstractmethod
    def init(self, key: Array, d_in: int) -> Params:
        """Parameter pytree for inputs of width ``d_in``."""

    @abc.abstractmethod
    def input_features(self, params: Params) -> int:
        """The ``d_in`` that ``params`` were initialised for."""

    @abc.abstractmethod
    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> Carry:
        """The memory's empty state for a batch of shape ``batch_shape``."""

    @abc.abstractmethod
    def step(self, params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        """One time step: ``x_t [*batch, d_in] -> (carry', y_t [*batch, hidden])``."""

    def state_bytes(self, params: Params, length: int) -> int:
        """Bytes of state one sequence holds after ``length`` steps (constant for a recurrence)."""
        del length
        carry = jax.eval_shape(lambda: self.initial_carry(params, ()))
        return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(carry))


@dataclasses.dataclass(frozen=True)
class Cell(Memory):
    """A recurrent cell; see the module docstring for the prepare / recur / readout split."""

    linear: ClassVar[bool] = False

    @abc.abstractmethod
    def prepare(self, params: Params, x: Array) -> Pre:
        """Input-only work for inputs ``x [..., d_in]``; every leaf keeps the leading shape."""

    @abc.abstractmethod
    def recur(self, params: Params, carry: Carry, pre: Pre) -> tuple[Carry, Array]:
        """The state update for one step; returns the new carry and what the step emits."""

    def fused_recurrence(
        self, params: Params, carry: Carry, pre: Pre, mask: Array | None, unroll: int
    ) -> tuple[Array, Carry] | None:
        """The whole recurrence over time-major ``pre [T, B, ...]`` and ``mask [T, B]`` (None:
        every step valid) in one call, for cells with a hand-written backward pass; returns
        ``(hs [T, B, ...], carry)``, or None (the default) to let the scan engine differentiate
        ``recur`` automatically."""
        del params, carry, pre, mask, unroll
        return None

    def readout(self, params: Params, h: Array, pre: Pre) -> Array:
        """Map emitted values ``h [..., *]`` to outputs ``[..., hidden]`` (identity here)."""
        del params, pre
        return h

    def step(self, params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        check_input(self, params, x_t, name="x_t", min_rank=1)
        check_carry(self, params, carry, x_t.shape[:-1])
        params, carry = compute_params(params, x_t.dtype), cast_carry(carry, x_t.dtype)
        pre = self.prepare(params, x_t)
        carry, h = self.recur(params, carry, pre)
        return carry, self.readout(params, h, pre).astype(x_t.dtype)


@dataclasses.dataclass(frozen=True)
class LinearCell(Cell):
    """A cell whose state update is affine in the state: ``s_t = a_t * s_{t-1} + b_t``.

    ``elements`` returns ``(a, b)`` as pytrees shaped like the carry (``a`` may broadcast), and
    ``emit`` reads a step's output from its state. Composing two steps gives
    ``(a1, b1) . (a2, b2) = (a2 * a1, a2 * b1 + b2)``, an associative operation, so all states
    of a sequence follow from one ``jax.lax.associative_scan``.
    """

    linear: ClassVar[bool] = True
    prefers_parallel: ClassVar[bool] = True
    """Whether ``mode="auto"`` may pick the associative scan on an accelerator. A cell whose
    state is a matrix sets False: the associative scan materialises the state of every step."""

    @abc.abstractmethod
    def elements(self, params: Params, pre: Pre) -> tuple[Carry, Carry]:
        """The affine map ``(a_t, b_t)`` of each step, with the leading shape of ``pre``."""

    @abc.abstractmethod
    def emit(self, params: Params, state: Carry, pre: Pre) -> Array:
        """What a step emits from its new state ``s_t``; any leading shape."""

    def recur(self, params: Params, carry: Carry, pre: Pre) -> tuple[Carry, Array]:
        a, b = self.elements(params, pre)
        state = jax.tree.map(lambda s, a_t, b_t: a_t * s + b_t, carry, a, b)
        return state, self.emit(params, state, pre)


def combine(first: tuple[Carry, Carry], second: tuple[Carry, Carry]) -> tuple[Carry, Carry]:
    """Compose affine maps: apply ``first = (a1, b1)`` then ``second = (a2, b2)``."""
    a1, b1 = first
    a2, b2 = second
    return (
        jax.tree.map(lambda x, y: x * y, a2, a1),
        jax.tree.map(lambda a, b, c: a * b + c, a2, b1, b2),
    )

"""Multi-head softmax self-attention as a memory: the KV cache is its state.

For inputs ``x [batch, time, d_in]`` at positions ``p_t`` (``0, 1, ...`` from the start of the
sequence, continuing from the cache when one is given)::

    x~_t = x_t + P[p_t]                    (sinusoidal or learned positions; else x~_t = x_t)
    q_t = x~_t W_q,  k_t = x~_t W_k,  v_t = x~_t W_v          (each split into heads [N, H])
    q_t, k_t <- R(p_t) q_t, R(p_t) k_t     (RoPE only: rotate each pair of features)
    a_ts = softmax_s(q_t . k_s / sqrt(H) over allowed s)
    y_t = concat_heads(sum_s a_ts v_s) W_o

Key ``s`` is allowed for query ``t`` when it is valid (not padding) and, for a causal layer,
``p_s <= p_t``; a sliding window of size ``w`` also requires ``p_t - p_s < w`` (causal: the last
``w`` keys including itself) or ``|p_t - p_s| < w`` (non-causal: ``w - 1`` each side). Shapes:
``W_q, W_k, W_v [d_in, N H]``, ``W_o [N H, hidden]``, learned ``P [max_length, d_in]``; no biases.

The training face (:meth:`Attention.sequence`, called by :func:`memjax.scan`) attends in one
``jax.nn.dot_product_attention`` call: the cuDNN fused kernel on NVIDIA GPUs for bfloat16/float16
inputs when it supports the shape; from ``BLOCKED_FROM_CPU`` tokens on a CPU and ``BLOCKED_FROM``
elsewhere, :func:`memjax.blocked_attention.blocked_attention` (FlashAttention-2 in plain JAX,
memory ``O(T * block)``); XLA's path below (``implementation`` forces any of the three). Continuing
from a cache (a ``carry`` argument, or :meth:`Attention.step`) attends over the cached keys plus
the new ones with an explicit position mask, always on XLA. ``jax.nn.dot_product_attention``
takes its softmax in float32 whatever the dtype, so float64 inputs take the XLA path as an
explicit float64 softmax (:func:`attend`) with the same masks.

The carry is the KV cache ``{"k": [*batch, C, N, H], "v": [*batch, C, N, H], "pos": [*batch]}``:
keys (after RoPE) and values in float32 for float32 and half-precision inputs (a lossless copy
of bfloat16 values, as the recurrent cells keep their state) and in float64 for float64 inputs,
which compute in float64 throughout (parameters promoted, positions and softmax in float64), and
``pos`` (int32), the number of tokens seen.
Token ``p`` lives in slot ``p mod C``: ``C = max_length`` for full attention, which never wraps,
and ``C = window`` for a sliding window, a ring buffer holding the last ``window`` tokens.

Capacity: full attention holds at most ``max_length`` tokens, and learned positions exist only
below ``max_length``. A call that needs more raises ValueError when the positions are concrete
(always for a fresh sequence, whose length is static). Under ``jax.jit`` the cache's ``pos`` is
traced and cannot be checked: the outputs of tokens past the capacity are NaN instead, so an
overflow poisons the loss rather than passing unseen.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp

from memjax.blocked_attention import blocked_attention
from memjax.cells.base import (
    STATE_DTYPE,
    Array,
    Carry,
    Memory,
    Params,
    cast_carry,
    check_carry,
    check_input,
    compute_params,
    linear_init,
    matmul,
)
from memjax.cells.registry import register
from memjax.scan import MODES, reverse_valid

POSITIONALS = ("rope", "sinusoidal", "learned", "none")
IMPLEMENTATIONS = (None, "xla", "cudnn", "blocked")
BLOCKED_FROM = 1024
"""``implementation=None`` takes the blocked kernel from this length on off the CPU (when cuDNN
does not apply): not yet measured on a GPU, where it is chosen for memory's sake (at 4096 tokens,
B=4, XLA plans 4.1 GB and the blocked kernel 87 MB)."""
BLOCKED_FROM_CPU = 128
"""The same on a CPU. Measured on the 2-core CPU, B=16, 4 heads of 32, causal, fp32,
forward+backward: equal to XLA's path at 64 tokens, 1.3x faster at 128, 1.5x at 256, 1.8x at 512
and 6-8x at 1024. Below it XLA's path compiles faster (a smoke run of the synthetic table with
11 small transformer runs took 64 s with it and 75 s with the blocked kernel)."""
POSITION_BASE = 10000.0
HALF_DTYPES = (jnp.bfloat16, jnp.float16)


def rope(x: Array, positions: Array) -> Array:
    """Rotary position embedding of ``x [..., time, heads, H]`` at ``positions``.

    Feature ``i < H // 2`` pairs with ``i + H // 2``; each pair turns by the angle ``p theta_i``
    with ``theta_i = POSITION_BASE^(-i / (H // 2))``::

        [x1, x2] -> [x1 cos(p theta) - x2 sin(p theta),  x2 cos(p theta) + x1 sin(p theta)]

    For odd ``H`` the last feature is left as it is. Rotations keep norms, and
    ``rope(q, p) . rope(k, s)`` depends on ``p - s`` only. ``positions`` broadcasts against
    ``x.shape[:-2]``; computed in float32 (float64 for float64 ``x``), returned in ``x.dtype``.
    """
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    half = x.shape[-1] // 2
    theta = POSITION_BASE ** (-jnp.arange(half, dtype=dtype) / half)
    angle = (positions.astype(dtype)[..., None] * theta)[..., None, :]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x32 = x.astype(dtype)
    x1, x2, rest = x32[..., :half], x32[..., half : 2 * half], x32[..., 2 * half :]
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], axis=-1)
    return rotated.astype(x.dtype)


def sinusoidal(positions: Array, features: int, dtype=jnp.float32) -> Array:
    """Sinusoidal positions ``[..., features]`` (Vaswani et al. 2017) in ``dtype``::

    P[p, 2i] = sin(p / 10000^(2i/d)),   P[p, 2i+1] = cos(p / 10000^(2i/d)).
    """
    feature = jnp.arange(features)
    frequency = POSITION_BASE ** (-2.0 * (feature // 2).astype(dtype) / features)
    angle = positions.astype(dtype)[..., None] * frequency
    return jnp.where(feature % 2 == 0, jnp.sin(angle), jnp.cos(angle))


def slot_positions(pos: Array, size: int) -> Array:
    """Position held by each slot of a ring of ``size`` after ``pos [batch]`` tokens: ``[batch,
    size]``, the largest ``p < pos`` with ``p = slot (mod size)``; negative for an empty slot."""
    last = pos[:, None] - 1
    return last - jnp.mod(last - jnp.arange(size)[None, :], size)


def attend(
    q: Array,
    k: Array,
    v: Array,
    *,
    implementation: str | None,
    mask: Array | None = None,
    is_causal: bool = False,
    local_window_size: tuple[int, int] | None = None,
    query_seq_lengths: Array | None = None,
    key_value_seq_lengths: Array | None = None,
) -> Array:
    """``jax.nn.dot_product_attention`` (same arguments and masks), except for float64 inputs.

    That function takes its softmax in float32 whatever the input dtype; for float64 ``q`` this
    computes ``softmax(q k^T / sqrt(H)) v`` itself in float64 on XLA, with the same masks (key
    ``s`` allowed for query ``t`` by ``mask [B, 1 or N, T, S]``, ``s <= t`` if causal,
    ``t - left <= s <= t + right`` for a window, and the sequence lengths), the same large
    negative logit for a disallowed pair and zeros at queries past ``query_seq_lengths``.
    """
    kwargs = dict(
        mask=mask,
        is_causal=is_causal,
        local_window_size=local_window_size,
        query_seq_lengths=query_seq_lengths,
        key_value_seq_lengths=key_value_seq_lengths,
    )
    if q.dtype != jnp.float64:
        return jax.nn.dot_product_attention(q, k, v, implementation=implementation, **kwargs)
    if implementation not in (None, "xla"):
        raise ValueError(
            f"float64 attention runs on XLA only, got implementation={implementation!r}"
        )
    time, keys = q.shape[1], k.shape[1]
    t, s = jnp.arange(time)[:, None], jnp.arange(keys)[None, :]
    allowed = jnp.ones((1, 1, time, keys), bool)
    if mask is not None:
        allowed &= mask
    if is_causal:
        allowed &= s <= t
    if local_window_size is not None:
        left, right = local_window_size
        allowed &= (t - left <= s) & (s <= t + right)
    if key_value_seq_lengths is not None:
        allowed &= s < key_value_seq_lengths[:, None, None, None]
    if query_seq_lengths is not None:
        allowed &= t < query_seq_lengths[:, None, None, None]
    logits = jnp.einsum("btnh,bsnh->bnts", q, k) / math.sqrt(q.shape[-1])
    logits = jnp.where(allowed, logits, -0.7 * float(jnp.finfo(jnp.float32).max))
    out = jnp.einsum("bnts,bsnh->btnh", jax.nn.softmax(logits, axis=-1), v)
    if query_seq_lengths is not None:
        out = jnp.where((jnp.arange(time) < query_seq_lengths[:, None])[..., None, None], out, 0)
    return out


def _cuda_available() -> bool:
    backend = jax.extend.backend.get_backend()
    return backend.platform == "gpu" and "cuda" in backend.platform_version.lower()


def _check_positive_int(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        expected = "None or a positive int" if optional else "a positive int"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


@register
@dataclasses.dataclass(frozen=True)
class Attention(Memory):
    """Multi-head softmax self-attention with a KV-cache streaming face (see module docstring).

    Attributes:
      hidden: output width.
      heads: number of heads ``N``.
      head_dim: width ``H`` of each head; None means ``hidden // heads``.
      causal: attend to the past only; a non-causal layer has no streaming face.
      window: sliding window size (keys per query, the query included); None attends to all.
      positional: "rope" (rotary, on q and k), "sinusoidal" or "learned" (added to the input),
        or "none".
      max_length: KV-cache capacity of full attention and size of the learned position table.
      implementation: None (automatic), "xla", "cudnn" or "blocked" for the full pass.
    """

    heads: int = 4
    head_dim: int | None = None
    causal: bool = True
    window: int | None = None
    positional: str = "rope"
    max_length: int = 2048
    implementation: str | None = None
    name = "attention"
    table_params = ("positions",)

    @classmethod
    def width_multiple(cls, **options: Any) -> int:
        """``heads`` when the head width is ``hidden // heads`` (no explicit ``head_dim``)."""
        return 1 if options.get("head_dim") is not None else int(options.get("heads", cls.heads))

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive_int("heads", self.heads)
        _check_positive_int("head_dim", self.head_dim, optional=True)
        if self.head_dim is None and self.hidden % self.heads:
            raise ValueError(
                f"hidden={self.hidden} must be divisible by heads={self.heads} when head_dim is "
                "None; expected a multiple of heads, or an explicit head_dim"
            )
        if not isinstance(self.causal, bool):
            raise ValueError(f"causal must be a bool, got {self.causal!r}")
        _check_positive_int("window", self.window, optional=True)
        _check_choice("positional", self.positional, POSITIONALS)
        _check_positive_int("max_length", self.max_length)
        _check_choice("implementation", self.implementation, IMPLEMENTATIONS)
        if self.implementation == "cudnn" and self.window is not None and not self.causal:
            raise ValueError(
                f"implementation='cudnn' supports window={self.window} only with causal=True; "
                "expected implementation=None or 'xla' for a non-causal sliding window"
            )

    @property
    def dim(self) -> int:
        """Head width ``H``."""
        return self.hidden // self.heads if self.head_dim is None else self.head_dim

    @property
    def capacity(self) -> int:
        """Slots ``C`` of the KV cache: ``window`` for a sliding window, else ``max_length``."""
        return self.max_length if self.window is None else self.window

    @property
    def position_limit(self) -> int | None:
        """Positions must stay below this (None: unbounded, a sliding window without a table)."""
        bounded = self.window is None or self.positional == "learned"
        return self.max_length if bounded else None

    def init(self, key: Array, d_in: int) -> Params:
        k_q, k_k, k_v, k_o, k_p = jax.random.split(key, 5)
        width = self.heads * self.dim
        params = {
            "w_q": linear_init(k_q, d_in, width),
            "w_k": linear_init(k_k, d_in, width),
            "w_v": linear_init(k_v, d_in, width),
            "w_o": linear_init(k_o, width, self.hidden),
        }
        if self.positional == "learned":
            params["positions"] = 0.02 * jax.random.normal(k_p, (self.max_length, d_in))
        return params

    def input_features(self, params: Params) -> int:
        return params["w_q"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> dict[str, Array]:
        cache = jnp.zeros((*batch_shape, self.capacity, self.heads, self.dim), STATE_DTYPE)
        return {"k": cache, "v": cache, "pos": jnp.zeros(tuple(batch_shape), jnp.int32)}

    def state_bytes(self, params: Params, length: int) -> int:
        """Bytes of K and V one sequence holds after ``length`` tokens (float32):
        ``2 N H 4 min(length, window)``, linear in ``length`` for full attention."""
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise ValueError(f"length must be a non-negative int, got {length!r}")
        tokens = length if self.window is None else min(length, self.window)
        return 2 * tokens * self.heads * self.dim * jnp.dtype(STATE_DTYPE).itemsize

    def resolve_implementation(self, dtype: jnp.dtype, time: int) -> str:
        """The kernel the full pass uses for ``time`` tokens of ``dtype``.

        None picks cuDNN's fused kernel on an NVIDIA GPU for bfloat16/float16 inputs whose head
        width it supports (a multiple of 8, at most 128) unless the window is non-causal (cuDNN
        masks the left side only); otherwise the blocked kernel from ``BLOCKED_FROM_CPU`` tokens
        on a CPU and ``BLOCKED_FROM`` elsewhere, and XLA's path below. A forced "cudnn" is
        checked here.
        """
        half = any(dtype == d for d in HALF_DTYPES)
        if self.implementation == "cudnn":
            if not half:
                raise ValueError(
                    f"implementation='cudnn' needs bfloat16 or float16 inputs, got dtype {dtype}"
                )
            if not _cuda_available():
                raise ValueError(
                    "implementation='cudnn' needs an NVIDIA GPU, but the default backend is "
                    f"{jax.default_backend()!r}; expected implementation=None or 'xla' here"
                )
            return "cudnn"
        if self.implementation is not None:
            return self.implementation
        fits = self.dim % 8 == 0 and self.dim <= 128 and (self.causal or self.window is None)
        if half and fits and _cuda_available():
            return "cudnn"
        threshold = BLOCKED_FROM_CPU if jax.default_backend() == "cpu" else BLOCKED_FROM
        return "blocked" if time >= threshold else "xla"

    def _embed(self, params: Params, x: Array, positions: Array) -> Array:
        """``x [B, T, d_in]`` plus absolute positions ``positions [B or 1, T]`` (if any)."""
        if self.positional == "sinusoidal":
            dtype = jnp.promote_types(x.dtype, jnp.float32)
            return x + sinusoidal(positions, x.shape[-1], dtype).astype(x.dtype)
        if self.positional == "learned":
            table = params["positions"]
            return x + jnp.take(table, positions, axis=0, mode="clip").astype(x.dtype)
        return x

    def _project(self, params: Params, x: Array, positions: Array) -> tuple[Array, Array, Array]:
        """Queries, keys, values ``[B, T, N, H]`` in ``x.dtype`` for inputs ``x [B, T, d_in]``."""
        x = self._embed(params, x, positions)
        split = lambda w: matmul(x, w).astype(x.dtype).reshape(*x.shape[:2], self.heads, self.dim)
        q, k, v = split(params["w_q"]), split(params["w_k"]), split(params["w_v"])
        if self.positional == "rope":
            q, k = rope(q, positions), rope(k, positions)
        return q, k, v

    def _output(self, params: Params, heads: Array, valid: Array) -> Array:
        """``heads [B, T, N, H] -> [B, T, hidden]``, exactly zero where ``valid [B, T]`` is off."""
        ys = matmul(heads.reshape(*heads.shape[:2], -1), params["w_o"]).astype(heads.dtype)
        return jnp.where(valid[..., None], ys, jnp.zeros((), ys.dtype))

    def _check_capacity(self, ends: Array) -> None:
        """ValueError if concrete end positions ``ends`` overrun the cache or the table."""
        limit = self.position_limit
        if limit is None or isinstance(ends, jax.core.Tracer):
            return
        needed = int(jnp.max(ends, initial=0))
        if needed > limit:
            raise ValueError(
                f"this call needs {needed} positions but {type(self).__name__} holds max_length="
                f"{limit} (KV cache / position table); expected at most {limit} tokens per "
                "sequence: raise max_length or use a sliding window"
            )

    def _write(self, cache: Carry, k: Array, v: Array, lengths: Array) -> Carry:
        """Append the first ``lengths [B]`` of ``k, v [B, T, N, H]`` to ``cache``.

        Slot ``s`` ends up holding position ``p = slot_positions(pos + lengths)[s]``: the new
        token ``p - pos`` if ``p >= pos``, else what it held before (a gather, so a ring that
        wraps within one call keeps the latest token of each slot).
        """
        pos = cache["pos"] + lengths
        held = slot_positions(pos, self.capacity)
        fresh = (held >= cache["pos"][:, None])[..., None, None]
        index = jnp.clip(held - cache["pos"][:, None], 0, k.shape[1] - 1)[..., None, None]
        take = lambda new, old: jnp.where(
            fresh, jnp.take_along_axis(new.astype(old.dtype), index, axis=1), old
        )
        return {"k": take(k, cache["k"]), "v": take(v, cache["v"]), "pos": pos}

    def _fresh(
        self, params: Params, xs: Array, valid: Array, lengths: Array | None
    ) -> tuple[Array, Carry]:
        """The full pass from an empty cache: one fused ``dot_product_attention`` call
        (``lengths [B]`` of the valid prefixes, None when nothing is padded)."""
        time = xs.shape[1]
        q, k, v = self._project(params, xs, jnp.arange(time)[None, :])
        if self.window is None:
            local = None
        else:
            local = (self.window - 1, 0 if self.causal else self.window - 1)
        masks = dict(local_window_size=local, query_seq_lengths=lengths)
        implementation = self.resolve_implementation(xs.dtype, time)
        if implementation == "blocked":
            heads = blocked_attention(
                q, k, v, causal=self.causal, key_value_seq_lengths=lengths, **masks
            )
        else:
            heads = attend(
                q,
                k,
                v,
                is_causal=self.causal,
                key_value_seq_lengths=lengths,
                implementation=implementation,
                **masks,
            )
        batch = xs.shape[0]
        empty = cast_carry(self.initial_carry(params, (batch,)), xs.dtype)
        counts = jnp.full((batch,), time, jnp.int32) if lengths is None else lengths
        return self._output(params, heads, valid), self._write(empty, k, v, counts)

    def _continue(
        self, params: Params, xs: Array, cache: Carry, lengths: Array
    ) -> tuple[Array, Carry]:
        """Attend from ``xs [B, T, d_in]`` (first ``lengths`` valid) over ``cache`` plus itself."""
        time = xs.shape[1]
        start = cache["pos"][:, None]
        query_pos = start + jnp.arange(time)[None, :]
        valid = jnp.arange(time)[None, :] < lengths[:, None]
        q, k, v = self._project(params, xs, query_pos)
        held = slot_positions(cache["pos"], self.capacity)
        key_pos = jnp.concatenate([held, query_pos], axis=1)
        key_valid = jnp.concatenate([held >= 0, valid], axis=1)
        offset = query_pos[:, :, None] - key_pos[:, None, :]
        allowed = key_valid[:, None, :] & (offset >= 0)
        if self.window is not None:
            allowed &= offset < self.window
        keys = jnp.concatenate([cache["k"].astype(k.dtype), k], axis=1)
        values = jnp.concatenate([cache["v"].astype(v.dtype), v], axis=1)
        heads = attend(q, keys, values, mask=allowed[:, None], implementation="xla")
        ys = self._output(params, heads, valid)
        if self.position_limit is not None:
            overflow = valid & (query_pos >= self.position_limit)
            ys = jnp.where(overflow[..., None], jnp.full((), jnp.nan, ys.dtype), ys)
        return ys, self._write(cache, k, v, lengths)

    def sequence(
        self,
        params: Params,
        xs: Array,
        *,
        mask: Array | None,
        carry: Carry | None,
        reverse: bool,
        mode: str,
    ) -> tuple[Array, Carry]:
        """The training face: ``xs [B, T, d_in] -> (ys [B, T, hidden], KV cache)``.

        Called by :func:`memjax.scan`, which validates ``xs``, ``mask`` (bool ``[B, T]``, valid
        prefix then padding) and ``carry``. Padded outputs are exactly zero and padded tokens
        never enter the cache or any softmax. With ``carry`` the new tokens take positions
        ``pos, pos + 1, ...`` and attend over the cache plus themselves (causal layers only), so
        two halves equal the whole. ``reverse`` runs a causal layer over each reversed valid
        prefix and returns outputs in the original order; a non-causal layer already sees both
        directions and ignores it. ``mode`` (any of ``memjax.scan.MODES``) changes nothing.
        """
        _check_choice("mode", mode, MODES)
        params = compute_params(params, xs.dtype)
        carry = None if carry is None else cast_carry(carry, xs.dtype)
        batch, time, _ = xs.shape
        if carry is None:
            self._check_capacity(jnp.asarray(time))
        else:
            self._require_causal("continue from a carry")
            counts = jnp.full((batch,), time) if mask is None else mask.sum(axis=1)
            self._check_capacity(carry["pos"] + counts)
        return self._sequence(params, xs, mask, carry, reverse and self.causal)

    @functools.partial(jax.jit, static_argnums=(0, 5))
    def _sequence(
        self, params: Params, xs: Array, mask: Array | None, carry: Carry | None, reverse: bool
    ) -> tuple[Array, Carry]:
        """:meth:`sequence` after its checks, compiled as one program (eager calls too)."""
        batch, time, _ = xs.shape
        if mask is None:
            lengths, valid = None, jnp.ones((batch, time), bool)
        else:
            lengths, valid = mask.sum(axis=1).astype(jnp.int32), mask
            xs = jnp.where(mask[..., None], xs, jnp.zeros((), xs.dtype))
        if reverse:
            xs = reverse_valid(xs, mask)
        if carry is None:
            ys, carry = self._fresh(params, xs, valid, lengths)
        else:
            counts = jnp.full((batch,), time, jnp.int32) if lengths is None else lengths
            ys, carry = self._continue(params, xs, carry, counts)
        if reverse:
            ys = reverse_valid(ys, mask)
        return ys, carry

    def step(self, params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        """Append ``x_t [*batch, d_in]`` to the cache, attend over it: ``y_t [*batch, hidden]``."""
        self._require_causal("step")
        check_input(self, params, x_t, name="x_t", min_rank=1)
        check_carry(self, params, carry, x_t.shape[:-1])
        self._check_capacity(carry["pos"] + 1)
        params, carry = compute_params(params, x_t.dtype), cast_carry(carry, x_t.dtype)
        return self._step(params, carry, x_t)

    @functools.partial(jax.jit, static_argnums=0)
    def _step(self, params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        """:meth:`step` after its checks: the batch flattened to one axis, one new token."""
        batch_shape = x_t.shape[:-1]
        size = math.prod(batch_shape)
        flat = jax.tree.map(lambda a: a.reshape(size, *a.shape[len(batch_shape) :]), carry)
        ys, flat = self._continue(
            params, x_t.reshape(size, 1, -1), flat, jnp.ones((size,), jnp.int32)
        )
        unflat = jax.tree.map(lambda a: a.reshape(*batch_shape, *a.shape[1:]), flat)
        return unflat, ys.reshape(*batch_shape, self.hidden)

    def _require_causal(self, what: str) -> None:
        if not self.causal:
            raise ValueError(
                f"cannot {what} with causal=False: a non-causal attention layer's outputs depend "
                "on future tokens, so it has no streaming face; expected causal=True"
            )

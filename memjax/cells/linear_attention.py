"""Multi-head linear attention as a recurrence with a matrix-valued state.

Per head ``h`` (``d_k`` = key_size, ``d_v`` = value_size)::

    q_t = phi(x_t W_q) / sqrt(d_k),   k_t = phi(x_t W_k),   v_t = x_t W_v     [*batch, H, d_k|d_v]
    S_t = diag(alpha_t) S_{t-1} + k_t v_t^T                                   [*batch, H, d_k, d_v]
    o_t = S_t^T q_t                                                           [*batch, H, d_v]
    y_t = merge_heads(norm(o_t) * g_t) W_o                                    [*batch, hidden]

Unrolled, ``o_t = sum_{s <= t} (sum_j q_tj k_sj prod_{s < r <= t} alpha_rj) v_s``: causal
attention ``(Q K^T * D) V`` with a decay mask ``D`` and no softmax. Options:

* ``feature_map`` phi: ``"elu"`` (``elu(x) + 1``, Katharopoulos et al. 2020, "Transformers are
  RNNs") or ``"identity"`` (RetNet, GLA).
* ``decay`` alpha: ``"none"`` (alpha = 1, plain linear attention); ``"fixed"`` (RetNet, Sun et al.
  2023: alpha = ``gamma_h = 1 - 2^(-5 - h)`` per head, the same for every key dimension);
  ``"gated"`` (gated linear attention, Yang et al. 2024: data-dependent per-key-dimension
  ``alpha_t = sigmoid(x_t W_a + b_a)^(1 / tau)``, ``tau`` = gate_temperature = 16, which keeps
  the initial decays close to 1; GLA factorises ``W_a`` to rank 16, here it is full rank).
* norm: RMS normalisation of each head's ``o_t`` over ``d_v`` with a learnable scale
  ``[H, d_v]`` (the per-head group norm of RetNet / GLA), in place of the ``q^T sum k``
  denominator of Katharopoulos et al.
* ``output_gate`` g: ``swish(x_t W_g)`` ``[*batch, H, d_v]`` as in RetNet / GLA, or 1.

Weights ``W_q, W_k, W_a [d_in, H d_k]``, ``W_v, W_g [d_in, H d_v]``, ``W_o [H d_v, hidden]``
(LeCun normal), ``b_a [H d_k]`` (zeros); ``W_a, b_a`` exist only for ``decay="gated"`` and
``W_g`` only with ``output_gate``. The input projections are one matmul over all steps; ``q, k,
v`` are kept in the compute dtype, ``alpha`` in float32. The state ``S`` is float32 and the
sequential scan emits ``o_t`` inside the loop, never holding all ``S_t``. Float64 inputs keep
``alpha``, ``S`` and every product in float64.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from memjax.cells.base import STATE_DTYPE, Array, LinearCell, Params, matmul, state_dtype
from memjax.cells.chunked_linear_attention import chunked_linear_attention
from memjax.cells.registry import register

FEATURE_MAPS = {"elu": lambda x: jax.nn.elu(x) + 1.0, "identity": lambda x: x}
DECAYS = ("none", "fixed", "gated")
NORM_EPS = 1e-5


def retnet_decays(heads: int, dtype=STATE_DTYPE) -> Array:
    """RetNet's fixed per-head decays ``gamma_h = 1 - 2^(-5 - h)``, ``h = 0..heads-1``."""
    return 1.0 - 2.0 ** (-5.0 - jnp.arange(heads, dtype=dtype))


@register
@dataclasses.dataclass(frozen=True)
class LinearAttention(LinearCell):
    """Multi-head linear attention with optional decay and output gate (see module docstring).

    Attributes:
      heads: number of heads ``H``.
      key_size, value_size: per-head ``d_k``, ``d_v`` (default ``hidden // heads``, as
        :class:`~memjax.attention.Attention` lays out its heads).
      feature_map: "elu" or "identity".
      decay: "none", "fixed" or "gated".
      gate_temperature: ``tau`` of the gated decay.
      output_gate: multiply each head's normalised output by ``swish(x W_g)``.
    """

    heads: int = 4
    key_size: int | None = None
    value_size: int | None = None
    feature_map: str = "elu"
    decay: str = "none"
    gate_temperature: float = 16.0
    output_gate: bool = False
    name = "linear_attention"
    prefers_parallel = False

    @classmethod
    def width_multiple(cls, **options: Any) -> int:
        """``heads`` unless both per-head sizes are given explicitly."""
        explicit = options.get("key_size") is not None and options.get("value_size") is not None
        return 1 if explicit else int(options.get("heads", cls.heads))

    def __post_init__(self) -> None:
        super().__post_init__()
        for field, optional in (("heads", False), ("key_size", True), ("value_size", True)):
            value = getattr(self, field)
            if optional and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}")
        if (self.key_size is None or self.value_size is None) and self.hidden % self.heads:
            raise ValueError(
                f"hidden={self.hidden} must be divisible by heads={self.heads} when key_size or "
                "value_size is None; expected a multiple of heads, or explicit sizes"
            )
        if self.feature_map not in FEATURE_MAPS:
            raise ValueError(
                f"feature_map must be one of {sorted(FEATURE_MAPS)}, got {self.feature_map!r}"
            )
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        if not self.gate_temperature > 0:
            raise ValueError(f"gate_temperature must be positive, got {self.gate_temperature}")

    @property
    def d_k(self) -> int:
        """Per-head key width."""
        return self.hidden // self.heads if self.key_size is None else self.key_size

    @property
    def d_v(self) -> int:
        """Per-head value width."""
        return self.hidden // self.heads if self.value_size is None else self.value_size

    def _projections(self) -> dict[str, int]:
        """Name -> width of each input projection, in the order of the fused matmul."""
        widths = {"w_q": self.d_k, "w_k": self.d_k, "w_v": self.d_v}
        if self.decay == "gated":
            widths["w_a"] = self.d_k
        if self.output_gate:
            widths["w_g"] = self.d_v
        return {name: self.heads * width for name, width in widths.items()}

    def init(self, key: Array, d_in: int) -> Params:
        widths = self._projections()
        keys = jax.random.split(key, len(widths) + 1)
        lecun = jax.nn.initializers.lecun_normal()
        params = {
            name: lecun(k, (d_in, w))
            for k, (name, w) in zip(keys[:-1], widths.items(), strict=True)
        }
        params["w_o"] = lecun(keys[-1], (self.heads * self.d_v, self.hidden))
        params["norm_scale"] = jnp.ones((self.heads, self.d_v))
        if self.decay == "gated":
            params["b_a"] = jnp.zeros((self.heads * self.d_k,))
        return params

    def input_features(self, params: Params) -> int:
        return params["w_q"].shape[0]

    def initial_carry(self, params: Params, batch_shape: Sequence[int]) -> Array:
        return jnp.zeros((*batch_shape, self.heads, self.d_k, self.d_v), STATE_DTYPE)

    def prepare(self, params: Params, x: Array) -> dict[str, Array]:
        """``q, k [..., H, d_k]``, ``v [..., H, d_v]`` and, when used, ``alpha``, ``gate``."""
        widths = self._projections()
        fused = matmul(x, jnp.concatenate([params[name] for name in widths], axis=1))
        splits = jnp.split(fused, list(itertools.accumulate(widths.values()))[:-1], axis=-1)
        proj = {
            name: p.reshape(*p.shape[:-1], self.heads, -1)
            for name, p in zip(widths, splits, strict=True)
        }
        phi = FEATURE_MAPS[self.feature_map]
        pre = {
            "q": (phi(proj["w_q"]) / math.sqrt(self.d_k)).astype(x.dtype),
            "k": phi(proj["w_k"]).astype(x.dtype),
            "v": proj["w_v"].astype(x.dtype),
        }
        if self.decay == "gated":
            logits = proj["w_a"] + params["b_a"].reshape(self.heads, self.d_k)
            pre["alpha"] = jnp.exp(jax.nn.log_sigmoid(logits) / self.gate_temperature)
        if self.output_gate:
            pre["gate"] = jax.nn.silu(proj["w_g"]).astype(x.dtype)
        return pre

    def elements(self, params: Params, pre: dict[str, Array]) -> tuple[Array, Array]:
        """``a [..., H, d_k or 1, 1]`` and ``b = k v^T [..., H, d_k, d_v]``, float32 (float64
        for float64 inputs)."""
        dtype = state_dtype(pre["v"].dtype)
        k, v = pre["k"].astype(dtype), pre["v"].astype(dtype)
        if self.decay == "gated":
            a = pre["alpha"][..., None].astype(dtype)
        else:
            decays = self._head_decays(dtype)[:, None, None]
            a = jnp.broadcast_to(decays, (*k.shape[:-1], 1, 1))
        return a, k[..., :, None] * v[..., None, :]

    def _head_decays(self, dtype=STATE_DTYPE) -> Array:
        """The data-independent decay of each head, ``[H]``: RetNet's for "fixed", else 1."""
        if self.decay == "fixed":
            return retnet_decays(self.heads, dtype)
        return jnp.ones((self.heads,), dtype)

    @property
    def prefers_chunked(self) -> bool:
        """``mode="auto"`` takes the chunked form when every head has one scalar decay."""
        return self.decay != "gated"

    def chunked(
        self, params: Params, carry: Array, pre: dict[str, Array], mask: Array, chunk: int
    ) -> tuple[Array, Array]:
        """All ``o_t`` and the final state through the chunked form (see
        :mod:`memjax.cells.chunked_linear_attention`); ``pre`` and ``mask`` batch-major."""
        if self.decay == "gated":
            log_alpha = jnp.log(pre["alpha"])
        else:
            shape = (*pre["k"].shape[:-1], 1)
            decays = self._head_decays(state_dtype(pre["v"].dtype))
            log_alpha = jnp.broadcast_to(jnp.log(decays)[:, None], shape)
        return chunked_linear_attention(pre["q"], pre["k"], pre["v"], log_alpha, carry, mask, chunk)

    def emit(self, params: Params, state: Array, pre: dict[str, Array]) -> Array:
        """``o_t = S_t^T q_t``, ``[..., H, d_v]`` in the state's dtype."""
        q = pre["q"].astype(state.dtype)
        return jnp.einsum("...kv,...k->...v", state, q, precision=jax.lax.Precision.HIGHEST)

    def readout(self, params: Params, h: Array, pre: dict[str, Array]) -> Array:
        out = h * jax.lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + NORM_EPS)
        out = out * params["norm_scale"]
        if self.output_gate:
            out = out * pre["gate"]
        merged = out.reshape(*out.shape[:-2], self.heads * self.d_v)
        return matmul(merged.astype(pre["v"].dtype), params["w_o"])

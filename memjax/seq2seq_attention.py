"""Attention of a decoder over the encoder's states, for :class:`memjax.seq2seq.Seq2Seq`.

Encoder states ``h_j [B, S, D_k]`` (``j`` over the source, ``mask [B, S]`` True on valid
tokens) are read by a decoder query. Padded source tokens get zero weight. Every scorer has a
``keys(h)`` method that does the query-independent work once per source sequence (the decoder
keeps its result for all steps), then ``__call__`` per query.

* :class:`Bahdanau` (additive; Bahdanau, Cho & Bengio 2014, eq. 6 and appendix A.1.2; the
  attention of Lake & Baroni 2018), with the previous decoder state ``s_{t-1} [B, D_q]``::

      e_tj = v^T tanh(W s_{t-1} + U h_j)        W [D_q, A], U [D_k, A], v [A]
      a_tj = softmax_j(e_tj),   c_t = sum_j a_tj h_j          (c_t [B, D_k])

  The decoder feeds ``c_t`` with the embedding of its previous output into its recurrent step.

* :class:`Luong` (multiplicative, "global attention"; Luong, Pham & Manning 2015, eqs. 5, 7, 8),
  after the recurrent step, with the decoder's top output ``h_t [B, T, D_q]``::

      score(h_t, h_j) = h_t^T h_j            ("dot", needs D_q == D_k)
                      = h_t^T W_a h_j        ("general", W_a [D_q, D_k])
      a_tj = softmax_j(score),   c_t = sum_j a_tj h_j
      h~_t = tanh(W_c [c_t; h_t])            W_c [D_k + D_q, D_q]; the output layer reads h~_t

* :class:`CrossAttention` (Vaswani et al. 2017, "encoder-decoder attention"), multi-head
  scaled dot-product attention from decoder positions ``x [B, T, D]`` over ``h [B, S, D]``::

      q = x W_q, k = h W_k, v = h W_v              (each split into N heads of width H)
      y = concat_n(softmax_j(q_n k_n^T / sqrt(H)) v_n) W_o      W_q, W_k, W_v [D, N H], W_o [N H, D]

No biases anywhere, as in the equations. Softmaxes are taken in float32 (float64 for float64
inputs).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

Array = jax.Array
LUONG_SCORES = ("dot", "general")


def masked_softmax(scores: Array, mask: Array | None) -> Array:
    """``softmax`` over the last axis (the source), zero weight where ``mask`` is False.

    ``mask`` broadcasts against ``scores``. A row with no valid key gets uniform weights instead
    of NaN (such a row has no meaning, but must not poison a batch).
    """
    dtype = jnp.promote_types(scores.dtype, jnp.float32)
    scores = scores.astype(dtype)
    if mask is not None:
        scores = jnp.where(mask, scores, jnp.finfo(dtype).min)
    return jax.nn.softmax(scores, axis=-1)


def _uniform(key: Array, shape: tuple[int, ...], fan_in: int) -> Array:
    bound = math.sqrt(3.0 / fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class Bahdanau(nnx.Module):
    """Additive attention ``e_tj = v^T tanh(W s_{t-1} + U h_j)`` (module docstring).

    Args:
      query_features: ``D_q``, width of the decoder state ``s``.
      key_features: ``D_k``, width of the encoder states ``h_j``.
      features: ``A``, width of the hidden layer of the scorer (None: ``D_q``).
    """

    def __init__(
        self, query_features: int, key_features: int, features: int | None = None, *, rngs
    ):
        features = query_features if features is None else features
        self.w = nnx.Linear(query_features, features, use_bias=False, rngs=rngs)
        self.u = nnx.Linear(key_features, features, use_bias=False, rngs=rngs)
        self.v = nnx.Param(_uniform(rngs.params(), (features,), features))

    def keys(self, states: Array) -> Array:
        """``U h_j``: ``[B, S, D_k] -> [B, S, A]``, once per source sequence."""
        return self.u(states)

    def weights(self, query: Array, keys: Array, mask: Array | None) -> Array:
        """``a_tj``: query ``s_{t-1} [B, D_q]``, keys ``U h [B, S, A]`` -> ``[B, S]``."""
        hidden = jnp.tanh(self.w(query)[:, None, :].astype(keys.dtype) + keys)
        scores = jnp.einsum("bsa,a->bs", hidden, self.v[...].astype(hidden.dtype))
        return masked_softmax(scores, mask)

    def __call__(
        self, query: Array, keys: Array, states: Array, mask: Array | None
    ) -> tuple[Array, Array]:
        """``(c_t [B, D_k], a_t [B, S])`` for ``s_{t-1} [B, D_q]`` over ``h [B, S, D_k]``."""
        weights = self.weights(query, keys, mask)
        context = jnp.einsum("bs,bsd->bd", weights.astype(states.dtype), states)
        return context, weights


class Luong(nnx.Module):
    """Global attention after the recurrent step: ``h~_t = tanh(W_c [c_t; h_t])``.

    Args:
      query_features: ``D_q``, width of the decoder's top output ``h_t``.
      key_features: ``D_k``, width of the encoder states.
      score: "dot" (``h_t^T h_j``; needs ``D_q == D_k``) or "general" (``h_t^T W_a h_j``).
    """

    def __init__(self, query_features: int, key_features: int, score: str = "general", *, rngs):
        if score not in LUONG_SCORES:
            raise ValueError(f"score must be one of {LUONG_SCORES}, got {score!r}")
        if score == "dot" and query_features != key_features:
            raise ValueError(
                f"Luong's dot score h_t^T h_j needs decoder and encoder states of one width, got "
                f"{query_features} and {key_features}; expected score='general'"
            )
        self.score = score
        # W_a h_j as a linear map of h_j: [D_k] -> [D_q].
        self.w_a = (
            nnx.Linear(key_features, query_features, use_bias=False, rngs=rngs)
            if score == "general"
            else None
        )
        self.w_c = nnx.Linear(
            key_features + query_features, query_features, use_bias=False, rngs=rngs
        )

    def keys(self, states: Array) -> Array:
        """``W_a h_j`` ("general") or ``h_j`` ("dot"): ``[B, S, D_k] -> [B, S, D_q]``."""
        return states if self.w_a is None else self.w_a(states)

    def weights(self, query: Array, keys: Array, mask: Array | None) -> Array:
        """``a_tj``: queries ``h_t [B, T, D_q]`` over keys ``[B, S, D_q]`` -> ``[B, T, S]``."""
        scores = jnp.einsum("btd,bsd->bts", query, keys.astype(query.dtype))
        return masked_softmax(scores, None if mask is None else mask[:, None, :])

    def __call__(
        self, query: Array, keys: Array, states: Array, mask: Array | None
    ) -> tuple[Array, Array]:
        """``(h~_t [B, T, D_q], a [B, T, S])`` for ``h_t [B, T, D_q]`` over ``h [B, S, D_k]``."""
        weights = self.weights(query, keys, mask)
        context = jnp.einsum("bts,bsd->btd", weights.astype(states.dtype), states)
        combined = jnp.tanh(self.w_c(jnp.concatenate([context, query], axis=-1)))
        return combined, weights


class CrossAttention(nnx.Module):
    """Multi-head encoder-decoder attention (module docstring); ``heads`` divides ``d_model``."""

    def __init__(self, d_model: int, heads: int = 4, *, rngs):
        if d_model % heads:
            raise ValueError(f"d_model={d_model} must be divisible by heads={heads}")
        self.heads, self.dim = heads, d_model // heads
        dense = lambda: nnx.Linear(d_model, d_model, use_bias=False, rngs=rngs)
        self.w_q, self.w_k, self.w_v, self.w_o = dense(), dense(), dense(), dense()

    def _split(self, x: Array) -> Array:
        return x.reshape(*x.shape[:-1], self.heads, self.dim)

    def keys(self, states: Array) -> tuple[Array, Array]:
        """``(k, v)``, each ``[B, S, N, H]``, once per source sequence."""
        return self._split(self.w_k(states)), self._split(self.w_v(states))

    def __call__(self, x: Array, keys: tuple[Array, Array], mask: Array | None) -> Array:
        """``x [B, T, D]`` attends over ``keys = (k, v)`` of the source: ``[B, T, D]``."""
        k, v = keys
        q = self._split(self.w_q(x))
        scores = jnp.einsum("btnh,bsnh->bnts", q, k.astype(q.dtype)) / math.sqrt(self.dim)
        weights = masked_softmax(scores, None if mask is None else mask[:, None, None, :])
        heads = jnp.einsum("bnts,bsnh->btnh", weights.astype(v.dtype), v)
        return self.w_o(heads.reshape(*heads.shape[:2], -1).astype(x.dtype))

    def bytes_per_token(self) -> int:
        """Bytes of ``k`` and ``v`` one source token holds (float32)."""
        return 2 * self.heads * self.dim * 4

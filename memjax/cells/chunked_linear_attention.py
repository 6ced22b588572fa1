"""Linear attention over a whole sequence in chunks: quadratic inside a chunk, recurrent across.

For one head with queries ``q_t``, keys ``k_t`` ``[d_k]``, values ``v_t`` ``[d_v]`` and decays
``alpha_t`` ``[d_k]`` (1 for no decay), the recurrence ``S_t = diag(alpha_t) S_{t-1} + k_t v_t^T``,
``o_t = S_t^T q_t`` is computed chunk by chunk. Inside a chunk of ``C`` steps starting after
state ``S_0``, with ``g_t = sum_{r <= t} log alpha_r`` (cumulative within the chunk, ``<= 0``)::

    o_t = sum_{s <= t} (sum_d q_td k_sd exp(g_td - g_sd)) v_s  +  (q_t * exp(g_t))^T S_0
    S_C = diag(exp(g_C)) S_0 + sum_s (k_s * exp(g_C - g_s)) v_s^T

Every exponent is a sum of log-decays over steps that lie between ``s`` and ``t``, so it is
``<= 0`` and nothing overflows. The first term is one batched contraction over all chunks at
once (``O(T C d_k)`` work and memory); only the ``T / C`` state updates run in a ``lax.scan``,
instead of ``T`` rank-1 updates of a ``d_k x d_v`` matrix. Padded steps enter with ``k = 0`` and
``log alpha = 0``, which leaves the state unchanged. Everything is computed in float32, or in
float64 for float64 ``q`` (:func:`memjax.cells.base.state_dtype`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from memjax.cells.base import Array, state_dtype

HIGHEST = jax.lax.Precision.HIGHEST


def _to_chunks(x: Array, chunk: int) -> Array:
    """``[B, T, ...] -> [B, T / C, C, ...]`` after zero-padding T to a multiple of C."""
    pad = -x.shape[1] % chunk
    x = jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
    return x.reshape(x.shape[0], -1, chunk, *x.shape[2:])


def chunked_linear_attention(
    q: Array, k: Array, v: Array, log_alpha: Array, state: Array, mask: Array, chunk: int
) -> tuple[Array, Array]:
    """``q, k [B, T, H, d_k]``, ``v [B, T, H, d_v]``, ``log_alpha [B, T, H, d_k or 1]`` (``<= 0``;
    a last axis of 1 is one decay per head, which makes the chunk a plain ``q k^T`` matmul),
    ``state [B, H, d_k, d_v]``, ``mask [B, T]`` -> ``(o [B, T, H, d_v], final state)``."""
    time = q.shape[1]
    valid = mask[..., None, None]
    k = jnp.where(valid, k, 0.0)
    log_alpha = jnp.where(valid, log_alpha, 0.0)
    dtype = state_dtype(q.dtype)
    q, k, v, log_alpha = (_to_chunks(x.astype(dtype), chunk) for x in (q, k, v, log_alpha))
    g = jnp.cumsum(log_alpha, axis=2)  # [B, N, C, H, d_k]

    causal = jnp.tril(jnp.ones((chunk, chunk), bool))[:, :, None, None]  # [C_t, C_s, 1, 1]
    gap = g[:, :, :, None] - g[:, :, None, :]  # [B, N, C_t, C_s, H, d_k or 1]
    weights = jnp.exp(jnp.where(causal, gap, -jnp.inf))
    if log_alpha.shape[-1] == 1:  # one decay per head: scores = (q k^T) * decay mask
        qk = jnp.einsum("bnthd,bnshd->bntsh", q, k, precision=HIGHEST)
        scores = qk * weights[..., 0]
    else:
        scores = jnp.einsum("bntshd,bnthd,bnshd->bntsh", weights, q, k, precision=HIGHEST)
    intra = jnp.einsum("bntsh,bnshv->bnthv", scores, v, precision=HIGHEST)

    last = g[:, :, -1]  # [B, N, H, d_k]
    q_in = q * jnp.exp(g)
    k_out = k * jnp.exp(last[:, :, None] - g)

    def across(s, chunk_inputs):
        q_c, k_c, v_c, last_c = chunk_inputs
        inter = jnp.einsum("bthd,bhdv->bthv", q_c, s, precision=HIGHEST)
        update = jnp.einsum("bthd,bthv->bhdv", k_c, v_c, precision=HIGHEST)
        return jnp.exp(last_c)[..., None] * s + update, inter

    chunk_major = [jnp.swapaxes(x, 0, 1) for x in (q_in, k_out, v, last)]
    state, inter = jax.lax.scan(across, state.astype(dtype), chunk_major)
    out = intra + jnp.swapaxes(inter, 0, 1)
    out = out.reshape(out.shape[0], -1, *out.shape[3:])[:, :time]
    return out, state

"""Blocked attention against ``jax.nn.dot_product_attention`` (XLA), a float64 NumPy softmax,
its padding rows, its compiled memory and its input checks.

Compiles dominate on a CPU: shapes are tiny, and each case compiles one jitted function that
returns the output and the three gradients together.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memjax.blocked_attention import blocked_attention

BATCH, HEADS, HEAD_DIM = 2, 2, 8


def draw(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def qkv(q_time: int, kv_time: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Queries ``[B, T, N, H]`` and keys, values ``[B, S, N, H]`` as float32 NumPy arrays."""
    return (
        draw((BATCH, q_time, HEADS, HEAD_DIM), seed),
        draw((BATCH, kv_time, HEADS, HEAD_DIM), seed + 1),
        draw((BATCH, kv_time, HEADS, HEAD_DIM), seed + 2),
    )


def allowed(q_time, kv_time, causal, window, q_len, kv_len) -> np.ndarray:
    """Boolean ``[B, T, S]``: key j allowed for query i, written out from the definitions."""
    i = np.arange(q_time)[None, :, None]
    j = np.arange(kv_time)[None, None, :]
    q_len = np.full(BATCH, q_time) if q_len is None else np.asarray(q_len)
    kv_len = np.full(BATCH, kv_time) if kv_len is None else np.asarray(kv_len)
    ok = (i < q_len[:, None, None]) & (j < kv_len[:, None, None])
    if causal:
        ok = ok & (j <= i)
    if window is not None:
        ok = ok & (i - window[0] <= j) & (j <= i + window[1])
    return ok


@functools.cache
def with_grads(impl: str, causal: bool, window, blocks: tuple[int, int]):
    """Jitted ``(q, k, v, q_len, kv_len, cotangent) -> (out, dq, dk, dv)`` for one attention."""

    def attend(q, k, v, q_len, kv_len):
        if impl == "blocked":
            return blocked_attention(
                q,
                k,
                v,
                causal=causal,
                local_window_size=window,
                query_seq_lengths=q_len,
                key_value_seq_lengths=kv_len,
                block_q=blocks[0],
                block_k=blocks[1],
            )
        return jax.nn.dot_product_attention(
            q,
            k,
            v,
            is_causal=causal,
            local_window_size=window,
            query_seq_lengths=q_len,
            key_value_seq_lengths=kv_len,
            implementation="xla",
        )

    @jax.jit
    def run(q, k, v, q_len, kv_len, cotangent):
        out, pullback = jax.vjp(lambda q, k, v: attend(q, k, v, q_len, kv_len), q, k, v)
        return (out, *pullback(cotangent.astype(out.dtype)))

    return run


def run(impl, q_time, kv_time, causal, window, q_len, kv_len, blocks, dtype, seed=0):
    """``(out, dq, dk, dv)`` of one implementation in float32, and the mask of the rows to compare:
    all but the valid rows that see no key, where XLA averages all values and the cotangent is 0.
    """
    q, k, v = (jnp.asarray(x, dtype) for x in qkv(q_time, kv_time, seed))
    padding = np.arange(q_time)[None, :] >= (
        q_time if q_len is None else np.asarray(q_len)[:, None]
    )
    compared = allowed(q_time, kv_time, causal, window, q_len, kv_len).any(-1) | padding
    compared = compared[..., None, None]
    cotangent = draw((BATCH, q_time, HEADS, HEAD_DIM), seed + 3) * compared
    lengths = [None if n is None else jnp.asarray(n, jnp.int32) for n in (q_len, kv_len)]
    got = with_grads(impl, causal, window, blocks)(q, k, v, *lengths, cotangent)
    assert all(x.dtype == dtype for x in got)
    return [np.asarray(x, np.float32) for x in got], np.broadcast_to(compared, got[0].shape)


def run_both(*case, dtype):
    """Blocked and XLA results for one case, and the rows to compare."""
    mine, compared = run("blocked", *case, dtype)
    xla, _ = run("xla", *case, dtype)
    return mine, xla, compared


CASES = {
    # name: (q_time, kv_time, causal, window, q_len, kv_len, (block_q, block_k))
    "causal-ragged-blocks": (37, 37, True, None, None, None, (16, 8)),
    "full-dividing-blocks": (64, 64, False, None, None, None, (16, 16)),
    "causal-one-step": (1, 1, True, None, None, None, (16, 16)),
    "causal-default-blocks": (64, 64, True, None, None, None, (256, 512)),
    "causal-window": (37, 37, True, (3, 0), None, None, (8, 16)),
    "symmetric-window": (64, 64, False, (5, 5), None, None, (16, 8)),
    "causal-lengths": (37, 37, True, None, (37, 20), (37, 20), (16, 8)),
    "causal-window-lengths": (64, 64, True, (9, 0), (50, 64), (64, 13), (16, 16)),
    "full-lengths-past-time": (37, 37, False, None, (5, 50), (45, 11), (8, 8)),
    "short-queries": (5, 37, False, None, None, (37, 9), (16, 8)),
    "short-keys": (37, 5, False, None, (37, 21), None, (16, 8)),
    "cross-window-empty-rows": (37, 20, False, (2, 6), None, (10, 20), (8, 16)),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_matches_xla_float32(case):
    mine, xla, compared = run_both(*case, dtype=jnp.float32)
    assert compared.any()
    np.testing.assert_allclose(mine[0][compared], xla[0][compared], atol=2e-6, rtol=1e-5)
    for name, got, want in zip(("dq", "dk", "dv"), mine[1:], xla[1:], strict=True):
        np.testing.assert_allclose(got, want, atol=5e-6, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("name", ["causal-lengths", "cross-window-empty-rows"])
def test_matches_xla_bfloat16(name):
    mine, xla, compared = run_both(*CASES[name], dtype=jnp.bfloat16)
    np.testing.assert_allclose(mine[0][compared], xla[0][compared], atol=2e-2, rtol=1e-2)
    for label, got, want in zip(("dq", "dk", "dv"), mine[1:], xla[1:], strict=True):
        np.testing.assert_allclose(got, want, atol=3e-2, rtol=2e-2, err_msg=label)


def test_float16_close_to_float32():
    case = CASES["causal-window-lengths"]
    half, compared = run("blocked", *case, jnp.float16)
    full, _ = run("blocked", *case, jnp.float32)
    np.testing.assert_allclose(half[0][compared], full[0][compared], atol=5e-3, rtol=5e-3)
    for got, want in zip(half[1:], full[1:], strict=True):
        np.testing.assert_allclose(got, want, atol=1e-2, rtol=1e-2)


def numpy_attention(q, k, v, ok, cotangent):
    """Float64 softmax attention and its gradients, one explicit formula per quantity."""
    q, k, v, cotangent = (np.asarray(x, np.float64) for x in (q, k, v, cotangent))
    scale = 1.0 / np.sqrt(q.shape[-1])
    s = np.einsum("btnh,bsnh->bnts", q, k) * scale
    s = np.where(ok[:, None], s, -np.inf)
    top = np.max(s, axis=-1, keepdims=True)
    e = np.exp(s - top)
    p = e / e.sum(-1, keepdims=True)
    out = np.einsum("bnts,bsnh->btnh", p, v)
    d_p = np.einsum("btnh,bsnh->bnts", cotangent, v)
    d_s = p * (d_p - np.sum(d_p * p, axis=-1, keepdims=True))
    d_q = np.einsum("bnts,bsnh->btnh", d_s, k) * scale
    d_k = np.einsum("bnts,btnh->bsnh", d_s, q) * scale
    d_v = np.einsum("bnts,btnh->bsnh", p, cotangent)
    return out, d_q, d_k, d_v


def test_matches_float64_numpy():
    q_time, kv_time, causal, window, q_len, kv_len, blocks = CASES["causal-window-lengths"]
    ok = allowed(q_time, kv_time, causal, window, q_len, kv_len)
    rows = ok.any(-1)
    ok = ok | ~rows[..., None]
    cotangent = draw((BATCH, q_time, HEADS, HEAD_DIM), 7) * rows[..., None, None]
    q, k, v = qkv(q_time, kv_time, seed=4)
    want = numpy_attention(q, k, v, ok, cotangent)
    attend = with_grads("blocked", causal, window, blocks)
    got = attend(q, k, v, jnp.asarray(q_len, jnp.int32), jnp.asarray(kv_len, jnp.int32), cotangent)
    np.testing.assert_allclose(got[0][rows], want[0][rows], atol=2e-6, rtol=1e-5)
    for name, g, w in zip(("dq", "dk", "dv"), got[1:], want[1:], strict=True):
        np.testing.assert_allclose(g, w, atol=5e-6, rtol=1e-4, err_msg=name)


def test_rows_without_keys_give_zeros_and_no_gradient():
    q_time, kv_time, causal, window, q_len, kv_len, blocks = CASES["causal-window-lengths"]
    rows = allowed(q_time, kv_time, causal, window, q_len, kv_len).any(-1)
    padding = np.arange(q_time)[None, :] >= np.asarray(q_len)[:, None]
    assert (~rows & padding).any() and (~rows & ~padding).any() and rows.any()
    assert allowed(q_time, kv_time, causal, window, None, kv_len)[padding].any()
    q, k, v = qkv(q_time, kv_time)
    lengths = (jnp.asarray(q_len, jnp.int32), jnp.asarray(kv_len, jnp.int32))
    attend = with_grads("blocked", causal, window, blocks)
    everywhere = draw((BATCH, q_time, HEADS, HEAD_DIM), 5)
    out, d_q, d_k, d_v = (np.asarray(x) for x in attend(q, k, v, *lengths, everywhere))
    assert all(np.isfinite(x).all() for x in (out, d_q, d_k, d_v))
    assert not out[~rows].any() and not d_q[~rows].any()
    assert out[rows].any() and d_q[rows].any()
    masked = attend(q, k, v, *lengths, everywhere * rows[..., None, None])
    np.testing.assert_array_equal(d_k, masked[2])
    np.testing.assert_array_equal(d_v, masked[3])


def temp_bytes(attend) -> int:
    """Planned temporary bytes of the jitted gradient at B=1, T=2048, 2 heads of 16."""
    x = jax.ShapeDtypeStruct((1, 2048, 2, 16), jnp.float32)
    grad = jax.jit(jax.grad(lambda q, k, v: jnp.sum(attend(q, k, v) * q), argnums=(0, 1, 2)))
    return grad.lower(x, x, x).compile().memory_analysis().temp_size_in_bytes


def test_memory_far_below_xla():
    mine = temp_bytes(
        lambda q, k, v: blocked_attention(q, k, v, causal=True, block_q=128, block_k=128)
    )
    xla = temp_bytes(
        lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="xla")
    )
    assert xla > 2048 * 2048 * 4
    assert mine < xla / 4


Q, KV = np.zeros((2, 6, 2, 4), np.float32), np.zeros((2, 5, 2, 4), np.float32)
BAD = {
    "q-3d": ((Q[0], KV, KV), {}, r"q must have 4 dims .* got shape \(6, 2, 4\)"),
    "k-empty": ((Q, KV[:, :0], KV[:, :0]), {}, r"k must have time >= 1"),
    "v-shape": ((Q, KV, KV[:, :4]), {}, r"v must have the shape of k \(2, 5, 2, 4\)"),
    "heads": ((Q, KV[:, :, :1], KV[:, :, :1]), {}, r"q \(2, 6, 2, 4\) and k \(2, 5, 1, 4\)"),
    "dtype-mix": ((Q, KV.astype(np.float16), KV), {}, r"one dtype .* float32, float16, float32"),
    "dtype-int": ((Q.astype(np.int32),) + (KV.astype(np.int32),) * 2, {}, r"got int32"),
    "causal": ((Q, KV, KV), {"causal": 1}, r"causal must be a bool, got 1"),
    "window-int": ((Q, KV, KV), {"local_window_size": 3}, r"local_window_size .* got 3"),
    "window-neg": ((Q, KV, KV), {"local_window_size": (2, -1)}, r"ints >= 0, got \(2, -1\)"),
    "lengths-shape": (
        (Q, KV, KV),
        {"query_seq_lengths": np.array([3, 4, 5], np.int32)},
        r"query_seq_lengths must be .* \(2,\), got shape \(3,\)",
    ),
    "lengths-dtype": (
        (Q, KV, KV),
        {"key_value_seq_lengths": np.array([3.0, 4.0], np.float32)},
        r"key_value_seq_lengths must be an integer array .* dtype float32",
    ),
    "block-zero": ((Q, KV, KV), {"block_q": 0}, r"block_q must be a positive int, got 0"),
    "block-float": ((Q, KV, KV), {"block_k": 8.0}, r"block_k must be a positive int, got 8.0"),
}


@pytest.mark.parametrize("args, kwargs, message", BAD.values(), ids=BAD.keys())
def test_bad_inputs_raise(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        blocked_attention(*(jnp.asarray(x) for x in args), **{"causal": False, **kwargs})

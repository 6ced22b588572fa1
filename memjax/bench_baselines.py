"""The baselines ``memjax bench`` times beside memjax's memories, each where it is installed.

flax's ``nn.RNN`` LSTM cells; on NVIDIA GPUs cuDNN's LSTM through ``jax.experimental.rnn``;
memax's GRU, LSTM and LRU (equinox; ``pip install memjax[bench]``); torch's LSTM, GRU, SDPA
alone and attention with memjax's projections when torch is installed. Each returns the forward
and forward+backward calls as :class:`~memjax.timing.Timed`, or None where it cannot run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from memjax.timing import Timed, jax_pair


def flax_functions(cell_name: str, batch: int, length: int, width: int):
    """Forward and forward+backward of ``flax.linen.RNN(cell)``."""
    from flax import linen as nn

    cell = getattr(nn, cell_name)(features=width)
    model = nn.RNN(cell)
    xs = jax.random.normal(jax.random.key(1), (batch, length, width))
    variables = model.init(jax.random.key(0), xs)

    def loss(v, x):
        return jnp.sum(model.apply(v, x) ** 2)

    forward = jax.jit(model.apply)
    backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return jax_pair(forward, backward, variables, xs)


def jax_cudnn_functions(batch: int, length: int, width: int):
    """Forward and forward+backward of ``jax.experimental.rnn.lstm`` (cuDNN through JAX; None
    off NVIDIA GPUs, where it has no lowering)."""
    if jax.default_backend() != "gpu":
        return None
    from jax.experimental import rnn

    sizes = dict(input_size=width, hidden_size=width, num_layers=1, dropout=0.0)
    weights = rnn.init_lstm_weight(jax.random.key(0), width, width, 1, False)
    xs = jax.random.normal(jax.random.key(1), (batch, length, width))
    zeros = jnp.zeros((1, batch, width))
    lengths = jnp.full((batch,), length, jnp.int32)

    def apply(w, x):
        return rnn.lstm(x, zeros, zeros, w, lengths, **sizes, bidirectional=False)[0]

    forward = jax.jit(apply)
    backward = jax.jit(jax.grad(lambda w, x: jnp.sum(apply(w, x) ** 2), argnums=(0, 1)))
    return jax_pair(forward, backward, weights, xs)


def memax_functions(kind: str, batch: int, length: int, width: int):
    """Forward and forward+backward of memax's equinox ``GRU``, ``LSTM`` or ``LRU`` (state and
    input width ``width``), vmapped over the batch with no resets (None without memax).

    memax steps one unbatched sequence: its GRU and LSTM apply every input and recurrent
    ``Linear`` inside the time loop, and its LRU is an associative scan.
    """
    try:
        import equinox as eqx
        from memax.equinox.semigroups.lru import LRU
        from memax.equinox.set_actions.gru import GRU
        from memax.equinox.set_actions.lstm import LSTM
    except ImportError:
        return None
    key = jax.random.key(0)
    model = {"GRU": lambda: GRU(width, key), "LSTM": lambda: LSTM(width, key)}.get(
        kind, lambda: LRU(width, width, key)
    )()
    params, static = eqx.partition(model, eqx.is_array)
    xs = jax.random.normal(jax.random.key(1), (batch, length, width))
    starts = jnp.zeros((length,), bool)

    def apply(p, x):
        module = eqx.combine(p, static)
        h0 = module.initialize_carry()
        return jax.vmap(lambda sequence: module(h0, (sequence, starts))[1])(x)

    forward = jax.jit(apply)
    backward = jax.jit(jax.grad(lambda p, x: jnp.sum(apply(p, x) ** 2), argnums=(0, 1)))
    return jax_pair(forward, backward, params, xs)


def _torch_rope(x: Any, torch: Any) -> Any:
    """memjax's RoPE (:func:`memjax.attention.rope`) on ``x [B, N, T, H]`` in torch."""
    half, length = x.shape[-1] // 2, x.shape[-2]
    theta = 10000.0 ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angle = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * theta
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def torch_functions(kind: str, batch: int, length: int, width: int):
    """Forward and forward+backward of ``torch.nn.LSTM`` / ``GRU`` or SDPA (None without torch).

    SDPA runs 8 heads of ``width // 8`` in bfloat16 on a GPU (float32 on a CPU), causal.
    ``kind="attention"`` is memjax's attention layer in torch: bias-free ``W_q, W_k, W_v, W_o``
    of ``width x width``, 4 heads of ``width // 4`` with RoPE, causal SDPA, in float32 on a CPU
    and bfloat16 on a GPU (the comparison for memjax ``attention``).
    """
    try:
        import torch
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "sdpa":
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        shape = (batch, 8, length, width // 8)
        q, k, v = (
            torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in "qkv"
        )
        params = [q, k, v]

        def run():
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    elif kind == "attention":
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        heads = 4
        qkv = torch.nn.Linear(width, 3 * width, bias=False, device=device, dtype=dtype)
        out = torch.nn.Linear(width, width, bias=False, device=device, dtype=dtype)
        xs = torch.randn(batch, length, width, device=device, dtype=dtype, requires_grad=True)
        params = [qkv.weight, out.weight, xs]

        def run():
            split = qkv(xs).view(batch, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
            q, k, v = _torch_rope(split[0], torch), _torch_rope(split[1], torch), split[2]
            attended = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            return out(attended.transpose(1, 2).reshape(batch, length, width))

    else:
        layer = getattr(torch.nn, kind)(width, width, batch_first=True).to(device)
        xs = torch.randn(batch, length, width, device=device, requires_grad=True)
        params = [*layer.parameters(), xs]

        def run():
            return layer(xs)[0]

    def sync(out):
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    def forward():
        with torch.no_grad():
            return sync(run())

    def backward():
        for p in params:
            p.grad = None
        (run().float() ** 2).sum().backward()
        return sync(None)

    def measured(fn: Callable[[], Any]) -> Timed:
        if device != "cuda":
            return Timed(fn, None)
        torch.cuda.reset_peak_memory_stats()
        fn()
        return Timed(fn, torch.cuda.max_memory_allocated())

    return measured(forward), measured(backward)


BASELINES: dict[str, tuple[Callable[..., Any], ...]] = {
    "flax OptimizedLSTMCell": (flax_functions, "OptimizedLSTMCell"),
    "flax LSTMCell": (flax_functions, "LSTMCell"),
    "jax cuDNN LSTM": (jax_cudnn_functions,),
    "torch LSTM": (torch_functions, "LSTM"),
    "torch GRU": (torch_functions, "GRU"),
    "torch sdpa": (torch_functions, "sdpa"),
    "torch attention": (torch_functions, "attention"),
    "memax GRU": (memax_functions, "GRU"),
    "memax LSTM": (memax_functions, "LSTM"),
    "memax LRU": (memax_functions, "LRU"),
}
"""Baselines by row name: the function making their calls and its leading arguments."""

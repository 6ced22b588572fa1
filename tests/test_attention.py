"""Softmax attention as a memory: numbers against an explicit reference, cache, masks, errors.

Compiles dominate this file's time on a CPU, so every layer runs through one jitted ``run`` per
configuration and shape, inputs come from numpy, and all layers share one parameter draw.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memjax
from memjax.attention import Attention, rope

D_IN, HIDDEN, HEADS, TIME, BATCH, MAX_LENGTH = 5, 8, 2, 9, 2, 16
HEAD_DIM = HIDDEN // HEADS
HIGHEST = jax.lax.Precision.HIGHEST


@functools.cache
def shared_params(head_dim: int) -> dict:
    """One draw of every parameter a test layer can have (learned positions included)."""
    layer = Attention(
        hidden=HIDDEN, heads=HEADS, head_dim=head_dim, positional="learned", max_length=MAX_LENGTH
    )
    return jax.jit(layer.init, static_argnums=1)(jax.random.key(0), D_IN)


def build(**hyper) -> tuple[Attention, dict]:
    """A layer from the registry and the shared parameters, checked against its own ``init``."""
    layer = memjax.cells.get(
        "attention", **{"hidden": HIDDEN, "heads": HEADS, "max_length": MAX_LENGTH, **hyper}
    )
    want = jax.eval_shape(lambda key: layer.init(key, D_IN), jax.random.key(0))
    params = {k: v for k, v in shared_params(layer.dim).items() if k in want}
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, want)
    return layer, params


def normal(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def inputs(batch=BATCH, time=TIME, seed=1, dtype=jnp.float32) -> jax.Array:
    return jnp.asarray(normal(batch, time, D_IN, seed=seed), dtype)


def prefix_mask(lengths, time=TIME) -> np.ndarray:
    return np.arange(time)[None, :] < np.asarray(lengths)[:, None]


@functools.partial(jax.jit, static_argnums=0, static_argnames="reverse")
def run(layer, params, xs, mask=None, carry=None, reverse=False):
    """``memjax.scan`` compiled once per layer and shape."""
    return memjax.scan(layer, params, xs, mask=mask, carry=carry, reverse=reverse)


@functools.partial(jax.jit, static_argnums=0)
def reference(layer: Attention, params: dict, xs: jax.Array, lengths: jax.Array) -> jax.Array:
    """Explicit multi-head softmax attention, float32 einsums at HIGHEST precision.

    RoPE is written as a complex rotation ``(x1 + i x2) e^{i p theta}`` (an odd head's last
    feature unturned) and the sinusoidal table
    entry by entry, independently of memjax's real-valued implementations.
    """
    batch, time, d_in = xs.shape
    n, h = layer.heads, layer.dim
    pos = np.arange(time)
    x = xs
    if layer.positional == "sinusoidal":
        angle = lambda p, j: p / 10000 ** (2 * (j // 2) / d_in)
        table = [
            [np.cos(angle(p, j)) if j % 2 else np.sin(angle(p, j)) for j in range(d_in)]
            for p in pos
        ]
        x = x + np.array(table, np.float32)
    if layer.positional == "learned":
        x = x + params["positions"][:time]

    def project(w):
        return jnp.einsum("btd,de->bte", x, w, precision=HIGHEST).reshape(batch, time, n, h)

    q, k, v = project(params["w_q"]), project(params["w_k"]), project(params["w_v"])
    if layer.positional == "rope":
        theta = 10000.0 ** (-np.arange(h // 2) / (h // 2))
        turn = np.exp(1j * pos[:, None] * theta)[None, :, None, :]

        def rotate(a):
            z = (a[..., : h // 2] + 1j * a[..., h // 2 : 2 * (h // 2)]) * turn
            return jnp.concatenate([z.real, z.imag, a[..., 2 * (h // 2) :]], axis=-1)

        q, k = rotate(q), rotate(k)
    logits = jnp.einsum("btnh,bsnh->bnts", q, k, precision=HIGHEST) / np.sqrt(h)
    t, s = pos[:, None], pos[None, :]
    allowed = np.ones((time, time), bool)
    if layer.causal:
        allowed &= s <= t
    if layer.window is not None:
        allowed &= (t - s < layer.window) if layer.causal else (abs(t - s) < layer.window)
    allowed = allowed[None] & (jnp.asarray(s)[None] < lengths[:, None, None])
    probs = jax.nn.softmax(jnp.where(allowed[:, None], logits, -jnp.inf), axis=-1)
    heads = jnp.einsum("bnts,bsnh->btnh", probs, v, precision=HIGHEST).reshape(batch, time, -1)
    ys = jnp.einsum("bte,eo->bto", heads, params["w_o"], precision=HIGHEST)
    return jnp.where(jnp.asarray(pos)[None, :, None] < lengths[:, None, None], ys, 0.0)


def step_loop(layer, params, xs, carry=None):
    """A Python loop over ``layer.step`` (eager: its checks run, its core compiles once)."""
    carry = layer.initial_carry(params, xs.shape[:1]) if carry is None else carry
    ys = []
    for t in range(xs.shape[1]):
        carry, y = layer.step(params, carry, xs[:, t])
        ys.append(y)
    return jnp.stack(ys, axis=1), carry


def assert_trees_close(a, b, atol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=atol, rtol=atol), a, b)


REFERENCE_CASES = [
    ({"positional": "rope"}, [TIME, 4]),
    ({"positional": "sinusoidal", "window": 3}, [TIME, 6]),
    ({"positional": "learned"}, [TIME, TIME]),
    ({"positional": "none", "causal": False}, [3, TIME]),
    ({"positional": "rope", "causal": False, "window": 2}, [TIME, 5]),
    ({"positional": "rope", "head_dim": 3}, [TIME, 7]),
    ({"positional": "none", "window": 1}, [TIME, 2]),
]


@pytest.mark.parametrize("implementation", ["xla", "blocked"])
@pytest.mark.parametrize(("hyper", "lengths"), REFERENCE_CASES)
def test_full_pass_equals_explicit_softmax(hyper, lengths, implementation):
    layer, params = build(implementation=implementation, **hyper)
    xs = inputs()
    mask = None if min(lengths) == TIME else prefix_mask(lengths)
    ys, _ = run(layer, params, xs, mask=mask)
    want = reference(layer, params, xs, jnp.asarray(lengths, jnp.int32))
    assert ys.shape == (BATCH, TIME, HIDDEN)
    np.testing.assert_allclose(ys, want, atol=1e-5, rtol=1e-5)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(ys[b, n:], 0.0)


@pytest.mark.parametrize("window", [None, 3])
def test_causal_outputs_ignore_the_future(window):
    layer, params = build(window=window)
    xs = inputs()
    t = 4
    changed = xs.at[:, t + 1 :].set(normal(BATCH, TIME - t - 1, D_IN, seed=9))
    ys, _ = run(layer, params, xs)
    ys_changed, _ = run(layer, params, changed)
    np.testing.assert_allclose(ys_changed[:, : t + 1], ys[:, : t + 1], atol=1e-6)
    assert float(jnp.abs(ys_changed[:, t + 1 :] - ys[:, t + 1 :]).min()) > 0


def test_non_causal_outputs_see_the_future_and_ignore_reverse():
    layer, params = build(causal=False)
    xs = inputs()
    ys, _ = run(layer, params, xs)
    changed, _ = run(layer, params, xs.at[:, -1].add(1.0))
    assert float(jnp.abs(changed[:, 0] - ys[:, 0]).max()) > 1e-3
    np.testing.assert_array_equal(run(layer, params, xs, reverse=True)[0], ys)


@pytest.mark.parametrize("width", [8, 5])
def test_rope_preserves_norms_and_depends_on_offset_only(width):
    q, k = jnp.asarray(normal(2, 1, 1, width, seed=3))
    positions = jnp.arange(0, 40, 7)
    rotated = rope(jnp.broadcast_to(q, (len(positions), 1, width)), positions)
    assert rotated.shape == (len(positions), 1, width)
    np.testing.assert_allclose(jnp.linalg.norm(rotated, axis=-1), jnp.linalg.norm(q), rtol=1e-6)
    np.testing.assert_array_equal(rope(q, jnp.zeros((1,), jnp.int32)), q)

    def score(p, s):
        return float(jnp.sum(rope(q, jnp.array([p])) * rope(k, jnp.array([s]))))

    at_offset_3 = [score(p + 3, p) for p in (0, 5, 17, 100)]
    np.testing.assert_allclose(at_offset_3, at_offset_3[0], rtol=1e-5)
    assert abs(score(3, 0) - score(0, 3)) > 1e-3 and abs(score(3, 0) - score(4, 0)) > 1e-3


@pytest.mark.parametrize(
    "hyper",
    [
        {"positional": "rope"},
        {"positional": "rope", "window": 3},
        {"positional": "learned", "window": 4},
        {"positional": "sinusoidal"},
    ],
)
def test_stepping_the_kv_cache_equals_the_full_pass(hyper):
    layer, params = build(**hyper)
    xs = inputs()
    want_ys, want_carry = run(layer, params, xs)
    ys, carry = step_loop(layer, params, xs)
    np.testing.assert_allclose(ys, want_ys, atol=1e-5, rtol=1e-5)
    assert_trees_close(carry, want_carry, atol=1e-6)
    assert carry["k"].shape == (BATCH, hyper.get("window", MAX_LENGTH), HEADS, HEAD_DIM)
    np.testing.assert_array_equal(carry["pos"], TIME)


@pytest.mark.parametrize("hyper", [{"positional": "rope"}, {"positional": "learned", "window": 3}])
def test_two_halves_with_the_carried_cache_equal_the_whole(hyper):
    layer, params = build(**hyper)
    first, second = normal(BATCH, 5, D_IN), normal(BATCH, 4, D_IN, seed=2)
    lengths = [5, 2]
    ys1, prefix = run(layer, params, first, mask=prefix_mask(lengths, 5))
    ys2, carry = run(layer, params, second, carry=prefix)
    stepped, stepped_carry = step_loop(layer, params, second, carry=prefix)
    whole = np.zeros((BATCH, TIME, D_IN), np.float32)
    for b, n in enumerate(lengths):
        whole[b, :n], whole[b, n : n + 4] = first[b, :n], second[b]
    want_ys, want_carry = run(layer, params, whole, mask=prefix_mask([n + 4 for n in lengths]))
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(ys1[b, :n], want_ys[b, :n], atol=1e-5)
        np.testing.assert_allclose(ys2[b], want_ys[b, n : n + 4], atol=1e-5)
    np.testing.assert_allclose(stepped, ys2, atol=1e-5)
    assert_trees_close(carry, want_carry, atol=1e-6)
    assert_trees_close(stepped_carry, want_carry, atol=1e-6)


@pytest.mark.parametrize("window", [None, 3])
def test_padding_changes_neither_outputs_nor_cache(window):
    layer, params = build(window=window, positional="learned")
    lengths = [TIME, 4]
    mask = prefix_mask(lengths)
    xs = jnp.where(mask[..., None], inputs(), jnp.nan)
    ys, carry = run(layer, params, xs, mask=mask)
    padded = jnp.concatenate([xs, jnp.full((BATCH, 3, D_IN), jnp.inf)], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((BATCH, 3), bool)], axis=1)
    ys_padded, carry_padded = run(layer, params, padded, mask=padded_mask)
    np.testing.assert_allclose(ys_padded[:, :TIME], ys, atol=1e-6)
    np.testing.assert_array_equal(ys_padded[1, 4:], 0.0)
    assert_trees_close(carry_padded, carry, atol=1e-6)
    np.testing.assert_array_equal(carry["pos"], lengths)
    if window is None:
        np.testing.assert_array_equal(carry["k"][1, 4:], 0.0)


@pytest.mark.parametrize("window", [None, 3])
def test_padded_chunk_continues_the_cache_like_one_sequence(window):
    layer, params = build(window=window, positional="learned")
    lengths, more = [TIME, 4], [3, 1]
    first = normal(BATCH, TIME, D_IN)
    _, carry = run(layer, params, first, mask=prefix_mask(lengths))
    chunk = np.where(prefix_mask(more, 3)[..., None], normal(BATCH, 3, D_IN, seed=5), np.nan)
    ys, carry = run(layer, params, chunk, mask=prefix_mask(more, 3), carry=carry)
    whole = np.zeros((BATCH, TIME + 3, D_IN), np.float32)
    for b, (n, m) in enumerate(zip(lengths, more, strict=True)):
        whole[b, :n], whole[b, n : n + m] = first[b, :n], chunk[b, :m]
    total = [n + m for n, m in zip(lengths, more, strict=True)]
    want_ys, want_carry = run(layer, params, whole, mask=prefix_mask(total, TIME + 3))
    for b, (n, m) in enumerate(zip(lengths, more, strict=True)):
        np.testing.assert_allclose(ys[b, :m], want_ys[b, n : n + m], atol=1e-5)
        np.testing.assert_array_equal(ys[b, m:], 0.0)
    assert_trees_close(carry, want_carry, atol=1e-6)


def test_bfloat16_runs_and_tracks_float32():
    layer, params = build(window=4)
    xs = inputs()
    ys32, _ = run(layer, params, xs)
    ys16, carry = run(layer, params, xs.astype(jnp.bfloat16))
    assert ys16.dtype == jnp.bfloat16 and carry["k"].dtype == jnp.float32
    scale = float(jnp.abs(ys32).max())
    np.testing.assert_allclose(ys16.astype(jnp.float32), ys32, atol=0.05 * scale)
    stepped, _ = step_loop(layer, params, xs.astype(jnp.bfloat16))
    assert stepped.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        stepped.astype(jnp.float32), ys16.astype(jnp.float32), atol=0.02 * scale
    )


def test_step_accepts_any_batch_shape():
    layer, params = build()
    carry, y = layer.step(params, layer.initial_carry(params, ()), jnp.ones((D_IN,)))
    assert y.shape == (HIDDEN,) and carry["pos"].shape == () and int(carry["pos"]) == 1
    carry, y = layer.step(params, layer.initial_carry(params, (3, 2)), jnp.ones((3, 2, D_IN)))
    assert y.shape == (3, 2, HIDDEN) and carry["k"].shape == (3, 2, MAX_LENGTH, HEADS, HEAD_DIM)


def test_jit_and_grad_match_finite_differences():
    layer, params = build(positional="learned", window=3)
    xs = inputs(time=6)
    mask = prefix_mask([6, 4], 6)
    weights = normal(BATCH, 6, HIDDEN, seed=4)

    @jax.jit
    def loss(p, x):
        return jnp.sum(memjax.scan(layer, p, x, mask=mask)[0] * weights)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, xs)
    for name, g in grads[0].items():
        assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0, name
    np.testing.assert_array_equal(grads[1][1, 4:], 0.0)
    point = jax.tree.map(np.asarray, (params, xs))
    direction = jax.tree.map(lambda a: normal(*a.shape, seed=a.size), point)
    moved = lambda eps: jax.tree.map(lambda a, d: a + eps * d, point, direction)
    numeric = (loss(*moved(1e-2)) - loss(*moved(-1e-2))) / 2e-2
    pairs = zip(jax.tree.leaves(grads), jax.tree.leaves(direction), strict=True)
    np.testing.assert_allclose(numeric, sum(np.vdot(g, d) for g, d in pairs), rtol=1e-2)


def test_state_bytes_linear_for_full_attention_constant_beyond_window():
    per_token = 2 * HEADS * HEAD_DIM * 4
    full, params = build()
    assert [full.state_bytes(params, n) for n in (0, 1, 10, 20)] == [
        0,
        per_token,
        10 * per_token,
        20 * per_token,
    ]
    local, params = build(window=4)
    assert [local.state_bytes(params, n) for n in (3, 4, 5, 1000)] == [
        3 * per_token,
        4 * per_token,
        4 * per_token,
        4 * per_token,
    ]


def test_registry_and_implementation_choice():
    assert "attention" in memjax.cells.names()
    layer, params = build()
    assert type(layer) is memjax.attention.Attention and layer.dim == HEAD_DIM
    forced, _ = build(implementation="cudnn")
    if jax.default_backend() == "cpu":
        threshold = memjax.attention.BLOCKED_FROM_CPU
        for dtype, time, want in (
            (jnp.bfloat16, 16, "xla"),
            (jnp.float32, threshold - 1, "xla"),
            (jnp.float32, threshold, "blocked"),
            (jnp.float32, 4096, "blocked"),
        ):
            assert layer.resolve_implementation(jnp.dtype(dtype), time) == want
        assert build(implementation="xla")[0].resolve_implementation(jnp.float32, 4096) == "xla"
        with pytest.raises(ValueError, match=r"implementation='cudnn' needs an NVIDIA GPU.*'cpu'"):
            memjax.scan(forced, params, inputs(dtype=jnp.bfloat16))
    with pytest.raises(ValueError, match=r"'cudnn' needs bfloat16 or float16 inputs.*float32"):
        memjax.scan(forced, params, inputs())


@pytest.mark.parametrize(
    ("hyper", "message"),
    [
        ({"heads": 0}, r"heads must be a positive int, got 0"),
        ({"heads": 3}, r"hidden=8 must be divisible by heads=3 .*expected a multiple of heads"),
        ({"head_dim": -1}, r"head_dim must be None or a positive int, got -1"),
        ({"head_dim": 2.0}, r"head_dim must be None or a positive int, got 2.0"),
        ({"causal": "yes"}, r"causal must be a bool, got 'yes'"),
        ({"window": 0}, r"window must be None or a positive int, got 0"),
        (
            {"positional": "alibi"},
            r"positional must be one of \['rope', 'sinusoidal', 'learned', 'none'\], got 'alibi'",
        ),
        ({"max_length": 2.5}, r"max_length must be a positive int, got 2.5"),
        (
            {"implementation": "flash"},
            r"implementation must be one of \[None, 'xla', 'cudnn', 'blocked'\], got 'flash'",
        ),
        (
            {"implementation": "cudnn", "window": 2, "causal": False},
            r"implementation='cudnn' supports window=2 only with causal=True",
        ),
        ({"hidden": 0}, r"hidden must be a positive int, got 0"),
    ],
)
def test_bad_hyperparameters_are_named(hyper, message):
    with pytest.raises(ValueError, match=message):
        build(**hyper)


def test_bad_calls_are_named():
    layer, params = build()
    bidirectional, _ = build(causal=False)
    carry = layer.initial_carry(params, (BATCH,))
    with pytest.raises(ValueError, match=r"cannot step with causal=False.*expected causal=True"):
        bidirectional.step(params, carry, jnp.ones((BATCH, D_IN)))
    with pytest.raises(ValueError, match=r"cannot continue from a carry with causal=False"):
        memjax.scan(bidirectional, params, inputs(), carry=carry)
    with pytest.raises(ValueError, match=r"xs has 4 features .*initialised for d_in=5"):
        memjax.scan(layer, params, jnp.ones((BATCH, 3, 4)))
    with pytest.raises(ValueError, match=r"x_t has 4 features"):
        layer.step(params, carry, jnp.ones((BATCH, 4)))
    with pytest.raises(ValueError, match=r"carry must match Attention.initial_carry\(params, \(3,"):
        layer.step(params, carry, jnp.ones((3, D_IN)))
    with pytest.raises(ValueError, match=r"mode must be one of .* got 'fast'"):
        memjax.scan(layer, params, inputs(), mode="fast")
    with pytest.raises(ValueError, match=r"length must be a non-negative int, got -1"):
        layer.state_bytes(params, -1)


def test_cache_overflow_raises_eagerly_and_poisons_under_jit():
    layer, params = build(max_length=4)
    with pytest.raises(ValueError, match=r"needs 5 positions but Attention holds max_length=4"):
        memjax.scan(layer, params, inputs(time=5))
    _, carry = run(layer, params, inputs(time=4))
    with pytest.raises(ValueError, match=r"needs 5 positions .*raise max_length"):
        layer.step(params, carry, jnp.ones((BATCH, D_IN)))
    _, y = jax.jit(layer.step)(params, carry, jnp.ones((BATCH, D_IN)))
    assert bool(jnp.all(jnp.isnan(y)))
    local, _ = build(max_length=4, window=2)
    ys, _ = run(local, params, inputs(time=TIME))
    assert bool(jnp.all(jnp.isfinite(ys)))

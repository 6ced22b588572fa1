"""float64 end to end: with ``jax_enable_x64`` every memory computes float64 inputs in float64
(complex128 for complex states) in every mode, against independent NumPy float64 references.

Each reference below is a step-by-step NumPy loop of the equations in the cell's module
docstring (an explicit softmax for attention), written without memjax. Parameters are drawn by
``init`` and cast to float32, as a model holds them; the float64 path promotes them, so the
references read the same float32 values in float64. Agreement to 1e-12 leaves no room for a
float32 step anywhere.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memjax
from memjax.cells.base import Cell, LinearCell

BATCH, TIME, D_IN, HIDDEN = 2, 7, 5, 6
TOL = dict(rtol=1e-12, atol=1e-12)
LENGTHS = (TIME, 4)

# (name, hyperparameters, d_in): every registered memory, plus the variants whose float64 path
# differs (autodiff LSTM, the diagonal skip of d_in == hidden, each linear-attention decay,
# each attention kernel and positional encoding).
CASES = [
    ("rnn", {}, D_IN),
    ("lstm", {}, D_IN),
    ("lstm", {"bptt": False}, D_IN),
    ("gru", {}, D_IN),
    ("mingru", {}, D_IN),
    ("minlstm", {}, D_IN),
    ("lru", {}, D_IN),
    ("s5", {}, D_IN),
    ("s5", {"lambda_init": "inv"}, HIDDEN),
    ("linear_attention", {"heads": 2}, D_IN),
    ("linear_attention", {"heads": 2, "decay": "fixed", "feature_map": "identity"}, D_IN),
    ("linear_attention", {"heads": 2, "decay": "gated", "output_gate": True}, D_IN),
    ("attention", {"heads": 2, "max_length": 16}, D_IN),
    ("attention", {"heads": 2, "max_length": 16, "implementation": "blocked"}, D_IN),
    ("attention", {"heads": 2, "positional": "sinusoidal", "window": 3, "max_length": 16}, D_IN),
    ("attention", {"heads": 2, "positional": "learned", "causal": False, "max_length": 16}, D_IN),
]


def case_id(case) -> str:
    name, hyper, d_in = case
    return "-".join([name, *(f"{k}={v}" for k, v in hyper.items()), f"d{d_in}"])


CHECKED_IN_THEIR_OWN_FILE = {"s4d", "h3"}
"""tests/test_h3.py checks these against float64 NumPy evaluations of their papers' equations,
in every mode, with padding and carries."""


def test_cases_cover_every_registered_memory():
    names = {name for name, _, _ in CASES}
    assert names | CHECKED_IN_THEIR_OWN_FILE == set(memjax.cells.names())


def modes_of(cell) -> list[str]:
    """Every way ``memjax.scan`` can run ``cell`` in float64; "remat" is sequential with
    segments. ("pallas" is float32-only: see ``test_pallas_mode_refuses_float64``.)"""
    if not isinstance(cell, Cell):
        return ["auto"]
    modes = ["sequential", "remat"]
    if isinstance(cell, LinearCell):
        modes.append("parallel")
    if callable(getattr(cell, "chunked", None)):
        modes.append("chunked")
    return modes


MODE_CASES = [
    pytest.param(case, mode, id=f"{case_id(case)}-{mode}")
    for case in CASES
    for mode in modes_of(memjax.cells.get(case[0], hidden=HIDDEN, **case[1]))
]
CARRY_CASES = [param for param in MODE_CASES if param.values[1] != "remat"]


def build(case):
    """The memory, its float32 parameters (as ``init`` makes them) and their float64 copy."""
    name, hyper, d_in = case
    cell = memjax.cells.get(name, hidden=HIDDEN, **hyper)
    params = cell.init(jax.random.key(0), d_in)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    return cell, params, jax.tree.map(lambda a: np.asarray(a, np.float64), params)


def normal(*shape, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def random_state(cell, params, seed=7):
    """A float64 (complex128) carry for a recurrent cell, drawn away from zero."""
    shapes = jax.eval_shape(lambda: cell.initial_carry(params, (BATCH,)))

    def draw(leaf, k):
        value = 0.5 * normal(*leaf.shape, seed=seed + k)
        if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
            value = value + 0.5j * normal(*leaf.shape, seed=seed + 100 + k)
        return value

    leaves, tree = jax.tree.flatten(shapes)
    return jax.tree.unflatten(tree, [draw(leaf, k) for k, leaf in enumerate(leaves)])


def prefix_mask(lengths) -> np.ndarray:
    return np.arange(TIME)[None, :] < np.asarray(lengths)[:, None]


@functools.partial(jax.jit, static_argnums=(0, 1))
def run(cell, mode, params, xs, mask=None, carry=None):
    """``memjax.scan`` in ``mode`` (``"remat"``: sequential, segments of 3 steps)."""
    options = {"mode": "sequential", "remat": 3} if mode == "remat" else {"mode": mode}
    return memjax.scan(cell, params, xs, mask=mask, carry=carry, **options)


def assert_float64(tree):
    """Every floating leaf float64 and every complex leaf complex128."""
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
            assert leaf.dtype == jnp.complex128, leaf.dtype
        elif jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == jnp.float64, leaf.dtype


def assert_trees_close(got, want):
    jax.tree.map(lambda g, w: np.testing.assert_allclose(np.asarray(g), w, **TOL), got, want)


# ----------------------------------------------------------------------- NumPy references


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rnn_step(cell, p, h, x):
    act = np.tanh if cell.activation == "tanh" else lambda z: np.maximum(z, 0.0)
    h = act(x @ p["w_i"] + p["b"] + h @ p["w_h"])
    return h, h


def lstm_step(cell, p, state, x):
    i, f, g, o = np.split(x @ p["w_i"] + p["b"] + state["h"] @ p["w_h"], 4, axis=-1)
    c = sigmoid(f) * state["c"] + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return {"c": c, "h": h}, h


def gru_step(cell, p, h, x):
    r_i, z_i, n_i = np.split(x @ p["w_i"] + p["b_i"], 3, axis=-1)
    r_h, z_h, n_h = np.split(h @ p["w_h"], 3, axis=-1)
    r, z = sigmoid(r_i + r_h), sigmoid(z_i + z_h)
    n = np.tanh(n_i + r * (n_h + p["b_hn"]))
    h = (1.0 - z) * n + z * h
    return h, h


def mingru_step(cell, p, h, x):
    k_z, k_h = np.split(x @ p["w_i"] + p["b"], 2, axis=-1)
    z = sigmoid(k_z)
    h = (1.0 - z) * h + z * k_h
    return h, h


def minlstm_step(cell, p, h, x):
    k_f, k_i, k_h = np.split(x @ p["w_i"] + p["b"], 3, axis=-1)
    f, i = sigmoid(k_f), sigmoid(k_i)
    h = f / (f + i) * h + i / (f + i) * k_h
    return h, h


def complex_expm1(z):
    """``exp(z) - 1`` without cancellation: ``expm1(x) cos y - 2 sin(y/2)^2 + i e^x sin y``."""
    x, y = z.real, z.imag
    return np.expm1(x) * np.cos(y) - 2.0 * np.sin(y / 2) ** 2 + 1j * np.exp(x) * np.sin(y)


def diagonal(cell, p):
    """``(lambda, scale)`` of LRU and S5 from their docstrings."""
    if cell.name == "lru":
        lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
        return lam, np.exp(p["gamma_log"])
    big_lambda = -np.exp(p["lambda_re_log"]) + 1j * p["lambda_im"]
    lam_dt = big_lambda * np.exp(p["log_step"])
    return np.exp(lam_dt), complex_expm1(lam_dt) / big_lambda


def ssm_step(cell, p, h, x):
    lam, scale = diagonal(cell, p)
    h = lam * h + scale * (x @ (p["b_re"] + 1j * p["b_im"]))
    skip = p["d"] * x if p["d"].ndim == 1 else x @ p["d"]
    return h, (h @ (p["c_re"] + 1j * p["c_im"])).real + skip


def linear_attention_step(cell, p, state, x):
    heads, d_k, d_v = cell.heads, cell.d_k, cell.d_v
    split = lambda a: a.reshape(a.shape[0], heads, -1)
    elu_plus_one = lambda z: np.where(z > 0, z + 1.0, np.exp(z))
    phi = elu_plus_one if cell.feature_map == "elu" else lambda z: z
    q = phi(split(x @ p["w_q"])) / np.sqrt(d_k)
    k, v = phi(split(x @ p["w_k"])), split(x @ p["w_v"])
    if cell.decay == "none":
        alpha = np.ones((1, heads, 1))
    elif cell.decay == "fixed":
        alpha = (1.0 - 2.0 ** (-5.0 - np.arange(heads)))[None, :, None]
    else:
        alpha = sigmoid(split(x @ p["w_a"] + p["b_a"])) ** (1.0 / cell.gate_temperature)
    state = alpha[..., None] * state + k[..., :, None] * v[..., None, :]
    o = np.einsum("bhkv,bhk->bhv", state, q)
    out = o / np.sqrt(np.mean(o * o, axis=-1, keepdims=True) + 1e-5) * p["norm_scale"]
    if cell.output_gate:
        g = split(x @ p["w_g"])
        out = out * g * sigmoid(g)
    return state, out.reshape(out.shape[0], heads * d_v) @ p["w_o"]


STEPS = {
    "rnn": rnn_step,
    "lstm": lstm_step,
    "gru": gru_step,
    "mingru": mingru_step,
    "minlstm": minlstm_step,
    "lru": ssm_step,
    "s5": ssm_step,
    "linear_attention": linear_attention_step,
}


def zeros_state(cell, params):
    shapes = jax.eval_shape(lambda: cell.initial_carry(params, (BATCH,)))
    return jax.tree.map(
        lambda leaf: np.zeros(leaf.shape, np.complex128 if leaf.dtype.kind == "c" else np.float64),
        shapes,
    )


def reference_recurrence(cell, p, xs, state, mask):
    """The cell's step equations over time; padded steps keep the state and output zero."""
    step = STEPS[cell.name]
    ys = np.zeros((BATCH, TIME, HIDDEN))
    for t in range(TIME):
        new_state, y = step(cell, p, state, xs[:, t])
        valid = mask[:, t]
        keep = lambda new, old, valid=valid: np.where(
            valid.reshape(-1, *[1] * (new.ndim - 1)), new, old
        )
        state = jax.tree.map(keep, new_state, state)
        ys[:, t] = np.where(valid[:, None], y, 0.0)
    return ys, state


def rope(x, positions):
    """``x [T, N, H]`` rotated pairwise (feature i with i + H // 2) by ``p 10000^(-i / half)``."""
    half = x.shape[-1] // 2
    angle = positions[:, None, None] * 10000.0 ** (-np.arange(half) / half)
    x1, x2, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    cos, sin = np.cos(angle), np.sin(angle)
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], axis=-1)


def reference_attention(cell, p, xs, mask):
    """Explicit per-query softmax over the allowed keys; returns outputs and the KV cache
    (rotated keys and values, token ``p`` in slot ``p mod capacity``)."""
    heads, dim = cell.heads, cell.dim
    ys = np.zeros((BATCH, TIME, HIDDEN))
    cache = {key: np.zeros((BATCH, cell.capacity, heads, dim)) for key in ("k", "v")}
    positions = np.arange(TIME, dtype=np.float64)
    for b in range(BATCH):
        n = int(mask[b].sum())
        x = xs[b, :n]
        if cell.positional == "sinusoidal":
            feature = np.arange(x.shape[-1])
            angle = positions[:n, None] * 10000.0 ** (-2.0 * (feature // 2) / x.shape[-1])
            x = x + np.where(feature % 2 == 0, np.sin(angle), np.cos(angle))
        elif cell.positional == "learned":
            x = x + p["positions"][:n]
        q, k, v = ((x @ p[w]).reshape(n, heads, dim) for w in ("w_q", "w_k", "w_v"))
        if cell.positional == "rope":
            q, k = rope(q, positions[:n]), rope(k, positions[:n])
        for t in range(n):
            s = np.arange(n)
            allowed = s <= t if cell.causal else np.ones(n, bool)
            if cell.window is not None:
                allowed &= (t - s < cell.window) if cell.causal else (abs(t - s) < cell.window)
            scores = np.einsum("nh,snh->ns", q[t], k[allowed]) / np.sqrt(dim)
            weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
            weights /= weights.sum(axis=-1, keepdims=True)
            ys[b, t] = np.einsum("ns,snh->nh", weights, v[allowed]).reshape(-1) @ p["w_o"]
        for t in range(n):
            cache["k"][b, t % cell.capacity] = k[t]
            cache["v"][b, t % cell.capacity] = v[t]
    cache["pos"] = mask.sum(axis=1)
    return ys, cache


def reference(cell, p, xs, state=None, mask=None):
    mask = np.ones((BATCH, TIME), bool) if mask is None else mask
    if not isinstance(cell, Cell):
        return reference_attention(cell, p, xs, mask)
    state = zeros_state(cell, p) if state is None else state
    return reference_recurrence(cell, p, xs, state, mask)


# ----------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case, mode", MODE_CASES)
def test_float64_scan_matches_numpy_reference(x64, case, mode):
    """float64 inputs from the default (float32) initial carry: float64 outputs and carry equal
    to the NumPy loop of the cell's equations, in every mode."""
    cell, params, p = build(case)
    xs = normal(BATCH, TIME, case[2])
    ys, carry = run(cell, mode, params, jnp.asarray(xs))
    assert ys.dtype == jnp.float64
    assert_float64(carry)
    want_ys, want_carry = reference(cell, p, xs)
    np.testing.assert_allclose(np.asarray(ys), want_ys, **TOL)
    assert_trees_close(carry, want_carry)


@pytest.mark.parametrize("case, mode", CARRY_CASES)
def test_float64_carry_and_padding(x64, case, mode):
    """A float64 carry passed in (for attention: the cache of a first half) and padding."""
    cell, params, p = build(case)
    xs = normal(BATCH, TIME, case[2], seed=2)
    mask = prefix_mask(LENGTHS)
    if isinstance(cell, Cell):
        state = random_state(cell, params)
        ys, carry = run(cell, mode, params, jnp.asarray(xs), jnp.asarray(mask), state)
        want_ys, want_carry = reference(cell, p, xs, state, mask)
    else:
        want_ys, want_carry = reference(cell, p, xs, mask=mask)
        if not cell.causal:  # no cache to continue from: padding only
            ys, carry = run(cell, mode, params, jnp.asarray(xs), jnp.asarray(mask))
        else:
            split = 3
            first, cache = run(
                cell, mode, params, jnp.asarray(xs[:, :split]), jnp.asarray(mask[:, :split])
            )
            assert_float64(cache)
            second, carry = run(
                cell, mode, params, jnp.asarray(xs[:, split:]), jnp.asarray(mask[:, split:]), cache
            )
            ys = jnp.concatenate([first, second], axis=1)
    assert ys.dtype == jnp.float64
    assert_float64(carry)
    np.testing.assert_allclose(np.asarray(ys), want_ys, **TOL)
    assert_trees_close(carry, want_carry)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_float64_scan_equals_loop_over_step(x64, case):
    """``cell.step`` from ``initial_carry`` in float64 equals the whole-sequence scan."""
    cell, params, _ = build(case)
    if not getattr(cell, "causal", True):
        pytest.skip("a non-causal attention layer has no streaming face")
    xs = jnp.asarray(normal(BATCH, TIME, case[2], seed=3))
    carry = cell.initial_carry(params, (BATCH,))
    step = jax.jit(cell.step)
    ys = []
    for t in range(TIME):
        carry, y = step(params, carry, xs[:, t])
        assert y.dtype == jnp.float64
        assert_float64(carry)
        ys.append(y)
    want_ys, want_carry = run(cell, "auto", params, xs)
    np.testing.assert_allclose(np.stack(ys, axis=1), want_ys, **TOL)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), carry, want_carry)


@pytest.mark.parametrize(
    "name, modes",
    [("lstm", ("sequential", "remat")), ("lru", ("sequential", "remat", "parallel"))],
)
def test_float64_gradients_agree_across_forms(x64, name, modes):
    """Gradients wrt float64 inputs and carry are float64 and agree to 1e-12 between the
    hand-written LSTM BPTT, the segmented (remat) and associative scans and autodiff of the
    plain recurrence."""
    cell = memjax.cells.get(name, hidden=HIDDEN)
    reference_cell = memjax.cells.get(
        name, hidden=HIDDEN, **({"bptt": False} if name == "lstm" else {})
    )
    _, params, _ = build((name, {}, D_IN))
    xs = jnp.asarray(normal(BATCH, TIME, D_IN, seed=4))
    carry = random_state(cell, params)
    weights = jnp.asarray(normal(BATCH, TIME, HIDDEN, seed=5))

    def grads(memory, mode):
        def loss(x, c):
            ys, final = run(memory, mode, params, x, None, c)
            leaves = [jnp.sum(jnp.abs(f) ** 2) for f in jax.tree.leaves(final)]
            return jnp.sum(ys * weights) + sum(leaves)

        return jax.grad(loss, argnums=(0, 1))(xs, carry)

    want = grads(reference_cell, "sequential")
    assert_float64(want)
    for mode in modes:
        got = grads(cell, mode)
        assert_float64(got)
        jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, **TOL), got, want)


@pytest.mark.parametrize("name", ["lstm", "gru", "lru", "linear_attention", "attention"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_narrower_inputs_keep_float32_state_under_x64(x64, name, dtype):
    """x64 changes nothing for float32 and bfloat16 inputs: outputs in the input dtype, a
    float32 (complex64) state, even from float64 parameters."""
    hyper = {"heads": 2} if "attention" in name else {}
    cell = memjax.cells.get(name, hidden=HIDDEN, **hyper)
    params = cell.init(jax.random.key(0), D_IN)  # float64 leaves under x64
    xs = jnp.asarray(normal(BATCH, TIME, D_IN), dtype)
    ys, carry = memjax.scan(cell, params, xs)
    assert ys.dtype == dtype
    for leaf in jax.tree.leaves(carry):
        assert leaf.dtype in (jnp.float32, jnp.complex64, jnp.int32), leaf.dtype
    step_carry, y = cell.step(params, cell.initial_carry(params, (BATCH,)), xs[:, 0])
    assert y.dtype == dtype
    for leaf in jax.tree.leaves(step_carry):
        assert leaf.dtype in (jnp.float32, jnp.complex64, jnp.int32), leaf.dtype


def test_pallas_mode_refuses_float64(x64):
    """The Pallas kernel computes in float32 only: float64 inputs get a ValueError naming the
    modes that do compute in float64, not a silently float32 result."""
    cell, params, _ = build(("lru", {}, D_IN))
    xs = jnp.asarray(normal(BATCH, TIME, D_IN))
    with pytest.raises(ValueError, match=r"mode='pallas' .* float32 / complex64 only; got float64"):
        memjax.scan(cell, params, xs, mode="pallas")
    ys, _ = memjax.scan(cell, params, xs.astype(jnp.float32), mode="pallas")
    assert ys.dtype == jnp.float32

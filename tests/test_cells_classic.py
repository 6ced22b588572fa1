"""The classic cells equal flax's own cells once the same weights are copied in."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import memjax

D_IN, HIDDEN = 5, 6


def run_flax(flax_cell, variables, carry, xs):
    ys = []
    for t in range(xs.shape[1]):
        carry, y = flax_cell.apply(variables, carry, xs[:, t])
        ys.append(y)
    return jnp.stack(ys, 1), carry


def split(w, n):
    return jnp.split(w, n, axis=-1)


@pytest.fixture
def xs():
    return jax.random.normal(jax.random.key(0), (3, 7, D_IN))


def build(name, **kw):
    cell = memjax.cells.get(name, hidden=HIDDEN, **kw)
    params = cell.init(jax.random.key(1), D_IN)
    # Non-zero biases so that their placement is checked too.
    params = jax.tree.map(
        lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape) if p.ndim == 1 else p,
        params,
    )
    return cell, params


def flax_lstm_params(p):
    """memjax's fused LSTM parameters as flax ``LSTMCell`` parameters."""
    w_i, w_h, b = split(p["w_i"], 4), split(p["w_h"], 4), split(p["b"], 4)
    flax_params = {f"i{g}": {"kernel": w_i[k]} for k, g in enumerate("ifgo")}
    flax_params |= {f"h{g}": {"kernel": w_h[k], "bias": b[k]} for k, g in enumerate("ifgo")}
    return {"params": flax_params}


def run_flax_lstm(p, xs):
    flax_cell = nn.LSTMCell(features=HIDDEN)
    carry = flax_cell.initialize_carry(jax.random.key(0), xs[:, 0].shape)
    return run_flax(flax_cell, flax_lstm_params(p), carry, xs)


@pytest.mark.parametrize("bptt", [True, False])
def test_lstm_equals_flax_lstm_cell(xs, bptt):
    cell, p = build("lstm", bptt=bptt)
    want, (c, h) = run_flax_lstm(p, xs)
    ys, carry = memjax.scan(cell, p, xs)
    np.testing.assert_allclose(ys, want, atol=1e-5)
    np.testing.assert_allclose(carry["c"], c, atol=1e-5)
    np.testing.assert_allclose(carry["h"], h, atol=1e-5)


def test_lstm_gradient_equals_flax_lstm_cell_gradient(xs):
    """The hand-written BPTT against JAX differentiating flax's own cell (sigmoid and tanh
    evaluated separately, no shared code with memjax)."""
    cell, p = build("lstm")
    weights = jax.random.normal(jax.random.key(3), (*xs.shape[:2], HIDDEN))

    def memjax_loss(p, x):
        return jnp.sum(memjax.scan(cell, p, x)[0] * weights)

    def flax_loss(p, x):
        return jnp.sum(run_flax_lstm(p, x)[0] * weights)

    got = jax.jit(jax.grad(memjax_loss, argnums=(0, 1)))(p, xs)
    want = jax.grad(flax_loss, argnums=(0, 1))(p, xs)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5), got, want)


def test_gate_activations_equal_sigmoid_and_tanh():
    """One tanh with sigmoid(x) = (1 + tanh(x / 2)) / 2 against the separate functions in
    float64, from saturation to zero, to float32 rounding."""
    from memjax.cells.lstm_bptt import gate_activations

    z = jnp.concatenate([jnp.linspace(-60.0, 60.0, 1000 * 12), jnp.zeros(12), jnp.full(12, 1e-4)])
    z = z.reshape(-1, 12)  # four gates of width 3
    got = jnp.split(gate_activations(z), 4, axis=-1)
    z64 = np.asarray(z, np.float64)
    sigmoid = 1.0 / (1.0 + np.exp(-z64))
    want = np.split(sigmoid, 4, axis=-1)
    want[2] = np.tanh(np.split(z64, 4, axis=-1)[2])
    for gate, expected in zip(got, want, strict=True):
        np.testing.assert_allclose(gate, expected, atol=2e-7)


@pytest.mark.parametrize("bptt", [True, False])
def test_gru_equals_flax_gru_cell(xs, bptt):
    cell, p = build("gru", bptt=bptt)
    w_i, b_i, w_h = split(p["w_i"], 3), split(p["b_i"], 3), split(p["w_h"], 3)
    flax_params = {f"i{g}": {"kernel": w_i[k], "bias": b_i[k]} for k, g in enumerate("rzn")}
    flax_params |= {"hr": {"kernel": w_h[0]}, "hz": {"kernel": w_h[1]}}
    flax_params["hn"] = {"kernel": w_h[2], "bias": p["b_hn"]}
    flax_cell = nn.GRUCell(features=HIDDEN)
    want, h = run_flax(flax_cell, {"params": flax_params}, jnp.zeros((3, HIDDEN)), xs)
    ys, carry = memjax.scan(cell, p, xs)
    np.testing.assert_allclose(ys, want, atol=1e-5)
    np.testing.assert_allclose(carry, h, atol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_rnn_equals_flax_simple_cell(xs, activation):
    cell, p = build("rnn", activation=activation)
    flax_params = {"i": {"kernel": p["w_i"], "bias": p["b"]}, "h": {"kernel": p["w_h"]}}
    fn = jnp.tanh if activation == "tanh" else jax.nn.relu
    flax_cell = nn.SimpleCell(features=HIDDEN, activation_fn=fn)
    want, h = run_flax(flax_cell, {"params": flax_params}, jnp.zeros((3, HIDDEN)), xs)
    ys, carry = memjax.scan(cell, p, xs)
    np.testing.assert_allclose(ys, want, atol=1e-5)
    np.testing.assert_allclose(carry, h, atol=1e-5)


def test_lstm_forget_bias_initialised_to_one():
    cell = memjax.cells.get("lstm", hidden=HIDDEN)
    b = cell.init(jax.random.key(0), D_IN)["b"]
    np.testing.assert_array_equal(b[HIDDEN : 2 * HIDDEN], 1.0)
    np.testing.assert_array_equal(jnp.delete(b, jnp.arange(HIDDEN, 2 * HIDDEN)), 0.0)


@pytest.mark.parametrize(
    "name, options", [("lstm", {}), ("gru", {}), ("rnn", {}), ("rnn", {"activation": "relu"})]
)
@pytest.mark.parametrize("masked", [True, False])
def test_hand_written_backward_equals_autodiff(name, options, masked):
    """The BPTT of memjax.cells.bptt (each cell's hand-derived step backward) against JAX
    differentiating the plain scan, with and without padding and from a non-zero initial carry,
    for parameters, inputs and the carry."""
    batch, time = 3, 11
    xs = jax.random.normal(jax.random.key(1), (batch, time, D_IN))
    mask = jnp.arange(time)[None] < jnp.array([[time], [7], [1]]) if masked else None
    weights = jax.random.normal(jax.random.key(2), (batch, time, HIDDEN))
    fused = memjax.cells.get(name, hidden=HIDDEN, **options)
    plain = memjax.cells.get(name, hidden=HIDDEN, bptt=False, **options)
    params = fused.init(jax.random.key(0), D_IN)
    if name == "gru":
        params["b_hn"] = jax.random.normal(jax.random.key(4), params["b_hn"].shape)
    carry = jax.tree.map(lambda z: z + 0.3, fused.initial_carry(params, (batch,)))

    def loss(cell, p, x, c):
        ys, final = memjax.scan(cell, p, x, mask=mask, carry=c)
        finals = jax.tree.leaves(final)
        return jnp.sum(ys * weights) + jnp.sum(finals[0] ** 2) + 1.7 * jnp.sum(finals[-1])

    want = jax.grad(lambda *a: loss(plain, *a), argnums=(0, 1, 2))(params, xs, carry)
    got = jax.jit(jax.grad(lambda *a: loss(fused, *a), argnums=(0, 1, 2)))(params, xs, carry)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5), got, want)
    if masked:
        assert float(jnp.abs(got[1][2, 1:]).max()) == 0.0  # nothing flows back from padding

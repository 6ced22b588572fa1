"""The linear-in-state cells against independent references: NumPy float64 evaluations of each
docstring's equations with the same parameters, scipy's matrix exponential for the S5
discretisation and the quadratic (masked matrix) form of linear attention."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import memjax

D_IN, HIDDEN = 3, 8


def f64(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def jittered(params, seed=7):
    """Parameters with every leaf moved off its initial value, so that placement is tested."""
    rng = np.random.RandomState(seed)
    return jax.tree.map(lambda p: jnp.asarray(p + 0.3 * rng.randn(*p.shape), jnp.float32), params)


def random_inputs(seed, *shape):
    return jnp.asarray(np.random.RandomState(seed).randn(*shape), jnp.float32)


def random_complex(seed, *shape):
    re, im = np.random.RandomState(seed).randn(2, *shape)
    return jnp.asarray(re + 1j * im, jnp.complex64)


def numpy_skip(p, x):
    return x * p["d"] if p["d"].ndim == 1 else x @ p["d"]


# ----------------------------------------------------------------------------- minGRU / minLSTM


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_min_rnn_step_equals_numpy_equations(name):
    cell = memjax.cells.get(name, hidden=HIDDEN)
    params = jittered(cell.init(jax.random.key(0), D_IN))
    x, h0 = random_inputs(1, 4, D_IN), random_inputs(2, 4, HIDDEN)
    h, y = cell.step(params, h0, x)

    p, x64, h64 = f64(params), f64(x), f64(h0)
    blocks = np.split(x64 @ p["w_i"] + p["b"], 2 if name == "mingru" else 3, axis=-1)
    if name == "mingru":
        k_z, candidate = blocks
        z = sigmoid(k_z)
        want = (1 - z) * h64 + z * candidate
    else:
        k_f, k_i, candidate = blocks
        f, i = sigmoid(k_f), sigmoid(k_i)
        want = f / (f + i) * h64 + i / (f + i) * candidate
    np.testing.assert_allclose(h, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_minlstm_normalised_gates_sum_to_one_even_when_saturated():
    cell = memjax.cells.get("minlstm", hidden=HIDDEN)
    params = jittered(cell.init(jax.random.key(0), D_IN))
    x = random_inputs(3, 5, D_IN) * jnp.array([1.0, 30.0, 300.0])
    forget, input_gate, _ = cell.gates(params, x)
    np.testing.assert_allclose(forget + input_gate, 1.0, rtol=1e-6)
    assert bool(jnp.all((forget >= 0) & (forget <= 1)))
    # Moderate inputs: the normalised gates equal f / (f + i) computed by division.
    x = random_inputs(4, 5, D_IN)
    k_f, k_i, _ = np.split(f64(x) @ f64(params["w_i"]) + f64(params["b"]), 3, axis=-1)
    f, i = sigmoid(k_f), sigmoid(k_i)
    np.testing.assert_allclose(cell.gates(params, x)[0], f / (f + i), rtol=1e-5)


# ----------------------------------------------------------------------------------------- LRU


@pytest.mark.parametrize("d_in", [D_IN, HIDDEN])
def test_lru_step_equals_numpy_equations(d_in):
    cell = memjax.cells.get("lru", hidden=HIDDEN, state_size=5)
    params = jittered(cell.init(jax.random.key(0), d_in))
    assert params["d"].shape == ((HIDDEN,) if d_in == HIDDEN else (d_in, HIDDEN))
    x, h0 = random_inputs(1, 2, d_in), random_complex(2, 2, 5)
    h, y = cell.step(params, h0, x)

    p, x64, h64 = f64(params), f64(x), np.asarray(h0, np.complex128)
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    b = p["b_re"] + 1j * p["b_im"]
    c = p["c_re"] + 1j * p["c_im"]
    want_h = lam * h64 + np.exp(p["gamma_log"]) * (x64 @ b)
    want_y = (want_h @ c).real + numpy_skip(p, x64)
    np.testing.assert_allclose(h, want_h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)


def test_lru_ring_initialisation():
    r_min, r_max, max_phase = 0.4, 0.8, 1.0
    cell = memjax.cells.get(
        "lru", hidden=HIDDEN, state_size=2000, r_min=r_min, r_max=r_max, max_phase=max_phase
    )
    p = f64(cell.init(jax.random.key(0), D_IN))
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    radius, phase = np.abs(lam), np.exp(p["theta_log"])
    assert r_min <= radius.min() and radius.max() <= r_max
    assert 0 <= phase.min() and phase.max() <= max_phase
    # Uniform on the ring's area: |lambda|^2 ~ U[r_min^2, r_max^2], phase ~ U[0, max_phase].
    np.testing.assert_allclose(np.mean(radius**2), (r_min**2 + r_max**2) / 2, rtol=0.03)
    np.testing.assert_allclose(np.mean(phase), max_phase / 2, rtol=0.05)
    np.testing.assert_allclose(np.exp(p["gamma_log"]), np.sqrt(1 - radius**2), rtol=1e-6)

    default = memjax.cells.get("lru", hidden=HIDDEN)
    radius = np.abs(default.diagonal(default.init(jax.random.key(1), D_IN))[0])
    assert 0.9 <= radius.min() and radius.max() <= 0.999


def test_lru_gamma_makes_stationary_state_variance_equal_input_variance():
    cell = memjax.cells.get("lru", hidden=HIDDEN, state_size=5, r_min=0.5, r_max=0.8)
    params = cell.init(jax.random.key(0), D_IN)
    xs = random_inputs(1, 4096, 48, D_IN)  # 0.8^(2 * 48) ~ 5e-10: the state is stationary
    _, h = jax.jit(lambda p, x: memjax.scan(cell, p, x, mode="sequential"))(params, xs)
    state_power = np.mean(np.abs(np.asarray(h)) ** 2, axis=0)
    input_power = np.sum(f64(params["b_re"]) ** 2 + f64(params["b_im"]) ** 2, axis=0)
    np.testing.assert_allclose(state_power, input_power, rtol=0.1)
    # Without gamma the power would be 1 / (1 - |lambda|^2) >= 1.33 times larger.
    radius = np.abs(np.asarray(cell.diagonal(params)[0]))
    assert np.all(1 / (1 - radius**2) > 1.3)


# ------------------------------------------------------------------------------------------ S5


def test_s5_zero_order_hold_equals_matrix_exponential():
    n = 4
    cell = memjax.cells.get("s5", hidden=HIDDEN, state_size=n)
    params = jittered(cell.init(jax.random.key(0), D_IN))
    params["log_step"] = jnp.log(jnp.array([1e-3, 0.05, 0.7, 2.0]))
    x, h0 = random_inputs(1, 2, D_IN), random_complex(2, 2, n)
    h, y = cell.step(params, h0, x)

    p = f64(params)
    lam = -np.exp(p["lambda_re_log"]) + 1j * p["lambda_im"]
    step = np.exp(p["log_step"])
    b = (p["b_re"] + 1j * p["b_im"]).T  # the paper's B [N, d_in]
    augmented = np.zeros((n + D_IN, n + D_IN), np.complex128)
    augmented[:n, :n] = np.diag(lam * step)
    augmented[:n, n:] = step[:, None] * b
    exp = scipy.linalg.expm(augmented)
    lam_bar, b_bar = np.diag(exp[:n, :n]), exp[:n, n:]
    want_h = lam_bar * np.asarray(h0, np.complex128) + f64(x) @ b_bar.T
    want_y = (want_h @ (p["c_re"] + 1j * p["c_im"])).real + numpy_skip(p, f64(x))
    np.testing.assert_allclose(h, want_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lambda_init", ["lin", "inv"])
def test_s5_initialisation(lambda_init):
    n = 64
    cell = memjax.cells.get("s5", hidden=HIDDEN, state_size=n, lambda_init=lambda_init)
    p = f64(cell.init(jax.random.key(0), D_IN))
    k = np.arange(n)
    imag = np.pi * k if lambda_init == "lin" else n / np.pi * (n / (2 * k + 1) - 1)
    np.testing.assert_allclose(-np.exp(p["lambda_re_log"]), -0.5, rtol=1e-6)
    np.testing.assert_allclose(p["lambda_im"], imag, rtol=1e-5, atol=1e-5)
    steps = np.exp(p["log_step"])
    assert 1e-3 <= steps.min() and steps.max() <= 0.1
    np.testing.assert_allclose(np.mean(p["log_step"]), np.log(1e-2), atol=0.5)


# ---------------------------------------------------------------------------- linear attention

LA_HEADS, LA_DK, LA_DV, LA_T = 2, 3, 4, 16
LA_CONFIGS = [
    {"decay": "none", "feature_map": "elu", "output_gate": False},
    {"decay": "fixed", "feature_map": "identity", "output_gate": True},
    {"decay": "gated", "feature_map": "elu", "output_gate": True},
]


def quadratic_attention(cell, params, xs):
    """``y = (Q K^T * D) V`` then norm, gate and output projection, all in float64."""
    p, x = f64(params), f64(xs)
    batch, time, _ = x.shape
    elu_plus_one = lambda a: np.where(a > 0, a + 1, np.exp(a))
    phi = elu_plus_one if cell.feature_map == "elu" else (lambda a: a)
    heads = lambda a: a.reshape(batch, time, LA_HEADS, -1).transpose(0, 2, 1, 3)  # [B, H, T, *]
    q = heads(phi(x @ p["w_q"])) / np.sqrt(LA_DK)
    k, v = heads(phi(x @ p["w_k"])), heads(x @ p["w_v"])
    t, s = np.arange(time)[:, None], np.arange(time)[None, :]
    causal = (s <= t).astype(np.float64)
    if cell.decay == "gated":
        log_alpha = -np.log1p(np.exp(-(x @ p["w_a"] + p["b_a"]))) / cell.gate_temperature
        cum = np.cumsum(heads(log_alpha), axis=2)  # [B, H, T, d_k]
        decay = np.exp(cum[:, :, :, None, :] - cum[:, :, None, :, :]) * causal[..., None]
        scores = np.einsum("bhtj,bhsj,bhtsj->bhts", q, k, decay)
    else:
        gamma = 1 - 2.0 ** (-5 - np.arange(LA_HEADS)) if cell.decay == "fixed" else np.ones(2)
        decay = gamma[:, None, None] ** np.maximum(t - s, 0) * causal  # [H, T, T]
        scores = np.einsum("bhtj,bhsj->bhts", q, k) * decay
    o = np.einsum("bhts,bhsv->bhtv", scores, v).transpose(0, 2, 1, 3)  # [B, T, H, d_v]
    o = o / np.sqrt(np.mean(o**2, axis=-1, keepdims=True) + 1e-5) * p["norm_scale"]
    if cell.output_gate:
        g = (x @ p["w_g"]).reshape(batch, time, LA_HEADS, LA_DV)
        o = o * g * sigmoid(g)
    return o.reshape(batch, time, -1) @ p["w_o"]


@pytest.mark.parametrize("config", LA_CONFIGS, ids=lambda c: c["decay"])
def test_linear_attention_recurrence_equals_quadratic_form(config):
    cell = memjax.cells.get(
        "linear_attention",
        hidden=HIDDEN,
        heads=LA_HEADS,
        key_size=LA_DK,
        value_size=LA_DV,
        **config,
    )
    params = jittered(cell.init(jax.random.key(0), D_IN))
    xs = random_inputs(1, 2, LA_T, D_IN)
    want = quadratic_attention(cell, params, xs)
    for mode in ("sequential", "parallel"):
        ys, carry = jax.jit(lambda p, x, m=mode: memjax.scan(cell, p, x, mode=m))(params, xs)
        np.testing.assert_allclose(ys, want, rtol=1e-4, atol=1e-4, err_msg=mode)
    assert carry.shape == (2, LA_HEADS, LA_DK, LA_DV)


def test_linear_attention_sequential_scan_never_holds_every_state():
    cell = memjax.cells.get(
        "linear_attention", hidden=HIDDEN, heads=LA_HEADS, key_size=LA_DK, value_size=LA_DV
    )
    params = cell.init(jax.random.key(0), D_IN)
    xs = random_inputs(1, 2, LA_T, D_IN)
    shapes = {}
    for mode in ("sequential", "parallel"):
        jaxpr = jax.make_jaxpr(lambda p, x, m=mode: memjax.scan(cell, p, x, mode=m))(params, xs)
        shapes[mode] = [v.aval.shape for e in jaxpr.jaxpr.eqns for v in e.outvars]
    every_state = lambda shape: LA_T in shape and shape[-2:] == (LA_DK, LA_DV)
    assert not any(map(every_state, shapes["sequential"]))
    assert any(map(every_state, shapes["parallel"]))  # the check can see such an array


def test_linear_attention_decays():
    np.testing.assert_allclose(
        memjax.cells.linear_attention.retnet_decays(4),
        [1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128, 1 - 1 / 256],
    )
    cell = memjax.cells.get("linear_attention", hidden=8, decay="gated")
    params = cell.init(jax.random.key(0), D_IN)
    alpha = cell.prepare(params, jnp.zeros((1, D_IN)))["alpha"]
    np.testing.assert_allclose(alpha, 0.5 ** (1 / 16), rtol=1e-6)  # b_a = 0 at init


# --------------------------------------------------------------------------- shared properties

NAMES = ["mingru", "minlstm", "lru", "s5", "linear_attention"]


@pytest.mark.parametrize("name", NAMES)
def test_recurrence_runs_in_full_precision_for_bfloat16_inputs(name):
    cell = memjax.cells.get(name, hidden=8)
    params = cell.init(jax.random.key(0), D_IN)
    x = random_inputs(1, 2, 5, D_IN)
    a16, b16 = cell.elements(params, cell.prepare(params, x.astype(jnp.bfloat16)))
    a32, b32 = cell.elements(params, cell.prepare(params, x))
    complex_state = name in ("lru", "s5")
    want = jnp.complex64 if complex_state else jnp.float32
    assert b16.dtype == want and a16.dtype in (want, jnp.float32)
    # Decays do not depend on the input dtype beyond the bfloat16 rounding of the input itself.
    np.testing.assert_allclose(
        jnp.broadcast_to(a16, b16.shape), jnp.broadcast_to(a32, b32.shape), rtol=0.02, atol=2e-3
    )
    carry = cell.initial_carry(params, (2,))
    assert carry.dtype == want
    assert cell.state_bytes(params, 1000) == carry[0].size * carry.dtype.itemsize


@pytest.mark.parametrize("name", ["lru", "s5"])
def test_recurrence_params_name_the_diagonal(name):
    cell = memjax.cells.get(name, hidden=HIDDEN)
    params = cell.init(jax.random.key(0), D_IN)
    assert cell.recurrence_params and set(cell.recurrence_params) <= set(params)
    moved = {**params, **{k: params[k] + 0.1 for k in cell.recurrence_params}}
    assert not np.allclose(cell.diagonal(moved)[0], cell.diagonal(params)[0])
    others = {k: (v + 0.1 if k not in cell.recurrence_params else v) for k, v in params.items()}
    np.testing.assert_array_equal(cell.diagonal(others)[0], cell.diagonal(params)[0])


def test_state_sizes():
    assert memjax.cells.get("lru", hidden=8, state_size=3).state_bytes(None, 10) == 3 * 8
    la = memjax.cells.get("linear_attention", hidden=8, heads=2)
    assert la.state_bytes(None, 10) == 2 * 4 * 4 * 4


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("lru", {"r_min": 0.9, "r_max": 0.5}, "r_min <= r_max < 1"),
        ("lru", {"r_max": 1.0}, "r_min <= r_max < 1"),
        ("lru", {"state_size": 0}, "state_size must be a positive int"),
        ("s5", {"lambda_init": "legs"}, "lambda_init must be one of"),
        ("s5", {"dt_min": 0.1, "dt_max": 0.01}, "dt_min <= dt_max"),
        ("linear_attention", {"decay": "softmax"}, "decay must be one of"),
        ("linear_attention", {"feature_map": "relu"}, "feature_map must be one of"),
        ("linear_attention", {"heads": 3}, "divisible by heads=3"),
    ],
)
def test_bad_hyperparameters(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        memjax.cells.get(name, hidden=8, **kwargs)


@pytest.mark.parametrize("decay", ["none", "fixed", "gated"])
@pytest.mark.parametrize("time", [1, 5, 37])
def test_chunked_form_equals_sequential_scan(decay, time):
    """Values and gradients of the chunked form against the step-by-step recurrence, with
    padding, an initial state and lengths that are not multiples of the chunk."""
    cell = memjax.cells.get("linear_attention", hidden=8, heads=2, decay=decay)
    params = cell.init(jax.random.key(0), 3)
    xs = jax.random.normal(jax.random.key(time), (2, time, 3))
    mask = jnp.arange(time)[None] < jnp.array([[time], [max(time - 3, 1)]])
    carry = jax.random.normal(jax.random.key(9), cell.initial_carry(params, (2,)).shape)

    @functools.partial(jax.jit, static_argnums=0)
    def run(mode, p):
        chunk = 16 if mode == "chunked" else None  # chunk only applies to mode="chunked"
        return memjax.scan(cell, p, xs, mode=mode, mask=mask, carry=carry, chunk=chunk)

    want, got = run("sequential", params), run("chunked", params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(b, a, atol=2e-5, rtol=2e-5), want, got)
    loss = lambda mode: lambda p: jnp.sum(run(mode, p)[0] ** 2) + jnp.sum(run(mode, p)[1])
    grads = [jax.jit(jax.grad(loss(mode)))(params) for mode in ("sequential", "chunked")]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(b, a, atol=1e-4, rtol=1e-4), *grads)


def test_chunked_mode_needs_a_chunked_form():
    cell = memjax.cells.get("lru", hidden=4)
    with pytest.raises(ValueError, match="mode='chunked' needs a cell with a chunked form"):
        memjax.scan(cell, cell.init(jax.random.key(0), 3), jnp.ones((1, 4, 3)), mode="chunked")

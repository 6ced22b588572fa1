"""S4D and H3 against independent float64 NumPy evaluations of the papers' equations.

S4D is checked in its convolution form (Gu et al. 2022): the kernel
``K_l = 2 Re(sum_n C_n B_bar_n A_bar_n^l)`` applied as a causal convolution, plus ``D u``. H3
(Fu et al. 2023) is the shift convolution of the keys, the product with the values, that
diagonal SSM's convolution, the product with the queries and the output projection, written
with explicit per-head sums. Neither reference runs a recurrence or any memjax code.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import memjax
from memjax import models
from memjax.h3 import H3
from memjax.params import RecurrenceParam

TOL64 = dict(rtol=1e-10, atol=1e-10)
S4D_KEYS = ("a_re_log", "a_im", "log_dt", "b_re", "b_im", "c_re", "c_im", "d")


def build(name, d_in, seed=0, **hyper):
    """The memory and its parameters moved off their initial values (as float32, as a model
    holds them), with their float64 copy."""
    cell = memjax.cells.get(name, hidden=4, **hyper)
    params = cell.init(jax.random.key(seed), d_in)
    rng = np.random.RandomState(seed + 1)
    params = jax.tree.map(lambda p: np.float32(p + 0.2 * rng.randn(*p.shape)), params)
    return cell, params, jax.tree.map(lambda p: np.asarray(p, np.float64), params)


def normal(*shape, seed=2):
    return np.random.RandomState(seed).randn(*shape)


MODES = ("sequential", "parallel")


@functools.partial(jax.jit, static_argnums=0)
def both_modes(cell, params, xs, mask=None, carry=None):
    """``memjax.scan`` in sequential and in parallel mode, compiled as one program."""
    return [memjax.scan(cell, params, xs, mode=m, mask=mask, carry=carry) for m in MODES]


# ------------------------------------------------------------------------ NumPy references


def s4d_kernel(p, length, discretization):
    """``K [length, H]``, ``K_l = 2 Re(sum_n C_n B_bar_n A_bar_n^l)``."""
    a = -np.exp(p["a_re_log"]) + 1j * p["a_im"]
    b, c = p["b_re"] + 1j * p["b_im"], p["c_re"] + 1j * p["c_im"]
    dt = np.exp(p["log_dt"])[:, None]
    if discretization == "zoh":
        a_bar = np.exp(dt * a)
        b_bar = (a_bar - 1) / a * b
    else:
        a_bar = (1 + dt * a / 2) / (1 - dt * a / 2)
        b_bar = dt / (1 - dt * a / 2) * b
    powers = a_bar[None] ** np.arange(length)[:, None, None]  # [L, H, N/2]
    return 2 * np.sum(c * b_bar * powers, axis=-1).real, a_bar, b_bar


def s4d_reference(p, u, discretization):
    """``y = K * u + D u`` (causal, per channel) and the final state for ``u [B, T, H]``."""
    time = u.shape[1]
    kernel, a_bar, b_bar = s4d_kernel(p, time, discretization)
    y = np.zeros_like(u)
    for t in range(time):
        y[:, t] = np.sum(kernel[: t + 1][::-1] * u[:, : t + 1], axis=1)
    lags = a_bar[None] ** np.arange(time)[::-1, None, None]  # A_bar^(T-1-l)
    state = np.einsum("lhn,blh->bhn", lags * b_bar, u)
    return y + p["d"] * u, state


def h3_reference(cell, p, x):
    """H3's outputs ``[B, T, M]`` and final carry for ``x [B, T, d_in]``, no padding."""
    batch, time, _ = x.shape
    heads, d, m = cell.heads, cell.head_dim, cell.shift
    q, k, v = (x @ p[f"w_{n}"] + p[f"b_{n}"] for n in "qkv")
    s = p["shift_d"] * k
    for j in range(min(m, time)):
        s[:, j:] += p["shift_c"][:, j] * k[:, : time - j]
    split = lambda a: a.reshape(batch, time, heads, d)
    kv = np.einsum("bthi,bthj->bthij", split(s), split(v)).reshape(batch, time, -1)
    ssm = {key: np.repeat(p[key], d * d, axis=0) for key in S4D_KEYS}
    z, state = s4d_reference(ssm, kv, cell.discretization)
    o = np.einsum("bthi,bthij->bthj", split(q), z.reshape(batch, time, heads, d, d))
    register = np.zeros((batch, cell.hidden, m))
    for j in range(min(m, time)):
        register[..., j] = k[:, time - 1 - j]
    return o.reshape(batch, time, -1) @ p["w_o"] + p["b_o"], {"shift": register, "ssm": state}


# ---------------------------------------------------------------------------------- S4D


@pytest.mark.parametrize(
    ("discretization", "d_in"), [("zoh", 4), ("bilinear", 3)], ids=["zoh-d4", "bilinear-d3"]
)
def test_s4d_equals_its_convolution_kernel(x64, discretization, d_in):
    cell, params, p = build("s4d", d_in, state_size=6, discretization=discretization)
    assert ("w_in" in params) == (d_in != 4)
    xs = normal(2, 7, d_in)
    u = xs @ p["w_in"] if "w_in" in p else xs
    want_ys, want_state = s4d_reference(p, u, discretization)
    for mode, (ys, carry) in zip(MODES, both_modes(cell, params, jnp.asarray(xs)), strict=True):
        assert ys.dtype == jnp.float64 and carry.dtype == jnp.complex128
        np.testing.assert_allclose(ys, want_ys, **TOL64, err_msg=mode)
        np.testing.assert_allclose(carry, want_state, **TOL64, err_msg=mode)


def test_s4d_initialisation_and_recurrence_params():
    cell = memjax.cells.get("s4d", hidden=64)
    p = jax.tree.map(np.asarray, jax.jit(cell.init, static_argnums=1)(jax.random.key(0), 64))
    assert p["a_re_log"].shape == (64, 32) and "w_in" not in p
    np.testing.assert_allclose(-np.exp(p["a_re_log"]), -0.5, rtol=1e-6)
    np.testing.assert_allclose(p["a_im"], np.broadcast_to(np.pi * np.arange(32), (64, 32)))
    np.testing.assert_array_equal(p["b_re"], 1.0)
    np.testing.assert_array_equal(p["b_im"], 0.0)
    assert np.log(1e-3) <= p["log_dt"].min() and p["log_dt"].max() <= np.log(1e-1)
    for part in ("c_re", "c_im"):  # complex normal: each part N(0, 1/2)
        np.testing.assert_allclose(p[part].std(), np.sqrt(0.5), rtol=0.05)
    np.testing.assert_allclose(p["d"].std(), 1.0, rtol=0.2)
    for name in ("s4d", "h3"):
        mixer = nnx.eval_shape(lambda name=name: models.Mixer(name, 8, rngs=nnx.Rngs(0)))
        recurrence = {key for key, v in mixer.params.items() if isinstance(v, RecurrenceParam)}
        assert recurrence == {"a_re_log", "a_im", "log_dt", "b_re", "b_im"}, name


# ----------------------------------------------------------------------------------- H3


@pytest.mark.parametrize("hyper", [{}, {"head_dim": 2, "discretization": "zoh"}], ids=str)
def test_h3_equals_its_equations(x64, hyper):
    cell, params, p = build("h3", 3, state_size=4, shift_size=3, **hyper)
    xs = normal(2, 6, 3)
    lengths = [6, 4]
    mask = jnp.arange(6)[None, :] < jnp.array(lengths)[:, None]
    for mode, (ys, carry) in zip(
        MODES, both_modes(cell, params, jnp.asarray(xs), mask), strict=True
    ):
        assert ys.dtype == jnp.float64 and carry["ssm"].dtype == jnp.complex128
        for b, n in enumerate(lengths):
            want, want_carry = h3_reference(cell, p, xs[b : b + 1, :n])
            np.testing.assert_allclose(ys[b, :n], want[0], **TOL64, err_msg=mode)
            np.testing.assert_array_equal(ys[b, n:], 0.0)
            for key in ("shift", "ssm"):
                np.testing.assert_allclose(carry[key][b], want_carry[key][0], **TOL64)


CELLS = [
    ("s4d", {"state_size": 6}),
    ("h3", {"state_size": 4, "shift_size": 3}),
    ("h3", {"state_size": 4, "head_dim": 2}),
]


@pytest.mark.parametrize(("name", "hyper"), CELLS, ids=lambda v: str(v))
def test_step_loop_equals_scan_in_float32(name, hyper):
    """From a non-zero carry, a loop over ``step`` gives the outputs and final carry of
    ``memjax.scan`` in sequential and in parallel mode."""
    cell, params, _ = build(name, 3, **hyper)
    xs = jnp.asarray(normal(2, 7, 3), jnp.float32)
    start = jax.tree.map(lambda c: c + 0.3, cell.initial_carry(params, (2,)))

    @jax.jit
    def run(params, xs, carry):
        ys = []
        for t in range(xs.shape[1]):
            carry, y = cell.step(params, carry, xs[:, t])
            ys.append(y)
        return (jnp.stack(ys, axis=1), carry), both_modes(cell, params, xs, carry=start)

    want, scans = run(params, xs, start)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for got in scans:
        jax.tree.map(close, got, want)


def test_h3_block_builds_and_widths_follow_head_dim():
    assert H3.width_multiple() == 1 and H3.width_multiple(head_dim=4) == 4

    def forward(x):
        block = models.Block("h3", 8, rngs=nnx.Rngs(0), mixer_options={"head_dim": 2})
        return block(x), block.mixer.memory.initial_carry(block.mixer.values(), (1,))

    ys, state = jax.eval_shape(forward, jax.ShapeDtypeStruct((1, 5, 8), jnp.float32))
    assert ys.shape == (1, 5, 8)
    assert state["shift"].shape == (1, 8, 64) and state["ssm"].shape == (1, 16, 32)


@pytest.mark.parametrize(
    ("name", "hyper", "match"),
    [
        ("s4d", {"state_size": 7}, r"state_size must be an even positive int .*got 7"),
        ("s4d", {"state_size": 0}, r"state_size must be an even positive int .*got 0"),
        ("s4d", {"dt_min": 0.1, "dt_max": 0.01}, r"need 0 < dt_min <= dt_max, got dt_min=0.1"),
        ("s4d", {"dt_min": 0.0}, r"need 0 < dt_min <= dt_max, got dt_min=0.0"),
        ("s4d", {"discretization": "euler"}, r"discretization must be one of .*got 'euler'"),
        ("h3", {"head_dim": 3}, r"hidden=4 must be a multiple of head_dim=3"),
        ("h3", {"head_dim": 0}, r"head_dim must be a positive int, got 0"),
        ("h3", {"shift_size": 0}, r"shift_size must be None or a positive int, got 0"),
        ("h3", {"state_size": 5}, r"state_size must be an even positive int .*got 5"),
        ("h3", {"dt_max": -1.0}, r"need 0 < dt_min <= dt_max, got dt_min=0.001, dt_max=-1.0"),
        ("h3", {"discretization": "dss"}, r"discretization must be one of .*got 'dss'"),
    ],
)
def test_bad_hyperparameters_are_named(name, hyper, match):
    with pytest.raises(ValueError, match=match):
        memjax.cells.get(name, hidden=4, **hyper)


def test_h3_refuses_modes_and_options_it_has_no_use_for():
    cell = memjax.cells.get("h3", hidden=4, state_size=2, shift_size=2)
    params = jax.eval_shape(lambda key: cell.init(key, 3), jax.random.key(0))
    xs = jax.ShapeDtypeStruct((1, 3, 3), jnp.float32)
    run = lambda **options: jax.eval_shape(
        lambda p, x: memjax.scan(cell, p, x, **options), params, xs
    )
    with pytest.raises(ValueError, match=r"mode must be one of .* for H3.*got mode='chunked'"):
        run(mode="chunked")
    with pytest.raises(ValueError, match=r"remat=2 applies only to recurrent cells"):
        run(remat=2)

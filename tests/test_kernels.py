"""The Pallas linear-recurrence kernel against NumPy, ``lax.scan`` and ``jax.vjp`` references.

On the CPU the kernel runs in Pallas interpret mode; the CUDA export test lowers the compiled
(Triton) path without a GPU.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import memjax
from memjax.cells.base import LinearCell
from memjax.kernels import linear_recurrence

DTYPES = [jnp.float32, jnp.complex64]
TRITON_TARGETS = ("__gpu$xla.gpu.triton", "triton_kernel_call", "triton_kernel_call_ffi")


def make_inputs(seed: int, batch: int, time: int, width: int, dtype):
    """Random ``a`` with ``|a| < 1`` (a stable recurrence), ``b`` and ``s0`` of ``dtype``."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-0.95, 0.95, (batch, time, width))
    b = rng.normal(size=(batch, time, width))
    s0 = rng.normal(size=(batch, width))
    if np.dtype(dtype).kind == "c":
        a = a * np.exp(1j * rng.uniform(-np.pi, np.pi, a.shape))
        b = b + 1j * rng.normal(size=b.shape)
        s0 = s0 + 1j * rng.normal(size=s0.shape)
    return tuple(jnp.asarray(x, dtype) for x in (a, b, s0))


def numpy_reference(a, b, s0, reverse: bool) -> np.ndarray:
    """The recurrence as a float64 / complex128 Python loop."""
    a, b, s0 = (
        np.asarray(x).astype(np.complex128 if np.iscomplexobj(x) else np.float64)
        for x in (a, b, s0)
    )
    states = np.zeros_like(b)
    s = s0
    time = a.shape[1]
    for t in reversed(range(time)) if reverse else range(time):
        s = a[:, t] * s + b[:, t]
        states[:, t] = s
    return states


def scan_reference(a, b, s0, reverse: bool = False):
    """The recurrence as ``jax.lax.scan`` over time."""

    def step(s, ab):
        s = ab[0] * s + ab[1]
        return s, s

    _, states = jax.lax.scan(step, s0, (a.swapaxes(0, 1), b.swapaxes(0, 1)), reverse=reverse)
    return states.swapaxes(0, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "c64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize(
    ("time", "width", "block"),
    [(5, 8, 4), (7, 13, 4), (1, 3, 64), (17, 40, 16)],
    ids=["multiple", "padded", "time1-narrow", "longer"],
)
def test_forward_matches_references(dtype, reverse, time, width, block):
    a, b, s0 = make_inputs(0, 2, time, width, dtype)
    states = linear_recurrence(a, b, s0, reverse=reverse, block=block)
    assert states.shape == (2, time, width) and states.dtype == dtype
    expected = numpy_reference(a, b, s0, reverse)
    np.testing.assert_allclose(np.asarray(states), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(states, scan_reference(a, b, s0, reverse), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "c64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize(("time", "width"), [(9, 6), (1, 3)], ids=["padded", "time1"])
def test_gradients_match_vjp_of_scan(dtype, reverse, time, width):
    a, b, s0 = make_inputs(1, 2, time, width, dtype)
    cotangent = make_inputs(2, 2, time, width, dtype)[1]
    kernel = jax.jit(lambda *x: linear_recurrence(*x, reverse=reverse, block=4))
    _, kernel_vjp = jax.vjp(kernel, a, b, s0)
    _, scan_vjp = jax.vjp(lambda *x: scan_reference(*x, reverse), a, b, s0)
    for name, got, want in zip(
        ("a", "b", "s0"), kernel_vjp(cotangent), scan_vjp(cotangent), strict=True
    ):
        assert got.dtype == want.dtype, name
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_gradients_match_finite_differences(reverse):
    a, b, s0 = make_inputs(3, 2, 6, 5, jnp.float32)
    kernel = jax.jit(lambda *x: linear_recurrence(*x, reverse=reverse, block=4))
    check_grads(kernel, (a, b, s0), order=1, modes=["rev"], eps=1e-3)


def test_empty_time_returns_empty():
    a, b, s0 = make_inputs(4, 2, 0, 3, jnp.float32)
    assert linear_recurrence(a, b, s0).shape == (2, 0, 3)


@pytest.mark.parametrize(
    ("shapes", "dtypes", "kwargs", "match"),
    [
        (((2, 5), (2, 5), (2,)), (jnp.float32,) * 3, {}, r"a must have shape \[batch, time"),
        (((2, 5, 3),) * 2 + ((2, 3),), (jnp.float64,) * 3, {}, "a must be float32 or complex64"),
        (((2, 5, 3), (2, 4, 3), (2, 3)), (jnp.float32,) * 3, {}, r"b must .*\(2, 4, 3\)"),
        (((2, 5, 3),) * 2 + ((2, 3),), (jnp.float32, jnp.complex64, jnp.float32), {}, "b must"),
        (((2, 5, 3),) * 2 + ((2, 4),), (jnp.float32,) * 3, {}, r"s0 must .*\(2, 3\).*\(2, 4\)"),
        (((2, 5, 3),) * 2 + ((2, 3),), (jnp.complex64,) * 2 + (jnp.float32,), {}, "s0 must"),
        (((2, 5, 3),) * 2 + ((2, 3),), (jnp.float32,) * 3, {"block": 12}, "block must .* 12"),
        (((2, 5, 3),) * 2 + ((2, 3),), (jnp.float32,) * 3, {"block": 0}, "block must .* 0"),
    ],
    ids=["a-rank", "a-dtype", "b-shape", "b-dtype", "s0-shape", "s0-dtype", "block-12", "block-0"],
)
def test_bad_inputs_raise(shapes, dtypes, kwargs, match):
    with jax.enable_x64(True):
        args = [jnp.zeros(s, d) for s, d in zip(shapes, dtypes, strict=True)]
        with pytest.raises(ValueError, match=match):
            linear_recurrence(*args, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "c64"])
def test_cuda_export_lowers_to_triton(dtype):
    """Forward and gradient lower for CUDA, each kernel launch a Triton custom call."""
    batch, time, width, block = 2, 5, 40, 16
    specs = [jax.ShapeDtypeStruct((batch, time, width), dtype)] * 2
    specs.append(jax.ShapeDtypeStruct((batch, width), dtype))
    forward = lambda *x: linear_recurrence(*x, block=block, interpret=False)
    loss = lambda *x: jnp.sum(jnp.abs(forward(*x)) ** 2)
    grad = jax.grad(loss, argnums=(0, 1, 2))
    checks = [jax.export.DisabledSafetyCheck.custom_call(t) for t in TRITON_TARGETS]
    for fn, launches in ((forward, 1), (grad, 2)):
        exported = jax.export.export(jax.jit(fn), platforms=["cuda"], disabled_checks=checks)
        text = exported(*specs).mlir_module()
        assert re.findall(r"custom_call @([\w$.]+)", text) == ["__gpu$xla.gpu.triton"] * launches
        grids = re.findall(r"grid_x = (\d+) : i32, grid_y = (\d+) : i32, grid_z = (\d+)", text)
        assert [sorted(map(int, g)) for g in grids] == [[1, batch, width // block + 1]] * launches
        assert "tt.ptr<f32>" in text


LINEAR_CELLS = [n for n in memjax.cells.names() if issubclass(memjax.cells.lookup(n), LinearCell)]


def test_scan_pallas_mode_refuses_a_nonlinear_cell():
    cell = memjax.cells.get("lstm", hidden=4)
    with pytest.raises(ValueError, match="mode='pallas' needs a cell whose update is linear"):
        memjax.scan(cell, cell.init(jax.random.key(0), 3), jnp.ones((1, 2, 3)), mode="pallas")


@pytest.mark.parametrize("name", LINEAR_CELLS)
def test_scan_pallas_mode_equals_sequential(name):
    """Every linear cell through ``memjax.scan(mode="pallas")``: outputs, final carry and
    gradients equal the sequential scan's, with padding and a non-zero initial carry."""
    # S4D's default 32 modes per channel sum to float32 rounding above 1e-5 in the gradients.
    cell = memjax.cells.get(name, hidden=4, **({"state_size": 8} if name == "s4d" else {}))
    params = cell.init(jax.random.key(0), 3)
    xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
    mask = jnp.arange(6)[None] < jnp.array([[6], [4]])
    carry = jax.tree.map(lambda c: c + 0.5, cell.initial_carry(params, (2,)))

    def loss(mode, p, x, c):
        ys, final = memjax.scan(cell, p, x, mask=mask, carry=c, mode=mode)
        leaves = [jnp.sum(jnp.abs(leaf) ** 2) for leaf in jax.tree.leaves(final)]
        return jnp.sum(ys * jnp.cos(ys)) + sum(leaves), (ys, final)

    grad = jax.grad(loss, argnums=(1, 2, 3), has_aux=True)
    assert "pallas_call" in str(jax.make_jaxpr(grad, static_argnums=0)("pallas", params, xs, carry))
    got_grads, got = grad("pallas", params, xs, carry)
    want_grads, want = grad("sequential", params, xs, carry)
    close = lambda x, y: np.testing.assert_allclose(x, y, atol=1e-5, rtol=1e-5)
    jax.tree.map(close, got, want)
    jax.tree.map(close, got_grads, want_grads)

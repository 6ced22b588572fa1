"""Behaviour every registered memory must show, checked through the public interface only."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import memjax
from memjax.cells.base import LinearCell
from memjax.scan import reverse_valid

D_IN, HIDDEN, BATCH, TIME = 3, 8, 2, 9

ALL = memjax.cells.names()
LINEAR = [n for n in ALL if issubclass(memjax.cells.lookup(n), LinearCell)]


def build(name: str, seed: int = 0):
    cell = memjax.cells.get(name, hidden=HIDDEN)
    return cell, cell.init(jax.random.key(seed), D_IN)


def inputs(batch=BATCH, time=TIME, seed=1, dtype=jnp.float32):
    return jax.random.normal(jax.random.key(seed), (batch, time, D_IN)).astype(dtype)


def step_loop(cell, params, xs, carry=None):
    """Reference: a Python loop over ``cell.step``."""
    carry = cell.initial_carry(params, xs.shape[:1]) if carry is None else carry
    ys = []
    for t in range(xs.shape[1]):
        carry, y = cell.step(params, carry, xs[:, t])
        ys.append(y)
    return jnp.stack(ys, axis=1), carry


def assert_trees_close(a, b, atol=1e-5, rtol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=atol, rtol=rtol), a, b)


@pytest.mark.parametrize("name", ALL)
def test_step_shapes_and_dtype(name):
    cell, params = build(name)
    carry = cell.initial_carry(params, (4, 2))
    x = jnp.ones((4, 2, D_IN), jnp.bfloat16)
    new_carry, y = jax.jit(cell.step)(params, carry, x)
    assert y.shape == (4, 2, HIDDEN) and y.dtype == jnp.bfloat16
    assert jax.tree.map(jnp.shape, new_carry) == jax.tree.map(jnp.shape, carry)
    assert jax.tree.map(lambda a: a.dtype, new_carry) == jax.tree.map(lambda a: a.dtype, carry)


@pytest.mark.parametrize("name", ALL)
def test_scan_equals_loop_over_step(name):
    cell, params = build(name)
    xs = inputs()
    want_ys, want_carry = step_loop(cell, params, xs)
    modes = ["sequential", "parallel"] if name in LINEAR else ["sequential"]
    for mode in modes:
        ys, carry = jax.jit(lambda p, x, m=mode: memjax.scan(cell, p, x, mode=m))(params, xs)
        assert ys.shape == (BATCH, TIME, HIDDEN)
        assert_trees_close(ys, want_ys)
        assert_trees_close(carry, want_carry)


@pytest.mark.parametrize("name", ALL)
def test_bfloat16_compute_tracks_float32(name):
    cell, params = build(name)
    xs = inputs()
    ys32, _ = memjax.scan(cell, params, xs)
    ys16, _ = memjax.scan(cell, params, xs.astype(jnp.bfloat16))
    assert ys16.dtype == jnp.bfloat16
    scale = float(jnp.abs(ys32).max())
    np.testing.assert_allclose(ys16.astype(jnp.float32), ys32, atol=0.05 * scale)


@pytest.mark.parametrize("name", ALL)
def test_padding_changes_nothing(name):
    cell, params = build(name)
    lengths = [TIME, TIME - 4]
    xs = inputs()
    mask = jnp.arange(TIME)[None, :] < jnp.array(lengths)[:, None]
    garbage = jnp.where(mask[..., None], xs, 100.0)
    ys, carry = memjax.scan(cell, params, garbage, mask=mask)
    extra = jnp.concatenate([garbage, jnp.full((BATCH, 3, D_IN), -7.0)], axis=1)
    extra_mask = jnp.concatenate([mask, jnp.zeros((BATCH, 3), bool)], axis=1)
    ys_extra, carry_extra = memjax.scan(cell, params, extra, mask=extra_mask)
    np.testing.assert_allclose(ys_extra[:, :TIME], ys, atol=1e-6)
    assert_trees_close(carry_extra, carry, atol=1e-6)
    for b, n in enumerate(lengths):
        alone_ys, alone_carry = memjax.scan(cell, params, xs[b : b + 1, :n])
        np.testing.assert_allclose(ys[b, :n], alone_ys[0], atol=1e-5, rtol=1e-5)
        np.testing.assert_array_equal(ys[b, n:], 0.0)
        assert_trees_close(
            jax.tree.map(lambda c, b=b: c[b], carry), jax.tree.map(lambda c: c[0], alone_carry)
        )


@pytest.mark.parametrize("name", LINEAR)
def test_padding_in_parallel_mode(name):
    cell, params = build(name)
    xs = inputs()
    mask = jnp.arange(TIME)[None, :] < jnp.array([5, TIME])[:, None]
    seq = memjax.scan(cell, params, xs, mask=mask, mode="sequential")
    par = memjax.scan(cell, params, xs, mask=mask, mode="parallel")
    assert_trees_close(par, seq)


@pytest.mark.parametrize("name", ALL)
def test_two_halves_with_carry_equal_the_whole(name):
    cell, params = build(name)
    xs = inputs()
    whole_ys, whole_carry = memjax.scan(cell, params, xs)
    first_ys, carry = memjax.scan(cell, params, xs[:, :4])
    second_ys, carry = memjax.scan(cell, params, xs[:, 4:], carry=carry)
    np.testing.assert_allclose(jnp.concatenate([first_ys, second_ys], 1), whole_ys, atol=1e-5)
    assert_trees_close(carry, whole_carry)


@pytest.mark.parametrize("name", ALL)
def test_reverse_runs_each_valid_prefix_backwards(name):
    cell, params = build(name)
    xs = inputs()
    lengths = jnp.array([TIME, 6])
    mask = jnp.arange(TIME)[None, :] < lengths[:, None]
    ys, carry = memjax.scan(cell, params, xs, mask=mask, reverse=True)
    for b, n in enumerate([TIME, 6]):
        flipped = jnp.flip(xs[b : b + 1, :n], axis=1)
        want, want_carry = memjax.scan(cell, params, flipped)
        np.testing.assert_allclose(ys[b, :n], jnp.flip(want[0], axis=0), atol=1e-5)
        assert_trees_close(
            jax.tree.map(lambda c, b=b: c[b], carry), jax.tree.map(lambda c: c[0], want_carry)
        )


def test_reverse_valid_twice_is_identity():
    xs = inputs()
    mask = jnp.arange(TIME)[None, :] < jnp.array([3, 7])[:, None]
    np.testing.assert_array_equal(reverse_valid(reverse_valid(xs, mask), mask), xs)
    np.testing.assert_array_equal(reverse_valid(xs, mask)[0, :3], xs[0, 2::-1])
    np.testing.assert_array_equal(reverse_valid(xs, mask)[0, 3:], xs[0, 3:])


def test_bidirectional_concatenates_forward_and_reverse():
    cell, params = build("gru")
    other, other_params = build("lstm", seed=3)
    xs = inputs()
    ys = memjax.bidirectional(cell, params, other, other_params, xs)
    np.testing.assert_allclose(ys[..., :HIDDEN], memjax.scan(cell, params, xs)[0], atol=1e-6)
    backward = memjax.scan(other, other_params, xs, reverse=True)[0]
    np.testing.assert_allclose(ys[..., HIDDEN:], backward, atol=1e-6)


RECURRENT = [n for n in ALL if issubclass(memjax.cells.lookup(n), memjax.cells.base.Cell)]


@pytest.mark.parametrize("name", RECURRENT)
def test_remat_and_unroll_change_no_numbers(name):
    """Values, final state and gradients (parameters, inputs, initial state) with padding are
    unchanged by checkpointed segments (one that divides the length, ones that do not) and by
    unrolling. (Attention has neither: ``tests/test_scan_errors.py`` checks it refuses them.)"""
    cell, params = build(name)
    xs = inputs()
    mask = jnp.arange(TIME)[None, :] < jnp.array([TIME, 6])[:, None]
    carry = jax.tree.map(lambda c: c + 0.25, cell.initial_carry(params, (BATCH,)))

    def loss(p, x, c, **kw):
        ys, final = memjax.scan(cell, p, x, mask=mask, carry=c, mode="sequential", **kw)
        return jnp.sum(ys**2) + sum(jnp.sum(jnp.abs(f)) for f in jax.tree.leaves(final))

    grad = lambda fn: jax.value_and_grad(fn, argnums=(0, 1, 2))
    value, grads = grad(loss)(params, xs, carry)
    for kw in ({"remat": True}, {"remat": 1}, {"remat": 4}, {"remat": 20}, {"unroll": 4}):
        other_value, other_grads = grad(lambda *a, kw=kw: loss(*a, **kw))(params, xs, carry)
        np.testing.assert_allclose(other_value, value, rtol=1e-5)
        assert_trees_close(other_grads, grads, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_remat_segments_cut_the_memory_of_the_backward_pass(name):
    """The memory XLA plans for a forward+backward pass falls when only every 16th state is
    kept and the segments are recomputed (a deterministic compile-time quantity, not a
    timing)."""
    cell = memjax.cells.get(name, hidden=32)
    params = cell.init(jax.random.key(0), 32)
    xs = jax.random.normal(jax.random.key(1), (4, 1024, 32))

    def planned_bytes(remat):
        loss = lambda p, x: jnp.sum(memjax.scan(cell, p, x, remat=remat)[0] ** 2)
        grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return grad.lower(params, xs).compile().memory_analysis().temp_size_in_bytes

    assert planned_bytes(16) < 0.3 * planned_bytes(False)


@pytest.mark.parametrize("name", ALL)
def test_gradients_match_finite_differences(name):
    cell, params = build(name)
    xs = inputs(batch=1, time=4)
    weights = jax.random.normal(jax.random.key(5), (1, 4, HIDDEN))

    def loss(p, x):
        return jnp.sum(memjax.scan(cell, p, x)[0] * weights)

    grads = jax.jit(jax.grad(loss))(params, xs)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))
    check_grads(loss, (params, xs), order=1, modes=("rev",), atol=2e-2, rtol=2e-2, eps=3e-3)


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("time", [1, 2, 3, 17, 100, 256, 513])
def test_parallel_equals_sequential(name, time):
    cell, params = build(name)
    xs = inputs(batch=1, time=time, seed=time)
    seq = memjax.scan(cell, params, xs, mode="sequential")
    par = memjax.scan(cell, params, xs, mode="parallel")
    assert_trees_close(par, seq, atol=1e-5, rtol=1e-5)


def test_auto_mode_is_exact_for_every_cell():
    for name in LINEAR:
        cell, params = build(name)
        xs = inputs()
        assert_trees_close(
            memjax.scan(cell, params, xs, mode="auto"),
            memjax.scan(cell, params, xs, mode="sequential"),
        )

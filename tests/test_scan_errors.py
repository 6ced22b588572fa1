"""Bad input gets a ValueError naming the argument, the value and what was expected."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import memjax


@pytest.fixture
def lstm():
    cell = memjax.cells.get("lstm", hidden=4)
    return cell, cell.init(jax.random.key(0), 3)


def test_unknown_cell_name_lists_names_and_suggests():
    with pytest.raises(ValueError, match=r"unknown memory name 'lstn'.*Did you mean 'lstm'"):
        memjax.cells.get("lstn", hidden=4)


def test_unknown_hyperparameter_is_named():
    with pytest.raises(ValueError, match=r"'gru' has no hyperparameter\(s\) \['forget_bias'\]"):
        memjax.cells.get("gru", hidden=4, forget_bias=1.0)


@pytest.mark.parametrize("hidden", [0, -3, 2.5, True])
def test_bad_hidden(hidden):
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        memjax.cells.get("rnn", hidden=hidden)


def test_bad_activation():
    with pytest.raises(
        ValueError, match=r"activation must be one of \['relu', 'tanh'\], got 'gelu'"
    ):
        memjax.cells.get("rnn", hidden=4, activation="gelu")


def test_wrong_rank(lstm):
    cell, params = lstm
    with pytest.raises(ValueError, match=r"xs must have shape \[batch, time, features\].*\(5, 3\)"):
        memjax.scan(cell, params, jnp.ones((5, 3)))


def test_wrong_feature_size(lstm):
    cell, params = lstm
    with pytest.raises(ValueError, match=r"xs has 2 features.*initialised for d_in=3"):
        memjax.scan(cell, params, jnp.ones((2, 5, 2)))
    with pytest.raises(ValueError, match=r"x_t has 2 features"):
        cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 2)))


def test_integer_inputs_rejected(lstm):
    cell, params = lstm
    with pytest.raises(ValueError, match="xs must be a floating-point array, got dtype int32"):
        memjax.scan(cell, params, jnp.ones((2, 5, 3), jnp.int32))


def test_parallel_mode_on_nonlinear_cell(lstm):
    cell, params = lstm
    with pytest.raises(ValueError, match=r"mode='parallel' needs a cell whose update is linear"):
        memjax.scan(cell, params, jnp.ones((2, 5, 3)), mode="parallel")


def test_unknown_mode(lstm):
    cell, params = lstm
    with pytest.raises(ValueError, match=r"mode must be one of .* got 'fast'"):
        memjax.scan(cell, params, jnp.ones((2, 5, 3)), mode="fast")


@pytest.mark.parametrize("shape", [(5,), (2, 4), (1, 5), (2, 5, 1)])
def test_mask_of_wrong_shape(lstm, shape):
    cell, params = lstm
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, time\) = \(2, 5\)"):
        memjax.scan(cell, params, jnp.ones((2, 5, 3)), mask=jnp.ones(shape, bool))


def test_float_mask_rejected(lstm):
    cell, params = lstm
    with pytest.raises(ValueError, match="mask must be boolean or integer"):
        memjax.scan(cell, params, jnp.ones((2, 5, 3)), mask=jnp.ones((2, 5)))


def test_carry_of_wrong_batch(lstm):
    cell, params = lstm
    carry = cell.initial_carry(params, (3,))
    with pytest.raises(ValueError, match=r"carry must match LSTM.initial_carry\(params, \(2,\)\)"):
        memjax.scan(cell, params, jnp.ones((2, 5, 3)), carry=carry)
    with pytest.raises(ValueError, match="carry must match"):
        cell.step(params, carry, jnp.ones((2, 3)))


def test_bad_unroll(lstm):
    cell, params = lstm
    with pytest.raises(ValueError, match="unroll must be a positive int or .auto., got 0"):
        memjax.scan(cell, params, jnp.ones((2, 5, 3)), unroll=0)


@pytest.mark.parametrize("remat", [-1, 2.0, "yes"])
def test_bad_remat(lstm, remat):
    cell, params = lstm
    with pytest.raises(ValueError, match="remat must be a bool or a non-negative int of steps"):
        memjax.scan(cell, params, jnp.ones((2, 5, 3)), remat=remat)

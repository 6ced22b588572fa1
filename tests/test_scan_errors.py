"""Bad input gets a ValueError naming the argument, the value and what was expected."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memjax
from memjax.scan import MODES, resolve_mode


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


# ------------------------------------------------ options a mode would ignore are refused

SCAN_XS = jnp.ones((2, 5, 3))


@functools.cache
def memory(name, **hyper):
    cell = memjax.cells.get(name, hidden=4, **hyper)
    return cell, cell.init(jax.random.key(0), 3)


@pytest.mark.parametrize(
    ("name", "hyper", "options", "match"),
    [
        (
            "mingru",
            {},
            {"mode": "parallel", "remat": 64},
            r"remat=64 applies only to mode='sequential'; got mode='parallel'",
        ),
        (
            "mingru",
            {},
            {"mode": "parallel", "remat": True},
            r"remat=True applies only to mode='sequential'; got mode='parallel'",
        ),
        (
            "lru",
            {},
            {"mode": "pallas", "remat": 2},
            r"remat=2 applies only to mode='sequential'; got mode='pallas'",
        ),
        (
            "linear_attention",
            {"heads": 2},
            {"mode": "chunked", "remat": 2},
            r"remat=2 applies only to mode='sequential'; got mode='chunked'",
        ),
        (
            "s5",
            {},
            {"mode": "parallel", "unroll": 8},
            r"unroll=8 applies only to mode='sequential'; got mode='parallel'",
        ),
        (
            "mingru",
            {},
            {"mode": "pallas", "unroll": 1},
            r"unroll=1 applies only to mode='sequential'; got mode='pallas'",
        ),
        (
            "linear_attention",
            {"heads": 2},
            {"mode": "chunked", "unroll": 4},
            r"unroll=4 applies only to mode='sequential'; got mode='chunked'",
        ),
        (
            "gru",
            {},
            {"mode": "sequential", "chunk": 16},
            r"chunk=16 applies only to mode='chunked'; got mode='sequential'",
        ),
        (
            "linear_attention",
            {"heads": 2},
            {"mode": "sequential", "chunk": 16},
            r"chunk=16 applies only to mode='chunked'; got mode='sequential'",
        ),
        (
            "mingru",
            {},
            {"mode": "parallel", "chunk": 8},
            r"chunk=8 applies only to mode='chunked'; got mode='parallel'",
        ),
        (
            "lru",
            {},
            {"mode": "pallas", "chunk": 8},
            r"chunk=8 applies only to mode='chunked'; got mode='pallas'",
        ),
        (
            "lstm",
            {},
            {"mode": "auto", "chunk": 8},
            r"chunk=8 applies only to mode='chunked', and LSTM \('lstm'\) has no chunked form",
        ),
        (
            "linear_attention",
            {"heads": 2},
            {"mode": "auto", "remat": 2, "chunk": 8},
            r"remat=2 applies only to mode='sequential' and chunk=8 only to mode='chunked'",
        ),
        (
            "linear_attention",
            {"heads": 2},
            {"mode": "auto", "unroll": 2, "chunk": 8},
            r"unroll=2 applies only to mode='sequential' and chunk=8 only to mode='chunked'",
        ),
        (
            "attention",
            {"heads": 2},
            {"remat": 64},
            r"remat=64 applies only to recurrent cells; Attention \('attention'\) .* no remat",
        ),
        (
            "attention",
            {"heads": 2},
            {"mode": "sequential", "unroll": 8},
            r"unroll=8 applies only to recurrent cells; Attention \('attention'\) .* no unroll",
        ),
        (
            "attention",
            {"heads": 2},
            {"chunk": 64},
            r"chunk=64 applies only to recurrent cells; Attention \('attention'\) .* no chunk",
        ),
    ],
    ids=[
        "remat-parallel",
        "remat-true-parallel",
        "remat-pallas",
        "remat-chunked",
        "unroll-parallel",
        "unroll-pallas",
        "unroll-chunked",
        "chunk-sequential",
        "chunk-sequential-linear-attention",
        "chunk-parallel",
        "chunk-pallas",
        "chunk-auto-no-chunked-form",
        "remat-and-chunk-auto",
        "unroll-and-chunk-auto",
        "remat-attention",
        "unroll-attention",
        "chunk-attention",
    ],
)
def test_option_the_mode_would_ignore_is_refused(name, hyper, options, match):
    cell, params = memory(name, **hyper)
    with pytest.raises(ValueError, match=match):
        memjax.scan(cell, params, SCAN_XS, **options)


@pytest.mark.parametrize("name", memjax.cells.names())
def test_model_defaults_are_accepted_in_every_mode(name):
    """What models.Mixer passes on every call (mode, remat=False or 0, unroll='auto') and
    chunk=None work for every memory in every mode it supports."""
    cell, params = memory(name, **({"heads": 2} if "attention" in name else {}))
    for mode in MODES:
        try:
            resolve_mode(cell, mode)
        except ValueError:
            continue
        for remat in (False, 0):
            options = dict(mode=mode, remat=remat, unroll="auto", chunk=None)
            scan = functools.partial(memjax.scan, cell, **options)
            ys, _ = jax.eval_shape(scan, params, SCAN_XS)  # traced: every check runs
            assert ys.shape == (2, 5, 4)


def test_auto_with_remat_or_unroll_takes_the_sequential_scan():
    """mode='auto' honours an explicit remat / unroll by choosing 'sequential' (the only mode
    that uses them), even for a cell whose 'auto' is otherwise the chunked form."""
    cell, params = memory("linear_attention", heads=2)
    jaxpr = lambda **kw: str(
        jax.make_jaxpr(lambda p, x: memjax.scan(cell, p, x, **kw))(params, SCAN_XS)
    )
    assert "cumsum" in jaxpr()  # auto: the chunked form
    assert "cumsum" not in jaxpr(remat=2) and "remat" in jaxpr(remat=2)
    assert "cumsum" not in jaxpr(unroll=2)
    want = memjax.scan(cell, params, SCAN_XS, mode="sequential", remat=2)
    got = memjax.scan(cell, params, SCAN_XS, remat=2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), got, want)


def test_auto_with_chunk_takes_the_chunked_form():
    """mode='auto' honours an explicit chunk by choosing 'chunked', even for gated decays
    (whose 'auto' is otherwise the sequential scan)."""
    cell, params = memory("linear_attention", heads=2, decay="gated")
    jaxpr = lambda **kw: str(
        jax.make_jaxpr(lambda p, x: memjax.scan(cell, p, x, **kw))(params, SCAN_XS)
    )
    assert "cumsum" not in jaxpr()
    assert "cumsum" in jaxpr(chunk=2)


def test_bad_chunk():
    cell, params = memory("linear_attention", heads=2)
    for chunk in (0, 2.0, True):
        with pytest.raises(ValueError, match="chunk must be a positive int or None"):
            memjax.scan(cell, params, SCAN_XS, mode="chunked", chunk=chunk)

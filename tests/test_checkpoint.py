"""Checkpointer: exact round trips, latest-N plus best, corruption fallback, identity, SIGTERM."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from memjax.checkpoint import Checkpointer, CheckpointRestoreError
from memjax.preemption import PreemptionHandler, install_preemption_handler

# TensorStore may complete a read after Orbax closed the event loop of a failed restore.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def make_state(seed: int) -> dict:
    """A tiny train state: params, Adam state after one update, step and RNG key data."""
    key = jax.random.key(seed)
    params = {
        "dense": {"w": jax.random.normal(key, (3, 4)), "b": jnp.zeros(4)},
        "embed": jax.random.normal(jax.random.fold_in(key, 1), (5, 2)).astype(jnp.bfloat16),
    }
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return {
        "params": optax.apply_updates(params, updates),
        "opt_state": opt_state,
        "step": jnp.asarray(seed, jnp.int32),
        "rng": jax.random.key_data(jax.random.fold_in(key, 2)),
    }


def abstract(state: dict) -> dict:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def data_state(step: int) -> dict:
    return {"epoch": step // 3, "index": step * 8, "order_seed": 1234, "name": "mqar"}


def assert_bitwise_equal(actual, expected) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for got, want in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        got, want = np.asarray(got), np.asarray(want)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()


def save_steps(ckpt: Checkpointer, steps_and_metrics) -> None:
    for step, metrics in steps_and_metrics:
        ckpt.save(step, make_state(step), data_state=data_state(step), metrics=metrics)
    ckpt.wait()


def test_round_trip_is_bit_exact(tmp_path):
    state = make_state(7)
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        assert ckpt.save(7, state, data_state=data_state(7), metrics={"val_accuracy": 0.5})
        step, restored, restored_data = ckpt.restore(abstract(state))
    assert step == 7
    assert_bitwise_equal(restored, state)
    assert restored_data == data_state(7)


def test_typed_prng_key_round_trips(tmp_path):
    state = {"key": jax.random.key(3), "step": jnp.asarray(1, jnp.int32)}
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        ckpt.save(1, state, data_state=None)
        _, restored, _ = ckpt.restore(abstract(state))
    assert jax.dtypes.issubdtype(restored["key"].dtype, jax.dtypes.prng_key)
    assert_bitwise_equal(jax.random.key_data(restored["key"]), jax.random.key_data(state["key"]))


def test_keeps_latest_n_and_an_old_best(tmp_path):
    accuracies = [0.9, None, 0.5, None, 0.6, 0.7]
    with Checkpointer(tmp_path, keep=2, async_save=False) as ckpt:
        save_steps(ckpt, [(s, a and {"val_accuracy": a}) for s, a in enumerate(accuracies, 1)])
        assert ckpt.all_steps() == [1, 5, 6]
        assert ckpt.best_step() == 1
        step, state, data = ckpt.restore_best(abstract(make_state(0)))
    assert step == 1
    assert_bitwise_equal(state, make_state(1))
    assert data == data_state(1)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["1", "5", "6"]
    with Checkpointer(tmp_path, keep=2) as reopened:
        assert reopened.best_step() == 1


def test_best_mode_min(tmp_path):
    losses = [3.0, 1.0, 2.0, 4.0]
    with Checkpointer(tmp_path, keep=1, best_metric="val_loss", best_mode="min") as ckpt:
        save_steps(ckpt, [(s, {"val_loss": v}) for s, v in enumerate(losses, 1)])
        assert ckpt.all_steps() == [2, 4]
        assert ckpt.best_step() == 2


def test_saves_without_metrics_never_become_best(tmp_path):
    with Checkpointer(tmp_path, keep=1, async_save=False) as ckpt:
        save_steps(ckpt, [(1, None), (2, None)])
        assert ckpt.best_step() is None
        with pytest.raises(CheckpointRestoreError, match="ranked by 'val_accuracy'"):
            ckpt.restore_best(abstract(make_state(0)))
        save_steps(ckpt, [(3, {"val_accuracy": 0.1}), (4, None), (5, None)])
        assert ckpt.best_step() == 3
        assert ckpt.all_steps() == [3, 5]


def test_metrics_without_best_metric_are_rejected(tmp_path):
    with Checkpointer(tmp_path) as ckpt, pytest.raises(ValueError, match="lack best_metric"):
        ckpt.save(1, make_state(1), data_state={}, metrics={"val_loss": 0.3})


def test_restore_defaults_to_latest_and_can_name_a_step(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        save_steps(ckpt, [(1, None), (2, None), (3, None)])
        step, state, data = ckpt.restore(abstract(make_state(0)))
        assert (step, data) == (3, data_state(3))
        assert_bitwise_equal(state, make_state(3))
        step, state, _ = ckpt.restore(abstract(make_state(0)), step=2)
        assert step == 2
        assert_bitwise_equal(state, make_state(2))
        with pytest.raises(CheckpointRestoreError, match="no checkpoint for step 9"):
            ckpt.restore(abstract(make_state(0)), step=9)


def array_files(step_dir: Path) -> list[Path]:
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    return sorted(files, key=lambda p: p.stat().st_size)


def delete_data_files(step_dir: Path) -> None:
    """Every array data file: deleting one alone can hit a file the restore never reads."""
    for path in array_files(step_dir):
        path.unlink()


def truncate_data_files(step_dir: Path) -> None:
    for path in array_files(step_dir):
        os.truncate(path, path.stat().st_size // 2)


def flip_bytes(step_dir: Path) -> None:
    for path in array_files(step_dir):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


def swap_in_other_state(step_dir: Path) -> None:
    """Valid arrays from another step: Orbax restores them without complaint."""
    shutil.rmtree(step_dir / "state")
    shutil.copytree(step_dir.parent / "1" / "state", step_dir / "state")


def edit_data_state(step_dir: Path) -> None:
    (step_dir / "data_state" / "metadata").write_text('{"epoch": 99}')


def empty_the_directory(step_dir: Path) -> None:
    shutil.rmtree(step_dir)
    step_dir.mkdir()


@pytest.mark.parametrize(
    "corrupt",
    [
        delete_data_files,
        truncate_data_files,
        flip_bytes,
        swap_in_other_state,
        edit_data_state,
        empty_the_directory,
    ],
)
def test_corrupt_latest_falls_back_to_previous(tmp_path, caplog, corrupt):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        save_steps(ckpt, [(1, None), (2, None)])
    corrupt(tmp_path / "2")
    with Checkpointer(tmp_path, async_save=False) as ckpt, caplog.at_level(logging.WARNING):
        step, state, data = ckpt.restore(abstract(make_state(0)))
        assert (step, data) == (1, data_state(1))
        assert_bitwise_equal(state, make_state(1))
        assert "step 2" in caplog.text and "cannot be restored" in caplog.text
        assert ckpt.all_steps() == [1]
        assert ckpt.save(2, make_state(2), data_state=data_state(2))


def test_half_written_step_is_ignored(tmp_path):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        save_steps(ckpt, [(1, None), (2, None)])
    (tmp_path / "2").rename(tmp_path / "2.orbax-checkpoint-tmp-1700000000")
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.restore(abstract(make_state(0)))[0] == 1


def test_all_corrupt_names_the_directory(tmp_path):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        save_steps(ckpt, [(1, None), (2, None)])
    for step in ("1", "2"):
        flip_bytes(tmp_path / step)
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CheckpointRestoreError, match=str(tmp_path)) as error:
            ckpt.restore(abstract(make_state(0)))
        assert "step 2: " in str(error.value) and "step 1: " in str(error.value)
        assert ckpt.all_steps() == [1, 2]


def test_checksum_mismatch_is_the_reason_given(tmp_path, caplog):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        save_steps(ckpt, [(1, None), (2, None)])
    swap_in_other_state(tmp_path / "2")
    edit_data_state(tmp_path / "1")
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CheckpointRestoreError) as error:
            ckpt.restore(abstract(make_state(0)))
    assert "step 2: IntegrityError: checksum mismatch in state:" in str(error.value)
    assert "step 1: IntegrityError: checksum mismatch in data_state:" in str(error.value)


def test_empty_directory_names_the_directory(tmp_path):
    with Checkpointer(tmp_path / "run") as ckpt:
        with pytest.raises(CheckpointRestoreError, match="no checkpoint to restore in .*run"):
            ckpt.restore(abstract(make_state(0)))


def test_async_save_then_restore_in_a_new_instance(tmp_path):
    state = make_state(4)
    writer = Checkpointer(tmp_path, async_save=True)
    assert writer.save(4, state, data_state=data_state(4), metrics={"val_accuracy": 0.25})
    writer.wait()
    writer.close()
    with Checkpointer(tmp_path) as reader:
        assert (reader.latest_step(), reader.best_step()) == (4, 4)
        step, restored, data = reader.restore(abstract(make_state(0)))
    assert (step, data) == (4, data_state(4))
    assert_bitwise_equal(restored, state)


def test_existing_step_is_not_overwritten(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.save(3, make_state(3), data_state=data_state(3))
        assert not ckpt.save(3, make_state(9), data_state=data_state(9), force=True)
        assert not ckpt.save(2, make_state(2), data_state=data_state(2))
        assert ckpt.restore(abstract(make_state(0)))[2] == data_state(3)


def test_identity_round_trip(tmp_path):
    identity = {"config_sha256": "ab12", "task": "listops", "model": "lstm"}
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.read_identity() is None
        ckpt.write_identity(identity)
        save_steps(ckpt, [(1, None)])
    with Checkpointer(tmp_path) as reopened:
        assert reopened.read_identity() == identity
        assert reopened.all_steps() == [1]


def wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_preemption_handler_sets_flag_and_restores_previous_handler():
    def previous(signum, frame):
        raise AssertionError("the preemption handler should have caught SIGTERM")

    calls = []
    original = signal.signal(signal.SIGTERM, previous)
    try:
        with install_preemption_handler(lambda: calls.append("sigterm")) as handler:
            assert isinstance(handler, PreemptionHandler) and not handler.requested
            os.kill(os.getpid(), signal.SIGTERM)
            assert wait_for(lambda: handler.requested)
            assert calls == ["sigterm"]
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, original)


def _failing_restores(monkeypatch, ckpt: Checkpointer, step: int, error: Exception, times: int):
    """Make reading ``step`` raise ``error`` ``times`` times, then work; returns the call log."""
    calls = []
    original = ckpt._restore_step

    def flaky(candidate, abstract_state):
        calls.append(candidate)
        if candidate == step and calls.count(step) <= times:
            raise error
        return original(candidate, abstract_state)

    monkeypatch.setattr(ckpt, "_restore_step", flaky)
    monkeypatch.setattr("memjax.checkpoint.RETRY_SECONDS", 0.0)
    return calls


def test_transient_read_error_is_retried_and_deletes_nothing(tmp_path, monkeypatch):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        save_steps(ckpt, [(1, None), (2, None)])
    network = ValueError("UNAVAILABLE: Error reading gs://bucket/run/2/state: connection reset")
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        calls = _failing_restores(monkeypatch, ckpt, 2, network, times=2)
        step, state, _ = ckpt.restore(abstract(make_state(0)))
        assert step == 2 and calls == [2, 2, 2]
        assert_bitwise_equal(state, make_state(2))
        assert ckpt.all_steps() == [1, 2]


def test_persistent_read_error_stops_without_falling_back_or_deleting(tmp_path, monkeypatch):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        save_steps(ckpt, [(1, None), (2, None)])
    network = ConnectionResetError("connection reset by peer")
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        _failing_restores(monkeypatch, ckpt, 2, network, times=99)
        with pytest.raises(CheckpointRestoreError, match="step 2 .* after 3 attempts.*connection"):
            ckpt.restore(abstract(make_state(0)))
        assert ckpt.all_steps() == [1, 2]


def test_best_step_emptied_is_an_error_not_a_substitution(tmp_path):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        save_steps(ckpt, [(1, {"val_accuracy": 0.2}), (2, {"val_accuracy": 0.9})])
    for item in (tmp_path / "2").iterdir():
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    with Checkpointer(tmp_path, async_save=False, read_only=True) as ckpt:
        with pytest.raises(CheckpointRestoreError, match=r"step\(s\) \[2\] .* damaged"):
            ckpt.restore_best(abstract(make_state(0)))


def test_read_only_checkpointer_leaves_a_save_in_progress_alone(tmp_path):
    with Checkpointer(tmp_path, async_save=False) as ckpt:
        save_steps(ckpt, [(1, None)])
    in_progress = tmp_path / "2.orbax-checkpoint-tmp-1700000000"
    in_progress.mkdir()
    with Checkpointer(tmp_path, read_only=True) as ckpt:
        assert ckpt.restore(abstract(make_state(0)))[0] == 1
    assert in_progress.exists()

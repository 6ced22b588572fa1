"""A run as a user starts it and as things go wrong: relative paths, two writers, SIGTERM outside
the loop, a full disk, bad settings, damaged best checkpoints, budgets at paper scale."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax
import pytest
from flax import nnx
from tiny_run import ROOT, TINY_ARGS, tiny_config

from memjax import config as config_lib
from memjax import paths, run_failures, train, variants
from memjax.checkpoint import CheckpointRestoreError
from memjax.preemption import PreemptionHandler
from memjax.workdir_lock import WorkdirBusy, WorkdirLock

ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}


def memjax_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "memjax.cli", *argv]


# ----------------------------------------------------------------------------- paths


def test_paths_resolve_local_paths_and_keep_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.resolve("runs/x") == str(tmp_path / "runs/x")
    assert paths.resolve("~/data") == os.path.expanduser("~/data")
    assert paths.resolve("gs://bucket/runs/x") == "gs://bucket/runs/x"
    with pytest.raises(ValueError, match="path must not be empty"):
        paths.resolve("")


def test_train_and_eval_with_a_relative_workdir_from_another_directory(tmp_path):
    """The README's commands as written: a relative --workdir, from the user's own folder."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    config = "configs/mqar.py:lstm,smoke"
    trained = subprocess.run(
        memjax_command("train", "--no-progress", "--config", config, "--workdir", "runs/r")
        + TINY_ARGS,
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = json.loads((tmp_path / "runs/r/summary.json").read_text())
    assert summary["step"] == 6
    evaluated = subprocess.run(
        memjax_command("eval", "--workdir", "runs/r", "--split", "test"),
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(evaluated.stdout[evaluated.stdout.index("{") :])
    assert result["step"] == summary["best_step"]
    assert result["accuracy"] == pytest.approx(summary["test_at_best"])


# ----------------------------------------------------------------------------- two writers


def test_a_second_writer_on_one_workdir_is_refused_naming_the_holder(tmp_path):
    with WorkdirLock(tmp_path):
        with pytest.raises(WorkdirBusy, match=rf"in use by .*pid {os.getpid()}.*--workdir"):
            train.train_and_evaluate(tiny_config(), tmp_path, progress=False)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_two_memjax_train_on_one_workdir_the_second_exits_naming_the_first(tmp_path):
    command = memjax_command(
        "train", "--no-progress", "--config", f"{ROOT}/configs/mqar.py:lstm,smoke",
        "--workdir", str(tmp_path), *TINY_ARGS, "--config.train.steps=100000",
    )  # fmt: skip
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        lock = tmp_path / ".memjax.lock"
        while not (lock.exists() and lock.read_text()):
            assert time.time() < deadline, "the first run never took the workdir"
            time.sleep(0.05)
        second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 1
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith("memjax train: WorkdirBusy: workdir") and f"pid {first.pid}" in last


# ----------------------------------------------------------------------------- SIGTERM


def test_sigterm_before_training_starts_saves_one_step_and_exits(tmp_path):
    """A SIGTERM while the task and model are built and the first step compiles is kept."""
    process = subprocess.Popen(
        memjax_command(
            "train", "--no-progress", "--config", f"{ROOT}/configs/mqar.py:lstm,smoke",
            "--workdir", str(tmp_path),
        ) + TINY_ARGS,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not (tmp_path / ".memjax.lock").exists() and time.time() < deadline:
        time.sleep(0.01)  # the run has started: it holds its workdir, and builds and compiles
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    assert "memjax.train: preempted (SIGTERM): saved step 1" in err  # logged, on stderr
    assert json.loads(out) == {"step": 1, "preempted": True}  # stdout: the command's result
    assert not (tmp_path / "summary.json").exists()


def test_a_sigterm_caught_by_an_earlier_handler_carries_over():
    with PreemptionHandler() as early:
        os.kill(os.getpid(), signal.SIGTERM)
        assert early.requested
        with PreemptionHandler() as trainer:
            assert trainer.requested
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_sigterm_during_the_final_evaluation_stops_it_and_a_rerun_finishes(tmp_path, monkeypatch):
    class TermDuringEvaluation:
        def should_stop(self, step):
            return False

        def interrupted(self):
            return True

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(train, "install_preemption_handler", TermDuringEvaluation)
    assert train.train_and_evaluate(tiny_config(), tmp_path, progress=False) == {
        "step": 6,
        "preempted": True,
    }
    assert not (tmp_path / "summary.json").exists()
    monkeypatch.undo()
    summary = train.train_and_evaluate(tiny_config(), tmp_path, progress=False)
    assert summary["step"] == 6 and (tmp_path / "summary.json").exists()


# ----------------------------------------------------------------------------- full disk, hangs

FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import errno, sys, threading
    from memjax import cli
    from memjax.checkpoint import Checkpointer

    real_save = Checkpointer.save

    def save(self, step, *args, **kwargs):
        if step <= 3:
            return real_save(self, step, *args, **kwargs)
        self.wait()
        # What a failed asynchronous save leaves: a thread that never finishes.
        threading.Thread(target=threading.Event().wait, daemon=False).start()
        raise OSError(errno.ENOSPC, "No space left on device", str(self.directory))

    Checkpointer.save = save
    cli.main(sys.argv[1:])
    """
)


def test_a_full_disk_names_the_last_good_checkpoint_and_exits_instead_of_hanging(tmp_path):
    argv = ["train", "--no-progress", "--config", f"{ROOT}/configs/mqar.py:lstm,smoke"]
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK_SCRIPT, *argv, "--workdir", str(tmp_path), *TINY_ARGS],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("memjax train: DiskFull: no space left on the device that holds")
    assert f"The last good checkpoint is step 3 ({tmp_path / 'checkpoints' / '3'})" in last


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("optim.lr", -1e-3),
        ("optim.lr", float("inf")),
        ("optim.lr", 0.0),
        ("optim.weight_decay", -0.1),
        ("optim.b2", 1.0),
        ("optim.clip_norm", float("nan")),
        ("model.dropout", 1.0),
    ],
)
def test_out_of_range_settings_are_refused_naming_the_key(key, value):
    with pytest.raises(ValueError, match=rf"config\.{key} must be a finite number .* got"):
        config_lib.load(f"{ROOT}/configs/mqar.py:lstm", [(key, value)])


def test_an_infinite_learning_rate_from_the_command_line_is_refused():
    with pytest.raises(ValueError, match=r"config\.optim\.lr must be a finite number > 0"):
        config_lib.load(f"{ROOT}/configs/mqar.py:lstm", config_lib.parse_overrides(
            ["--config.optim.lr=1e999"]
        ))  # fmt: skip


def test_batch_must_split_over_devices_then_over_micro_batches():
    config = config_lib.load(
        f"{ROOT}/configs/mqar.py:lstm", [("train.batch_size", 16), ("optim.accumulate", 4)]
    )
    train.check_batch(config, 1)
    with pytest.raises(ValueError, match=r"accumulate=4 must divide the per-device batch.* 2 "):
        train.check_batch(config, 8)
    odd = config_lib.load(f"{ROOT}/configs/mqar.py:lstm", [("train.batch_size", 15)])
    with pytest.raises(ValueError, match=r"batch_size=15 does not split over 2 devices"):
        train.check_batch(odd, 2)


def test_non_finite_hint_fits_the_config():
    clipped = tiny_config(extra=[("optim.clip_norm", 1.0)])
    hint = run_failures.non_finite_remedies(clipped)
    assert "clip_norm=0.25; now 1" in hint and "clip_norm=1.0" not in hint
    unclipped = tiny_config(extra=[("optim.clip_norm", 0.0)])
    assert "which is off (--config.optim.clip_norm=1.0)" in run_failures.non_finite_remedies(
        unclipped
    )


def test_fingerprint_keeps_what_changes_the_numbers_and_only_that():
    base = config_lib.fingerprint(tiny_config())
    for key, value in [
        ("parallel", "shard_map"),
        ("model.mode", "sequential"),
        ("model.unroll", 4),
        ("model.remat", 2),
        ("train.log_every", 1),
    ]:
        assert config_lib.fingerprint(tiny_config(extra=[(key, value)])) == base, key
    for key, value in [("optim.lr", 1e-2), ("model.d_model", 24), ("train.seed", 1)]:
        assert config_lib.fingerprint(tiny_config(extra=[(key, value)])) != base, key


def test_a_harmless_change_resumes(tmp_path):
    train.train_and_evaluate(tiny_config(extra=[("train.steps", 3)]), tmp_path, progress=False)
    harmless = tiny_config(extra=[("train.steps", 3), ("model.remat", 2), ("model.unroll", 2)])
    assert train.train_and_evaluate(harmless, tmp_path, progress=False)["step"] == 3


def test_device_memory_is_reported_in_gib(monkeypatch):
    class Device:
        def memory_stats(self):
            return {"peak_bytes_in_use": 3 * 2**30}

    monkeypatch.setattr(jax, "local_devices", lambda: [Device()])
    assert train._memory_stats() == {"device_peak_gib": 3.0}


# ----------------------------------------------------------------------------- eval


def test_eval_refuses_to_substitute_another_step_for_an_emptied_best(tmp_path):
    summary = train.train_and_evaluate(tiny_config(), tmp_path, progress=False)
    best = tmp_path / "checkpoints" / str(summary["best_step"])
    for item in best.iterdir():
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    with pytest.raises(CheckpointRestoreError, match=rf"\[{summary['best_step']}\] .* damaged"):
        train.evaluate_workdir(tmp_path, "test")
    shutil.rmtree(best)
    with pytest.raises(CheckpointRestoreError, match=rf"was step {summary['best_step']}"):
        train.evaluate_workdir(tmp_path, "test")


# ----------------------------------------------------------------------------- budgets


@pytest.mark.parametrize(
    "variant", sorted(v for v, chosen in variants.VARIANTS.items() if not chosen.decoder_attention)
)
def test_param_budget_at_paper_scale_for_every_variant(variant):
    """Every variant but the encoder-decoders with attention (sequence tasks only: their
    budget is SCAN's, tests/test_scan_training.py)."""
    config = config_lib.load(f"{ROOT}/configs/mqar.py:{variant}", [("model.param_budget", 200_000)])
    from memjax import budget, tasks

    spec = tasks.get(config.task.name, **dict(config.task.options)).spec
    model = nnx.eval_shape(lambda: train.build_model(config.model, spec, 0))
    assert abs(budget.param_count(model) - 200_000) / 200_000 <= 0.10


def test_an_out_of_memory_that_surfaces_late_still_gets_the_remedies(tmp_path, monkeypatch):
    """Asynchronous dispatch lets a device OOM surface when a metric is read, not at the step."""
    real = train.make_steps

    class Exhausted:
        def __float__(self):
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 30GB")

    def late(*args, **kwargs):
        steps = real(*args, **kwargs)

        def step(params, opt_state, stats, step, batch):
            params, opt_state, stats, metrics = steps.train(params, opt_state, stats, step, batch)
            return params, opt_state, stats, {**metrics, "loss": Exhausted()}

        return train.Steps(train=step, evaluate=steps.evaluate)

    monkeypatch.setattr(train, "make_steps", late)
    with pytest.raises(MemoryError, match=r"batch_size=4.*accumulate.*remat"):
        train.train_and_evaluate(tiny_config(), tmp_path, progress=False)

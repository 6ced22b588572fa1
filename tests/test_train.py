"""The trainer end to end: smoke runs, exact resume after SIGKILL, data parallelism, bad input."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_run import ROOT, TINY, tiny_config

from memjax import config as config_lib
from memjax import data, run_failures, run_state, train
from memjax.checkpoint import Checkpointer


def read_metrics(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("variant", ["lstm", "transformer"])
def test_smoke_run_writes_metrics_checkpoints_and_summary(tmp_path, variant):
    summary = train.train_and_evaluate(tiny_config(variant), tmp_path, progress=False)
    assert summary["step"] == 6
    for key in (
        "param_count",
        "param_checksum",
        "best_val",
        "test_at_best",
        "wall_s",
        "num_devices",
        "device_kind",
    ):
        assert key in summary
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert 0.0 <= summary["test_at_best"] <= 1.0
    rows = read_metrics(tmp_path)
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6]
    assert all(np.isfinite(r["loss"]) and r["tokens_per_s"] > 0 for r in train_rows)
    assert [r["step"] for r in rows if "val_metric" in r] == [3, 6]
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == 6
    result = train.evaluate_workdir(tmp_path, "test")
    assert result["accuracy"] == pytest.approx(summary["test_at_best"])


def test_training_reduces_loss(tmp_path):
    config = tiny_config(
        "gru",
        [
            ("train.steps", 40),
            ("optim.lr", 1e-2),
            ("train.log_every", 10),
            ("train.eval_every", 40),
            ("optim.warmup_steps", 2),
        ],
    )
    train.train_and_evaluate(config, tmp_path, progress=False)
    losses = [r["loss"] for r in read_metrics(tmp_path) if "loss" in r]
    assert losses[-1] < 0.9 * losses[0]


def _train_command(workdir: Path, steps: int, *extra: str) -> list[str]:
    overrides = [f"--config.{k}={v}" for k, v in TINY if k != "train.steps"]
    return [
        sys.executable,
        "-m",
        "memjax.cli",
        "train",
        "--no-progress",
        "--config",
        f"{ROOT}/configs/mqar.py:lstm,smoke",
        "--workdir",
        str(workdir),
        *overrides,
        f"--config.train.steps={steps}",
        "--config.train.checkpoint_every=2",
        "--config.model.dropout=0.1",
        *extra,
    ]


def _finished_steps(directory: Path) -> list[int]:
    """Finalised checkpoint steps, read from the directory listing alone: opening a Checkpointer
    here would clean up the temporary folders the training process is writing."""
    if not directory.exists():
        return []
    return [int(p.name) for p in directory.iterdir() if p.name.isdigit()]


def _logged_steps(workdir: Path) -> tuple[list[int], list[int]]:
    """Steps of metrics.jsonl's train lines and of its validation lines, in file order."""
    rows = read_metrics(workdir)
    return [r["step"] for r in rows if "loss" in r], [r["step"] for r in rows if "val_metric" in r]


def _lines_so_far(workdir: Path) -> list[int]:
    """Steps of the complete lines a training process has written to metrics.jsonl so far."""
    path = workdir / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    return [json.loads(line)["step"] for line in lines if line.endswith("\n")]


def test_exact_resume_after_sigkill(tmp_path):
    """Killed (SIGKILL) after it logged steps its last checkpoint does not hold, a run resumed
    ends with the parameters of one never interrupted and logs every step exactly once."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    steps = 40
    # Checkpoints every 5 steps, lines every step: the kill lands between the two.
    extra = ("--config.train.log_every=1", "--config.train.checkpoint_every=5")
    extra += ("--config.train.eval_every=10",)
    reference = tmp_path / "reference"
    command = _train_command(reference, steps, *extra)
    subprocess.run(command, check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _train_command(killed, steps, *extra),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        saved = _finished_steps(killed / "checkpoints")
        if saved and max(_lines_so_far(killed), default=0) >= max(saved) + 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    summary_path = killed / "summary.json"
    assert not summary_path.exists(), "the run finished before it could be killed"
    assert max(_lines_so_far(killed)) > max(_finished_steps(killed / "checkpoints"))
    subprocess.run(_train_command(killed, steps, *extra), check=True, env=env, capture_output=True)

    want = json.loads((reference / "summary.json").read_text())
    got = json.loads(summary_path.read_text())
    assert got["param_checksum"] == want["param_checksum"]
    assert got["test_at_best"] == want["test_at_best"]
    train_steps, val_steps = _logged_steps(killed)
    assert train_steps == sorted(set(train_steps)), "a step is logged twice or out of order"
    assert (train_steps, val_steps) == _logged_steps(reference)
    assert train_steps == list(range(1, steps + 1))


EQUIVALENCE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from memjax import config as config_lib, data, train

    assert jax.device_count() == 8, jax.devices()
    results, donated = {}, {}
    for how in ("none", "shard_map", "pmap"):
        config = config_lib.load(sys.argv[1], [
            ("task.options.vocab_size", 16), ("task.options.length", 16),
            ("task.options.num_kv_pairs", 2), ("task.options.num_train", 256),
            ("model.d_model", 16), ("model.dropout", 0.0), ("train.batch_size", 16),
            ("train.steps", 100), ("parallel", how),
        ])
        built = train.setup(config)
        params, opt_state = built.params, built.opt_state
        loader = iter(data.make_loader(built.task, "train", global_batch_size=16, seed=0))
        for step in range(3):
            batch = train.device_batch(next(loader), how, built.mesh)
            params, opt_state, _, _ = built.steps.train(
                params, opt_state, built.stats, np.int32(step), batch
            )
        initial = jax.tree.leaves((built.params, built.opt_state))
        donated[how] = all(x.is_deleted() for x in initial)
        results[how] = [np.asarray(x, np.float64).ravel().tolist() for x in jax.tree.leaves(params)]
    print(json.dumps({"params": results, "donated": donated}))
    """
)


@pytest.mark.parametrize("variant", ["lstm"])
def test_one_device_shard_map_and_pmap_agree_and_donate_on_eight_cpu_devices(variant):
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
    }
    out = subprocess.run(
        [sys.executable, "-c", EQUIVALENCE_SCRIPT, f"{ROOT}/configs/mqar.py:{variant},smoke"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    printed = json.loads(out.stdout.strip().splitlines()[-1])
    assert printed["donated"] == {"none": True, "shard_map": True, "pmap": True}
    results = printed["params"]
    for how in ("shard_map", "pmap"):
        for a, b in zip(results["none"], results[how], strict=True):
            np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)
    moved = sum(np.abs(np.array(a)).sum() for a in results["none"])
    assert moved > 0


def test_unknown_config_key_lists_closest_keys():
    with pytest.raises(
        ValueError,
        match=r"unknown config key config.model.d_modle; closest valid "
        r"keys: config.model.d_model",
    ):
        config_lib.load(f"{ROOT}/configs/mqar.py:lstm", [("model.d_modle", 3)])


def test_wrong_type_override_is_named():
    with pytest.raises(ValueError, match=r"config.train.steps expects a int, got 'many'"):
        config_lib.load(f"{ROOT}/configs/mqar.py:lstm", [("train.steps", "many")])


def test_unknown_variant():
    with pytest.raises(ValueError, match=r"unknown model variant 'lsmt'"):
        config_lib.load(f"{ROOT}/configs/mqar.py:lsmt")


def test_workdir_of_another_config_is_refused(tmp_path):
    train.train_and_evaluate(tiny_config("lstm", [("train.steps", 3)]), tmp_path, progress=False)
    other = tiny_config("lstm", [("train.steps", 3), ("model.d_model", 24)])
    with pytest.raises(
        run_state.ConfigMismatch, match=r"model.d_model: 16 -> 24.*new --workdir.*--force"
    ):
        train.train_and_evaluate(other, tmp_path, progress=False)
    assert json.loads((tmp_path / "config.json").read_text())["model"]["d_model"] == 16


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = tiny_config(
        "lstm",
        [
            ("optim.lr", 1e30),
            ("optim.clip_norm", 0.0),
            ("optim.warmup_steps", 0),
            ("optim.schedule", "constant"),
            ("train.log_every", 1),
        ],
    )
    with pytest.raises(run_failures.NonFiniteLoss, match=r"loss is nan at step \d+"):
        train.train_and_evaluate(config, tmp_path, progress=False)
    for step in Checkpointer(tmp_path / "checkpoints").all_steps():
        assert step < 6


def test_out_of_memory_message_suggests_remedies(tmp_path, monkeypatch):
    real = train.make_steps

    def exhausted(*args, **kwargs):
        steps = real(*args, **kwargs)

        def boom(*a):
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 1TB")

        return train.Steps(train=boom, evaluate=steps.evaluate)

    monkeypatch.setattr(train, "make_steps", exhausted)
    with pytest.raises(MemoryError, match=r"batch_size=4.*accumulate.*remat"):
        train.train_and_evaluate(tiny_config("lstm"), tmp_path, progress=False)


class StopAfter:
    """A preemption watch whose flag rises after ``step``; ``pause`` seconds pass before."""

    def __init__(self, step: int, pause: float = 0.0):
        self.step, self.pause = step, pause

    def __call__(self) -> StopAfter:  # stands in for install_preemption_handler()
        return self

    def should_stop(self, step):
        if step == self.step:
            time.sleep(self.pause)
        return step >= self.step

    def interrupted(self):
        return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def test_preemption_saves_exits_and_resumes_exactly(tmp_path, monkeypatch, caplog):
    """SIGTERM sets the handler's flag (tested with a real signal in test_checkpoint); here the
    flag rises after step 2 and the loop must save that step, stop, and resume exactly."""
    reference = train.train_and_evaluate(tiny_config("gru"), tmp_path / "a", progress=False)

    monkeypatch.setattr(train, "install_preemption_handler", StopAfter(2))
    with caplog.at_level(logging.INFO, logger="memjax.train"):
        stopped = train.train_and_evaluate(tiny_config("gru"), tmp_path / "b", progress=False)
    assert stopped == {"step": 2, "preempted": True}
    assert f"preempted (SIGTERM): saved step 2 in {tmp_path / 'b'}" in caplog.text
    assert Checkpointer(tmp_path / "b" / "checkpoints").latest_step() == 2
    monkeypatch.undo()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="memjax.train"):
        resumed = train.train_and_evaluate(tiny_config("gru"), tmp_path / "b", progress=False)
    assert f"resumed from step 2 in {tmp_path / 'b'}" in caplog.text
    assert resumed["param_checksum"] == reference["param_checksum"]


def test_wall_time_of_a_resumed_run_counts_every_process(tmp_path, monkeypatch):
    """summary.json's wall_s is the first process's time up to its checkpoint (which held a
    pause of 1.5 s) plus the time of the process that resumed it."""
    monkeypatch.setattr(train, "install_preemption_handler", StopAfter(2, pause=1.5))
    start = time.time()
    train.train_and_evaluate(tiny_config("gru"), tmp_path, progress=False)
    first = time.time() - start
    monkeypatch.undo()
    start = time.time()
    summary = train.train_and_evaluate(tiny_config("gru"), tmp_path, progress=False)
    second = time.time() - start
    assert 1.5 + second - 0.25 <= summary["wall_s"] <= first + second


def test_the_train_step_donates_params_and_optimiser_state():
    """XLA reuses the old train state's buffers for the new one: the inputs are deleted."""
    built = train.setup(tiny_config("lstm"))
    loader = data.make_loader(built.task, "train", global_batch_size=8, seed=0)
    batch = train.device_batch(next(iter(loader)), "none", None)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*donated buffers were not usable")
        params, opt_state, stats, _ = built.steps.train(
            built.params, built.opt_state, built.stats, jnp.int32(0), batch
        )
    old = jax.tree.leaves((built.params, built.opt_state))
    assert old and all(leaf.is_deleted() for leaf in old)
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves((params, opt_state)))
    lowered = built.steps.train.lower(params, opt_state, stats, jnp.int32(1), batch).as_text()
    assert lowered.count("tf.aliasing_output") == len(old)


def _two_process_train(workdir: Path, steps: int, port: int) -> list[subprocess.Popen]:
    """``memjax train`` as two processes of one multi-host job on this machine (CPU, gloo)."""
    processes = []
    for process_id in range(2):
        env = {
            **os.environ,
            "JAX_PLATFORMS": "cpu",
            "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
            "MEMJAX_COORDINATOR": f"127.0.0.1:{port}",
            "MEMJAX_NUM_PROCESSES": "2",
            "MEMJAX_PROCESS_ID": str(process_id),
        }
        command = [*_train_command(workdir, steps), "--config.train.checkpoint_every=1000"]
        command += ["--config.train.eval_every=1000", "--config.parallel=shard_map"]
        processes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    return processes


def test_sigterm_on_one_host_stops_every_host_at_the_same_step(tmp_path):
    """A preemption notice reaching one process of a two-process job: both save the same step
    and exit cleanly (JAX's preemption sync), and the job resumes from it to the end with the
    parameters of an uninterrupted two-process run (each host restores its own data state)."""
    port = 20000 + os.getpid() % 20000
    steps = 150  # far more than run while the notice travels, even on a loaded machine
    reference = _two_process_train(tmp_path / "reference", steps, port + 2)
    outputs = [p.communicate(timeout=240)[0].decode() for p in reference]
    assert [p.returncode for p in reference] == [0, 0], outputs
    processes = _two_process_train(tmp_path, steps, port)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not metrics.exists():
        time.sleep(0.02)
    processes[1].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=240)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    # The message comes from process 0 alone; the save both made is one collective checkpoint.
    stops = [re.search(r"preempted \(SIGTERM\): saved step (\d+)", out) for out in outputs]
    assert stops[0] and not stops[1], outputs
    step = int(stops[0].group(1))
    assert step in _finished_steps(tmp_path / "checkpoints")

    assert step < steps, "the job finished before the notice arrived"

    resumed = _two_process_train(tmp_path, steps, port + 1)
    outputs = [p.communicate(timeout=240)[0].decode() for p in resumed]
    assert [p.returncode for p in resumed] == [0, 0], outputs
    summary = json.loads((tmp_path / "summary.json").read_text())
    want = json.loads((tmp_path / "reference" / "summary.json").read_text())
    assert summary["step"] == steps
    assert summary["param_checksum"] == want["param_checksum"]


def test_multi_process_jobs_need_shard_map(monkeypatch, tmp_path):
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    config = tiny_config("lstm")
    with pytest.raises(ValueError, match="config.parallel='none' cannot run on 2 processes"):
        train.train_and_evaluate(config, tmp_path, progress=False)


def test_resume_refuses_a_checkpoint_of_another_host_count(tmp_path):
    with pytest.raises(ValueError, match="written by 2 processes, but this job has 1"):
        run_state.own_data_state({"0": "{}", "1": "{}"}, tmp_path)

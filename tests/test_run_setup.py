"""One construction path (``train.setup``, ``train.load_run``) and the metrics log's writer."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
import types
from pathlib import Path

import jax
import numpy as np
import pytest
from etils import epath
from flax import nnx
from tiny_run import tiny_config

from memjax import optim, train
from memjax.checkpoint import Checkpointer, CheckpointRestoreError
from memjax.run_model import score
from memjax.steps import evaluate


def host(leaf) -> np.ndarray:
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def assert_trees_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(host(x), host(y))


# ----------------------------------------------------------------------------- setup


@pytest.mark.parametrize("how", ["none", "shard_map"])
def test_setup_builds_the_model_and_optimiser_of_the_config(how):
    config = tiny_config(extra=[("parallel", how)])
    built = train.setup(config)
    model = train.build_model(config.model, built.spec, int(config.train.seed))
    _, param_state, rest_state = nnx.split(model, nnx.Param, ...)
    want = nnx.to_pure_dict(param_state)
    assert_trees_equal(built.params, want)
    assert_trees_equal(built.rest, nnx.to_pure_dict(rest_state))
    tx, _ = optim.build(config.optim, int(config.train.steps), model)
    assert_trees_equal(built.opt_state, tx.init(want))
    assert built.spec is built.task.spec and built.config is config
    if how == "none":
        assert built.mesh is None
    else:
        assert built.mesh.axis_names == ("data",)
        assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(built.params))


def test_abstract_state_has_the_shapes_dtypes_and_placement_of_the_state():
    built = train.setup(tiny_config())
    abstract = built.abstract_state()
    concrete = {"params": built.params, "opt_state": built.opt_state}
    for name, tree in concrete.items():
        for spec, leaf in zip(jax.tree.leaves(abstract[name]), jax.tree.leaves(tree), strict=True):
            assert isinstance(spec, jax.ShapeDtypeStruct)
            assert (spec.shape, spec.dtype, spec.sharding) == (
                leaf.shape,
                leaf.dtype,
                leaf.sharding,
            )
    assert abstract["step"].dtype == np.int64


# ----------------------------------------------------------------------------- load_run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    summary = train.train_and_evaluate(tiny_config(), workdir, progress=False)
    return workdir, summary


def _restored_params(workdir: Path, step: int):
    """The params of checkpoint ``step``, read with Checkpointer directly."""
    return _restored_state(workdir, step)["params"]


def _listing(directory: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_mtime_ns) for p in directory.rglob("*"))


def test_load_run_restores_the_best_checkpoint_read_only(trained_run):
    workdir, summary = trained_run
    before = _listing(workdir)
    loaded = train.load_run(workdir)
    assert loaded.step == summary["best_step"]
    assert_trees_equal(loaded.params, _restored_params(workdir, summary["best_step"]))
    assert loaded.setup.config.to_json() == tiny_config().to_json()
    assert _listing(workdir) == before


def test_load_run_restores_a_named_step(trained_run):
    workdir, _ = trained_run
    loaded = train.load_run(workdir, step=3)
    assert loaded.step == 3
    assert_trees_equal(loaded.params, _restored_params(workdir, 3))
    assert train.evaluate_workdir(workdir, "validation", step=3)["step"] == 3


def test_load_run_refuses_a_best_step_summary_json_does_not_name(trained_run, tmp_path):
    workdir, summary = trained_run
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    recorded = {**summary, "best_step": summary["best_step"] + 100}
    (copy / "summary.json").write_text(json.dumps(recorded))
    with pytest.raises(CheckpointRestoreError, match=rf"was step {recorded['best_step']}"):
        train.load_run(copy)


def test_load_config_names_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / 'config.json'} not found"):
        train.load_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="is .* a memjax run directory"):
        train.load_run(tmp_path)


# ----------------------------------------------------------------------------- metrics log


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("url", [False, True], ids=["append", "rewrite"])
def test_metrics_log_keeps_earlier_lines_and_adds_in_order(tmp_path, monkeypatch, url):
    """Both strategies (append locally, read and rewrite on gs://) give the same file."""
    monkeypatch.setattr(train.paths, "is_url", lambda path: url)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 3.0}\n')
    with train.MetricsLog(epath.Path(tmp_path)) as log:
        assert log.local is not url
        for step in range(2, 30):
            log.write(step, {"loss": 1.0 / step})
    assert read_lines(tmp_path / "metrics.jsonl") == [{"step": 1, "loss": 3.0}] + [
        {"step": step, "loss": 1.0 / step} for step in range(2, 30)
    ]


def test_metrics_log_writes_in_its_own_thread(tmp_path, monkeypatch):
    """A slow file system holds up neither write() nor the thread that calls it; flush waits."""
    released = threading.Event()
    real = train.MetricsLog._append
    threads = []

    def slow(self, *args):
        threads.append(threading.current_thread())
        released.wait(timeout=10)
        real(self, *args)

    monkeypatch.setattr(train.MetricsLog, "_append", slow)
    log = train.MetricsLog(epath.Path(tmp_path))
    start = time.perf_counter()
    log.write(1, {"loss": 1.0})
    log.write(2, {"loss": 0.5})
    assert time.perf_counter() - start < 1.0
    assert not (tmp_path / "metrics.jsonl").exists()
    released.set()
    log.close()
    assert [row["step"] for row in read_lines(tmp_path / "metrics.jsonl")] == [1, 2]
    assert threads[0] is not threading.current_thread()


def test_a_failed_write_surfaces_in_the_training_thread(tmp_path):
    workdir = epath.Path(tmp_path)
    (tmp_path / "metrics.jsonl").mkdir()  # every write into it fails
    log = train.MetricsLog(workdir)
    log.write(1, {"loss": 1.0})
    with pytest.raises(IsADirectoryError):
        log.flush()
    log.write(2, {"loss": 1.0})
    time.sleep(0.5)
    with pytest.raises(IsADirectoryError):
        log.write(3, {"loss": 1.0})  # the error of line 2
    log.write(4, {"loss": 1.0})
    with pytest.raises(IsADirectoryError):
        log.close()


def test_resuming_drops_lines_after_the_restored_step_and_a_torn_line(tmp_path):
    lines = [json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("".join(lines) + '{"step": 6, "lo')
    with train.MetricsLog(epath.Path(tmp_path), after_step=3) as log:
        log.write(4, {"loss": 0.0})
    assert [row["step"] for row in read_lines(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    with train.MetricsLog(epath.Path(tmp_path), after_step=0):
        pass
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_a_complete_line_without_its_newline_counts_as_torn(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}')
    with train.MetricsLog(epath.Path(tmp_path), after_step=5) as log:
        log.write(3, {})
    assert read_lines(tmp_path / "metrics.jsonl") == [{"step": 1}, {"step": 3}]


@pytest.mark.parametrize("process", [0, 1])
def test_only_process_zero_writes_metrics_and_tensorboard(tmp_path, monkeypatch, process):
    writers = []

    class SummaryWriter:
        def __init__(self, logdir, **options):
            self.scalars = []
            writers.append((logdir, options, self))

        def add_scalar(self, key, value, step):
            self.scalars.append((key, value, step))

        def close(self):
            pass

    monkeypatch.setitem(
        sys.modules, "tensorboardX", types.SimpleNamespace(SummaryWriter=SummaryWriter)
    )
    monkeypatch.setattr(jax, "process_index", lambda: process)
    with train.MetricsLog(epath.Path(tmp_path), after_step=4) as log:
        log.write(5, {"loss": 0.5})
    if process:
        assert not writers and not (tmp_path / "metrics.jsonl").exists()
        return
    ((logdir, options, writer),) = writers
    assert logdir == str(tmp_path / "tensorboard") and options == {"purge_step": 5}
    assert writer.scalars == [("loss", 0.5, 5)]
    assert read_lines(tmp_path / "metrics.jsonl") == [{"step": 5, "loss": 0.5}]


def test_batchnorm_statistics_are_trained_checkpointed_and_evaluated_with(tmp_path):
    """S5's BatchNorm: the train step updates the running statistics, the checkpoint keeps
    them, and evaluation reads them back (evaluating with the initial ones gives another
    number)."""
    config = tiny_config("s5", extra=[("model.norm", "batchnorm"), ("train.steps", 3)])
    summary = train.train_and_evaluate(config, tmp_path, progress=False)
    built = train.setup(config)
    loaded = train.load_run(tmp_path)
    initial, trained = jax.tree.leaves(built.stats), jax.tree.leaves(loaded.stats)
    assert initial and len(initial) == len(trained)
    assert any(not np.allclose(a, b) for a, b in zip(initial, trained, strict=True))
    restored = _restored_state(tmp_path, summary["best_step"])
    assert_trees_equal(loaded.stats, restored["stats"])
    assert train.evaluate_workdir(tmp_path, "test")["accuracy"] == summary["test_at_best"]
    with_trained = evaluate(
        built.steps, loaded.params, loaded.stats, built.task, "test", config, None
    )
    assert score(with_trained, built.spec) == summary["test_at_best"]
    with_initial = evaluate(
        built.steps, loaded.params, built.stats, built.task, "test", config, None
    )
    assert not np.isclose(with_initial["loss"], with_trained["loss"], rtol=1e-4)


def _restored_state(workdir: Path, step: int):
    """The state of checkpoint ``step``, read with Checkpointer directly."""
    built = train.setup(train.load_config(workdir))
    with Checkpointer(workdir / "checkpoints", best_metric=None, read_only=True) as checkpointer:
        return checkpointer.restore(built.abstract_state(), step=step)[1]

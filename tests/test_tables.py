"""``memjax table``: runs expanded, launched once, collected beside the published numbers."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from memjax import config as config_lib
from memjax import experiments as tables
from memjax import launch, train
from memjax.experiments import execute, speed
from memjax.launch import steps as launch_steps
from memjax.tasks import storage

TINY = [
    *("--set", "train.steps=2"),
    *("--set", "train.batch_size=8"),
    *("--set", "task.options.num_train=64"),
    *("--set", "task.options.num_validation=16"),
    *("--set", "task.options.num_test=16"),
    *("--set", "parallel=none"),
    *("--set", "model.depth=1"),
]
LAUNCHER = [
    *("--tpu", "mem"),
    *("--zone", "us-central2-b"),
    *("--accelerator-type", "v4-32"),
    *("--bucket", "gs://bucket"),
]


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory, monkeypatch):
    """Generated data (ListOps) cached once for this file, outside the home directory."""
    monkeypatch.setenv("MEMJAX_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))


def folders(tmp_path: Path) -> list[str]:
    return ["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]


def write_summary(workdir: Path, value: float, metric: str = "accuracy") -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    summary = {"metric": metric, "test_at_best": value, "device_kind": "fake device"}
    (workdir / "summary.json").write_text(json.dumps(summary))


def ours(doc: tables.Document) -> list[tables.Entry]:
    return [e for b in doc.blocks for line in b.lines if line.kind == "ours" for e in line.entries]


def forbid_training(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("a run was launched")

    monkeypatch.setattr(train, "train_and_evaluate", fail)
    monkeypatch.setattr(execute.subprocess, "run", fail)
    monkeypatch.setattr(launch, "submit", fail)


def test_synthetic_smoke_end_to_end_then_a_rerun_launches_nothing(tmp_path, monkeypatch, capsys):
    # Trained here, in this process (--jobs 1): a subprocess per run would pay JAX's start-up
    # eleven times; test_a_failed_subprocess_is_reported_with_its_error_line covers --jobs N.
    argv = ["synthetic", *folders(tmp_path), "--scale", "smoke", "--variants", "transformer", *TINY]
    doc = tables.main([*argv, "--jobs", "1"])
    entries = ours(doc)
    assert len(entries) == 11
    assert all(e.mean is not None and e.status is None for e in entries), entries
    assert not doc.problems
    assert all((tmp_path / "runs" / run / "summary.json").exists() for run in _run_names(argv))
    md = (tmp_path / "out" / "synthetic.md").read_text()
    for published in (
        "| Random (published [1]) | 5.0 | 25.0 |",
        "| S4D (published [1]) | 35.6 | 86.0 |",
        "| H3 (published [1]) | 100 | 99.8 |",
        "| Attention (published [1]) | 100 | 100 |",
        "| S4 (published [2]) | 18.3 |",
        "| S6 (published [2]) | 97.0 |",
        "| H3 (published [2]) | 57.0 |",
        "pub. 100 [1]",
        "1. Fu et al. 2023, Hungry Hungry Hippos",
        "2. Gu and Dao 2023, Mamba",
    ):
        assert published in md
    assert "no data" not in md and "failed" not in md and "no summary.json" not in md
    capsys.readouterr()

    forbid_training(monkeypatch)
    again = tables.main([*argv, "--jobs", "1"])
    assert "11 complete, 0 without data, 0 to launch" in capsys.readouterr().out
    assert (tmp_path / "out" / "synthetic.md").read_text() == md
    assert ours(again) == entries


def _run_names(argv: list[str]) -> list[str]:
    args, _ = tables.parse(argv)
    plan = tables.Plan(args.scale, args.seeds, args.variants, tuple(args.overrides))
    return [run.name for run in tables.all_runs(tables.synthetic(plan))]


def test_lra_cells_without_data_say_no_data_and_how_to_get_it(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def not_prepared(name, **kwargs):  # as tfds says it for a data_dir without the dataset
        raise FileNotFoundError(f"{name} not found")

    monkeypatch.setattr(tfds, "data_source", not_prepared)
    monkeypatch.setenv("MEMJAX_LRA_DIR", str(tmp_path / "lra_release"))
    trained = []

    def fake_train(config, workdir, **kwargs):
        trained.append(config.task.name)
        write_summary(Path(workdir), 0.5)

    monkeypatch.setattr(train, "train_and_evaluate", fake_train)
    doc = tables.main(["lra", *folders(tmp_path), "--variants", "lstm"])
    assert sorted(trained) == ["listops", "pathfinder", "pathfinder"]  # Path-X is pathfinder
    (line,) = [line for line in doc.blocks[0].lines if line.kind == "ours"]
    assert [e.status for e in line.entries] == [
        None,
        "no data (d1)",
        "no data (d2)",
        "no data (d3)",
        None,
        None,
    ]
    md = (tmp_path / "out" / "lra.md").read_text()
    assert "| LSTM | 50.00 | no data (d1) | no data (d2) | no data (d3) | 50.00 | 50.00 |" in md
    assert "tfds build imdb_reviews" in md and "tfds build cifar10" in md
    assert storage.LRA_URL in md and "new_aan_pairs.train.tsv" in md
    tex = (tmp_path / "out" / "lra.tex").read_text()
    assert "no data (d1)" in tex and "tfds build imdb_reviews" in tex
    assert json.loads((tmp_path / "out" / "lra.json").read_text())["problems"].keys() == {
        "d1",
        "d2",
        "d3",
    }


PUBLISHED_LRA = {  # as the papers print them (the list), ListOps .. Path-X
    "Transformer": "36.37 | 64.27 | 57.46 | 42.44 | 71.40 | FAIL",
    "S4": "59.60 | 86.82 | 90.90 | 88.65 | 94.20 | 96.35",
    "S5": "62.15 | 89.31 | 91.40 | 88.00 | 95.33 | 98.58",
    "LRU": "60.2 | 89.4 | 89.9 | – | 95.1 | 94.2",
    "RNN-ReLU": "37.6 | 88.0 | 88.5 | – | chance | chance",
    "RNN-Tanh": "43.9 | 87.2 | 88.9 | – | chance | chance",
    "RNN-Lin": "50.4 | 89.1 | 89.1 | – | chance | chance",
}


def test_relative_runs_and_out_folders_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workdirs = []

    def fake_train(config, workdir, **kwargs):
        workdirs.append(str(workdir))
        write_summary(Path(workdir), 0.5)

    monkeypatch.setattr(train, "train_and_evaluate", fake_train)
    tables.main(["synthetic", *TINY, "--runs", "r", "--out", "o", "--variants", "lstm"])
    assert workdirs and all(w.startswith(f"{tmp_path}/r/") for w in workdirs)
    assert (tmp_path / "o" / "synthetic.md").read_text().startswith("#")


def test_mean_and_std_over_two_seeds_beside_the_published_numbers(tmp_path, monkeypatch):
    plan = tables.Plan("smoke", 2, ("transformer", "lstm"), ())
    (section,) = tables.lra(plan)
    rng = np.random.default_rng(0)
    expected = {}
    for row in section.rows:
        for column, cell in enumerate(row.cells):
            values = rng.uniform(0.2, 0.9, size=2)
            for run, value in zip(cell.runs, values, strict=True):
                write_summary(tmp_path / "runs" / run.name, float(value))
            percent = 100 * values
            expected[row.label, column] = (percent.mean(), percent.std(ddof=1))
    forbid_training(monkeypatch)
    tables.main(["lra", *folders(tmp_path), "--seeds", "2", "--variants", "transformer,lstm"])
    md = (tmp_path / "out" / "lra.md").read_text()
    tex = (tmp_path / "out" / "lra.tex").read_text()
    transformer = PUBLISHED_LRA["Transformer"].split(" | ")
    style = "Transformer-style"  # smoke scale differs from LRA's setup: the label says so
    md_cells = [f"{m:.2f} ± {s:.2f}" for m, s in (expected[style, c] for c in range(6))]
    md_row = " | ".join(f"{c} · pub. {p} [1]" for c, p in zip(md_cells, transformer, strict=True))
    assert f"| {style} | {md_row} |" in md
    lstm = " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in (expected["LSTM", c] for c in range(6)))
    assert f"| LSTM | {lstm} |" in md
    tex_cell = "{:.2f} $\\pm$ {:.2f} $\\cdot$ pub. 36.37 [1]".format(*expected[style, 0])
    assert f"{style} & {tex_cell} & " in tex
    assert "over 2 seeds" in md
    for model, values in PUBLISHED_LRA.items():
        source = {"Transformer": 1, "S4": 2, "S5": 3}.get(model, 4)
        assert f"| {model} (published [{source}]) | {values} |" in md
        tex_values = values.replace(" | ", " & ").replace("–", "--")
        assert f"{model} (published [{source}]) & {tex_values} \\\\" in tex
    assert "1. Tay et al. 2020, Long Range Arena" in md
    assert "2. Gu, Goel and Re 2022" in md and "3. Smith, Warrington and Linderman 2023" in md
    assert "4. Orvieto et al. 2023" in md and "Runs on: fake device" in md
    assert "[1] Tay et al. 2020, Long Range Arena" in tex


def test_a_failed_run_is_noted_beside_the_seeds_that_finished(tmp_path, monkeypatch):
    plan = tables.Plan("smoke", 2, ("lstm",), ())
    runs = tables.all_runs(tables.synthetic(plan))
    failing = runs[1]  # MQAR, first length and width, seed 1
    for run in runs:
        if run != failing:
            write_summary(tmp_path / "runs" / run.name, 0.5)

    def crash(config, workdir, **kwargs):
        raise RuntimeError("loss is nan at step 7")

    monkeypatch.setattr(train, "train_and_evaluate", crash)
    with pytest.raises(SystemExit, match="failures f1"):
        tables.main(["synthetic", *folders(tmp_path), "--seeds", "2", "--variants", "lstm"])
    md = (tmp_path / "out" / "synthetic.md").read_text()
    assert "| LSTM, width 16 | 50.00 · 1/2 seeds; failed (f1) | 50.00 ± 0.00 |" in md
    assert "**f1**:" in md and "RuntimeError: loss is nan at step 7" in md


def test_a_failed_subprocess_is_reported_with_its_error_line(tmp_path, monkeypatch):
    commands = []

    def crash(argv, stdout, **kwargs):
        commands.append(argv)
        stdout.write("Traceback (most recent call last):\nValueError: bad option\n  detail\n")
        return execute.subprocess.CompletedProcess(argv, 1)

    monkeypatch.setattr(execute.subprocess, "run", crash)
    with pytest.raises(SystemExit, match="failures f1, f2"):
        tables.main(["synthetic", *folders(tmp_path), "--variants", "lstm", "--jobs", "2"])
    first = tables.all_runs(tables.synthetic(tables.Plan("smoke", 1, ("lstm",), ())))[0]
    assert [sys.executable, "-m", "memjax.cli", "train"] == commands[0][:4]
    assert f"{config_lib.PACKAGED_CONFIGS}/mqar.py:lstm,smoke" in commands[0]
    md = (tmp_path / "out" / "synthetic.md").read_text()
    log = tmp_path / "runs" / first.name / "train.log"
    assert f"RuntimeError: exit status 1; see {log}: ValueError: bad option" in md


def test_tpu_launch_gives_each_run_its_own_vm_and_collects_the_fetched_summaries(
    tmp_path, monkeypatch
):
    submitted = []

    def fake_submit(args, job):
        # While runs launch (in threads here) the table holds the launcher's SIGTERM handler.
        submitted.append((args, job, signal.getsignal(signal.SIGTERM)))
        write_summary(job.local_workdir, 0.25)

    monkeypatch.setattr(launch, "submit", fake_submit)
    argv = ["synthetic", *folders(tmp_path), "--variants", "lstm", "--launch", "tpu", "--jobs", "3"]
    doc = tables.main([*argv, "--", *LAUNCHER, "--spot", "--timeout-hours", "2"])
    runs = tables.all_runs(tables.synthetic(tables.Plan("smoke", 1, ("lstm",), ())))
    assert len(submitted) == len(runs) == 11
    by_name = {args.name: (args, job, handler) for args, job, handler in submitted}
    assert len(by_name) == 11  # one VM per run
    for run in runs:
        args, job, handler = by_name[f"mem-{run.digest}-s{run.seed}"]
        # The real parser read the options after '--', once for all runs.
        assert (args.kind, args.zone, args.accelerator_type, args.bucket) == (
            "tpu", "us-central2-b", "v4-32", "gs://bucket"
        )  # fmt: skip
        assert args.spot and args.timeout_hours == 2.0 and not args.dry_run
        workdir = tmp_path / "runs" / run.name
        remote = f"gs://bucket/runs/{args.name}/{str(workdir).lstrip('/')}"
        assert job == launch.make_job(
            args.name, run.train_argv(str(workdir), run.config), "gs://bucket", launch.source_root()
        )
        assert job.name == args.name and job.local_workdir == workdir
        assert job.remote_workdir == remote and job.command[-2:] == ("--workdir", remote)
        assert handler is launch_steps._on_sigterm
    first_args, first_job, _ = by_name[f"mem-{runs[0].digest}-s0"]
    assert first_job.command[:-2] == (
        "train",
        *("--config", "configs/mqar.py:lstm,smoke"),
        "--no-progress",
        "--config.task.options.length=32",
        "--config.task.options.num_kv_pairs=2",
        "--config.model.d_model=16",
        "--config.train.seed=0",
    )
    assert signal.getsignal(signal.SIGTERM) is not launch_steps._on_sigterm  # put back
    for block in doc.blocks:  # accuracy is shown in %, the adding problem's MSE as it is
        expected = 0.25 if "MSE" in block.title else 25.0
        entries = [e for line in block.lines if line.kind == "ours" for e in line.entries]
        assert entries and all(e.mean == expected and e.status is None for e in entries)


def test_tpu_dry_run_prints_the_launchers_commands(tmp_path, capsys):
    doc = tables.main(
        ["synthetic", *folders(tmp_path), "--variants", "lstm", "--launch", "tpu"]
        + ["--", *LAUNCHER, "--dry-run"]
    )
    runs = tables.all_runs(tables.synthetic(tables.Plan("smoke", 1, ("lstm",), ())))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gcloud")]
    assert len(lines) == 7 * len(runs)  # create, copy, install, start, poll, fetch, delete
    for run in runs:
        name = f"mem-{run.digest}-s0"
        mine = [line for line in lines if f" {name} " in line or f" {name}:" in line]
        assert len(mine) == 6  # all but the fetch name the VM
        assert mine[0].startswith(f"gcloud compute tpus tpu-vm create {name} ")
        assert mine[-1].startswith(f"gcloud compute tpus tpu-vm delete {name} ")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    assert all(e.status == "no summary.json" for e in ours(doc))


def test_lra_speed_ratios_beside_lra_table_2_measured_once(tmp_path, monkeypatch):
    steps = {"transformer": 8.0, "lstm": 12.0}
    memory = {"transformer": 0.5, "lstm": 0.25}
    measured = []

    def fake_measure(run, n):
        measured.append(run.name)
        variant = run.config.split(":")[1].split(",")[0]
        length = dict(run.overrides)["task.options.max_length"]
        grow = length / 128 if variant == "transformer" else 1.0
        return {
            "steps_per_s": steps[variant] / grow,
            "memory_gib": memory[variant] * grow,
            "device": "fake accelerator",
            "length": length,
            "batch": dict(run.overrides)["train.batch_size"],
        }

    monkeypatch.setattr(speed, "measure_speed", fake_measure)
    argv = ["lra_speed", *folders(tmp_path), "--variants", "transformer,lstm"]
    tables.main(argv)
    assert len(measured) == 8
    md = (tmp_path / "out" / "lra_speed.md").read_text()
    assert "| model | L=128 | L=256 | L=384 | L=512 |" in md
    assert "| Transformer | 8.00 (×1.00) · pub. 8.1 [1] | 4.00 (×1.00) · pub. 4.9 [1] |" in md
    assert "| LSTM | 12.00 (×1.50) | 12.00 (×3.00) | 12.00 (×4.50) | 12.00 (×6.00) |" in md
    assert "| Transformer, TPU v3 4x4 (published [1]) | 8.1 | 4.9 | 2.3 | 1.4 |" in md
    assert "| Transformer, TPU v3 4x4 (published [1]) | 0.85 | 2.65 | 5.51 | 9.48 |" in md
    assert "| LSTM | 0.250 (×0.50) | 0.250 (×0.25) | 0.250 (×0.17) | 0.250 (×0.12) |" in md
    assert "Runs on: fake accelerator" in md and "random byte tokens" in md
    tables.main(argv)
    assert len(measured) == 8  # read back, not measured again


def test_measure_speed_times_a_real_training_step():
    run = tables.Run(
        "configs/text.py:lstm,smoke",
        (
            ("task.options.max_length", 16),
            ("train.batch_size", 2),
            ("parallel", "none"),
            ("model.depth", 1),
        ),
        0,
    )
    result = tables.measure_speed(run, 2)
    assert result["steps_per_s"] > 0 and result["memory_gib"] > 0
    assert (result["length"], result["batch"]) == (16, 2)


def test_run_names_are_deterministic_and_name_everything_that_changes_a_run():
    plan = tables.Plan("smoke", 2, ("lstm", "gru"), ())
    names = [run.name for run in tables.all_runs(tables.synthetic(plan))]
    assert names == [run.name for run in tables.all_runs(tables.synthetic(plan))]
    assert len(set(names)) == len(names) == 2 * 2 * 11
    assert names[0].startswith("mqar-lstm-smoke-") and names[0].endswith("-seed0")
    assert names[1] == names[0].removesuffix("seed0") + "seed1"
    steps = tables.Plan("smoke", 2, ("lstm", "gru"), (("train.steps", 3),))
    assert not set(names) & {run.name for run in tables.all_runs(tables.synthetic(steps))}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synthetic", "--variants", "lstm,nope"], "unknown model variant 'nope'"),
        (["synthetic", "--set", "train.seed=3"], "seeds are 0..N-1 from --seeds"),
        (["synthetic", "--launch", "tpu"], "-- --tpu NAME"),
        (["lra_speed", "--launch", "tpu", "--", "--tpu", "x"], "this machine's device"),
        (["synthetic", "--jobs", "0"], "must be >= 1"),
        (["synthetic", "--set", "train.steps"], "--set: override '--config.train.steps' has no"),
    ],
)
def test_bad_command_lines_say_what_is_wrong(argv, message, capsys):
    with pytest.raises(SystemExit):
        tables.main(argv)
    assert message in capsys.readouterr().err


def test_a_bad_config_key_stops_the_table_before_anything_is_launched(tmp_path, monkeypatch):
    forbid_training(monkeypatch)
    with pytest.raises(ValueError, match="unknown config key config.train.stepz"):
        tables.main(
            ["lra", *folders(tmp_path), "--set", "train.stepz=3", "--launch", "tpu"]
            + ["--", *LAUNCHER]
        )


def test_cli_help_lists_the_tables(capsys):
    with pytest.raises(SystemExit):
        tables.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in tables.TABLES)


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (["--zone", "nowhere"], 2, "--zone: got 'nowhere'"),
        (["--tpu", "a" * 52], "memjax table: --tpu 'aaa", "expected at most 63"),
    ],
)
def test_bad_launcher_options_stop_the_table_before_anything_is_launched(
    tmp_path, monkeypatch, capsys, options, code, message
):
    forbid_training(monkeypatch)
    monkeypatch.setattr(launch, "submit", lambda *args: pytest.fail("a run was launched"))
    with pytest.raises(SystemExit) as raised:
        tables.main(
            ["synthetic", *folders(tmp_path), "--variants", "lstm", "--launch", "tpu"]
            + ["--", *LAUNCHER, *options]
        )
    if isinstance(code, int):
        assert raised.value.code == code
        assert message in capsys.readouterr().err
    else:
        assert str(raised.value.code).startswith(code) and message in str(raised.value.code)
    assert not (tmp_path / "out").exists()

"""notebooks/results.ipynb: stripped in git, and executes headless on a tiny runs folder."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from matplotlib.figure import Figure
from nbclient import NotebookClient

from memjax import experiments as tables
from memjax import train

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "results.ipynb"
VARIANTS = ["--variants", "lstm,transformer"]


def fake_run(workdir: Path, task: str, mixer: str, metric: str, value: float) -> None:
    """A finished run's files, as memjax.train writes them."""
    workdir.mkdir(parents=True)
    summary = {
        "step": 4,
        "best_step": 4,
        "metric": metric,
        "param_count": 1234,
        "param_checksum": 1.0,
        "best_val": value,
        "test_at_best": value,
        "state_bytes_per_sequence": 256,
        "wall_s": 3.0,
        "num_devices": 1,
        "device_kind": "cpu",
        "config_fingerprint": "0" * 16,
        "task": task,
        "mixer": mixer,
    }
    (workdir / "summary.json").write_text(json.dumps(summary))
    logged = [
        {"step": step, "loss": 2.0 / step, metric: value, "lr": 1e-3, "grad_norm": 1.0}
        for step in (2, 4)
    ]
    validated = [{"step": 4, "val_metric": value, "val_loss": 0.5}]
    (workdir / "metrics.jsonl").write_text(
        "".join(json.dumps(m) + "\n" for m in logged + validated)
    )


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(c.execution_count is None and c.outputs == [] for c in code)


def test_results_notebook_executes_on_a_tiny_runs_folder(tmp_path, monkeypatch):
    runs, out = tmp_path / "runs", tmp_path / "tables"
    plan = tables.Plan("smoke", 2, ("lstm", "transformer"), ())
    for i, run in enumerate(tables.all_runs(tables.synthetic(plan))):
        config = run.load()
        metric = "mse" if config.task.name == "adding" else "accuracy"
        fake_run(runs / run.name, config.task.name, config.model.mixer, metric, 0.1 + 0.1 * (i % 7))
    monkeypatch.setattr(train, "train_and_evaluate", None)  # every run is there: none launched
    tables.main(["synthetic", "--runs", str(runs), "--out", str(out), "--seeds", "2"] + VARIANTS)

    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([0, 1], [1, 0])
    figure.savefig(out / "scan_by_length.png")
    monkeypatch.setenv("MEMJAX_RUNS", str(runs))
    monkeypatch.setenv("MEMJAX_TABLES", str(out))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    shown = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert "44 finished runs" in text and "1 table(s)" in text
    assert "| mqar-lstm-smoke-" in shown and "## MQAR (Zoology)" in shown
    assert "| Attention (published [1]) | 100 | 100 |" in shown
    # learning curves; H3 and Mamba beside published bars; the three figures in the folder
    assert len(images) == 6
    assert "### scan_by_length.png" in shown
    assert "### synthetic.png" in shown and "### synthetic_curves.png" in shown

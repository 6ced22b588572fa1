"""notebooks/memory.ipynb: stored without outputs, and executes headless on a CPU."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "memory.ipynb"


def read() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def test_memory_notebook_is_stored_without_outputs():
    code = [cell for cell in read().cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_memory_notebook_executes_headless(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    notebook = read()
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # the overview, the capacity figure, state size and speed
    assert any("probes.json" in out.get("text", "") for out in outputs)

"""A trained table's figures: each memory's accuracy (mean ± std over seeds) beside the published
number of the same model, and its validation curves, one panel per column of the first block."""

from __future__ import annotations

import json
from pathlib import Path

from etils import epath

from memjax.experiments.definitions import Section
from memjax.experiments.execute import summary_path
from memjax.experiments.results import Block, Document


def _number(value: object) -> float | None:
    """A published value as a float, or None when it is not one number ("-", a range)."""
    try:
        return float(str(value).rstrip("%*"))
    except ValueError:
        return None


def plot(doc: Document, path: Path) -> bool:
    """Write ``doc``'s first block as horizontal bars (ours, with ±std) and diamonds (the
    published number beside a cell, and every published row) to ``path``; False (nothing
    written) when no cell of ours has a finished run."""
    block: Block = doc.blocks[0]
    ours = [line for line in block.lines if line.kind == "ours"]
    if not any(entry.mean is not None for line in ours for entry in line.entries):
        return False
    published = [line for line in block.lines if line.kind == "published"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [line.label for line in ours] + [f"{line.label} (published)" for line in published]
    height = 0.5 + 0.4 * len(labels)
    fig, axes = plt.subplots(
        1, len(block.columns), figsize=(4.5 * len(block.columns), height), sharey=True
    )
    axes = axes if len(block.columns) > 1 else [axes]
    for column, (axis, header) in enumerate(zip(axes, block.columns, strict=True)):
        for y, line in enumerate(ours):
            entry = line.entries[column]
            if entry.mean is not None:
                axis.barh(y, entry.mean, xerr=entry.std or 0.0, color="tab:blue", capsize=3)
            beside = _number(entry.published)
            if beside is not None:
                axis.plot(beside, y, "kD", markersize=6)
        for y, line in enumerate(published, start=len(ours)):
            value = _number(line.entries[column].published)
            if value is not None:
                axis.plot(value, y, "kD", markersize=6)
        axis.set_title(header)
        axis.set_xlim(0, 102)
        axis.set_xlabel("accuracy (%): bars ours, diamonds published")
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    fig.suptitle(block.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def validation_curve(run_dir: epath.Path) -> dict[int, float]:
    """``{step: validation accuracy %}`` from a run's ``metrics.jsonl`` (empty if absent)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["step"]: 100.0 * r["val_metric"] for r in records if "val_metric" in r}


def mean_curves(section: Section, runs_dir: epath.Path, column: int) -> dict[str, dict]:
    """Row label -> ``{step: mean validation accuracy %}`` over the seeds of ``column`` whose
    runs finished (a step is kept when every finished seed evaluated it)."""
    curves = {}
    for row in section.rows:
        finished = [
            validation_curve(summary_path(runs_dir, run).parent)
            for run in row.cells[column].runs
            if summary_path(runs_dir, run).exists()
        ]
        if finished:
            steps = sorted(set.intersection(*(set(curve) for curve in finished)))
            curves[row.label] = {
                step: sum(curve[step] for curve in finished) / len(finished) for step in steps
            }
    return curves


def plot_curves(section: Section, runs_dir: epath.Path, path: Path) -> bool:
    """Validation accuracy against training step, one line per memory (mean over seeds), one
    panel per column with a finished run; False (nothing written) when no run finished."""
    found = [(h, mean_curves(section, runs_dir, i)) for i, h in enumerate(section.columns)]
    panels = [(header, curves) for header, curves in found if curves]
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axis, (header, curves) in zip(axes[0], panels, strict=True):
        for label, curve in curves.items():
            axis.plot(list(curve), list(curve.values()), marker=".", label=label)
        axis.set_title(header)
        axis.set_xlabel("training step")
        axis.set_ylabel("validation accuracy (%), mean over seeds")
        axis.set_ylim(-2, 102)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

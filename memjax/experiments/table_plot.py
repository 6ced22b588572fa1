"""A trained table's figure: each memory's accuracy (mean ± std over seeds) beside the published
number of the same model, one panel per column of the table's first block."""

from __future__ import annotations

from pathlib import Path

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

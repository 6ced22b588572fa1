"""The SCAN table's figure: exact match by action-sequence length and by command length on the
``length`` split, one line per memory (Lake & Baroni 2018, Figure 4, top)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from etils import epath

from memjax.experiments.definitions import Section
from memjax.experiments.execute import summary_path


def pooled(tables: Sequence[dict[str, list[int]]]) -> dict[int, float]:
    """``{length: [correct, count]}`` tables of several seeds -> ``{length: accuracy %}``."""
    totals: dict[int, list[int]] = {}
    for table in tables:
        for length, (correct, count) in table.items():
            entry = totals.setdefault(int(length), [0, 0])
            entry[0] += correct
            entry[1] += count
    return {n: 100.0 * c / max(total, 1) for n, (c, total) in sorted(totals.items())}


def by_length(section: Section, runs_dir: epath.Path, split: str = "length") -> dict[str, dict]:
    """Row label -> ``{"actions": {n: %}, "words": {n: %}}`` pooled over the seeds of the
    ``split`` column's finished runs (rows without any are left out)."""
    if split not in section.columns:
        return {}
    column = section.columns.index(split)
    curves = {}
    for row in section.rows:
        reports = []
        for run in row.cells[column].runs:
            path = summary_path(runs_dir, run)
            if path.exists():
                summary = json.loads(path.read_text())
                if "sequence_test" in summary:
                    reports.append(summary["sequence_test"])
        if reports:
            curves[row.label] = {
                "actions": pooled([r["by_target_length"] for r in reports]),
                "words": pooled([r["by_command_length"] for r in reports]),
            }
    return curves


def plot(section: Section, runs_dir: epath.Path, path: Path) -> bool:
    """Write the figure to ``path``; False (nothing written) when no length-split run finished."""
    curves = by_length(section, runs_dir)
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for label, curve in curves.items():
        left.plot(list(curve["actions"]), list(curve["actions"].values()), marker="o", label=label)
        right.plot(list(curve["words"]), list(curve["words"].values()), marker="o", label=label)
    left.set_xlabel("ground-truth action sequence length")
    right.set_xlabel("command length (words)")
    for axis in (left, right):
        axis.set_ylabel("exact match (%), length split test")
        axis.set_ylim(-2, 102)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

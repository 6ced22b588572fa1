"""Collecting ``summary.json`` files into a document: entries, lines, blocks, problems."""

from __future__ import annotations

import dataclasses
import json
import statistics

from etils import epath

from memjax.experiments import published
from memjax.experiments.definitions import Cell, Section
from memjax.experiments.execute import summary_path
from memjax.experiments.runs import PROBLEM_PREFIX


@dataclasses.dataclass(frozen=True)
class Entry:
    """One printed cell: our mean ± std (None when no run finished), and the published value."""

    mean: float | None = None
    std: float | None = None
    seeds: int = 0
    ratio: float | None = None  # to the Transformer (lra_speed)
    status: str | None = None  # why runs are missing: "no data (d1)", "failed (f1)"
    published: published.Value = None
    source: str | None = None


@dataclasses.dataclass(frozen=True)
class Line:
    """A printed row: ours, published (from ``source``) or an analytic baseline."""

    label: str
    kind: str  # "ours", "published" or "analytic"
    entries: tuple[Entry, ...]
    source: str | None = None


@dataclasses.dataclass(frozen=True)
class Block:
    """A section with its numbers filled in, ready to print."""

    title: str
    columns: tuple[str, ...]
    lines: tuple[Line, ...]
    decimals: int
    notes: tuple[str, ...] = ()


@dataclasses.dataclass
class Document:
    """Everything written for one table."""

    name: str
    command: str
    description: str
    blocks: list[Block]
    devices: set[str] = dataclasses.field(default_factory=set)
    problems: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> message

    def problem(self, kind: str, message: str) -> str:
        """``"no data (d1)"``: a numbered note for ``message``, one per distinct message."""
        prefix = PROBLEM_PREFIX[kind]
        labels = [label for label in self.problems if label.startswith(prefix)]
        label = next((x for x in labels if self.problems[x] == message), None)
        if label is None:
            label = f"{prefix}{len(labels) + 1}"
            self.problems[label] = message
        return f"{kind} ({label})"


DECIMALS = {"accuracy": 2, "mse": 4, "count": 0}
"""Decimals printed per section metric: accuracy in %, MSE, whole counts (bytes, tokens/s)."""


def summary_value(summary: dict, field: str, path: epath.Path) -> float:
    """``summary[field]``, a dotted ``field`` reading nested dicts (``sequence_test.x``);
    KeyError naming the file and the field when a run did not record it."""
    value = summary
    for key in field.split("."):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f"{path} has no {field!r} (no {key!r}); expected a run that records it")
        value = value[key]
    return float(value)


def reference_lines(section: Section) -> list[Line]:
    """The published rows and analytic baselines of a section."""
    lines = [
        Line(row.model, "published", tuple(Entry(published=v) for v in row.values), row.source)
        for row in section.references
    ]
    lines += [
        Line(label, "analytic", tuple(Entry(published=v) for v in values))
        for label, values in section.baselines
    ]
    return lines


def collect(
    section: Section, runs_dir: epath.Path, failures: dict[str, tuple[str, str]], doc: Document
) -> Block:
    """Reads every run's summary.json into the section's entries."""
    lines = []
    for row in section.rows:
        entries = []
        for cell in row.cells:
            values, reasons = [], []
            for run in cell.runs:
                path = summary_path(runs_dir, run)
                if path.exists():
                    summary = json.loads(path.read_text())
                    doc.devices.add(str(summary.get("device_kind", "unknown device")))
                    scale = 100.0 if section.metric == "accuracy" else 1.0
                    values.append(scale * summary_value(summary, cell.field, path))
                elif run.name in failures:
                    reasons.append(doc.problem(*failures[run.name]))
            entries.append(_entry(values, len(cell.runs), reasons, cell))
        lines.append(Line(row.label, "ours", tuple(entries)))
    decimals = DECIMALS[section.metric]
    lines += reference_lines(section)
    return Block(section.title, section.columns, tuple(lines), decimals, section.notes)


def _entry(values: list[float], expected: int, reasons: list[str], cell: Cell) -> Entry:
    why = ", ".join(dict.fromkeys(reasons)) or "no summary.json"
    status = None
    if len(values) < expected:
        status = f"{len(values)}/{expected} seeds; {why}" if values else why
    return Entry(
        mean=statistics.mean(values) if values else None,
        std=statistics.stdev(values) if len(values) > 1 else None,
        seeds=len(values),
        status=status,
        published=cell.published,
        source=cell.source,
    )

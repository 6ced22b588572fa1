"""Rendering a document as Markdown, LaTeX (booktabs) and JSON."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from memjax.experiments import published
from memjax.experiments.results import Block, Document, Entry, Line

MARKDOWN = {"pm": "±", "sep": " · ", "times": "×", "none": "–"}
LATEX = {"pm": r"$\pm$", "sep": r" $\cdot$ ", "times": r"$\times$", "none": "--"}


def source_numbers(blocks: Sequence[Block]) -> dict[str, int]:
    """Source key -> its number in the legend, in order of first appearance."""
    keys = [line.source for b in blocks for line in b.lines]
    keys += [e.source for b in blocks for line in b.lines for e in line.entries]
    return {key: i for i, key in enumerate(dict.fromkeys(k for k in keys if k), 1)}


def entry_text(entry: Entry, line: Line, decimals: int, numbers: dict[str, int], sym: dict) -> str:
    """One cell as printed: ``61.20 ± 0.40 · pub. 60.2 [3]``, ``no data (d1)`` or ``FAIL``."""
    if line.kind != "ours":
        return entry.published or sym["none"]
    parts = []
    if entry.mean is not None:
        text = f"{entry.mean:.{decimals}f}"
        if entry.std is not None:
            text += f" {sym['pm']} {entry.std:.{decimals}f}"
        if entry.ratio is not None:
            text += f" ({sym['times']}{entry.ratio:.2f})"
        parts.append(text)
    if entry.status:
        parts.append(entry.status)
    if entry.source:
        parts.append(f"pub. {entry.published or sym['none']} [{numbers[entry.source]}]")
    return sym["sep"].join(parts) or sym["none"]


def line_label(line: Line, numbers: dict[str, int]) -> str:
    """A row's label, marked when its numbers are published or analytic."""
    if line.kind == "published":
        return f"{line.label} (published [{numbers[line.source]}])"
    if line.kind == "analytic":
        return f"{line.label} (analytic)"
    return line.label


def markdown(doc: Document) -> str:
    """The document as GitHub markdown."""
    numbers = source_numbers(doc.blocks)
    out = [f"# Table `{doc.name}`", "", doc.description, "", f"Command: `{doc.command}`", ""]
    out.append(f"Runs on: {', '.join(sorted(doc.devices)) or 'no finished runs'}")
    for block in doc.blocks:
        out += ["", f"## {block.title}", "", "| model | " + " | ".join(block.columns) + " |"]
        out.append("|---|" + "---:|" * len(block.columns))
        for line in block.lines:
            cells = [entry_text(e, line, block.decimals, numbers, MARKDOWN) for e in line.entries]
            out.append(f"| {line_label(line, numbers)} | " + " | ".join(cells) + " |")
        if block.notes:
            out += [""] + [f"- {note}" for note in block.notes]
    out += ["", "## Sources", ""]
    out += [f"{i}. {published.SOURCES[key]}" for key, i in numbers.items()]
    if doc.problems:
        out += ["", "## Missing data and failed runs"]
        for label, message in doc.problems.items():
            out += ["", f"**{label}**:", "", "```", message, "```"]
    return "\n".join(out) + "\n"


def latex_escape(text: str) -> str:
    """Text with LaTeX's special characters escaped."""
    table = {c: "\\" + c for c in "&%$#_{}"}
    table.update({"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"})
    return "".join(table.get(c, c) for c in text)


def latex(doc: Document) -> str:
    """The document as LaTeX tables (needs booktabs); notes and sources follow them."""
    numbers = source_numbers(doc.blocks)
    out = [
        f"% {doc.command}",
        r"% needs \usepackage{booktabs}",
    ]
    for block in doc.blocks:
        out += [r"\begin{table}[ht]", r"\centering\small"]
        out.append(rf"\caption{{{latex_escape(block.title)}}}")
        out.append(r"\begin{tabular}{l" + "r" * len(block.columns) + "}")
        out += [r"\toprule", " & ".join(["Model", *map(latex_escape, block.columns)]) + r" \\"]
        out.append(r"\midrule")
        for line in block.lines:
            cells = [_latex_cell(e, line, block.decimals, numbers) for e in line.entries]
            out.append(" & ".join([latex_escape(line_label(line, numbers)), *cells]) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}"]
        for note in block.notes:
            out.append(r"\par\footnotesize " + latex_escape(note))
        out += [r"\end{table}", ""]
    out.append(r"\paragraph{Sources.}")
    out += [rf"[{i}] {latex_escape(published.SOURCES[key])}\par" for key, i in numbers.items()]
    if doc.problems:
        out += ["", r"\paragraph{Missing data and failed runs.}", r"\begin{verbatim}"]
        out += [f"{label}: {message}" for label, message in doc.problems.items()]
        out.append(r"\end{verbatim}")
    return "\n".join(out) + "\n"


def _latex_cell(entry: Entry, line: Line, decimals: int, numbers: dict[str, int]) -> str:
    """A cell for LaTeX: the markdown text's parts escaped, LaTeX's symbols between them."""
    safe = dataclasses.replace(
        entry,
        status=latex_escape(entry.status) if entry.status else None,
        published=latex_escape(entry.published) if entry.published else None,
    )
    return entry_text(safe, line, decimals, numbers, LATEX)


def to_json(doc: Document) -> str:
    """The document's numbers, for notebooks: blocks, sources and problems."""
    numbers = source_numbers(doc.blocks)
    return json.dumps(
        {
            "name": doc.name,
            "command": doc.command,
            "devices": sorted(doc.devices),
            "blocks": [dataclasses.asdict(block) for block in doc.blocks],
            "sources": {key: published.SOURCES[key] for key in numbers},
            "problems": doc.problems,
        },
        indent=1,
    )

"""PNG plots of probes.json, one figure per probe plus an overview.

Figures are :class:`matplotlib.figure.Figure` objects saved through matplotlib's Agg canvas,
without pyplot: they render headless and leave the backend of the caller (a notebook) alone.
Every panel is drawn from the results dictionary alone (what ``probes.json`` holds), so the
figures can be redrawn from a saved file: ``write_all(json.load(f), out)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

Results = dict[str, Any]
Panel = Callable[[Any, Results], None]
DPI = 110
PANEL = (4.8, 3.6)
"""Inches per panel."""
LOGIT_LIMITS = (1e-3, 1.0 - 1e-5)
LOGIT_TICKS = (0.01, 0.1, 0.5, 0.9, 0.99, 0.999)


def colours(results: Results) -> dict[str, Any]:
    """One colour per mixer, shared by every panel."""
    mixers = list(dict.fromkeys(s["mixer"] for s in results["subjects"]))
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return {m: cycle[i % len(cycle)] for i, m in enumerate(mixers)}


def style(results: Results, label: str) -> dict[str, Any]:
    """Line colour by mixer; dashed for a run's model at initialisation."""
    subject = next(s for s in results["subjects"] if s["label"] == label)
    dashed = subject["run"] and subject["stage"] == "init"
    return {
        "color": colours(results)[subject["mixer"]],
        "linestyle": "--" if dashed else "-",
        "label": label,
    }


def positive(values: list[float]) -> np.ndarray:
    """Values with non-positive entries masked (NaN) for a log axis."""
    v = np.asarray(values, np.float64)
    return np.where(v > 0, v, np.nan)


def draw_flow(ax: Any, results: Results, which: str) -> None:
    """Relative gradient flow (``which`` = "input" or "state") against lag, log scale."""
    for label, flows in results["gradient_flow"].items():
        flow = flows[which]
        if flow is not None:
            ax.plot(flow["lags"], positive(flow["relative"]), **style(results, label))
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-6)
    ax.set_xlabel("lag T - t")
    symbol = "x_t" if which == "input" else "h_t"
    ax.set_ylabel(f"||dy_T / d{symbol}|| / (lag 1)")
    ax.set_title(f"gradient flow to the {which}")


def draw_input_flow(ax: Any, results: Results) -> None:
    """``||d y_T / d x_t||`` against lag."""
    draw_flow(ax, results, "input")


def draw_state_flow(ax: Any, results: Results) -> None:
    """``||d y_T / d h_t||`` against lag (recurrences only)."""
    draw_flow(ax, results, "state")


def draw_recall(ax: Any, results: Results) -> None:
    """Ridge read-out accuracy against lag, chance and horizons."""
    for label, record in results["recall"].items():
        ridge = record["ridge"]
        line = style(results, label)
        ax.plot(ridge["lags"], ridge["accuracy"], **line)
        ax.axvline(ridge["horizon"], color=line["color"], linestyle=":", linewidth=0.8)
    chances = {r["ridge"]["chance"] for r in results["recall"].values()}
    for chance in chances:
        ax.axhline(chance, color="grey", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    ax.set_xlabel("lag (steps between write and read)")
    ax.set_ylabel("accuracy of a linear read-out")
    ax.set_title("recall against lag (dotted: horizon)")


def draw_task_recall(ax: Any, results: Results) -> None:
    """A run's accuracy on its own task against write-read distance."""
    for label, record in results["recall"].items():
        task = record.get("task")
        if task is not None:
            ax.plot(task["lags"], task["accuracy"], marker="o", **style(results, label))
            ax.axhline(task["chance"], color="grey", linewidth=0.8)
    ax.set_xlabel("distance between write and read")
    ax.set_ylabel("task accuracy")
    ax.set_title("recall on the run's task")


def draw_pairs(ax: Any, results: Results) -> None:
    """Key-value pairs recalled against pairs stored, at ``--hidden`` and for MQAR runs."""
    colour = colours(results)
    hidden = results["settings"]["hidden"]
    top = 1
    for record in results["capacity"]:
        if record["hidden"] in (None, hidden):
            ks = record["pairs_per_sequence"]
            top = max(top, ks[-1])
            line = {"color": colour[record["mixer"]], "label": record["label"]}
            ax.plot(ks, record["pairs_recalled"], marker="o", **line)
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8)
    ax.set_xlabel("key-value pairs in the sequence")
    ax.set_ylabel("pairs recalled")
    ax.set_title("associative recall (MQAR; grey: perfect)")


def draw_capacity(ax: Any, results: Results) -> None:
    """Capacity (most pairs recalled) against state bytes: a line per mixer, a point per run."""
    colour = colours(results)
    groups: dict[str, list[dict]] = {}
    for record in results["capacity"]:
        key = record["mixer"] if record["hidden"] is not None else record["label"]
        groups.setdefault(key, []).append(record)
    for name, records in groups.items():
        records = sorted(records, key=lambda r: r["state_bytes"])
        sizes = [r["state_bytes"] for r in records]
        line = {"color": colour[records[0]["mixer"]], "label": name}
        ax.plot(sizes, [r["capacity"] for r in records], marker="o", **line)
    ax.set_xscale("log")
    ax.set_xlabel("state bytes per sequence")
    ax.set_ylabel("pairs recalled (best over loads)")
    ax.set_title("capacity against state size")


def draw_bytes(ax: Any, results: Results) -> None:
    """Memory bytes per sequence against length, log-log."""
    cost = results["memory_bytes"]
    for label, values in cost["bytes"].items():
        ax.plot(cost["lengths"], values, marker=".", **style(results, label))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("sequence length")
    ax.set_ylabel("state bytes per sequence")
    ax.set_title("memory cost against length")


def draw_spectra(ax: Any, results: Results) -> None:
    """Fraction of |a| (|lambda|) per bin on a logit axis, for every linear recurrence."""
    for label, record in results["spectra"].items():
        if record is not None:
            hist = record["histogram"]
            edges = np.clip(hist["edges"], *LOGIT_LIMITS)
            ax.stairs(hist["fraction"], edges, **style(results, label))
    ax.set_xscale("logit")
    ax.set_xlim(*LOGIT_LIMITS)
    ax.set_xticks([*LOGIT_TICKS, LOGIT_LIMITS[1]], [f"{t:g}" for t in LOGIT_TICKS] + ["1"])
    ax.minorticks_off()
    ax.set_xlabel("|a| (|lambda|): state kept per step")
    ax.set_ylabel("fraction of state elements")
    ax.set_title("spectra of linear recurrences")


FIGURES: dict[str, list[Panel]] = {
    "gradient_flow": [draw_input_flow, draw_state_flow],
    "recall": [draw_recall, draw_task_recall],
    "capacity": [draw_pairs, draw_capacity],
    "memory_bytes": [draw_bytes],
    "spectra": [draw_spectra],
}
OVERVIEW: list[Panel] = [
    draw_input_flow,
    draw_state_flow,
    draw_recall,
    draw_pairs,
    draw_bytes,
    draw_spectra,
]


def figure(panels: list[Panel], results: Results, columns: int) -> Figure:
    """A figure of ``panels`` on a grid ``columns`` wide, each with its own legend."""
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(PANEL[0] * columns, PANEL[1] * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        panel(ax, results)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=0.8 / width,
        right=1 - 0.15 / width,
        bottom=0.6 / height,
        top=1 - 0.35 / height,
        wspace=0.35,
        hspace=0.45,
    )
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path``."""
    fig.savefig(path, dpi=DPI)
    return path


def write_all(results: Results, out: str | Path) -> list[Path]:
    """Write every figure and ``overview.png`` into ``out``; returns the paths."""
    out = Path(out)
    has_task = any(r.get("task") for r in results["recall"].values())
    paths = []
    for name, panels in FIGURES.items():
        if name == "recall" and not has_task:
            panels = panels[:1]
        paths.append(save(figure(panels, results, len(panels)), out / f"{name}.png"))
    paths.append(save(figure(OVERVIEW, results, 3), out / "overview.png"))
    return paths

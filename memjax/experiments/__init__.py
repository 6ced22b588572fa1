"""Experiments: paper tables and comparisons, our runs beside the published numbers.

:mod:`~memjax.experiments.runs` names runs (config, overrides, seed -> digest and directory);
:mod:`~memjax.experiments.definitions` expands the trained tables into sections of runs;
:mod:`~memjax.experiments.execute` launches the missing ones (here, as subprocesses, on VMs);
:mod:`~memjax.experiments.results` collects their summaries into a document, which
:mod:`~memjax.experiments.render` writes as Markdown, LaTeX and JSON;
:mod:`~memjax.experiments.speed` measures ``lra_speed``; :mod:`~memjax.experiments.published`
holds the published numbers and their sources; :mod:`~memjax.experiments.compare` is
``memjax compare``; :mod:`~memjax.experiments.cli` is ``memjax table``.
"""

from memjax.experiments.cli import main, parse
from memjax.experiments.definitions import TABLES, all_runs, lra, synthetic
from memjax.experiments.results import Document, Entry
from memjax.experiments.runs import Plan, Run
from memjax.experiments.speed import measure_speed

__all__ = [
    "TABLES",
    "Document",
    "Entry",
    "Plan",
    "Run",
    "all_runs",
    "lra",
    "main",
    "measure_speed",
    "parse",
    "synthetic",
]

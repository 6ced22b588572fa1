"""Session settings: the slowest test files are collected first.

``make test`` runs two xdist workers. When a long test (a subprocess training run) is left for
the end, one worker runs it alone while the other idles; started first, the long tests overlap
and the short ones fill in around them.
"""

from __future__ import annotations

import jax
import pytest

SLOW_FIRST = (
    "test_train.py",
    "test_tables.py",
    "test_run_safety.py",
    "test_compare.py",
    "test_notebook_memory.py",
    "test_notebook_results.py",
    "test_probes.py",
    "test_scan_training.py",
    "test_seq2seq.py",
    "test_tables_reproduce.py",
    "test_run_setup.py",
    "test_cells_linear.py",
    "test_kernels.py",
    "test_bench.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def x64():
    """``jax_enable_x64`` on for one test, restored afterwards."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)

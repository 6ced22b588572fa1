"""Recurrent memory cells, one file per family, behind one registry.

``memjax.cells.get("lstm", hidden=256)`` builds a cell; ``memjax.cells.names()`` lists them.
"""

from memjax.cells import gru, lstm, rnn
from memjax.cells.base import Cell, LinearCell, Memory
from memjax.cells.registry import get, lookup, names, register

__all__ = [
    "Cell",
    "LinearCell",
    "Memory",
    "get",
    "gru",
    "lookup",
    "lstm",
    "names",
    "register",
    "rnn",
]

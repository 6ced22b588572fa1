"""Recurrent memory cells, one file per family, behind one registry.

``memjax.cells.get("lstm", hidden=256)`` builds a cell; ``memjax.cells.names()`` lists them.
"""

from memjax.cells import gru, linear_attention, lru, lstm, mingru, rnn, s4d, ssm
from memjax.cells.base import Cell, LinearCell, Memory
from memjax.cells.registry import get, lookup, names, register

__all__ = [
    "Cell",
    "LinearCell",
    "Memory",
    "get",
    "gru",
    "linear_attention",
    "lookup",
    "lru",
    "lstm",
    "mingru",
    "names",
    "register",
    "rnn",
    "s4d",
    "ssm",
]

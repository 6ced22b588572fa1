"""Kinds of parameter, tagged where a parameter is created, so the optimiser can group them.

``nnx.Param`` subclasses: a model creates each parameter as the kind it is, and
:mod:`memjax.optim` selects the kinds with NNX filters. A memory declares which of its keys are
which (``Memory.recurrence_params``, ``Memory.table_params``); :class:`memjax.models.Mixer` makes
them these kinds.
"""

from __future__ import annotations

from flax import nnx


class RecurrenceParam(nnx.Param):
    """A parameter that sets a recurrence itself (LRU's and S5's eigenvalues, S5's step sizes):
    its own learning rate (``optim.recurrence_lr``), no weight decay."""


class TableParam(nnx.Param):
    """A lookup table (learned positions): no weight decay, like the token embedding."""

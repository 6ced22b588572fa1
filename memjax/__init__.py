"""memjax: recurrent and attention memories compared under one roof."""

from memjax import attention, cells, data, h3, tasks
from memjax.scan import bidirectional, scan

__version__ = "0.1.0"

__all__ = ["attention", "bidirectional", "cells", "data", "h3", "scan", "tasks"]

"""Tasks: the Long Range Arena tasks and synthetic memory tasks behind one interface.

task = memjax.tasks.get("listops", **options)   # memjax.tasks.names() lists them
task.spec                                       # TaskSpec: vocabulary, length, target, ...
src = task.source("train")                      # len(src), src[i] -> dict of numpy
"""

from memjax.tasks.registry import get, names, options
from memjax.tasks.spec import SPLITS, Source, Task, TaskSpec

__all__ = ["SPLITS", "Source", "Task", "TaskSpec", "get", "names", "options"]

"""Memory probes: how far back each memory reaches, how gradients reach back, what it costs.

``memjax probe --mixers lstm,lru,attention --out DIR`` (:func:`main`) runs every probe on
memories at initialisation, or on the trained model of a run (``--workdir RUN``), and writes
``DIR/probes.json`` plus PNG plots. One concept per module:

* :mod:`~memjax.probes.subjects`: what is probed (a layer, a small model, a run's model);
* :mod:`~memjax.probes.gradient`: ``||d y_T / d x_t||`` and ``||d y_T / d h_t||`` against lag;
* :mod:`~memjax.probes.ridge`: the closed-form linear read-out every recall probe fits;
* :mod:`~memjax.probes.recall`: read-out accuracy against lag, memory horizon and capacity;
* :mod:`~memjax.probes.task_recall`: a trained copy / MQAR run on its own task;
* :mod:`~memjax.probes.capacity`: key-value pairs recalled against state size, bytes vs length;
* :mod:`~memjax.probes.spectra`: the distribution of ``|lambda|`` (``|a_t|``) of linear cells;
* :mod:`~memjax.probes.plots`: the figures; :mod:`~memjax.probes.cli`: the command.
"""

from memjax.probes.capacity import associative_capacity, memory_bytes
from memjax.probes.cli import main, run_probes
from memjax.probes.gradient import gradient_flow
from memjax.probes.plots import write_all
from memjax.probes.recall import horizon, ridge_recall
from memjax.probes.spectra import spectrum
from memjax.probes.subjects import Subject, build_memory, layer, run, small_model

__all__ = [
    "Subject",
    "associative_capacity",
    "build_memory",
    "gradient_flow",
    "horizon",
    "layer",
    "main",
    "memory_bytes",
    "ridge_recall",
    "run",
    "run_probes",
    "small_model",
    "spectrum",
    "write_all",
]

"""``memjax launch``: a memjax command on a Cloud TPU or GPU VM made for it (see launch/README.md).

:mod:`~memjax.launch.gcloud` builds every gcloud command, :mod:`~memjax.launch.remote` the
scripts that run on the VM, :mod:`~memjax.launch.steps` runs the steps (retries, polling, the
delete) and :mod:`~memjax.launch.cli` parses the command line into a :class:`Job` and submits it.
"""

from memjax.launch.cli import Job, main, make_job, parse, parse_options, source_root, submit
from memjax.launch.steps import request_stop, sigterm_interrupts, stop_signal

__all__ = [
    "Job",
    "main",
    "make_job",
    "parse",
    "parse_options",
    "request_stop",
    "sigterm_interrupts",
    "source_root",
    "stop_signal",
    "submit",
]

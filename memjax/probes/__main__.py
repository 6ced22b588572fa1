"""``python -m memjax.probes ...`` runs ``memjax probe ...``."""

from memjax.probes.cli import main

main()

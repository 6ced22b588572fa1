"""memjax's configs: one file per task, ``get_config("VARIANT[,SCALE]")`` (see memjax/config.py).

Installed with the package as ``memjax/configs`` (a link to this folder in a checkout), so
``memjax train --config configs/mqar.py:lstm`` finds them from any directory.
"""

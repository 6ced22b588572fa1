"""memjax: recurrent and attention memories compared under one roof."""

__version__ = "0.1.0"

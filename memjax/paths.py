"""Paths a user gives: local ones made absolute once, URLs (``gs://...``) left as they are.

Orbax (through TensorStore) refuses relative checkpoint paths, and a relative path read after a
``chdir`` (subprocesses, notebooks) would name another folder. So every entry point turns the
paths it is given into absolute ones before anything else sees them::

    resolve("runs/x")         -> "/current/dir/runs/x"
    resolve("~/data")         -> "/home/me/data"
    resolve("gs://bucket/x")  -> "gs://bucket/x"
"""

from __future__ import annotations

import os
import re

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a scheme (``gs://``, ``s3://``, ``file://`` ...)."""
    return bool(_URL.match(os.fspath(path)))


def resolve(path: str | os.PathLike) -> str:
    """``path`` as an absolute local path (``~`` expanded, symlinks kept), or the URL unchanged.

    Raises ValueError for an empty path, which would otherwise mean the current directory.
    """
    text = os.fspath(path)
    if not text:
        raise ValueError("path must not be empty; expected a local folder or a gs:// URL")
    if is_url(text):
        return text
    return os.path.abspath(os.path.expanduser(text))

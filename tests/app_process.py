"""Start the real app for tests, with a throw-away classroom database and cache."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator

from benchmarks.server import AppServer, free_port

__all__ = ["running_app", "free_port"]


@contextmanager
def running_app(env: dict[str, str] | None = None) -> Iterator[str]:
    """Yield the URL of ``python app.py`` started with ``env`` added; stop it afterwards."""
    scratch = tempfile.mkdtemp(prefix="gauntlet-test-app-")
    defaults = {"GAUNTLET_CLASSROOM_DB": os.path.join(scratch, "classroom.sqlite3"),
                "GAUNTLET_CACHE_DIR": os.path.join(scratch, "cache")}
    with AppServer({**defaults, **(env or {})}) as server:
        yield server.url

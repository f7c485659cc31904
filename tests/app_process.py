"""Start the real app for tests, with a throw-away classroom database and cache."""
from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

from benchmarks.server import AppServer, free_port

__all__ = ["running_app", "free_port", "wait_for_status"]


@contextmanager
def running_app(env: dict[str, str] | None = None) -> Iterator[str]:
    """Yield the URL of ``python app.py`` started with ``env`` added; stop it afterwards."""
    scratch = tempfile.mkdtemp(prefix="gauntlet-test-app-")
    defaults = {"GAUNTLET_CLASSROOM_DB": os.path.join(scratch, "classroom.sqlite3"),
                "GAUNTLET_CACHE_DIR": os.path.join(scratch, "cache")}
    with AppServer({**defaults, **(env or {})}) as server:
        yield server.url


def wait_for_status(job, *names: str, timeout: float = 60.0) -> None:
    """Wait until a ``gradio_client`` job reports one of the statuses ``names`` (e.g. "IN_QUEUE")."""
    deadline = time.monotonic() + timeout
    while job.status().code.name not in names:
        if job.done() or time.monotonic() > deadline:
            raise AssertionError(f"the job never reached {names}: it is {job.status().code.name}")
        time.sleep(0.05)

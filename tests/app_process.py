"""Start the real app (``python app.py``) in a subprocess on a free loopback port, for tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(env: dict[str, str] | None = None, timeout_s: float = 120.0) -> Iterator[str]:
    """Yield the URL of ``python app.py`` started with ``env`` added; stop it afterwards."""
    port = free_port()
    scratch = tempfile.mkdtemp(prefix="gauntlet-app-")
    full_env = {**os.environ, "GAUNTLET_HOST": "127.0.0.1", "GAUNTLET_PORT": str(port),
                "GAUNTLET_CLASSROOM_DB": os.path.join(scratch, "classroom.sqlite3"),
                "GAUNTLET_CACHE_DIR": os.path.join(scratch, "cache"), **(env or {})}
    log = open(Path(full_env.get("GAUNTLET_APP_LOG", os.devnull)), "w")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO_ROOT, env=full_env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with code {process.returncode}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"app.py did not answer on {url} within {timeout_s:.0f} s")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

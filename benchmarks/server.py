"""Run the real app (``python app.py``) in a child process on 127.0.0.1 and a free port.

Shared by the load benchmark and the end-to-end tests, so that they all drive
the app exactly as a user starts it. The child only ever listens on the
loopback interface, whatever the caller's environment says.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")  # for the browser tests and scripts/readme_screenshot.py
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        return _proc_rss(pid)
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def _proc_rss(pid: int) -> int:
    """VmRSS of ``pid`` and of its descendants (an explanation process, say), from /proc."""
    return sum(_own_rss(p) for p in [pid, *_descendants(pid)])


def _own_rss(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # it ended meanwhile
        return 0
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith("VmRSS:")), 0)


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found, frontier = found + children, children
    return found


class AppServer:
    """``with AppServer(env) as server:`` starts the app, waits until it answers, stops it on exit."""

    def __init__(self, env: dict[str, str] | None = None, startup_timeout: float = 180.0,
                 repo: Path = REPO_ROOT) -> None:
        self.repo = repo  # the checkout whose app.py runs (a fresh clone in the newcomer test)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, **(env or {}), "GAUNTLET_HOST": "127.0.0.1", "GAUNTLET_PORT": str(self.port),
                    "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        self.startup_timeout = startup_timeout
        self.log = tempfile.NamedTemporaryFile("w+", prefix="gauntlet-app-", suffix=".log", delete=False)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "AppServer":
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=self.repo, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The app did not start (exit code {self.process.returncode}):\n{self.log_text()}")
            time.sleep(0.5)
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.stop()
        if exc_type is None:  # keep the log of a failed run for whoever reads the error
            Path(self.log.name).unlink(missing_ok=True)

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def log_text(self) -> str:
        """Everything the app printed so far."""
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        """Terminate the app (SIGTERM: Ctrl-C makes Gradio wait for open connections), kill it after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _answers(self) -> bool:
        try:
            with _LOCAL.open(self.url + "gradio_api/info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

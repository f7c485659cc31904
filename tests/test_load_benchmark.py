"""benchmarks.load's driving loop: requests in turn until the deadline, and think time between them."""
from __future__ import annotations

import random
import threading
import time
from types import SimpleNamespace

from benchmarks.load import User, drive, summarise


class CountingUser(SimpleNamespace):
    """Stands for a gradio client: records requests and the pauses a person would make between them."""

    pause = User.pause

    def request(self, kind: str) -> None:
        self.done.append(kind)
        if kind == "explained":
            raise RuntimeError("no verdict in the answer")


def test_users_pause_between_requests_only_when_asked():
    samples, lock = [], threading.Lock()
    busy = CountingUser(done=[], think=0.0, pauses=random.Random(0))
    drive(busy, ["verdict", "explained"], time.monotonic(), time.monotonic() + 0.05, samples, lock)
    assert len(busy.done) > 4 and busy.done[:2] == ["verdict", "explained"], "no think time: back-to-back requests"
    thoughtful = CountingUser(done=[], think=10.0, pauses=random.Random(0))
    drive(thoughtful, ["verdict"], time.monotonic(), time.monotonic() + 0.05, [], lock)
    assert thoughtful.done == ["verdict"], "a pause never runs past the deadline, and no request starts after it"
    table = summarise(samples)
    assert table["explained"]["errors"] == table["explained"]["requests"] > 0 and table["verdict"]["errors"] == 0


def test_server_memory_counts_its_child_processes():
    """An explanation process is part of what the app costs: the memory watch adds it (with or without psutil)."""
    import os
    import subprocess
    import sys

    from benchmarks.server import _own_rss, _proc_rss

    child = subprocess.Popen([sys.executable, "-c", "import sys, time; x = bytearray(100 * 2 ** 20); "
                              "x[::4096] = b'1' * len(x[::4096]); print(flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # its memory is allocated and touched
        assert _proc_rss(os.getpid()) - _own_rss(os.getpid()) >= 100 * 2 ** 20
    finally:
        child.kill()

"""Where explanations compute: on a low-priority thread of the app's process, or in a low-priority process of
their own.

An explanation keeps a CPU core busy for seconds and, between its many small tensor operations, takes Python's
global lock again and again. On a thread with a raised nice value (the default) it gets the CPU after verdicts;
in a separate process (``GAUNTLET_EXPLAIN_PROCESS=1``) it does not hold the app's lock either. The process holds
its own copy of the model; a request sends the prepared input and gets the explanation (and its faithfulness
scores) back. The load benchmark measured the process 0.07-0.26 s better on the verdicts' p95 for 0.8-1.0 GiB
more memory (README, "Robustness, load and security"), so the thread is the default.
"""
from __future__ import annotations

import contextvars
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

import torch

from .checkpoint import Checkpoint
from .detector import Detector, ModelInput
from .errors import UserError
from .explain import ExplainerSet
from .explain.base import Explanation
from .explain.faithfulness import Faithfulness, explanation_faithfulness

log = logging.getLogger(__name__)
EXPLAIN_NICENESS = 10  # added to explanation threads' and processes' nice value: a waiting verdict goes first


class Job(NamedTuple):
    """One method to run on a prepared input (``done``: an explanation already made, to score only)."""

    method: str
    variant: str
    layers: str
    prepared: ModelInput
    target: int
    time_limit_s: float | None
    faithfulness: bool
    done: Explanation | None = None


def run_job(explainers: ExplainerSet, job: Job) -> tuple[Explanation, Faithfulness | None]:
    """The explanation of ``job`` (made now unless given) and, when asked, its deletion/insertion scores."""
    explanation = job.done or explainers.get(job.method, job.variant, job.layers).explain(
        job.prepared, target=job.target, time_limit_s=job.time_limit_s)
    scores = explanation_faithfulness(explainers.detector, explanation, prepared=job.prepared) \
        if job.faithfulness else None
    return explanation, scores


def lower_priority() -> None:
    """Make the calling thread, and threads it starts, yield the CPU to the rest of the process (a per-thread
    nice value on Linux; elsewhere, or where not allowed, it keeps its priority)."""
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + EXPLAIN_NICENESS))
    except (AttributeError, OSError):
        log.info("Explanations run at normal priority (no per-thread nice value here)")


class ThreadWorker:
    """Runs jobs on one low-priority thread of this process, on ``explainers``' model copy."""

    def __init__(self, explainers: ExplainerSet, name: str) -> None:
        self.explainers = explainers
        self._thread = ThreadPoolExecutor(1, name, lower_priority)

    def run(self, job: Job) -> tuple[Explanation, Faithfulness | None]:
        """Run ``job`` and wait for it (with the caller's context, so gradio's progress bar follows)."""
        context = contextvars.copy_context()
        return self._thread.submit(context.run, run_job, self.explainers, job).result()


_CHILD: ExplainerSet | None = None  # the explainers of a worker process, built once when it starts


def _start_child(checkpoint: Checkpoint, threads: int) -> None:
    global _CHILD
    lower_priority()
    torch.set_num_threads(threads)
    _CHILD = ExplainerSet(Detector(checkpoint))


def _run_in_child(job: Job) -> tuple[Explanation, Faithfulness | None]:
    return run_job(_CHILD, job)


class ProcessWorker:
    """Runs jobs in a low-priority process of its own, on a copy of ``checkpoint`` (loaded once, when it starts).

    The process is started with ``spawn`` (no inherited threads or locks); if it dies (out of memory, say), the
    request gets a message in words and the next one starts a new process.
    """

    def __init__(self, checkpoint: Checkpoint, name: str) -> None:
        self.name, self._checkpoint = name, checkpoint
        self._lock = threading.Lock()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), _start_child,
                                   (self._checkpoint, torch.get_num_threads()))

    def run(self, job: Job) -> tuple[Explanation, Faithfulness | None]:
        pool = self._pool
        try:
            return pool.submit(_run_in_child, job).result()
        except BrokenProcessPool:
            log.exception("The explanation process of %s stopped; starting a new one", self.name)
            with self._lock:
                if self._pool is pool:
                    self._pool = self._start()
            raise UserError("The explanation stopped unexpectedly (the server may be short of memory). "
                            "Please try again.") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

"""Load test: N simulated users drive the real app on 127.0.0.1 for a fixed time.

    python -m benchmarks.load [--clients 20] [--duration 120] [--ramp-up 10] [--examples 4] [--own-share 0.25]
                              [--workers N] [--think S] [--json OUT]

The app runs as a child process (``python app.py``, see :mod:`benchmarks.server`)
on a free loopback port. Each user is a ``gradio_client.Client`` (its own
session) that loops over three kinds of request until the time is up: the
verdict alone (``/predict``, what an upload triggers), the Analyse button
(``/analyse`` with the default fast explanations), and a quiz round (guess,
reveal, next image) when a quiz deck is playable. Every request has a
timeout, so the run always ends. By default users click again the moment an
answer arrives (a closed loop with no think time: each user always has one
request in flight, so latency is about ``clients / throughput``); ``--think S``
makes each user look at every answer for S seconds on average first, as people do.

Uploads are what a class sends: every user clicks through the same few example
images (``--examples``, in the same order, as a teacher would ask), and a share
of uploads (``--own-share``) is each visitor's own photo, new every time, which
no cache has seen. ``--workers`` sets the app's explanation workers
(``GAUNTLET_CONCURRENCY``: one model copy and one torch thread each). The report gives p50/p95/max latency and
errors per kind, and the server's resident memory (start, peak, end) and how
much Gradio's upload/output cache grew.

The model is the bundled default when ``checkpoints/`` has one, else (or with
``--random ARCHITECTURE``) a random-weight model at its real input size: same
compute as a trained one; the verdicts are meaningless, the timings are not.
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

from benchmarks.server import AppServer, rss_bytes
from gauntlet.checkpoint import CheckpointConfig, save_checkpoint
from gauntlet.models import build_model, get_architecture
from gauntlet.explain import default_methods
from gauntlet.service import default_bundled_model
from gauntlet.settings import get_settings

REQUEST_TIMEOUT_S = 120.0
DEFAULT_RAMP_UP_S = 10.0  # visitors arrive over this many seconds (run() and the command line alike)
DEFAULT_EXAMPLES = 4  # the detector tab shows four examples (two per class)
DEFAULT_OWN_SHARE = 0.25  # one upload in four is a visitor's own photo
OWN_SEEDS_PER_USER = 100_000  # user i's own photos use seeds from (i + 1) * this on: never an example's, never shared
FAST_METHODS = default_methods()


@dataclass
class Sample:
    """One request: its kind, how long it took end to end, and the error text if it failed."""

    kind: str
    seconds: float
    error: str = ""


def make_images(folder: Path, count: int = 8) -> list[Path]:
    """Distinct photo-sized JPEGs (smooth colours plus noise), generated, never copied from data."""
    return [make_photo(folder / f"load_{seed}.jpg", seed) for seed in range(count)]


def make_photo(path: Path, seed: int) -> Path:
    """One photo-sized JPEG (640x480 or 512x512), different for every ``seed``."""
    rng = np.random.RandomState(seed)
    height, width = (480, 640) if seed % 2 else (512, 512)
    base = np.linspace(0, 255, width)[None, :, None] * rng.rand(1, 1, 3) + rng.rand(height, 1, 3) * 60
    pixels = np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def pick_model(work: Path, checkpoints: Path | None, architecture: str | None) -> tuple[Path, str]:
    """The checkpoints folder and model to use: a random ``architecture`` when given, else the bundled
    default of ``checkpoints`` (the app's folder by default), else a random EfficientNet-Lite0."""
    folder = checkpoints or get_settings().checkpoints_dir
    name = default_bundled_model(folder)
    if name and not architecture:
        return folder, name
    return work / "checkpoints", random_checkpoint(work / "checkpoints", architecture or "efficientnet_lite0")


def random_checkpoint(folder: Path, architecture: str) -> str:
    """Save a random-weight model as a checkpoint folder; returns its name."""
    size = get_architecture(architecture).default_input_size
    save_checkpoint(build_model(architecture, size), CheckpointConfig(architecture=architecture, input_size=size,
                                                                      name=f"random-{architecture}"), folder / "random")
    return "random"


class MemoryWatch(threading.Thread):
    """Samples the server's RSS every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[int] = [rss_bytes(pid)]
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.samples.append(rss_bytes(self.pid))
            except (OSError, ValueError):
                return

    def stop(self) -> dict[str, float]:
        self._stop_event.set()
        self.join(timeout=5)
        mib = [s / 2 ** 20 for s in self.samples]
        return {"start_mib": round(mib[0], 1), "peak_mib": round(max(mib), 1), "end_mib": round(mib[-1], 1)}


class User:
    """One simulated visitor with its own gradio session.

    It uploads the class's ``examples`` in turn, except that with probability ``own_share`` an upload is
    its own new photo (written to ``own_folder``; seeds from ``own_seed`` on, distinct for every user).
    """

    def __init__(self, url: str, model: str, examples: list[Path], deck: str | None, own_folder: Path | None = None,
                 own_share: float = 0.0, own_seed: int = 0, think: float = 0.0) -> None:
        self.client = Client(url, verbose=False, httpx_kwargs={"trust_env": False})
        self.model, self.images, self.deck = model, itertools.cycle(examples), deck
        self.own_folder, self.own_share, self.own_seed = own_folder, own_share, own_seed
        self.chance = random.Random(own_seed)
        self.think, self.pauses = think, random.Random(f"think:{own_seed}")
        self.saved: dict | None = None

    def next_image(self) -> str:
        """The next example, or (with probability ``own_share``) a photo of the visitor's own."""
        if self.own_folder is None or self.chance.random() >= self.own_share:
            return str(next(self.images))
        self.own_seed += 1
        return str(make_photo(self.own_folder / f"own_{self.own_seed}.jpg", self.own_seed))

    def call(self, *args, api_name: str):
        return self.client.submit(*args, api_name=api_name).result(timeout=REQUEST_TIMEOUT_S)

    def verdict(self) -> None:
        """What an upload triggers: ``/predict``, the verdict alone (its own concurrency group)."""
        _check_label(self.call(handle_file(self.next_image()), self.model, api_name="/predict")[1])

    def explained(self) -> None:
        """The Analyse button: ``/analyse`` with the default methods, fast variants."""
        _check_label(self.call(handle_file(self.next_image()), self.model, FAST_METHODS, "fast", "last", False,
                               api_name="/analyse")[1])

    def quiz_round(self) -> None:
        """Guess, see the reveal, move on; start a new game when the deck is finished."""
        if self.saved is None:
            self.saved = self.call(self.deck, self.model, "score_cam", api_name="/quiz_start")[0]
        self.saved = self.call(self.saved, "score_cam", api_name="/quiz_guess_real")[0]
        if self.call(self.saved, "score_cam", api_name="/quiz_show")[1] is None:
            self.saved = None

    def pause(self, deadline: float) -> None:
        """What a person does between clicks: look at the answer for ``think`` seconds on average (0.5-1.5 x)."""
        if self.think:
            time.sleep(min(self.pauses.uniform(0.5, 1.5) * self.think, max(0.0, deadline - time.monotonic())))

    def request(self, kind: str) -> None:
        {"verdict": self.verdict, "explained": self.explained, "quiz_round": self.quiz_round}[kind]()


def _check_label(label: dict) -> None:
    if label.get("label") not in ("REAL", "FAKE"):
        raise RuntimeError(f"no verdict in the answer: {label}")


def drive(user: User, kinds: list[str], start_at: float, deadline: float, samples: list[Sample],
          lock: threading.Lock) -> None:
    """From ``start_at``, issue requests round-robin over ``kinds`` until ``deadline``; record each one."""
    time.sleep(max(0.0, start_at - time.monotonic()))
    for kind in itertools.cycle(kinds):
        if time.monotonic() >= deadline:
            return
        start, error = time.perf_counter(), ""
        try:
            user.request(kind)
        except Exception as err:  # noqa: BLE001 - a failed request is a result to count, not a crash
            error = f"{type(err).__name__}: {err}"[:200]
        with lock:
            samples.append(Sample(kind, time.perf_counter() - start, error))
        user.pause(deadline)


def summarise(samples: list[Sample]) -> dict[str, dict]:
    """Per kind: count, errors (and the first few messages), p50, p95 and max latency in seconds."""
    table = {}
    for kind in sorted({s.kind for s in samples}):
        rows = [s for s in samples if s.kind == kind]
        ok = np.array([s.seconds for s in rows if not s.error]) if any(not s.error for s in rows) else np.zeros(1)
        errors = [s.error for s in rows if s.error]
        table[kind] = {"requests": len(rows), "errors": len(errors), "error_examples": sorted(set(errors))[:3],
                       "p50_s": round(float(np.percentile(ok, 50)), 3), "p95_s": round(float(np.percentile(ok, 95)), 3),
                       "max_s": round(float(ok.max()), 3)}
    return table


def folder_size(folder: Path) -> dict[str, float]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {"files": len(files), "mib": round(sum(p.stat().st_size for p in files) / 2 ** 20, 1)}


def playable_deck(user: User, deck: str) -> str | None:
    """``deck`` if the app can start a game with it (the quiz needs its image data)."""
    try:
        user.call(deck, user.model, "score_cam", api_name="/quiz_start")
        return deck
    except Exception:  # noqa: BLE001 - no quiz endpoint or no data: the run goes on without quiz rounds
        return None


def run(clients: int, duration: float, checkpoints: Path | None, architecture: str | None, deck: str,
        ramp_up: float = DEFAULT_RAMP_UP_S, examples: int = DEFAULT_EXAMPLES, own_share: float = DEFAULT_OWN_SHARE,
        workers: int | None = None, think: float = 0.0) -> dict:
    """Start the app, drive it with ``clients`` users for ``duration`` seconds, stop it, report.

    ``workers``: the app's explanation workers (``GAUNTLET_CONCURRENCY``; None keeps the app's setting).
    """
    with tempfile.TemporaryDirectory(prefix="gauntlet-load-") as folder:
        work = Path(folder)
        checkpoints, model = pick_model(work, checkpoints, architecture)
        env = {"GAUNTLET_CHECKPOINTS_DIR": str(checkpoints), "GAUNTLET_CACHE_DIR": str(work / "cache"),
               "GAUNTLET_CLASSROOM_DB": str(work / "classroom.sqlite3"), "GRADIO_TEMP_DIR": str(work / "gradio")}
        if workers:
            env["GAUNTLET_CONCURRENCY"] = str(workers)
        with AppServer(env) as server:
            watch = MemoryWatch(server.pid)
            watch.start()
            samples, kinds = drive_all(server.url, model, make_images(work, examples), deck, clients, duration,
                                       ramp_up, own_share, work, think)
            memory = watch.stop()
            log = server.log_text()
        return {"clients": clients, "duration_s": duration, "ramp_up_s": ramp_up, "model": model, "kinds": kinds,
                "examples": examples, "own_share": own_share, "think_s": think,
                "workers": workers or get_settings().concurrency_limit,
                "latency": summarise(samples), "server_memory": memory, "gradio_cache": folder_size(work / "gradio"),
                "traceback_in_server_log": "Traceback" in log, "first_traceback": first_traceback(log),
                "samples": [asdict(s) for s in samples]}


def first_traceback(log: str) -> str:
    """The server log's first traceback: its innermost frames and the exception line(s), or ''."""
    start = log.find("Traceback")
    if start < 0:
        return ""
    lines = log[start:].splitlines()
    end = next((i for i, line in enumerate(lines[1:], 1) if not line.startswith((" ", "\t"))), len(lines))
    return "\n".join(lines[max(1, end - 12):end + 3])


def drive_all(url: str, model: str, images: list[Path], deck: str, clients: int, duration: float,
              ramp_up: float = 0.0, own_share: float = 0.0, own_folder: Path | None = None, think: float = 0.0
              ) -> tuple[list[Sample], list[str]]:
    """Run ``clients`` users in threads until ``duration`` has passed; each starts at a different kind.

    User ``i`` starts ``i * ramp_up / clients`` seconds in (visitors arrive over time, as load tools
    spawn them); ``ramp_up=0`` starts everyone at the same instant. Users upload ``images`` in turn, and
    with probability ``own_share`` a new photo of their own, written to ``own_folder``.
    """
    users = [User(url, model, images, deck, own_folder, own_share, (i + 1) * OWN_SEEDS_PER_USER, think)
             for i in range(clients)]
    kinds = ["verdict", "explained"] + (["quiz_round"] if playable_deck(users[0], deck) else [])
    samples: list[Sample] = []
    lock, start = threading.Lock(), time.monotonic()
    deadline = start + duration
    threads = [threading.Thread(target=drive, args=(user, kinds[i % len(kinds):] + kinds[:i % len(kinds)],
                                                    start + i * ramp_up / clients, deadline, samples, lock),
                                daemon=True)
               for i, user in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_S + 30)
    return samples, kinds


def print_report(result: dict) -> None:
    print(f"\n{result['clients']} clients for {result['duration_s']:.0f} s (arriving over the first "
          f"{result['ramp_up_s']:.0f} s), model {result['model']}, {result['workers']} explanation worker(s); "
          f"uploads: {result['examples']} shared examples, {result['own_share']:.0%} own photos; "
          f"think time {result.get('think_s', 0):g} s")
    print(f"{'kind':<12}{'requests':>9}{'errors':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}")
    for kind, row in result["latency"].items():
        print(f"{kind:<12}{row['requests']:>9}{row['errors']:>8}{row['p50_s']:>8}{row['p95_s']:>8}{row['max_s']:>8}")
        for example in row["error_examples"]:
            print(f"    error: {example}")
    memory, cache = result["server_memory"], result["gradio_cache"]
    print(f"server RSS MiB: start {memory['start_mib']}, peak {memory['peak_mib']}, end {memory['end_mib']}")
    print(f"gradio cache after the run: {cache['files']} files, {cache['mib']} MiB; "
          f"traceback in server log: {result['traceback_in_server_log']}")
    if result["first_traceback"]:
        print(result["first_traceback"])


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (requests then finish)")
    parser.add_argument("--ramp-up", type=float, default=DEFAULT_RAMP_UP_S, help="seconds over which the clients arrive "
                        "(0: all at the same instant)")
    parser.add_argument("--checkpoints", type=Path, help="folder of checkpoints (default: the app's)")
    parser.add_argument("--random", metavar="ARCHITECTURE", help="use a random-weight model of this architecture")
    parser.add_argument("--deck", default="tiny_images", help="quiz deck for quiz rounds")
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES,
                        help="example images the whole class uploads in turn")
    parser.add_argument("--own-share", type=float, default=DEFAULT_OWN_SHARE,
                        help="share of uploads that are a visitor's own new photo (never cached)")
    parser.add_argument("--workers", type=int, help="explanation workers (GAUNTLET_CONCURRENCY; default: the app's)")
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds each user waits between requests, on average (0: none, every user clicks "
                             "again the moment an answer arrives)")
    parser.add_argument("--json", type=Path, help="write the full result (with every sample) here")
    return parser


def main(args: argparse.Namespace) -> dict:
    result = run(args.clients, args.duration, args.checkpoints, args.random, args.deck, args.ramp_up, args.examples,
                 args.own_share, args.workers, args.think)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())

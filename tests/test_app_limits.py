"""The running app enforces the limits set in the environment, says so in words, and serves no stray files.

One app process is started with tight limits (0.1 MB uploads, 40,000 pixels,
one job at a time, a queue of one, 5 s per explanation) and driven over HTTP and
``gradio_client``. What a browser user sees when the queue is full is checked in
test_browser.py.
"""
from __future__ import annotations

import http.client
import io
import urllib.parse
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError
from PIL import Image

from app_process import wait_for_status
from benchmarks.server import REPO_ROOT, AppServer
from conftest import make_checkpoint

LIMITS = {"GAUNTLET_MAX_UPLOAD_MB": "0.1", "GAUNTLET_MAX_PIXELS": "40000", "GAUNTLET_QUEUE_MAX_SIZE": "1",
          "GAUNTLET_CONCURRENCY": "1", "GAUNTLET_ANALYSE_CONCURRENCY": "1", "GAUNTLET_EXPLAIN_TIMEOUT_S": "5"}
MAX_BYTES = int(0.1 * 1024 * 1024)
MANIFEST = "file,label,split,original_name,original_format,original_size,size\n{}\n"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Checkpoint, classroom database and a data root: one example image the app shows, files it must not."""
    root = tmp_path_factory.mktemp("limits")
    make_checkpoint(root / "checkpoints" / "tiny", "efficientnet_lite0", input_size=224)  # full LIME: well over 5 s
    (root / "data" / "rvaa" / "REAL").mkdir(parents=True)
    Image.new("RGB", (64, 48), (10, 120, 200)).save(root / "data" / "rvaa" / "REAL" / "real_0001.jpg")
    (root / "data" / "rvaa" / "manifest.csv").write_text(MANIFEST.format("REAL/real_0001.jpg,REAL,val,a,JPEG,1,1"))
    (root / "data" / "answers.txt").write_text("SECRET quiz answers")
    return root


@pytest.fixture(scope="module")
def server(work):
    env = {**LIMITS, "GAUNTLET_CHECKPOINTS_DIR": str(work / "checkpoints"), "GAUNTLET_DATA_DIR": str(work / "data"),
           "GAUNTLET_CACHE_DIR": str(work / "cache"), "GAUNTLET_CLASSROOM_DB": str(work / "classroom.sqlite3")}
    with AppServer(env) as running:
        yield running


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server.url, verbose=False)


def gradient_png(path, width: int, height: int):
    """A small file (well under the upload limit) with ``width x height`` pixels."""
    ramp = np.linspace(0, 255, width * height, dtype=np.float32).reshape(height, width)
    Image.fromarray(np.stack([ramp, ramp[::-1], ramp.T.reshape(height, width)], -1).astype(np.uint8)).save(path)
    return path


def upload(server: AppServer, size: int) -> httpx.Response:
    files = {"files": ("upload.png", io.BytesIO(b"\x89PNG" + bytes(size - 4)), "image/png")}
    with httpx.Client(trust_env=False, timeout=30) as http:
        return http.post(server.url + "gradio_api/upload", files=files)


def analyse(client: Client, path, methods=("grad_cam",), variant="fast"):
    return client.submit(handle_file(str(path)), "tiny", list(methods), variant, "last", api_name="/analyse")


def test_the_upload_limit_from_the_settings_reaches_the_page(server):
    with httpx.Client(trust_env=False, timeout=30) as http:
        config = http.get(server.url + "config").json()
    assert config["max_file_size"] == MAX_BYTES


def test_an_upload_over_the_limit_is_refused_and_one_under_it_is_kept(server):
    assert upload(server, MAX_BYTES // 2).status_code == 200
    refused = upload(server, MAX_BYTES + 1024)
    assert refused.status_code == 413
    assert refused.text == f"File size exceeded maximum allowed size of {MAX_BYTES} bytes."


def test_the_pixel_limit_from_the_settings_refuses_in_words(client, tmp_path):
    assert analyse(client, gradient_png(tmp_path / "ok.png", 200, 200)).result()[1]["label"] in ("REAL", "FAKE")
    with pytest.raises(AppError, match=r"The image is too large \(250 x 200 pixels"):
        analyse(client, gradient_png(tmp_path / "big.png", 250, 200)).result()


def test_a_slow_explanation_is_stopped_at_the_time_limit(client, tmp_path):
    image = gradient_png(tmp_path / "slow.png", 160, 120)
    with pytest.raises(AppError, match=r"The explanation took longer than 5 s and was stopped"):
        analyse(client, image, ["lime"], "full").result()  # full LIME on Lite0 at 224 px: far over 5 s


def test_a_full_queue_answers_busy_try_again_and_then_recovers(client, server, tmp_path):
    """One analysis at a time and a queue of 1: a running job plus a waiting one fill it; the next is turned away."""
    image = gradient_png(tmp_path / "slow.png", 160, 120)
    tracebacks = server.log_text().count("Traceback")
    running = analyse(client, image, ["lime"], "full")  # busy until the 5 s time limit stops it
    wait_for_status(running, "PROCESSING", "PROGRESS")
    waiting = analyse(client, image)
    wait_for_status(waiting, "IN_QUEUE")
    with pytest.raises(QueueError, match="try again"):
        analyse(client, image).result()
    assert waiting.result()[1]["label"] in ("REAL", "FAKE") and running.done()
    assert analyse(client, image).result()[1]["label"] in ("REAL", "FAKE"), "the app must recover once the queue drains"
    assert server.log_text().count("Traceback") == tracebacks


def fetch(server: AppServer, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (no client-side normalisation of ``..``)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_example_image_is_served(server, work):
    status, body = fetch(server, "/gradio_api/file=" + str(work / "data" / "rvaa" / "REAL" / "real_0001.jpg"))
    assert status == 200 and body[:2] == b"\xff\xd8"


@pytest.mark.parametrize("target", ["data/rvaa/manifest.csv", "data/answers.txt", "classroom.sqlite3",
                                    "checkpoints/tiny/config.json", "/etc/passwd", "/proc/self/environ",
                                    "REPO/app.py", "REPO/gauntlet/settings.py"])
@pytest.mark.parametrize("spelling", ["plain", "dot_dot", "encoded_dot_dot", "relative"])
def test_no_other_file_is_served_however_the_path_is_spelled(server, work, target, spelling):
    """Quiz answers (data manifests), the classroom database, weights, code and system files stay private."""
    path = target.replace("REPO/", f"{REPO_ROOT}/") if target.startswith(("/", "REPO/")) else str(work / target)
    example_dir = work / "data" / "rvaa" / "REAL"
    escape = "/".join([".."] * len(example_dir.parts)) + path  # from the example's folder up to / and down
    url = {"plain": path, "dot_dot": f"{example_dir}/{escape}",
           "encoded_dot_dot": urllib.parse.quote(f"{example_dir}/{escape}", safe=""),
           "relative": "../" * 8 + path.lstrip("/")}[spelling]
    assert Path(path).exists(), f"{path} must exist for the check to mean anything"
    status, body = fetch(server, "/gradio_api/file=" + url)
    assert status in (403, 404) and b"SECRET" not in body and b"root:" not in body, (status, body[:200])


@pytest.mark.parametrize("file_data", [
    {"path": "/etc/passwd"},
    {"path": "CLASSROOM_DB"},
    {"path": "relative/../../app.py"},
    {"path": "probe.png", "url": "http://169.254.169.254/latest/meta-data/"},
    {"path": "probe.png", "url": "SERVER/config"},
], ids=["system_file", "classroom_db", "relative_path", "cloud_metadata_url", "loopback_url"])
def test_api_callers_cannot_make_the_app_read_files_or_fetch_urls(server, work, file_data):
    """A hand-written request naming a server path or a URL as the upload is refused before the app runs."""
    file_data = {key: value.replace("CLASSROOM_DB", str(work / "classroom.sqlite3")).replace("SERVER/", server.url)
                 for key, value in file_data.items()}
    payload = {"data": [{**file_data, "meta": {"_type": "gradio.FileData"}}, "tiny", [], "fast", "last"]}
    with httpx.Client(trust_env=False, timeout=60) as http:
        event = http.post(server.url + "gradio_api/call/analyse", json=payload).json()["event_id"]
        stream = http.get(server.url + f"gradio_api/call/analyse/{event}").text
    assert stream.startswith("event: error") and "root:" not in stream and "SQLite" not in stream, stream[:300]


def test_analyses_have_their_own_concurrency_group_wider_than_the_workers():
    """Analyse requests whose explanations are cached must not queue one by one behind ones being computed:
    their group holds GAUNTLET_ANALYSE_CONCURRENCY requests, apart from the verdicts' group."""
    import gradio as gr

    from ui.detector_tab import build_detector_tab

    with gr.Blocks() as demo:
        build_detector_tab(lambda *a: None, lambda *a, **k: None, [("m", "m")], "m", [], predict_concurrency=3,
                           analyse_concurrency=6)
    groups = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values() if fn.api_name}
    assert groups["analyse"] == ("analyse", 6)
    assert groups["predict"] == ("predict", 3)

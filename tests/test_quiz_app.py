"""The quiz and classroom tabs in the running app: no answer leaks to the browser, full rounds via gradio_client."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from app import build_app
from app_process import free_port
from gauntlet.service import ModelCatalog
from gauntlet.settings import get_settings
from quiz_helpers import LEAKY_TEXT, TRUTH_OF, demo_quiz
from ui.game_board import WELCOME, PlayerHandlers, build_player, progress_state

MODEL = "tiny"
ITEM_SECRETS = ["source of", "lesson of", "set/", "set.zip", "img_", "img ", LEAKY_TEXT]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The real app (all tabs) on a free localhost port, over a generated deck and a tiny model."""
    root = tmp_path_factory.mktemp("quiz_app")
    quiz = demo_quiz(root, MODEL)
    data_root, catalog = root / "data", quiz.catalog
    demo = build_app(catalog, get_settings(), quiz)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield RunningApp(f"http://127.0.0.1:{port}/", data_root, catalog)
    demo.close()


class RunningApp(NamedTuple):
    url: str
    data_root: Path
    catalog: ModelCatalog  # the app's own: a test can watch which calls a request makes


def raw_call(url: str, endpoint: str, *data) -> str:
    """What the browser receives from an endpoint: the raw JSON of the completed event."""
    event = httpx.post(f"{url}gradio_api/call/{endpoint}", json={"data": list(data)}, timeout=60).json()
    stream = httpx.get(f"{url}gradio_api/call/{endpoint}/{event['event_id']}", timeout=60).text
    assert "event: complete" in stream, stream
    return stream.split("data: ", 1)[1].strip()


def assert_no_secret(text: str, data_root) -> None:
    for secret in [*ITEM_SECRETS, str(data_root)]:
        assert secret not in text, f"{secret!r} reached the browser before the guess"


def test_the_browser_gets_no_truth_before_the_guess(app):
    url, data_root = app.url, app.data_root
    config = httpx.get(f"{url}config", timeout=30).text
    assert_no_secret(config, data_root)
    saved = json.loads(raw_call(url, "quiz_start", "demo", MODEL, "score_cam"))[0]
    for _ in TRUTH_OF:
        payload = raw_call(url, "quiz_show", saved, "score_cam")
        assert_no_secret(payload, data_root)
        assert "FAKE" not in payload  # every guess below is REAL, so FAKE could only be a truth
        image = json.loads(payload)[1]
        assert re.fullmatch(r"[0-9a-f]{32}\.webp", image["orig_name"]), "a hash names the file: nothing to read"
        served = httpx.get(image["url"], timeout=30).content
        assert served[:4] == b"RIFF" and LEAKY_TEXT.encode() not in served
        saved = json.loads(raw_call(url, "quiz_guess_real", saved, "score_cam"))[0]
    assert [guess for _, guess in saved["answers"]] == ["REAL"] * len(TRUTH_OF)


def test_a_full_round_through_gradio_client(app):
    url = app.url
    client = Client(url, verbose=False)
    saved, status, image, summary, review = client.predict("demo", MODEL, "score_cam", api_name="/quiz_start")
    assert "image 1 of 6" in status and image.endswith(".webp") and summary == ""
    guesses = ["FAKE", "FAKE", "REAL", "FAKE", "REAL", "REAL"]
    for guess in guesses:
        saved, result, heatmap = client.predict(saved, "score_cam", api_name=f"/quiz_guess_{guess.lower()}")
        item_id = saved["answers"][-1][0]
        assert ("Right!" in result) == (guess == TRUTH_OF[item_id])
        assert f"lesson of {item_id}" in result and "The model thinks" in result and heatmap
        assert client.predict(saved, "grad_cam", api_name="/quiz_heatmap")
        status, image, summary, review = client.predict(saved, "score_cam", api_name="/quiz_show")
    right = sum(guess == truth for guess, truth in zip(guesses, TRUTH_OF.values()))
    assert "finished" in status and image is None
    assert f"You: {right} / 6 right" in summary and len(review) == 6 - right


def test_a_classroom_round_through_gradio_client(app):
    url = app.url
    teacher = Client(url, verbose=False)
    created, code, key, presenter, qr, *_ = teacher.predict("demo", MODEL, "self", 0, api_name="/room_create")
    assert code in created and key in created and f"?room={code}" in presenter and qr
    student = Client(url, verbose=False)
    with pytest.raises(AppError, match="nickname"):
        student.predict(code, "<b>Bob</b>", "score_cam", api_name="/room_join")
    joined = student.predict(code.lower(), "Ada", "score_cam", api_name="/room_join")
    assert key not in json.dumps(joined) and "| 1 | Ada | 0 | 0 |" in joined[-2]
    item = joined[0]["showing"]
    guess = TRUTH_OF[item]
    saved, status, _, result, heatmap, *_ = student.predict(joined[0], "score_cam",
                                                            api_name=f"/room_guess_{guess.lower()}")
    assert "Right!" in result and f"lesson of {item}" in result and heatmap
    with pytest.raises(AppError, match="do not match"):
        student.predict(code, "a guessed key", api_name="/room_teacher")
    assert key not in raw_call(url, "room_teacher", code, key)  # the gr.State holding it stays on the server
    report = teacher.predict(code, key, api_name="/room_teacher")
    table, thumbnails, board = report[2], report[3], report[5]
    assert f"| {item} | {guess} |" in table and "| 1 | Ada | 1 | 1 |" in board and len(thumbnails) == 6
    with open(teacher.predict(code, key, api_name="/room_export"), newline="") as handle:
        assert [(row["nickname"], row["phase"]) for row in csv.DictReader(handle)] == [("Ada", "lesson")]
    teacher.predict(code, key, api_name="/room_close")
    with pytest.raises(AppError, match="closed"):
        student.predict(saved, "score_cam", api_name="/room_guess_real")


def test_a_teacher_paced_round_sends_no_truth_before_the_reveal(app):
    url, data_root = app.url, app.data_root
    teacher = Client(url, verbose=False)
    _, code, key, *_ = teacher.predict("demo", MODEL, "teacher", 0, api_name="/room_create")
    students = [json.loads(raw_call(url, "room_join", code, name, "score_cam"))[0] for name in ("Ada", "Bob", "Cy")]
    item = students[0]["showing"]
    for saved in students[:2]:
        payload = raw_call(url, "room_guess_real", saved, "score_cam")
        assert_no_secret(payload, data_root)
        assert "Answer recorded" in payload and "this image is" not in payload
    for saved in students:
        payload = raw_call(url, "room_tick", saved, "score_cam", None)
        assert_no_secret(payload, data_root)
        assert "this image is" not in payload and "said *Real*" not in payload
    teacher.predict(code, key, api_name="/room_reveal")
    late = raw_call(url, "room_guess_fake", students[2], "score_cam")
    assert "did not answer this one in time" in late  # a late answer is not taken: the reveal is shown instead
    revealed = raw_call(url, "room_tick", students[2], "score_cam", None)
    assert f"lesson of {item}" in revealed and "2 said *Real* (100%), 0 said *AI*" in revealed
    teacher.predict(code, key, api_name="/room_next")
    moved = json.loads(raw_call(url, "room_tick", students[0], "score_cam", ["x", "y"]))
    assert moved[0]["showing"] != item and "image 2 of 6" in moved[1]
    assert_no_secret(json.dumps(moved), data_root)


def test_a_pre_post_room_over_the_api_records_phases_and_the_gain(app):
    url = app.url
    teacher = Client(url, verbose=False)
    _, code, key, *_ = teacher.predict("demo", MODEL, "self", 2, api_name="/room_create")
    saved = json.loads(raw_call(url, "room_join", code, "Ada", "score_cam"))[0]
    phases = []
    for _ in range(10):
        saved, status, *_ = json.loads(raw_call(url, "room_show", saved, "score_cam"))  # the Next button
        phase = "pre" if "pre-test" in status else "post" if "post-test" in status else "lesson"
        payload = raw_call(url, "room_guess_real", saved, "score_cam")
        if phase != "lesson":  # tests are never revealed
            assert f"lesson of {saved['showing']}" not in payload and f"source of {saved['showing']}" not in payload
        saved = json.loads(payload)[0]
        phases.append(phase)
    assert phases == ["pre"] * 2 + ["lesson"] * 6 + ["post"] * 2
    report = teacher.predict(code, key, api_name="/room_teacher")[2]
    assert "Gain from pre- to post-test:" in report and "1 student(s) with both tests" in report
    with open(teacher.predict(code, key, api_name="/room_export"), newline="") as handle:
        assert [row["phase"] for row in csv.DictReader(handle)] == phases


def test_a_reveal_over_http_makes_no_model_call(app, monkeypatch):
    """Reveals are precomputed while the image is shown: the guess itself only reads the cache (no timing here:
    speed is measured by benchmarks/load.py)."""
    url = app.url
    catalog = app.catalog
    saved = json.loads(raw_call(url, "quiz_start", "demo", MODEL, "score_cam"))[0]
    raw_call(url, "quiz_guess_fake", saved, "score_cam")  # the reveal was prepared while the image was shown
    for name in ("analyse", "predict", "detector"):
        monkeypatch.setattr(catalog, name, lambda *a, **k: pytest.fail("the reveal called the model"))
    outputs = json.loads(raw_call(url, "quiz_guess_fake", saved, "score_cam"))
    httpx.get(outputs[-1]["url"]).raise_for_status()  # the heatmap is served


def test_handlers_show_a_welcome_and_human_errors():
    handlers = PlayerHandlers(quiz=None)
    with gr.Blocks():
        player = build_player(handlers, progress_state("test"), "test")
    updates = handlers.view(None, "score_cam")
    assert updates[player.status] == WELCOME and updates[player.image] is None
    assert set(updates) <= set(handlers.view_outputs)  # a handler only changes components its event lists
    with pytest.raises(gr.Error, match="Press Start first"):
        handlers.guesser("REAL")({"not": "progress"}, "score_cam")

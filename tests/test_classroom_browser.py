"""A class in real Chromium pages: a teacher and three students through a teacher-paced round and a pre/post room.

The app runs as ``python app.py`` over the generated demo deck (six images and two test pools of four), so a
whole room is played in a few dozen clicks. One student opens the join link (``?room=CODE``), one refreshes
mid-round: nothing is lost. Screenshots go to ``screenshots/`` (git-ignored).
``scripts/setup-tests.sh`` installs /usr/bin/chromium; without it these tests are skipped.
"""
from __future__ import annotations

import re

import pytest

from benchmarks.server import CHROMIUM, AppServer
from conftest import make_checkpoint
from quiz_helpers import demo_deck, make_data_root, write_deck
from test_browser import shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT_MS = 60_000
REAL = "📷 Real"

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: run scripts/setup-tests.sh to install Chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("classroom_browser")
    make_checkpoint(work / "checkpoints" / "tiny", "baseline_cnn")
    write_deck(work / "decks", demo_deck())
    env = {"GAUNTLET_CHECKPOINTS_DIR": str(work / "checkpoints"),
           "GAUNTLET_DATA_DIR": str(make_data_root(work / "data")), "GAUNTLET_QUIZ_DIR": str(work / "decks"), "GAUNTLET_CACHE_DIR": str(work / "cache"),
           "GAUNTLET_CLASSROOM_DB": str(work / "classroom.sqlite3")}
    with AppServer(env) as running:
        yield running


@pytest.fixture
def open_page(browser):
    """Open a page in its own browser context (its own storage: another person's computer)."""
    contexts = []

    def opener(url: str):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.get_by_text("GAUNTLET").first.wait_for()
        return page

    yield opener
    for context in contexts:
        context.close()


def create_room(page, pacing: str, test_items: int) -> str:
    """The teacher creates a room in the Classroom tab; returns its code."""
    page.get_by_role("tab", name="Classroom").click()
    page.get_by_text("For teachers: create a room").click()
    page.get_by_label(pacing).check()
    page.get_by_label("Pre- and post-test images").fill(str(test_items))
    page.get_by_role("button", name="Create a room", exact=True).click()
    created = page.get_by_text(re.compile(r"Room [A-Z0-9]{6} is open"))
    created.wait_for()
    code = re.search(r"Room ([A-Z0-9]{6}) is open", created.inner_text()).group(1)
    page.get_by_text(" ".join(code)).wait_for()  # the presenter view: the code in large type
    page.locator("img[src*='/gradio_api/file=']").filter(visible=True).first.wait_for()  # the QR code
    return code


def join(open_page, server, code: str, nickname: str):
    """A student opens the join link: the Classroom tab opens with the code filled in; they join."""
    page = open_page(f"{server.url}?room={code}")
    assert page.get_by_label("Room code").first.input_value() == code
    page.get_by_label("Nickname").fill(nickname)
    page.get_by_role("button", name="Join", exact=True).click()
    page.get_by_text(re.compile(r"image 1 of \d+")).wait_for()
    return page


def test_a_teacher_paced_round_with_three_students(open_page, server):
    teacher = open_page(server.url)
    code = create_room(teacher, "Teacher-paced", 0)
    students = [join(open_page, server, code, name) for name in ("Ada", "Bob", "Cy")]
    for student in students[:2]:
        student.get_by_role("button", name=REAL).click()
        student.get_by_text("Answer recorded: wait for your teacher").wait_for()
    cy = students[2]
    cy.reload()  # a refresh mid-round: the room and the current image come back
    cy.get_by_role("button", name="🤖 AI").click()
    cy.get_by_text("Answer recorded: wait for your teacher").wait_for()
    assert not cy.get_by_text("What to look for").is_visible()  # no truth before the reveal
    teacher.get_by_text("3 student(s) joined · 3 answer(s)").wait_for()
    shoot(teacher, "classroom_presenter")
    teacher.get_by_role("button", name="Reveal the answer").click()
    for student in students:
        student.get_by_text(re.compile(r"2 said Real \(67%\), 1 said AI \(33%\)")).wait_for()
        assert student.get_by_text("What to look for").is_visible()
    shoot(cy, "classroom_paced_reveal")
    teacher.get_by_role("button", name="Next image for everyone ➜").click()
    for student in students:
        student.get_by_text("image 2 of 6").wait_for()
        student.get_by_role("button", name=REAL).wait_for()


def play_to_the_end(page, total: int, start: int = 1) -> None:
    """Answer every image from ``start`` on (Real), pressing Next after each lesson's reveal."""
    for position in range(start, total + 1):
        page.get_by_text(f"image {position} of {total}").wait_for()
        page.get_by_role("button", name=REAL).click()
        if position == total:
            break
        next_button = page.get_by_role("button", name="Next image ➜")
        page.get_by_text(re.compile(f"image {position + 1} of {total}|What to look for")).first.wait_for()
        if next_button.is_visible():
            next_button.click()
    page.get_by_text("finished!").wait_for()


def test_a_pre_post_room_shows_the_gain_and_survives_a_refresh(open_page, server):
    teacher = open_page(server.url)
    code = create_room(teacher, "Self-paced", 2)
    students = [join(open_page, server, code, name) for name in ("Dee", "Eli", "Fay")]
    dee = students[0]
    dee.get_by_role("button", name=REAL).click()
    dee.get_by_text("image 2 of 10").wait_for()
    dee.reload()  # mid-round: the first answer is kept, the second image comes back
    dee.get_by_text("image 2 of 10").wait_for()
    for student in students:
        play_to_the_end(student, 10, 2 if student is dee else 1)
    assert dee.get_by_text(re.compile(r"Pre-test: \d / 2 right · Post-test: \d / 2 right")).is_visible()
    teacher.get_by_text("Gain from pre- to post-test").wait_for()
    teacher.get_by_text("3 student(s) with both tests").wait_for()
    shoot(teacher, "classroom_pre_post_teacher")

"""End to end in a real Chromium: upload, verdict, heatmaps, refusals, a busy server, three quiz rounds.

The app runs as ``python app.py`` (a child process on a free loopback port) with a tiny
random checkpoint and a generated data root holding a noise image at every path the
bundled quiz decks name, so the quiz is playable without the real data. Screenshots go to
``screenshots/`` in the repository (git-ignored); the test prints the folder.
``scripts/setup-tests.sh`` installs /usr/bin/chromium; without it these tests are skipped.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_process import wait_for_status
from benchmarks.server import CHROMIUM, REPO_ROOT, AppServer
from conftest import make_checkpoint
from gauntlet.teaching.decks import raw_items

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = REPO_ROOT / "screenshots"
LIMITS = {"GAUNTLET_MAX_UPLOAD_MB": "1", "GAUNTLET_CONCURRENCY": "1", "GAUNTLET_ANALYSE_CONCURRENCY": "1",
          "GAUNTLET_QUEUE_MAX_SIZE": "1"}
TIMEOUT_MS = 120_000

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: run scripts/setup-tests.sh to install Chromium", allow_module_level=True)


def jpeg(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.RandomState(seed).randint(0, 255, (size[1], size[0], 3), np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def fill_data_root(root: Path, decks_dir: Path = REPO_ROOT / "quiz_data") -> None:
    """Write a noise image at every image path the decks name (``x.zip/a/b.jpg`` goes into ``x.zip``)."""
    paths = sorted({item["image"] for deck in decks_dir.glob("*.json") for item in raw_items(json.loads(deck.read_text()))})
    archives: dict[Path, list[str]] = {}
    for seed, path in enumerate(paths):
        archive, _, member = path.partition(".zip/")
        if member:
            archives.setdefault(root / f"{archive}.zip", []).append(member)
            continue
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(jpeg(seed))
    for archive, members in archives.items():
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "w") as handle:
            for seed, member in enumerate(members):
                handle.writestr(member, jpeg(seed + 1000, (32, 32)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("browser")
    make_checkpoint(work / "checkpoints" / "tiny", "baseline_cnn")
    fill_data_root(work / "data")
    env = {**LIMITS, "GAUNTLET_CHECKPOINTS_DIR": str(work / "checkpoints"), "GAUNTLET_DATA_DIR": str(work / "data"),
           "GAUNTLET_CACHE_DIR": str(work / "cache"), "GAUNTLET_CLASSROOM_DB": str(work / "classroom.sqlite3")}
    with AppServer(env) as running:
        yield running


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    opened.goto(server.url)
    opened.get_by_text("GAUNTLET").first.wait_for()
    yield opened
    context.close()


def shoot(page, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def upload(page, path: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(str(path))


def served_images(page):
    """The visible pictures the app serves (uploads, heatmaps, quiz images), in page order."""
    return page.locator("img[src*='/gradio_api/file=']").filter(visible=True)


def notice(page, words: str) -> str:
    """The text of the error notice that contains ``words``, once it has faded in (for the screenshot)."""
    toast = page.locator(".toast-body").filter(has_text=words).first
    toast.wait_for()
    page.wait_for_timeout(800)
    return toast.inner_text()


def dismiss_notices(page) -> None:
    """Let the page's start-up events finish, then close any notice they left."""
    page.wait_for_timeout(2000)
    for button in page.get_by_test_id("toast-close").all():
        button.click()
    page.locator(".toast-body").first.wait_for(state="detached")


def test_opening_the_page_shows_no_error(page):
    """The page's own start-up events (restoring quiz and classroom state) must not fill the queue."""
    page.wait_for_timeout(3000)
    notices = [toast.inner_text() for toast in page.locator(".toast-body").all()]
    assert not notices, f"opening the page showed: {notices}"


def test_upload_shows_the_verdict_and_three_heatmaps(page, tmp_path):
    image = tmp_path / "holiday photo.jpg"
    image.write_bytes(jpeg(7, (320, 240)))
    upload(page, image)
    verdict = page.get_by_test_id("label-output-value")
    verdict.filter(has_text="A").wait_for()  # REAL or FAKE
    assert verdict.inner_text().strip() in ("REAL", "FAKE")
    tiles = page.locator(".gallery-item img:not(#forensics-lab .gallery-item img)")  # the heatmaps, not the lab's
    tiles.nth(2).wait_for()
    assert tiles.count() == 3 and all(tiles.nth(i).evaluate("img => img.naturalWidth > 0") for i in range(3))
    assert page.get_by_text("The model thinks this image is").is_visible()
    shoot(page, "detector_verdict")


def test_a_file_that_is_not_an_image_is_explained_in_words(page, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("Dear diary, this is not a picture.\n" * 20)
    upload(page, fake)
    assert "Traceback" not in notice(page, "contains text, not an image")
    shoot(page, "detector_refusal")


def test_an_upload_over_the_size_limit_is_refused_in_the_page(page, tmp_path):
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG" + bytes(1024 * 1024 + 10))
    upload(page, big)
    notice(page, "exceed the maximum allowed size")
    shoot(page, "detector_too_big")


def test_a_busy_server_says_so(page, server, tmp_path):
    """Concurrency 1 and a queue of 1, both taken by slow API jobs: the page's request is turned away."""
    from gradio_client import Client, handle_file

    image = tmp_path / "busy.jpg"
    image.write_bytes(jpeg(3))
    client = Client(server.url, verbose=False)

    def slow_job():
        return client.submit(handle_file(str(image)), "tiny", ["lime"], "full", "last", api_name="/analyse")

    dismiss_notices(page)  # so that the notice checked below can only come from this upload
    jobs = [slow_job()]
    wait_for_status(jobs[0], "PROCESSING", "PROGRESS")
    jobs.append(slow_job())
    wait_for_status(jobs[1], "IN_QUEUE")
    upload(page, image)
    notice(page, "currently busy. Please try again")
    shoot(page, "detector_busy")
    for job in jobs:
        job.result()


def test_three_quiz_rounds_with_reveals(page):
    page.get_by_role("tab", name="Spot the fake").click()
    page.get_by_role("button", name="Start").click()
    for round_number in range(1, 4):
        page.get_by_role("button", name="📷 Real").click()
        next_button = page.get_by_role("button", name="Next image ➜")
        next_button.wait_for()
        served_images(page).nth(1).wait_for()  # the quiz image and, beside it, the revealed heatmap
        shoot(page, f"quiz_reveal_{round_number}")
        next_button.click()
    page.get_by_role("button", name="📷 Real").wait_for()  # the fourth image is up, ready for a guess


TAB_CONTENT = {"Classroom": ("button", "Join"), "Model card": ("heading", "GAUNTLET model card")}


@pytest.mark.parametrize("tab", ["Classroom", "Model card"])
def test_the_other_tabs_open(page, tab):
    page.get_by_role("tab", name=tab).click()
    role, name = TAB_CONTENT[tab]
    page.get_by_role(role, name=name).first.wait_for()  # something only that tab shows
    assert not page.get_by_role("button", name="Analyse", exact=True).is_visible(), "the Detector tab is still shown"
    shoot(page, f"tab_{tab.lower().replace(' ', '_')}")


def test_quiz_progress_survives_a_page_refresh(page):
    page.get_by_role("tab", name="Spot the fake").click()
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="📷 Real").click()
    page.get_by_role("button", name="Next image ➜").click()
    page.get_by_role("button", name="📷 Real").wait_for()
    shoot(page, "quiz_before_refresh")
    page.reload()
    page.get_by_text("GAUNTLET").first.wait_for()
    page.get_by_role("tab", name="Spot the fake").click()
    page.get_by_text("image 2 of").first.wait_for()
    shoot(page, "quiz_after_refresh")

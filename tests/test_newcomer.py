"""A newcomer's first run, in a real Chromium: a fresh clone of the committed repository in a temporary
folder, no data folder beside it, no Hub (``HF_HUB_OFFLINE=1``), nothing configured. The app must start,
play a whole Faces round from the images kept in the repository, and give a verdict on a Detector example.

``scripts/setup-tests.sh`` installs /usr/bin/chromium; without it this test is skipped.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from benchmarks.server import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, AppServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT_MS = 120_000
FACES_ROUND = 20
CONFIGURATION = [name for name in os.environ if name.startswith("GAUNTLET_") or name.startswith("HF_")]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: run scripts/setup-tests.sh to install Chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The committed HEAD (also a detached one, as CI checks out), cloned where no ``shared/data`` is beside it."""
    target = tmp_path_factory.mktemp("newcomer") / "gauntlet"
    for command in (["clone", "--quiet", "--no-checkout", str(REPO_ROOT), str(target)],
                    ["-C", str(target), "fetch", "--quiet", str(REPO_ROOT), "HEAD"],
                    ["-C", str(target), "checkout", "--quiet", "FETCH_HEAD"]):
        subprocess.run(["git", *command], check=True)
    assert not (target.parent / "shared" / "data").exists()
    return target


@pytest.fixture(scope="module")
def server(clone):
    """``python app.py`` in the clone with the environment a newcomer has: nothing set, home in a temp folder."""
    with pytest.MonkeyPatch.context() as patch:
        for name in CONFIGURATION:
            patch.delenv(name)
        env = {"XDG_DATA_HOME": str(clone.parent / "home"), "HF_HOME": str(clone.parent / "hf-home")}
        with AppServer(env, repo=clone) as running:
            yield running


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        opened = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        opened.set_default_timeout(TIMEOUT_MS)
        opened.goto(server.url)
        opened.get_by_text("GAUNTLET").first.wait_for()
        yield opened
        browser.close()


def test_a_newcomer_tries_an_example_in_the_detector(page, clone):
    examples = sorted((clone / "quiz_data" / "images" / "examples").rglob("*.jpg"))
    page.get_by_text("Or try an example").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(examples[0]))
    verdict = page.get_by_test_id("label-output-value")
    verdict.filter(has_text="A").wait_for()  # REAL or FAKE
    assert verdict.inner_text().strip() in ("REAL", "FAKE")


def test_a_newcomer_plays_a_whole_faces_round_offline(page, server):
    page.get_by_role("tab", name="Spot the fake").click()
    assert "data folder is not set up" in page.get_by_text("is unavailable").first.inner_text()
    assert "Faces" in page.get_by_label("Deck").input_value()
    page.get_by_role("button", name="Start").click()
    for number in range(1, FACES_ROUND + 1):
        page.get_by_text(f"image {number} of {FACES_ROUND}").first.wait_for()
        page.get_by_role("button", name="📷 Real" if number % 2 else "🤖 AI").click()
        page.get_by_text("What to look for").first.wait_for()
        page.get_by_role("button", name="Next image ➜").click()
    score = page.get_by_text(f"/ {FACES_ROUND} right").first
    score.wait_for()
    assert "You:" in score.inner_text() and "Traceback" not in server.log_text()

"""Take the README's screenshot: the real app, its default bundled model, one RVAA validation image.

    python scripts/readme_screenshot.py [--out docs/screenshot-detector.png]
    python scripts/readme_screenshot.py --lab --image ../shared/data/faces/FAKE/<file> [--out docs/screenshot-lab.png]

``--lab`` waits for the forensics lab's agreement line and sanity check, clicks the laundering button, and
takes the lab panel alone.

Needs Debian's Chromium (scripts/setup-tests.sh installs it) and the data folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.server import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, AppServer  # noqa: E402
from gauntlet.service import example_images  # noqa: E402
from gauntlet.settings import get_settings  # noqa: E402


def show_lab(page) -> None:
    """Wait for the agreement and sanity check, run the laundering lab, then scroll the lab into view."""
    page.get_by_text("Sanity check:").first.wait_for()
    page.get_by_role("button", name="What if it was re-shared?").click()
    page.get_by_text("re-sharing steps").or_(page.get_by_text("Fragile:")).first.wait_for()
    page.wait_for_timeout(1500)


def main(out: Path, lab: bool = False, image: str | None = None) -> None:
    from playwright.sync_api import sync_playwright

    image = image or example_images(get_settings().data_dir, per_class=1)[-1]
    with AppServer() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(server.url)
        page.locator("input[type=file]").first.set_input_files(image)
        page.get_by_text("How to read the heatmaps").wait_for()
        page.wait_for_timeout(1500)
        if lab:
            show_lab(page)
            page.locator("#forensics-lab").screenshot(path=str(out))
        else:
            page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--lab", action="store_true", help="the forensics lab panel (docs/screenshot-lab.png)")
    parser.add_argument("--image", default=None, help="the image to upload (default: an RVAA validation example)")
    args = parser.parse_args()
    default = "screenshot-lab.png" if args.lab else "screenshot-detector.png"
    main(args.out or REPO_ROOT / "docs" / default, args.lab, args.image)

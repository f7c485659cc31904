"""Take the README's screenshot: the real app, its default bundled model, one RVAA validation image.

    python scripts/readme_screenshot.py [--out docs/screenshot-detector.png]

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


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    image = example_images(get_settings().data_dir, per_class=1)[-1]
    with AppServer() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(server.url)
        page.locator("input[type=file]").first.set_input_files(image)
        page.get_by_text("How to read the heatmaps").wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshot-detector.png")
    main(parser.parse_args().out)

"""Screenshots of every page of the app for docs/screenshots/, taken in a real Chromium.

Starts the app on the shipped runs (tests/app/serve.py, the same start as the browser tests),
opens each page at 1280x900 on the CIFAR-10 run (Classroom on the teaching run), waits until
Streamlit has finished the script run and the charts are drawn, and saves a full-page PNG.

    python docs/make_screenshots.py            # every page
    python docs/make_screenshots.py explorer   # some pages

Look at the pictures before committing them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.serve import launch_chromium, serve_app  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CIFAR = "run=cifar10_resnet20&split=test&decoder=paper"
PAGES = {
    "home": CIFAR,
    "classroom": "run=noisy_digits&split=test&decoder=paper",
    "explorer": CIFAR,
    "oracle": CIFAR,
    "selection": CIFAR,
    "policies": CIFAR,
    "samples": CIFAR,
    "classes": CIFAR,
    "compare": CIFAR + "&runs=cifar10_resnet20,noisy_digits&decoders=paper,margin",
    "runs": CIFAR,
}


def settle(page, timeout_s: float = 180.0) -> None:
    """Until no script run is in progress and the page has stopped changing for 1.5 s."""
    deadline = time.time() + timeout_s
    last, calm_since = None, time.time()
    while time.time() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        html_len = page.evaluate("document.body.innerHTML.length")
        if running or html_len != last:
            last, calm_since = html_len, time.time()
        elif time.time() - calm_since > 1.5:
            return
        time.sleep(0.25)


def classroom_playing(browser, url: str) -> None:
    """The Classroom while it plays, at a projector's 1024x768 with the sidebar open: the
    grid and both charts above the fold."""
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.goto(f"{url}/classroom?{PAGES['classroom']}")
    page.wait_for_selector('[data-testid="stSidebar"]', timeout=120_000)
    settle(page)
    page.get_by_text("slow", exact=True).click()
    settle(page)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => window.__dynconfClassroom && window.__dynconfClassroom.painted.length >= 6",
        timeout=60_000,
    )
    path = OUT / "classroom_playing.png"
    page.screenshot(path=str(path))
    print(f"{path.relative_to(ROOT)} (1024x768, playing)")
    page.close()


def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data = ROOT.parent / "shared" / "data"
    if data.is_dir():  # input images on Home, Classroom and Samples
        os.environ.setdefault("DYNCONF_DATA", str(data))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        log = Path(tmp) / "streamlit.log"
        with serve_app(ROOT / "cached_runs", work, log) as server, launch_chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for name in names:
                page.goto(f"{server['url']}/{'' if name == 'home' else name}?{PAGES[name]}")
                page.wait_for_selector('[data-testid="stSidebar"]', timeout=120_000)
                settle(page)
                # Streamlit scrolls inside its main block, so a "full page" shot is one
                # screen: grow the window to the content's height instead (at most 6,000 px).
                height = page.evaluate(
                    "Math.max(...[...document.querySelectorAll('[data-testid=stMain] *')]"
                    ".slice(0, 1).map(e => e.scrollHeight), 900)"
                )
                page.set_viewport_size({"width": 1280, "height": min(int(height), 6000)})
                settle(page)
                path = OUT / f"{name}.png"
                page.screenshot(path=str(path))
                print(f"{path.relative_to(ROOT)} ({height} px)")
                page.set_viewport_size({"width": 1280, "height": 900})
            if "classroom" in names:
                classroom_playing(browser, server["url"])


if __name__ == "__main__":
    main(sys.argv[1:] or list(PAGES))

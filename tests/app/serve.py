"""Starting the real dashboard and a real Chromium for browser tests and benchmarks.

``serve_app`` runs ``streamlit run app.py`` on a free port against the given runs roots and
waits for its health check; ``launch_chromium`` starts Debian's Chromium through Playwright
with the flags this closed network needs. Used by tests/app/test_browser*.py and
benchmarks/bench_browser.py, so every browser check starts the app the same way.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(
    runs: Path, work: Path, log_path: Path, timeout: float = 60.0, app_root: Path = ROOT
) -> Iterator[dict]:
    """A Streamlit server on a free port; yields url, started/ready times and the process.
    ``app_root`` is the tree whose ``app.py`` is served (another version of the app, for a
    benchmark's before and after)."""
    port = free_port()
    env = dict(os.environ, DYNCONF_RUNS=str(runs), DYNCONF_WORK=str(work))
    with open(log_path, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=app_root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError(Path(log_path).read_text()) from None
                    time.sleep(0.1)
            yield {"url": url, "started": started, "ready": time.perf_counter(), "proc": proc}
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@contextlib.contextmanager
def launch_chromium():
    """A headless Chromium (Debian's) driven by Playwright; never downloads a browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()

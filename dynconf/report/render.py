"""Static images from one headless Chromium: a kaleido 1.x browser with a few tabs, started
once per process on an event loop of its own, rendering many figures at a time.

Starting the browser costs a second or more; each image afterwards a fraction of one. One
:class:`Renderer` therefore serves every image of an export (and every download button of an
app server), and nothing waits for it needlessly:

- :func:`start_renderer` launches it on a thread of its own, so the start overlaps whatever
  the caller computes before its first image;
- :func:`submit` hands over one image and returns at once (a Future), also while the browser
  is still starting, so each figure renders as soon as it is built, on the next free tab,
  while the caller goes on computing the next one; :func:`results` collects them;
- :func:`render_many` renders a whole list at once.

The browser is the system's Chromium (``$BROWSER_PATH``, else ``chromium`` or
``chromium-browser`` on the ``PATH``); kaleido's Chrome download helpers are never called,
so nothing is fetched from the network.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import Future, wait
from typing import Any

from dynconf.errors import DynconfError

# Tabs of the one browser: images render side by side, up to the cores there are to use.
TABS = max(1, min(4, (os.cpu_count() or 2)))
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NO_CHROMIUM = "static export needs Chromium (Debian: apt-get install chromium)"


def chromium_path() -> str:
    """The installed Chromium to render with; a DynconfError when there is none."""
    given = os.environ.get("BROWSER_PATH")
    if given:
        if os.path.isfile(given) and os.access(given, os.X_OK):
            return given
        raise DynconfError(f"BROWSER_PATH={given!r} is not an executable file; {NO_CHROMIUM}")
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise DynconfError(NO_CHROMIUM)


# kaleido reloads a tab after every image, which parses Plotly.js again (seconds on a busy
# machine); a tab here is reloaded only after this many images, which bounds what a page
# can accumulate while sparing the reload for all the others.
RELOAD_EVERY = 64
CLOSE_WAIT_S = 120.0  # the longest close() waits for images still rendering


def _browser_class(kaleido: Any, reload_every: int) -> type:
    """kaleido.Kaleido whose tabs are reloaded every ``reload_every`` images."""

    class Browser(kaleido.Kaleido):
        _served: dict[int, int]

        async def _return_kaleido_tab(self, tab: Any) -> None:
            served = self.__dict__.setdefault("_served", {})
            served[id(tab)] = served.get(id(tab), 0) + 1
            if served[id(tab)] >= reload_every:
                served[id(tab)] = 0
                await tab.reload()
            await self.tabs_ready.put(tab)

    return Browser


class Renderer:
    """One kaleido browser on a private event loop; thread-safe, so the app's download
    callables (run on Streamlit's worker threads) and an export share it. ``reload_every`` 1
    is kaleido's own behaviour (a fresh page for every image)."""

    def __init__(self, tabs: int = TABS, reload_every: int | None = None) -> None:
        try:
            import kaleido
        except ImportError as exc:  # pragma: no cover - kaleido is a runtime dependency
            raise DynconfError(
                "static export needs the kaleido package (pip install kaleido)"
            ) from exc
        self.tabs = tabs
        # Jobs still rendering, so that close() lets them finish first, and whether it has
        # begun (a job submitted after that is cancelled, never started).
        self._inflight: set[Future] = set()
        self._inflight_lock = threading.Lock()
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        every = RELOAD_EVERY if reload_every is None else max(1, int(reload_every))
        browser = _browser_class(kaleido, every)
        self._kaleido = browser(n=tabs, mathjax=False, path=chromium_path())
        try:
            self._call(self._kaleido.open())
        except Exception as exc:
            self._stop_loop()
            raise DynconfError(f"{NO_CHROMIUM} (it did not start: {exc})") from exc

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def submit(self, fig: dict, opts: dict) -> Future:
        """Start rendering one (figure dict, kaleido opts) job and return at once: the Future
        gives its bytes. Jobs submitted while others render queue for the next free tab, so
        a caller can hand over each figure as soon as it is built and go on computing."""
        with self._inflight_lock:
            if self._closing:
                future: Future = Future()
                future.cancel()
                return future
            future = asyncio.run_coroutine_threadsafe(
                self._kaleido.calc_fig(fig, opts=opts), self._loop
            )
            self._inflight.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future) -> None:
        with self._inflight_lock:
            self._inflight.discard(future)

    def render_many(self, jobs: Sequence[tuple[dict, dict]]) -> list[bytes]:
        """Bytes of each (figure dict, kaleido opts) job, in order; all run concurrently."""
        return results([self.submit(fig, opts) for fig, opts in jobs])

    def close(self) -> None:
        """Let the images still rendering finish (closing under them would leave their tasks
        failing with no one to receive the error), then stop the browser and its loop."""
        with self._inflight_lock:
            self._closing = True
            running = list(self._inflight)
        wait(running, timeout=CLOSE_WAIT_S)
        try:
            self._call(self._kaleido.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


_LOCK = threading.Lock()
_renderer: Renderer | None = None


def renderer() -> Renderer:
    """The process's renderer, started on first use and closed when the process exits."""
    global _renderer
    with _LOCK:
        if _renderer is None:
            _renderer = Renderer()
            atexit.register(close_renderer)
        return _renderer


def close_renderer() -> None:
    """Stop the process's browser (a later image starts a new one)."""
    global _renderer
    with _LOCK:
        current, _renderer = _renderer, None
    if current is not None:
        current.close()


def start_renderer() -> threading.Thread:
    """Start the process's browser on a thread of its own and return that thread.

    Launching Chromium and loading Plotly.js into its tabs takes a second or more; started
    first, it happens while the caller decodes and computes, and the first image finds it
    ready (:func:`renderer` waits for a start under way). A failure here is not raised: the
    next :func:`renderer` call tries again and reports it as a one-line DynconfError.
    """

    def start() -> None:
        with contextlib.suppress(Exception):
            renderer()

    thread = threading.Thread(target=start, name="dynconf-renderer-start", daemon=True)
    thread.start()
    return thread


_PENDING_LOCK = threading.Lock()
_pending: list[tuple[dict, dict, Future]] = []  # jobs waiting for a browser still starting


def submit(fig: dict, opts: dict) -> Future:
    """Render one job on the process's browser and return at once: the Future gives its
    bytes. While the browser is still starting (:func:`start_renderer`) the job waits in a
    list that is handed over as soon as it is up, so a caller never blocks on the start."""
    with _PENDING_LOCK:
        current = _renderer
        if current is None:
            out: Future = Future()
            _pending.append((fig, opts, out))
            if len(_pending) == 1:
                threading.Thread(target=_hand_over, name="dynconf-renderer-wait",
                                 daemon=True).start()  # fmt: skip
            return out
    return current.submit(fig, opts)


def _hand_over() -> None:
    """Wait for the browser, then submit every waiting job (or fail each with the reason
    it could not start)."""
    try:
        current, error = renderer(), None
    except Exception as exc:  # every waiting job reports why
        current, error = None, exc
    with _PENDING_LOCK:
        jobs = list(_pending)
        _pending.clear()
    for fig, opts, out in jobs:
        if current is None:
            out.set_exception(error)
        else:
            _relay(current.submit(fig, opts), out)


def _relay(inner: Future, out: Future) -> None:
    def done(f: Future) -> None:
        if f.cancelled():
            out.cancel()
        elif f.exception() is not None:
            out.set_exception(f.exception())
        else:
            out.set_result(f.result())

    inner.add_done_callback(done)


def results(futures: Sequence[Future]) -> list[bytes]:
    """The bytes of each submitted job, in order; the first failure as a DynconfError
    (after every job has finished, so no render is left running behind the error)."""
    wait(futures)
    for future in futures:
        if future.cancelled():
            raise DynconfError("image export was cancelled: the browser was closed")
        error = future.exception()
        if isinstance(error, DynconfError):
            raise error
        if error is not None:
            raise DynconfError(f"image export failed: {error}")
    return [bytes(future.result()) for future in futures]


def render_many(jobs: Sequence[tuple[dict, dict]]) -> list[bytes]:
    """Render every job on the process's one browser (see :class:`Renderer`)."""
    return renderer().render_many(jobs) if jobs else []

"""Static images from one headless Chromium: a kaleido 1.x browser with a few tabs, started
once per process on an event loop of its own, rendering many figures at a time.

Starting the browser costs a second or more; each image afterwards a fraction of one. One
:class:`Renderer` therefore serves every image of an export (and every download button of an
app server): :func:`render_many` hands a whole figure pack to it at once, and kaleido spreads
the figures over its tabs. The browser is the system's Chromium (``$BROWSER_PATH``, else
``chromium`` or ``chromium-browser`` on the ``PATH``); kaleido's Chrome download helpers are
never called, so nothing is fetched from the network.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import threading
from collections.abc import Sequence
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

    def render_many(self, jobs: Sequence[tuple[dict, dict]]) -> list[bytes]:
        """Bytes of each (figure dict, kaleido opts) job, in order; all run concurrently."""

        async def batch():
            return await asyncio.gather(
                *(self._kaleido.calc_fig(fig, opts=opts) for fig, opts in jobs),
                return_exceptions=True,
            )

        out = self._call(batch())
        for result in out:
            if isinstance(result, BaseException):
                raise DynconfError(f"image export failed: {result}")
        return [bytes(b) for b in out]

    def close(self) -> None:
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


def render_many(jobs: Sequence[tuple[dict, dict]]) -> list[bytes]:
    """Render every job on the process's one browser (see :class:`Renderer`)."""
    return renderer().render_many(jobs) if jobs else []

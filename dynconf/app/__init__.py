"""Streamlit helpers shared by ``app.py`` and the pages in ``app_pages/``; dynconf never
imports them. One job per module:

- ``caches.py``   run listing and loaded runs (keyed on run stamps: every file's size and
                  mtime; runs read into memory, never memory-mapped), the per-view
                  :class:`~dynconf.app.caches.Analysis`, threshold selections, input images;
- ``memcache.py`` the cache those live in, bounded by the bytes they hold
                  (``DYNCONF_CACHE_MB``), least recently used out;
- ``text.py``     ``md_escape``: every user- or file-supplied string passes through it
                  before it reaches markdown;
- ``state.py``    the shared sidebar (run, split, decoder, kappa, threshold), the
                  :class:`~dynconf.app.state.Context` pages read with ``context()``, URL sync;
- ``charts.py``   drawing a chart with its download buttons, the figure pack, chart clicks;
- ``uploads.py``  importing an uploaded outputs file, run names, checkpoints to simulate;
- ``instant.py``  the instant threshold explorer: custom components that evaluate C in the
                  browser from the records payload (their files are in ``instant_assets/``).

Everything Streamlit-free lives in the library: background jobs in ``dynconf/jobs.py``,
sample id -> input image in ``dynconf/inputs.py``, numbers in ``dynconf.core``, figures in
``dynconf.report``. Nothing here imports torch: browsing runs must stay fast on a fresh
machine.

Where runs live (dynconf/core/roots.py): ``DYNCONF_RUNS`` (folders of runs joined by
``os.pathsep``; default ``./runs``, ``./cached_runs`` and the bundled demo runs; ``dynconf app
--runs DIR`` puts DIR first), ``DYNCONF_WORK`` (the user's imports and simulations, default
``./work_runs``); ``DYNCONF_DATA`` (dataset root, for showing input images; ``dynconf app
--data DIR``).
"""

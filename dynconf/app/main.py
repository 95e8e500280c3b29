"""The dashboard's entry script: ``dynconf app``, or ``streamlit run app.py`` from a clone.

Only routing and the shared sidebar live here; each page is one thin file in ``app_pages/``
and the helpers they share are the modules beside this one (see ``__init__.py``). The folder
is not called ``pages/``: Streamlit treats a folder of that name beside the main script as a
legacy multipage app and would run a deep-linked page without this script, so without the
sidebar. Numbers come from ``dynconf``, figures from ``dynconf.report.figures``.
"""

import streamlit as st

from dynconf.app import plotlyjs
from dynconf.app.routes import PAGES, PLOTLY_PAGES, page_path


def main() -> None:
    """One rerun of the app: page config, routing, the sidebar, then the chosen page.

    A page drawn with the vendored Plotly.js gets it first, before the app's own imports
    (numpy, the run caches, the figures) and the sidebar's decode: on a cold server those
    take seconds, during which the browser fetches and parses the bundle.
    """
    st.set_page_config(page_title="dynconf: Dynamic Confidence lab", page_icon="⚡", layout="wide")
    page = st.navigation(
        [
            st.Page(page_path(stem), title=title, icon=icon, default=stem == "home")
            for stem, title, icon in PAGES
        ]
    )
    if page.url_path in PLOTLY_PAGES:
        plotlyjs.load_plotly()
    from dynconf.app import caches, state
    from dynconf.app.text import md_error
    from dynconf.errors import DynconfError

    state.sidebar()
    state.unknown_page_notice([stem for stem, _, _ in PAGES])
    try:
        page.run()
    except DynconfError as exc:
        # A run that changed on disk between the sidebar and the page (or any other bad input
        # the library refuses): one message for this view, never a traceback.
        st.error(f"This view cannot be shown: {md_error(exc)}")
    finally:
        caches.settle()  # re-measure what the page grew and evict down to DYNCONF_CACHE_MB


if __name__ == "__main__":
    main()

"""dynconf dashboard entry point: ``streamlit run app.py``.

Only routing and the shared sidebar live here; each page is one thin file in ``app_pages/``
and the helpers they share are in ``ui/`` (see ui/__init__.py). (Not ``pages/``: Streamlit
treats a folder of that name as a legacy multipage app and then runs a deep-linked page
without this file, so without the sidebar, on a server's first run.) Numbers come from
``dynconf``, figures from ``dynconf.report.figures``.
"""

import streamlit as st

from dynconf.errors import DynconfError
from ui import caches, state
from ui.text import md_error

st.set_page_config(page_title="dynconf: Dynamic Confidence lab", page_icon="⚡", layout="wide")

page = st.navigation(
    [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/classroom.py", title="Classroom", icon=":material/school:"),
        st.Page("app_pages/explorer.py", title="Threshold explorer", icon=":material/tune:"),
        st.Page("app_pages/oracle.py", title="Oracle", icon=":material/visibility:"),
        st.Page("app_pages/selection.py", title="Threshold selection", icon=":material/rule:"),
        st.Page("app_pages/policies.py", title="Policies", icon=":material/alt_route:"),
        st.Page("app_pages/samples.py", title="Samples", icon=":material/image_search:"),
        st.Page("app_pages/classes.py", title="Classes", icon=":material/category:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("app_pages/runs.py", title="Runs", icon=":material/folder_open:"),
    ]
)
state.sidebar()
try:
    page.run()
except DynconfError as exc:
    # A run that changed on disk between the sidebar and the page (or any other bad input
    # the library refuses): one message for this view, never a traceback.
    st.error(f"This view cannot be shown: {md_error(exc)}")
finally:
    caches.settle()  # re-measure what the page grew and evict down to DYNCONF_CACHE_MB

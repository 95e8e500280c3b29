"""dynconf dashboard entry point: ``streamlit run app.py``.

Only routing and the shared sidebar live here; each page is one thin file in ``app_pages/``
and the helpers they share are in ``ui/`` (see ui/__init__.py). (Not ``pages/``: Streamlit
treats a folder of that name as a legacy multipage app and then runs a deep-linked page
without this file, so without the sidebar, on a server's first run.) Numbers come from
``dynconf``, figures from ``dynconf.report.figures``.
"""

import streamlit as st

from ui import state

st.set_page_config(page_title="dynconf: Dynamic Confidence lab", page_icon="⚡", layout="wide")

page = st.navigation(
    [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/explorer.py", title="Threshold explorer", icon=":material/tune:"),
        st.Page("app_pages/oracle.py", title="Oracle", icon=":material/visibility:"),
        st.Page("app_pages/selection.py", title="Threshold selection", icon=":material/rule:"),
        st.Page("app_pages/policies.py", title="Policies", icon=":material/alt_route:"),
        st.Page("app_pages/samples.py", title="Samples", icon=":material/image_search:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("app_pages/runs.py", title="Runs", icon=":material/folder_open:"),
    ]
)
state.sidebar()
page.run()

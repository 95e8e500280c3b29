"""The app's pages: one file each in ``app_pages/``, named by URL path (the registry of pages;
adding one is one file there plus one line here)."""

from pathlib import Path

PAGES_DIR = Path(__file__).resolve().with_name("app_pages")

# (file stem, menu title, icon); the stem is the page's URL path.
PAGES = (
    ("home", "Home", ":material/home:"),
    ("classroom", "Classroom", ":material/school:"),
    ("explorer", "Threshold explorer", ":material/tune:"),
    ("oracle", "Oracle", ":material/visibility:"),
    ("selection", "Threshold selection", ":material/rule:"),
    ("policies", "Policies", ":material/alt_route:"),
    ("samples", "Samples", ":material/image_search:"),
    ("classes", "Classes", ":material/category:"),
    ("compare", "Compare", ":material/compare_arrows:"),
    ("runs", "Runs", ":material/folder_open:"),
)

# Pages drawn with the vendored Plotly.js (dynconf/app/plotlyjs.py): the entry script mounts
# it before anything else, so the browser parses it while the server works.
PLOTLY_PAGES = frozenset({"explorer", "oracle", "policies"})


def page_path(stem: str) -> str:
    """The absolute path of page ``stem``: what ``st.switch_page`` and ``st.Page`` take,
    wherever the entry script lives (the clone's ``app.py`` or this file)."""
    return str(PAGES_DIR / f"{stem}.py")

"""The documentation speaks only of the product, stays short where it must, and its links
resolve.

- No file of the tree (tracked or new, binary files and run data skipped) tells how the
  project was made rather than what it does (the patterns below say which words), nor cites
  the method brief that users never see.
- README.md stays a page of recipes (at most 210 lines) and keeps the two set-up commands and
  the test command that .ci/run runs verbatim.
- Every relative link in README.md and docs/ points at a file or folder that exists.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_PREFIXES = ("cached_runs/", "dynconf/demo_runs/")
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".pdf", ".svg", ".npy", ".npz", ".pt", ".gz", ".whl",
                   ".zip", ".ico", ".woff", ".woff2"}  # fmt: skip
# Words about how the project was built. Case-insensitive except the method brief's name,
# which must not match docs/METHOD.md.
DEVELOPMENT_WORDS = {
    "lease": re.compile(r"\bleas(e|es|ed|ing)\b", re.I),
    "lent": re.compile(r"\blent\b", re.I),
    "issue number": re.compile(r"\bissues? #?\d+", re.I),
    "device time": re.compile(r"\bdevice[ -]time\b", re.I),
    "upload size": re.compile(r"\bMiB uploads?\b|\bupload (size )?limit of\b|\bfits? (in|into) "
                              r"(an |one |the )?upload\b|\bwhat travels\b", re.I),  # fmt: skip
    "method brief": re.compile(r"(?<![A-Z])method\.md"),
}
# In prose only: the code speaks of Streamlit's browser sessions.
PROSE_WORDS = {
    "development session": re.compile(r"\b(this|next|one|each|a|that|earlier|later) session\b"
                                      r"(?! state)", re.I),  # fmt: skip
}
THIS_FILE = "tests/test_docs.py"  # names the words it looks for


def tree_files() -> list[str]:
    """Tracked and new (not ignored) files, less run data and binaries."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    return sorted(
        name
        for name in set(out)
        if not name.startswith(SKIPPED_PREFIXES)
        and Path(name).suffix.lower() not in BINARY_SUFFIXES
        and name != THIS_FILE
        and (ROOT / name).is_file()
    )


def offenders(names: list[str]) -> list[str]:
    found = []
    for name in names:
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        words = {**DEVELOPMENT_WORDS, **(PROSE_WORDS if name.endswith(".md") else {})}
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in words.items():
                if pattern.search(line):
                    found.append(f"{name}:{number}: {what}: {line.strip()[:120]}")
    return found


def test_the_patterns_catch_what_they_are_for():
    samples = {
        "lease": "the next lease on a GPU", "lent": "a lent H200",
        "issue number": "see issue 17", "device time": "15 minutes of device time",
        "upload size": "stays under the 64 MiB upload", "method brief": "shared/docs/method.md",
        "development session": "the next session that gets a GPU",
    }  # fmt: skip
    words = {**DEVELOPMENT_WORDS, **PROSE_WORDS}
    for what, text in samples.items():
        assert words[what].search(text), what
    for text in ("docs/METHOD.md section 3", "release notes", "silently", "st.session_state",
                 "every browser session", "a session state key", "excellent"):  # fmt: skip
        assert not any(p.search(text) for p in words.values()), text


def test_docs_and_readme_speak_only_of_the_product():
    docs = [n for n in tree_files() if n.endswith(".md") or n.startswith("docs/")]
    assert "README.md" in docs and "docs/METHOD.md" in docs
    assert offenders(docs) == []


def test_the_whole_tree_speaks_only_of_the_product():
    found = offenders(tree_files())
    assert found == [], "\n".join(found)


def test_readme_is_a_page_of_recipes():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 210
    assert "pip install -r requirements.txt && streamlit run app.py" in readme
    assert "pip install .[app]" in readme and "dynconf app" in readme
    assert "DYNCONF_DATA" in readme and "--data" in readme
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"```bash\n{ci}\n```" in readme  # .ci/run runs the README's test command verbatim


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == []


def test_the_docs_index_lists_every_page():
    index = (ROOT / "docs" / "README.md").read_text()
    pages = [p.name for p in (ROOT / "docs").glob("*.md") if p.name != "README.md"]
    assert [p for p in pages if f"]({p})" not in index] == []

"""Every file the library reads goes through the regular-file check (dynconf/core/safeopen.py).

A FIFO or a device where a run file, a settings file, a part, a log or an import source
should be blocks a plain open() or read_text() forever. This test reads the package's source
and fails on any raw way to open a file for reading (read_text, read_bytes, np.load,
torch.load, PIL's Image.open on a path, json.load, builtin open) outside a short allowlist,
each entry with the reason it is safe. Creating a file with open(path, "x...") is allowed:
O_EXCL never opens an existing file, so it cannot open a FIFO.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dynconf"

RAW_OPENS = {
    "read_text": re.compile(r"\.read_text\("),
    "read_bytes": re.compile(r"\.read_bytes\("),
    # np.load, torch.load and PIL's Image.open of a file opened by open_regular, named fh
    "np.load": re.compile(r"\bnp\.load\((?!fh\b)"),
    "torch.load": re.compile(r"\btorch\.load\((?!fh\b)"),
    "Image.open": re.compile(r"\bImage\.open\((?!fh\b)"),
    "json.load": re.compile(r"\bjson\.load\("),
    "open": re.compile(r"(?<![\w.])open\((?![^)]*,\s*[\"']x)"),  # builtin open, not "x" mode
}

# (path relative to the repository, the raw call, why it is safe). Keep it short.
ALLOWED = {
    ("dynconf/jobs.py", "read_text", "/proc/<pid>/stat is the kernel's, never a user file"),
    ("dynconf/engine/distributed.py", "open", "os.devnull, for the quiet ranks' stdout"),
}
# Files shipped inside the installed packages (dynconf's assets, plotly's bundle), never a
# user's: a read whose line names one of these is allowed.
PACKAGE_FILES = re.compile(r"\bASSETS\b|\bPLOTLY_BUNDLE\b|plotly\.__file__")


def raw_opens() -> list[tuple[str, int, str, str]]:
    """(path, line number, call, line) of every raw open in the package, comments skipped."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.lstrip().startswith(('"', "'")) or "``" in code:
                continue  # docstring text that names a call
            for call, pattern in RAW_OPENS.items():
                if pattern.search(code) and not PACKAGE_FILES.search(code):
                    found.append((rel, number, call, line.strip()))
    return found


def test_every_file_the_library_reads_goes_through_the_regular_file_check():
    allowed = {(path, call) for path, call, _ in ALLOWED}
    offenders = [f"{p}:{n} {call}: {line}" for p, n, call, line in raw_opens()
                 if (p, call) not in allowed]  # fmt: skip
    assert not offenders, "raw opens outside the allowlist:\n" + "\n".join(offenders)


def test_every_allowlist_entry_is_still_needed():
    used = {(p, call) for p, _, call, _ in raw_opens()}
    stale = [entry for entry in ALLOWED if entry[:2] not in used]
    assert not stale, f"allowlist entries no longer needed: {stale}"


@pytest.mark.parametrize(
    "line, call",
    [("x = p.read_text()", "read_text"), ("with open(path) as f:", "open"),
     ("a = np.load(part, allow_pickle=False)", "np.load"),
     ("torch.load(path, weights_only=True)", "torch.load"), ("Image.open(files[0])", "Image.open"),
     ("Image.open(f)", "Image.open"), ("np.load(f)", "np.load")],
)  # fmt: skip
def test_the_patterns_catch_raw_opens(line, call):
    assert RAW_OPENS[call].search(line)


@pytest.mark.parametrize(
    "line",
    ['open(path, "xb")', "torch.load(fh, map_location='cpu')", "zf.open(info)", "os.open(p, 0)",
     "Image.open(fh)", "np.load(fh, allow_pickle=False)", "open_regular(path)"],
)  # fmt: skip
def test_the_patterns_let_safe_calls_through(line):
    assert not any(pattern.search(line) for pattern in RAW_OPENS.values())

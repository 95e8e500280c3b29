"""docs/SAFETY.md names, for every guarantee, the test that holds it: each named test exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"`(tests/[\w/]+\.py)?::(\w+)`")  # `file::test`, or `::test` of the file before


def cited_tests() -> list[tuple[str, str]]:
    cited = []
    for line in (ROOT / "docs" / "SAFETY.md").read_text().splitlines():
        current = None
        for match in CITED.finditer(line):
            current = match.group(1) or current
            cited.append((current, match.group(2)))
    return cited


def test_every_test_named_in_the_safety_doc_exists():
    cited = cited_tests()
    assert len(cited) > 50
    missing = []
    for path, name in cited:
        source = (ROOT / path).read_text() if path and (ROOT / path).is_file() else ""
        if not re.search(rf"^(async )?def {name}\(", source, re.M):
            missing.append(f"{path}::{name}")
    assert not missing, missing

"""Refresh the vendored Plotly.js bundle (dynconf/report/explorer/vendor/).

The explorer (app, HTML report, notebook widget) draws with npm's official
``plotly.js-basic-dist-min`` (scatter, bar and pie: every chart it draws), a quarter of the
full ``plotly.min.js``. Its version is pinned to the Plotly.js that the installed Python
``plotly`` package bundles, so the figures Python builds and the bundle that draws them agree.

    python tools/vendor_plotly.py            # fetch with `npm pack`, check, write
    python tools/vendor_plotly.py --check    # only check the vendored file

The check: the file starts with the MIT licence header naming the pinned version, the
package's LICENSE is kept beside it, and VERSION.json records the npm integrity hash.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "plotly.js-basic-dist-min"
BUNDLE = "plotly-basic.min.js"
VENDOR = Path(__file__).resolve().parents[1] / "dynconf" / "report" / "explorer" / "vendor"


def pinned_version() -> str:
    """The Plotly.js version the Python plotly package bundles."""
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


def header_problem(text: str, version: str) -> str | None:
    """Why ``text`` is not the expected bundle, or None."""
    head = text[:400]
    for needed in (f"plotly.js (basic - minified) v{version}", "Licensed under the MIT license"):
        if needed not in head:
            return f"the bundle's header lacks {needed!r}"
    if "window.Plotly = Plotly" not in text[-2000:]:
        return "the bundle does not set window.Plotly"
    if "</script" in text.lower():
        return "the bundle contains '</script' and cannot be inlined in a page"
    return None


def check(version: str) -> None:
    text = (VENDOR / BUNDLE).read_text(encoding="utf-8")
    problem = header_problem(text, version)
    if problem:
        sys.exit(f"vendored {BUNDLE}: {problem}")
    if not (VENDOR / "LICENSE").is_file():
        sys.exit("vendored LICENSE is missing")
    info = json.loads((VENDOR / "VERSION.json").read_text())
    if info.get("version") != version:
        sys.exit(f"vendored version {info.get('version')} is not the pinned {version}")
    print(f"{BUNDLE} v{version}: header and licence ok ({len(text):,} bytes)")


def fetch(version: str) -> None:
    spec = f"{PACKAGE}@{version}"
    integrity = subprocess.run(
        ["npm", "view", spec, "dist.integrity"], check=True, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", spec], cwd=tmp, check=True, capture_output=True)
        tgz = next(Path(tmp).glob("*.tgz"))
        digest = base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        if integrity != f"sha512-{digest}":
            sys.exit(f"{tgz.name}: sha512 does not match the registry's integrity {integrity}")
        with tarfile.open(tgz) as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            bundle = tar.extractfile(members[f"package/{BUNDLE}"]).read().decode("utf-8")
            licence = tar.extractfile(members["package/LICENSE"]).read()
    problem = header_problem(bundle, version)
    if problem:
        sys.exit(f"{spec}: {problem}")
    VENDOR.mkdir(parents=True, exist_ok=True)
    (VENDOR / BUNDLE).write_text(bundle, encoding="utf-8")
    (VENDOR / "LICENSE").write_bytes(licence)
    info = {"package": PACKAGE, "version": version, "integrity": integrity, "file": BUNDLE}
    (VENDOR / "VERSION.json").write_text(json.dumps(info, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the vendored bundle")
    parser.add_argument("--version", default=None, help="Plotly.js version (default: pinned)")
    args = parser.parse_args()
    version = args.version or pinned_version()
    if not args.check:
        fetch(version)
    check(version)


if __name__ == "__main__":
    main()

"""The tutorials (docs/tutorials/*.py, jupytext percent scripts) execute as notebooks.

Each is converted with jupytext and run cell by cell in a fresh Python kernel by nbclient, in
a temporary working directory (the runs and figures they write land there, not in the
checkout), so a tutorial that no longer matches the API fails here. Their own asserts check
the numbers they show.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9]*.py"))

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")


def test_there_are_at_least_three_tutorials():
    assert len(TUTORIALS) >= 3
    listed = (ROOT / "docs" / "tutorials" / "README.md").read_text()
    assert all(path.name in listed for path in TUTORIALS)


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_executes(path, tmp_path, monkeypatch):
    if "snn" in path.stem:
        pytest.importorskip("spikingjelly")
    notebook = jupytext.read(path)
    assert sum(cell.cell_type == "code" for cell in notebook.cells) >= 4
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for name in ("DYNCONF_RUNS", "DYNCONF_WORK", "DYNCONF_DATA"):
        monkeypatch.delenv(name, raising=False)
    where = {"metadata": {"path": str(tmp_path)}}
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources=where
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    assert not (ROOT / "runs").exists() and not (ROOT / "figures").exists()

"""The app's per-chart download and the CLI/ZIP export are the same figure.

The explorer page's download buttons are recorded as the app draws them (AppTest, the real
page); the figure each would render (``export.export_figure``, what ``figure_bytes`` draws)
must equal, as Plotly JSON, the one the figure pack (``collect_charts`` + ``pack_files``,
i.e. ``dynconf export``) draws for the same view -- title, legend and layout included.
"""

from __future__ import annotations

import json

from dynconf.core.store import load_run
from dynconf.report import export
from tests.app.helpers import app
from ui import charts as ui_charts

KEYS = {"accuracy_latency", "exit_histogram", "threshold_response", "exit_scatter"}


def _json(fig) -> dict:
    return json.loads(fig.to_json())


def test_explorer_downloads_are_the_exported_figures(env, monkeypatch):
    drawn: dict[str, object] = {}
    original = ui_charts.download_row

    def recording(chart, key):
        drawn[chart.key] = chart
        return original(chart, key)

    monkeypatch.setattr(ui_charts, "download_row", recording)
    at = app("explorer")
    assert set(drawn) >= KEYS, sorted(drawn)
    # The app's exact threshold (the URL rounds it), as the plane's table records it.
    current = drawn["accuracy_latency"].data
    threshold = float(current.loc[current.series == "current", "threshold"].iloc[0])
    run = load_run(env / "synth")
    assert at.query_params["run"] in ("synth", ["synth"])
    packed, _, _ = export.collect_charts(
        run, "test", threshold=threshold, decoder="paper", calibration="calibration"
    )
    by_key = {c.key: c for c in packed}
    for key in sorted(KEYS):
        assert drawn[key].title == by_key[key].title
        assert drawn[key].csv() == by_key[key].csv(), key
        for preset in ("screen", "paper-1col"):
            app_fig = _json(export.export_figure(drawn[key].figure, preset))
            pack_fig = _json(export.export_figure(by_key[key].figure, preset))
            assert app_fig["layout"] == pack_fig["layout"], (key, preset)
            assert app_fig == pack_fig, (key, preset)

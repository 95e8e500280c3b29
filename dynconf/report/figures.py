"""Every Plotly chart of dynconf in one namespace: the app's and the export's single import point.

:func:`build_figure` draws any figure the app shows by its name from a view (the registry,
dynconf/report/registry.py); the builders below draw from numbers already computed.

Each builder takes numbers already computed by ``dynconf.core`` (it computes nothing of its
own beyond counting and reshaping) and returns a :class:`Chart`: the figure plus the exact
numbers it draws as a tidy table, so that a CSV download always matches its picture and the
app and the command-line export can never drift apart. The builders live in one module per
chart family (plane, exits, thresholds, samples, overview); the look in style.py and the
shared traces in traces.py. No Streamlit here: the CLI uses this headless.
"""

from dynconf.report.classes import class_accuracy, class_latency, confusion_matrix
from dynconf.report.exits import exit_histogram, exit_scatter
from dynconf.report.overview import accuracy_by_T
from dynconf.report.plane import (
    accuracy_latency,
    compare,
    compare_label,
    oracle_bound,
    policy_fronts,
)
from dynconf.report.registry import (
    FIGURES,
    MAX_CLASSES_DRAWN,
    FigureSpec,
    build_figure,
    drawn_classes,
    figure_names,
    sample_position,
)
from dynconf.report.samples import sample_confidence, sample_image, sample_probabilities
from dynconf.report.style import Chart
from dynconf.report.thresholds import pareto_selection, threshold_response
from dynconf.report.timeline import timeline_confidence, timeline_grid, timeline_histogram

__all__ = [
    "FIGURES",
    "MAX_CLASSES_DRAWN",
    "Chart",
    "FigureSpec",
    "build_figure",
    "figure_names",
    "accuracy_by_T",
    "accuracy_latency",
    "class_accuracy",
    "class_latency",
    "compare",
    "compare_label",
    "drawn_classes",
    "sample_position",
    "confusion_matrix",
    "exit_histogram",
    "exit_scatter",
    "oracle_bound",
    "pareto_selection",
    "policy_fronts",
    "sample_confidence",
    "sample_image",
    "sample_probabilities",
    "threshold_response",
    "timeline_confidence",
    "timeline_grid",
    "timeline_histogram",
]


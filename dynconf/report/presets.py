"""Figure presets: the size, fonts and line weights of an exported figure, one entry each.

A preset says what a figure is for: ``screen`` (the app, a web page), ``slides``, and the
two paper layouts, one column (3.3 in) and the full width of a two-column page (7 in).
Sizes are in inches and font sizes in points as they print at 100 % (a PDF page is
``width_in`` wide; PNGs are rendered at ``png_dpi``). Paper figures carry no title: the
caption names the run and the threshold, and an internal run id does not belong in a paper.
Only the plot area's height is fixed; the legend gets rows of its own below or above it, so
the axes box of every figure of a preset has the same size whatever its legend says.

Adding a preset = one entry in ``PRESETS``; ``export --preset`` and the app's preset menu
list them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynconf.errors import DynconfError

PX_PER_IN = 96  # CSS pixels, which is what Plotly and the PDF printer measure in
PX_PER_PT = PX_PER_IN / 72


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    width_in: float  # the whole figure
    plot_height_in: float  # the axes box only; title, legend and margins come on top
    font_pt: float  # axis titles, legend, annotations
    tick_pt: float  # tick labels
    title_pt: float | None  # None: no title (the caption carries it)
    weight: float  # line widths and marker sizes relative to the screen figure
    png_dpi: int

    @property
    def width_px(self) -> int:
        return round(self.width_in * PX_PER_IN)

    @property
    def plot_height_px(self) -> int:
        return round(self.plot_height_in * PX_PER_IN)

    @property
    def png_scale(self) -> float:
        return self.png_dpi / PX_PER_IN


# name, what for, width (in), plot height (in), font / ticks / title (pt), weight, PNG dpi
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("screen", "web page or the app, titled", 7.92, 3.55, 10, 9, 12, 1.0, 192),
        Preset("slides", "16:9 slide, large type, titled", 10.0, 4.2, 16, 14, 20, 1.5, 192),
        Preset("paper-2col", "full width of a two-column paper", 7.0, 2.6, 9, 8, None, 0.8, 300),
        Preset("paper-1col", "one column of a two-column paper", 3.3, 1.9, 8, 7, None, 0.6, 300),
    )
}  # fmt: skip
DEFAULT_PRESET = "screen"


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name``; an unknown name is a DynconfError listing the choices."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise DynconfError(
            f"unknown figure preset {name!r}; choose from {', '.join(PRESETS)}"
        ) from None


def preset_names() -> tuple[str, ...]:
    return tuple(PRESETS)

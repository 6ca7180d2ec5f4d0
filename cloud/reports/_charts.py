"""Charts as inline SVG (matplotlib, no JavaScript): the same markup in HTML and in the PDF."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from typing import Final

from matplotlib.figure import Figure

PALETTE: Final = ("#1f5f8b", "#e07b39", "#3c9d5d", "#b8403a", "#7a5aa6", "#8c6d46", "#5b8fa8")
_HEAD = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = _HEAD.sub("", buf.getvalue())
    # Scale with the page: the width the layout gives, the height from the aspect ratio.
    return re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 width="100%"', text, count=1
    )


def _figure(width_in: float = 7.0, height_in: float = 2.6) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=100)
    fig.set_layout_engine("tight")
    return fig


def _style(ax: object) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)  # type: ignore[attr-defined]
    ax.tick_params(labelsize=8)  # type: ignore[attr-defined]
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)  # type: ignore[attr-defined]
    ax.set_axisbelow(True)  # type: ignore[attr-defined]


def stacked_bars(
    categories: Sequence[str], stacks: Mapping[str, Sequence[float]], *, ylabel: str
) -> str:
    """Vertical bars, one per category, stacked by the named series."""
    fig = _figure()
    ax = fig.add_subplot()
    bottom = [0.0] * len(categories)
    for i, (name, values) in enumerate(stacks.items()):
        ax.bar(categories, values, bottom=bottom, label=name, color=PALETTE[i % len(PALETTE)])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=7, frameon=False, ncols=min(len(stacks), 4))
    _style(ax)
    return _svg(fig)


def percent_bars(
    labels: Sequence[str], values: Sequence[float | None], *, target: float | None = None
) -> str:
    """Horizontal bars of percentages (0-100), with an optional target line."""
    fig = _figure(height_in=max(1.4, 0.28 * len(labels) + 0.6))
    ax = fig.add_subplot()
    shown = [v if v is not None else 0.0 for v in values]
    colors = [PALETTE[0] if v is not None else "#cccccc" for v in values]
    ax.barh(list(labels), shown, color=colors)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("%", fontsize=8)
    if target is not None:
        ax.axvline(target, color=PALETTE[3], linewidth=1, linestyle="--")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    return _svg(fig)


def lines(
    series: Mapping[str, Sequence[tuple[dt.datetime, float]]],
    *,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
) -> str:
    """One line per named series over time."""
    fig = _figure(height_in=2.8)
    ax = fig.add_subplot()
    for i, (name, points) in enumerate(sorted(series.items())):
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, label=name, linewidth=1.2, color=PALETTE[i % len(PALETTE)])
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel, fontsize=8)
    if series:
        ax.legend(fontsize=7, frameon=False, ncols=min(len(series), 4), loc="lower left")
    fig.autofmt_xdate()
    _style(ax)
    return _svg(fig)

"""The report page's chart of test PSNR by version of the serving dir.

An inline SVG built from numbers and escaped text (the page stays offline,
with no script): a y axis in dB with round ticks, an x axis of versions,
oldest on the left, one point per version with a push record (rollbacks in
red, the served version ringed). Every label is placed to show whole
within the chart, for one version as for many: the first version's label
starts at the left end of the axis, the last one's ends at its right end,
and labels in between are drawn only where they have room.
"""

import dataclasses
import html
import math
from typing import List, Optional, Sequence, Tuple

from pipeline import versions

WIDTH, HEIGHT = 640, 230
# The plot area's distance from each edge: room for the y labels (left),
# the x labels and the axis title (bottom), the y axis title (top).
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 26, 48
FONT_SIZE = 11
# The widest advance of a digit or letter of a sans-serif font, in ems
# (DejaVu Sans's digits: 0.636): an upper bound of a label's width.
CHAR_WIDTH = 0.65
LABEL_GAP = 12  # Pixels kept between two labels of the x axis.
INSET = 8  # Pixels between the axis' ends and the first and last points.
BLUE, RED, GREY = '#3b6ea8', '#b42318', '#999'


@dataclasses.dataclass(frozen=True)
class Point:
  """One version on the chart: its name, PSNR and how it is marked.

  Attributes:
    alike: Measured on the dataset and noise of the reference version (the
      served one, else the newest charted): only those are joined by the
      line; another's PSNR is on another scale, a hollow point off it.
    noise: The noise its PSNR was measured on ('' when not recorded).
  """
  version: str
  psnr: float
  rollback_of: Optional[str]
  served: bool
  alike: bool = True
  noise: str = ''


def points(entries: List[versions.VersionEntry]) -> List[Point]:
  """The versions to chart, oldest first: complete ones with a PSNR."""
  charted = [entry for entry in reversed(entries)
             if entry.complete and entry.record and 'psnr' in entry.record.metrics]
  if not charted:
    return []
  served = [entry for entry in charted if entry.served]
  reference = versions.measured_on((served or charted[-1:])[0].record)
  return [Point(entry.version, entry.record.metrics['psnr'],
                entry.record.rollback_of, entry.served,
                versions.measured_on(entry.record) == reference,
                entry.record.noise)
          for entry in charted]


def text_width(text: str, font_size: int = FONT_SIZE) -> float:
  """An upper bound of the width in pixels of `text` drawn at `font_size`."""
  return len(text) * font_size * CHAR_WIDTH


def y_ticks(values: Sequence[float]) -> List[float]:
  """Round dB values (steps of 1, 2 or 5 times a power of 10), 3 to 6 of
  them, the first at or below every value and the last at or above."""
  low, high = min(values), max(values)
  if high - low < 1.0:  # One version, or several alike: a 1 dB window.
    low, high = (low + high) / 2 - 0.5, (low + high) / 2 + 0.5
  raw = (high - low) / 4
  power = 10 ** math.floor(math.log10(raw))
  step = next(power * factor for factor in (1, 2, 5, 10)
              if power * factor >= raw)
  first, last = math.floor(low / step), math.ceil(high / step)
  return [round(index * step, 10) for index in range(first, last + 1)]


def x_positions(count: int) -> List[float]:
  """The x of each of `count` points: spread over the axis (clear of the y
  axis and the right edge by INSET), one centred."""
  span = WIDTH - LEFT - RIGHT - 2 * INSET
  if count == 1:
    return [LEFT + INSET + span / 2]
  return [LEFT + INSET + index * span / (count - 1) for index in range(count)]


def labelled(names: Sequence[str], xs: Sequence[float]
             ) -> List[Tuple[int, str]]:
  """(index, text-anchor) of the versions whose names the x axis shows:
  always the first and the last (anchored at the axis' ends, so they show
  whole), and between them those that fit without touching a neighbour."""
  if len(names) == 1:
    return [(0, 'middle')]
  spans = {0: (xs[0], xs[0] + text_width(names[0])),
           len(names) - 1: (xs[-1] - text_width(names[-1]), xs[-1])}
  chosen = [(0, 'start'), (len(names) - 1, 'end')]
  for index in range(1, len(names) - 1):
    half = text_width(names[index]) / 2
    span = (xs[index] - half, xs[index] + half)
    if all(span[0] >= right + LABEL_GAP or span[1] <= left - LABEL_GAP
           for left, right in spans.values()):
      spans[index] = span
      chosen.append((index, 'middle'))
  return sorted(chosen)


def _text(x: float, y: float, text: str, anchor: str, css_class: str) -> str:
  return (f'<text class="{css_class}" x="{x:.1f}" y="{y:.1f}" '
          f'text-anchor="{anchor}">{html.escape(text)}</text>')


def _y_axis(ticks: List[float], y_of) -> List[str]:
  """The y axis: its line, a grid line and a label per tick, its title."""
  parts = [f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" '
           f'y2="{HEIGHT - BOTTOM}" stroke="{GREY}"/>',
           _text(4, TOP - 12, 'PSNR (dB)', 'start', 'title')]
  # Decimals enough to tell the ticks apart (a step of 0.2: one).
  places = max(0, -math.floor(math.log10(ticks[1] - ticks[0]) + 1e-9))
  for tick in ticks:
    y = y_of(tick)
    parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" '
                 f'y2="{y:.1f}" stroke="#e4e4e4"/>')
    parts.append(_text(LEFT - 6, y + FONT_SIZE / 3, f'{tick:.{places}f}', 'end',
                       'y-label'))
  return parts


def _x_axis(chart: List[Point], xs: List[float]) -> List[str]:
  """The x axis: its line, the names of the versions that fit, its title."""
  bottom = HEIGHT - BOTTOM
  parts = [f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" '
           f'y2="{bottom}" stroke="{GREY}"/>']
  names = [point.version for point in chart]
  for index, anchor in labelled(names, xs):
    parts.append(f'<line x1="{xs[index]:.1f}" y1="{bottom}" x2="{xs[index]:.1f}" '
                 f'y2="{bottom + 4}" stroke="{GREY}"/>')
    parts.append(_text(xs[index], bottom + 4 + FONT_SIZE, names[index], anchor,
                       'x-label'))
  parts.append(_text(LEFT + (WIDTH - LEFT - RIGHT) / 2, HEIGHT - 6,
                     f'version ({len(chart)}, oldest on the left)', 'middle',
                     'title'))
  return parts


def _marks(chart: List[Point], placed: List[Tuple[float, float]]) -> List[str]:
  """The line through the versions and a titled point for each."""
  parts = [f'<polyline fill="none" stroke="{BLUE}" stroke-width="1.5" points="'
           + ' '.join(f'{x:.1f},{y:.1f}' for (x, y), point in zip(placed, chart)
                      if point.alike) + '"/>']
  for point, (x, y) in zip(chart, placed):
    title = f'version {point.version}: {point.psnr:.2f} dB' + (
        f' on {point.noise}' if point.noise else '') + (
            f', rollback of {point.rollback_of}' if point.rollback_of else '') + (
                ', served now' if point.served else '') + (
                    '' if point.alike else ', not comparable (measured on '
                    'another dataset or noise)')
    colour = RED if point.rollback_of else BLUE
    ring = ' stroke="#222" stroke-width="2"' if point.served else ''
    if not point.alike:  # Hollow: its value is on another scale.
      ring = f' stroke="{colour}" stroke-width="1.5"'
    parts.append(
        f'<circle class="{"rollback" if point.rollback_of else "push"}" '
        f'cx="{x:.1f}" cy="{y:.1f}" r="4" '
        f'fill="{colour if point.alike else "none"}"{ring}>'
        f'<title>{html.escape(title)}</title></circle>')
  return parts


def psnr_chart_svg(entries: List[versions.VersionEntry]) -> Optional[str]:
  """The chart of the versions `entries` (versions.list_versions, newest
  first) as one <svg> element; None when no version has a recorded PSNR."""
  chart = points(entries)
  if not chart:
    return None
  ticks = y_ticks([point.psnr for point in chart])

  def y_of(value: float) -> float:
    return TOP + (ticks[-1] - value) / (ticks[-1] - ticks[0]) * (
        HEIGHT - TOP - BOTTOM)

  xs = x_positions(len(chart))
  placed = [(x, y_of(point.psnr)) for x, point in zip(xs, chart)]
  # No xmlns: the SVG is inline HTML, whose parser gives it its namespace.
  parts = ([f'<svg width="{WIDTH}" '
            f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="PSNR by version" font-family="sans-serif" '
            f'font-size="{FONT_SIZE}">']
           + _y_axis(ticks, y_of) + _x_axis(chart, xs) + _marks(chart, placed)
           + ['</svg>'])
  return ''.join(parts)

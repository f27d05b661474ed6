"""The report page's chart of PSNR by version: axes, and every label whole.

The chart is checked here as SVG, its labels by an upper bound of their
width (version_chart.text_width); tests/pipeline/test_report_page.py
measures the same labels as Chromium lays them out.
"""

from xml.etree import ElementTree

import pytest

from components.common import push_records
from pipeline import version_chart
from pipeline import versions

FIRST_VERSION = 1796600000  # Unix seconds: what TFX's Pusher names versions.


def history(count, rollback_at=None):
  """`count` versions newest first, as versions.list_versions gives them:
  PSNR rising by 0.3 dB a push, the newest served; a rollback at index
  `rollback_at` (oldest first) when given."""
  entries = []
  for index in range(count):
    version = str(FIRST_VERSION + 1000 * index)
    rolled = str(FIRST_VERSION) if index == rollback_at else None
    record = push_records.PushRecord(
        version=version, pushed_at='2026-12-07T00:00:00',
        metrics={'psnr': 22.0 + 0.3 * index}, rollback_of=rolled)
    entries.append(versions.VersionEntry(version, True, index == count - 1, record))
  return list(reversed(entries))


def parsed(svg):
  return ElementTree.fromstring(svg)


def texts(svg, css_class):
  return [element for element in parsed(svg).iter('text')
          if element.get('class') == css_class]


def y_labels(svg):
  """The values the y axis names (left of the plot area)."""
  return [float(label.text) for label in texts(svg, 'y-label')]


def extent(element):
  """(left, right) of a text element, by its anchor and an upper bound of its width."""
  x, width = float(element.get('x')), version_chart.text_width(element.text)
  return {'start': (x, x + width), 'middle': (x - width / 2, x + width / 2),
          'end': (x - width, x)}[element.get('text-anchor')]


@pytest.mark.parametrize('count', [1, 2, 3, 7, 20, 50])
def test_the_chart_has_both_axes_and_names_the_first_and_last_version(count):
  svg = version_chart.psnr_chart_svg(history(count))
  root = parsed(svg)
  assert len([line for line in root.iter('line') if line.get('class') == 'axis']) == 2
  assert len(list(root.iter('circle'))) == count
  ticks = y_labels(svg)
  assert len(ticks) >= 3 and ticks == sorted(ticks)  # Drawn bottom up.
  names = [label.text for label in texts(svg, 'x-label')]
  assert names[0] == str(FIRST_VERSION)
  assert names[-1] == str(FIRST_VERSION + 1000 * (count - 1))
  titles = [title.text for title in texts(svg, 'title')]
  assert 'PSNR (dB)' in titles and f'version ({count}, oldest on the left)' in titles


@pytest.mark.parametrize('count', [1, 2, 3, 7, 20, 50])
def test_every_label_lies_inside_the_chart_and_apart_from_its_neighbours(count):
  svg = version_chart.psnr_chart_svg(history(count))
  spans = []
  for label in parsed(svg).iter('text'):
    left, right = extent(label)
    assert 0 <= left and right <= version_chart.WIDTH, (label.text, left, right)
    assert 0 < float(label.get('y')) <= version_chart.HEIGHT
    if label.get('class') == 'x-label':
      spans.append((left, right))
  assert all(before[1] <= after[0] for before, after in zip(spans, spans[1:]))


def test_one_version_is_a_point_on_axes_with_its_value_between_ticks():
  svg = version_chart.psnr_chart_svg(history(1))
  circle, = parsed(svg).iter('circle')
  ticks = y_labels(svg)
  assert min(ticks) < 22.0 < max(ticks)
  # Centred along the x axis.
  middle = version_chart.LEFT + (version_chart.WIDTH - version_chart.LEFT
                                 - version_chart.RIGHT) / 2
  assert float(circle.get('cx')) == pytest.approx(middle)


def test_y_ticks_cover_the_values_in_round_steps():
  for values in ([22.0], [20.0, 20.1], [13.2, 27.9], [0.5, 0.7], [24.0, 24.0, 31.5]):
    ticks = version_chart.y_ticks(values)
    assert ticks[0] <= min(values) and ticks[-1] >= max(values)
    steps = {round(after - before, 9) for before, after in zip(ticks, ticks[1:])}
    assert len(steps) == 1 and 3 <= len(ticks) <= 7, ticks


def test_rollbacks_are_red_and_the_served_version_ringed():
  svg = version_chart.psnr_chart_svg(history(4, rollback_at=2))
  circles = list(parsed(svg).iter('circle'))
  assert [circle.get('class') for circle in circles] == ['push', 'push', 'rollback', 'push']
  assert [circle.get('stroke') for circle in circles] == [None, None, None, '#222']
  assert 'rollback of 1796600000' in circles[2].find('title').text


def test_no_version_with_a_psnr_is_no_chart():
  assert version_chart.psnr_chart_svg([]) is None
  bare = versions.VersionEntry('5', True, True, None)  # Copied in by hand.
  assert version_chart.psnr_chart_svg([bare]) is None
